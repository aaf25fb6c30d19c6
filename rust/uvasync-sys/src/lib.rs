//! Raw FFI declarations of the uvasync C API (`include/uvasync.h`).
//!
//! Every item mirrors the header one to one; the header's comments are the
//! documentation (ownership, thread rules, error codes). There is no logic
//! here: the safe API is the `uvasync` crate. The test `tests/header.rs`
//! compares these declarations with the header, so they cannot drift.
//!
//! The library is found with pkg-config (an installed uvasync 1.x) or built
//! from the C sources by this crate's build script.
#![no_std]
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use core::marker::{PhantomData, PhantomPinned};

/// The C library version these declarations follow (`UVA_VERSION_HEX`).
pub const UVA_VERSION_HEX: c_uint = 0x01_00_00;

macro_rules! opaque {
    ($($(#[$m:meta])* $name:ident;)*) => {$(
        $(#[$m])*
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            // Not Send, not Sync, not Unpin: only ever used behind pointers.
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque! {
    /// `uva_loop_t`: one event loop, owned by the thread that created it.
    uva_loop_t;
    /// `uva_task_t`: a task the loop resumes by calling its step function.
    uva_task_t;
    /// `uva_timer_t`: a one-shot or repeating timer.
    uva_timer_t;
    /// `uva_event_t`.
    uva_event_t;
    /// `uva_lock_t`.
    uva_lock_t;
    /// `uva_sem_t`.
    uva_sem_t;
    /// `uva_queue_t`.
    uva_queue_t;
    /// `uva_flag_t`: thread-safe flag.
    uva_flag_t;
    /// `uva_stream_t`: TCP, Unix socket, pipe, TTY or adopted descriptor.
    uva_stream_t;
    /// `uva_server_t`: a listening TCP or Unix socket.
    uva_server_t;
    /// `uva_udp_t`: a datagram socket.
    uva_udp_t;
    /// `uva_poll_t`: readiness of a descriptor.
    uva_poll_t;
    /// `uva_process_t`: a child process.
    uva_process_t;
    /// `uva_signal_t`: a signal watcher.
    uva_signal_t;
    /// `uva_work_t`: a job on the loop's thread pool (also file operations).
    uva_work_t;
    /// `uva_tls_ctx_t`: TLS settings shared by the streams that use them.
    uva_tls_ctx_t;
}

/// `uva_run_mode` (a C enum).
pub type uva_run_mode = c_uint;
pub const UVA_RUN_DEFAULT: uva_run_mode = 0;
pub const UVA_RUN_ONCE: uva_run_mode = 1;
pub const UVA_RUN_NOWAIT: uva_run_mode = 2;

/// `uva_stream_option` (a C enum).
pub type uva_stream_option = c_uint;
pub const UVA_STREAM_HIGH_WATER: uva_stream_option = 1;
pub const UVA_STREAM_LOW_WATER: uva_stream_option = 2;
pub const UVA_STREAM_LINE_LIMIT: uva_stream_option = 3;
pub const UVA_STREAM_DELIMITER: uva_stream_option = 4;
pub const UVA_STREAM_NODELAY: uva_stream_option = 5;

pub const UVA_TASK_PENDING: c_int = 1;
pub const UVA_TASK_YIELD: c_int = 2;
pub const UVA_READABLE: c_int = 1;
pub const UVA_WRITABLE: c_int = 2;
pub const UVA_TICKS_PERIOD: c_long = 1 << 30;

// Error codes (UVA_ERRNO_MAP; the libuv ones are -errno on Linux).
pub const UVA_E2BIG: c_int = -7;
pub const UVA_EACCES: c_int = -13;
pub const UVA_EADDRINUSE: c_int = -98;
pub const UVA_EADDRNOTAVAIL: c_int = -99;
pub const UVA_EAFNOSUPPORT: c_int = -97;
pub const UVA_EAGAIN: c_int = -11;
pub const UVA_EAI_ADDRFAMILY: c_int = -3000;
pub const UVA_EAI_AGAIN: c_int = -3001;
pub const UVA_EAI_BADFLAGS: c_int = -3002;
pub const UVA_EAI_BADHINTS: c_int = -3013;
pub const UVA_EAI_CANCELED: c_int = -3003;
pub const UVA_EAI_FAIL: c_int = -3004;
pub const UVA_EAI_FAMILY: c_int = -3005;
pub const UVA_EAI_MEMORY: c_int = -3006;
pub const UVA_EAI_NODATA: c_int = -3007;
pub const UVA_EAI_NONAME: c_int = -3008;
pub const UVA_EAI_OVERFLOW: c_int = -3009;
pub const UVA_EAI_PROTOCOL: c_int = -3014;
pub const UVA_EAI_SERVICE: c_int = -3010;
pub const UVA_EAI_SOCKTYPE: c_int = -3011;
pub const UVA_EALREADY: c_int = -114;
pub const UVA_EBADF: c_int = -9;
pub const UVA_EBUSY: c_int = -16;
pub const UVA_ECANCELED: c_int = -125;
pub const UVA_ECHARSET: c_int = -4080;
pub const UVA_ECONNABORTED: c_int = -103;
pub const UVA_ECONNREFUSED: c_int = -111;
pub const UVA_ECONNRESET: c_int = -104;
pub const UVA_EDESTADDRREQ: c_int = -89;
pub const UVA_EEXIST: c_int = -17;
pub const UVA_EFAULT: c_int = -14;
pub const UVA_EFBIG: c_int = -27;
pub const UVA_EHOSTUNREACH: c_int = -113;
pub const UVA_EINTR: c_int = -4;
pub const UVA_EINVAL: c_int = -22;
pub const UVA_EIO: c_int = -5;
pub const UVA_EISCONN: c_int = -106;
pub const UVA_EISDIR: c_int = -21;
pub const UVA_ELOOP: c_int = -40;
pub const UVA_EMFILE: c_int = -24;
pub const UVA_EMSGSIZE: c_int = -90;
pub const UVA_ENAMETOOLONG: c_int = -36;
pub const UVA_ENETDOWN: c_int = -100;
pub const UVA_ENETUNREACH: c_int = -101;
pub const UVA_ENFILE: c_int = -23;
pub const UVA_ENOBUFS: c_int = -105;
pub const UVA_ENODEV: c_int = -19;
pub const UVA_ENOENT: c_int = -2;
pub const UVA_ENOEXEC: c_int = -8;
pub const UVA_ENOMEM: c_int = -12;
pub const UVA_ENONET: c_int = -64;
pub const UVA_ENOPROTOOPT: c_int = -92;
pub const UVA_ENOSPC: c_int = -28;
pub const UVA_ENOSYS: c_int = -38;
pub const UVA_ENOTCONN: c_int = -107;
pub const UVA_ENOTDIR: c_int = -20;
pub const UVA_ENOTEMPTY: c_int = -39;
pub const UVA_ENOTSOCK: c_int = -88;
pub const UVA_ENOTSUP: c_int = -95;
pub const UVA_EOVERFLOW: c_int = -75;
pub const UVA_EPERM: c_int = -1;
pub const UVA_EPIPE: c_int = -32;
pub const UVA_EPROTO: c_int = -71;
pub const UVA_EPROTONOSUPPORT: c_int = -93;
pub const UVA_EPROTOTYPE: c_int = -91;
pub const UVA_ERANGE: c_int = -34;
pub const UVA_EROFS: c_int = -30;
pub const UVA_ESHUTDOWN: c_int = -108;
pub const UVA_ESPIPE: c_int = -29;
pub const UVA_ESRCH: c_int = -3;
pub const UVA_ETIMEDOUT: c_int = -110;
pub const UVA_ETXTBSY: c_int = -26;
pub const UVA_EXDEV: c_int = -18;
pub const UVA_UNKNOWN: c_int = -4094;
pub const UVA_EOF: c_int = -4095;
pub const UVA_ENXIO: c_int = -6;
pub const UVA_EMLINK: c_int = -31;
pub const UVA_EHOSTDOWN: c_int = -112;
pub const UVA_EREMOTEIO: c_int = -121;
pub const UVA_ENOTTY: c_int = -25;
pub const UVA_EFTYPE: c_int = -4028;
pub const UVA_EILSEQ: c_int = -84;
pub const UVA_ESOCKTNOSUPPORT: c_int = -94;
pub const UVA_EINTERNAL: c_int = -5000;
pub const UVA_EWRONGTHREAD: c_int = -5001;
pub const UVA_ECLOSED: c_int = -5002;
pub const UVA_EHANDLEKIND: c_int = -5003;
pub const UVA_EUSER: c_int = -5004;
pub const UVA_ERUNNING: c_int = -5005;
pub const UVA_EQUEUEFULL: c_int = -5010;
pub const UVA_EQUEUEEMPTY: c_int = -5011;
pub const UVA_EINCOMPLETE: c_int = -5012;
pub const UVA_ELINETOOLONG: c_int = -5013;
pub const UVA_ETLS: c_int = -5020;
pub const UVA_ETLSUNTRUSTED: c_int = -5021;
pub const UVA_ETLSEXPIRED: c_int = -5022;
pub const UVA_ETLSHOSTNAME: c_int = -5023;
pub const UVA_ETLSCERT: c_int = -5024;
pub const UVA_ETLSNOCERT: c_int = -5025;
pub const UVA_ETLSVERSION: c_int = -5026;
pub const UVA_ETLSALERT: c_int = -5027;
pub const UVA_ETLSEOF: c_int = -5028;

/// `uva_stdio_kind` (a C enum).
pub type uva_stdio_kind = c_uint;
pub const UVA_STDIO_INHERIT: uva_stdio_kind = 0;
pub const UVA_STDIO_NULL: uva_stdio_kind = 1;
pub const UVA_STDIO_FD: uva_stdio_kind = 2;
pub const UVA_STDIO_PIPE: uva_stdio_kind = 3;
pub const UVA_STDIO_STDOUT: uva_stdio_kind = 4;

pub const UVA_PROCESS_SETSID: c_uint = 1;
pub const UVA_PROCESS_KILL_ON_CLOSE: c_uint = 2;

/// `uva_stdio_t`: how one of the child's descriptors 0..2 is set up.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct uva_stdio_t {
    pub kind: uva_stdio_kind,
    pub fd: c_int,
}

/// `uva_process_options_t` (an option struct: `size` first).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct uva_process_options_t {
    pub size: usize,
    pub file: *const c_char,
    pub args: *const *const c_char,
    pub env: *const *const c_char,
    pub cwd: *const c_char,
    pub stdio: [uva_stdio_t; 3],
    pub flags: c_uint,
}

/// `uva_tls_role` (a C enum).
pub type uva_tls_role = c_uint;
pub const UVA_TLS_CLIENT: uva_tls_role = 0;
pub const UVA_TLS_SERVER: uva_tls_role = 1;
pub const UVA_TLS_VERIFY_NONE: c_int = 0;
pub const UVA_TLS_VERIFY_PEER: c_int = 1;
pub const UVA_TLS_VERIFY_REQUIRE: c_int = 2;
pub const UVA_TLS_VERIFY_NO_HOSTNAME: c_int = 0x10;
pub const UVA_TLS_X509_STRICT: c_int = 0x1;
pub const UVA_TLS_X509_PARTIAL_CHAIN: c_int = 0x2;
pub const UVA_TLS_VERSION_1_2: c_int = 0x0303;
pub const UVA_TLS_VERSION_1_3: c_int = 0x0304;

/// `uva_loop_option` (a C enum).
pub type uva_loop_option = c_uint;
pub const UVA_LOOP_POOL_SIZE: uva_loop_option = 1;

/// `uva_file_type` (a C enum).
pub type uva_file_type = c_uint;
pub const UVA_FILE_UNKNOWN: uva_file_type = 0;
pub const UVA_FILE_REGULAR: uva_file_type = 1;
pub const UVA_FILE_DIR: uva_file_type = 2;
pub const UVA_FILE_LINK: uva_file_type = 3;
pub const UVA_FILE_FIFO: uva_file_type = 4;
pub const UVA_FILE_SOCKET: uva_file_type = 5;
pub const UVA_FILE_CHAR: uva_file_type = 6;
pub const UVA_FILE_BLOCK: uva_file_type = 7;

/// `uva_stat_t` (an option struct: `size` first).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct uva_stat_t {
    pub size: usize,
    pub type_: uva_file_type,
    pub mode: u64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub uid: u64,
    pub gid: u64,
    pub rdev: u64,
    pub file_size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime_ns: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// `uva_buf_t`: a piece of memory for `uva_stream_writev` (layout as in the
/// header, part of the ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct uva_buf_t {
    pub base: *const c_void,
    pub len: usize,
}

// Callbacks.
pub type uva_free_cb = Option<unsafe extern "C" fn(data: *mut c_void)>;
pub type uva_callback_cb = Option<unsafe extern "C" fn(data: *mut c_void)>;
pub type uva_task_step_cb =
    Option<unsafe extern "C" fn(task: *mut uva_task_t, status: c_int, data: *mut c_void) -> c_int>;
pub type uva_task_done_cb = Option<unsafe extern "C" fn(task: *mut uva_task_t, result: c_int, data: *mut c_void)>;
pub type uva_timer_cb = Option<unsafe extern "C" fn(timer: *mut uva_timer_t, data: *mut c_void)>;
pub type uva_timer_close_cb = Option<unsafe extern "C" fn(timer: *mut uva_timer_t, data: *mut c_void)>;
pub type uva_stream_close_cb = Option<unsafe extern "C" fn(stream: *mut uva_stream_t, data: *mut c_void)>;
pub type uva_server_connection_cb =
    Option<unsafe extern "C" fn(server: *mut uva_server_t, stream: *mut uva_stream_t, data: *mut c_void)>;
pub type uva_server_close_cb = Option<unsafe extern "C" fn(server: *mut uva_server_t, data: *mut c_void)>;
pub type uva_udp_close_cb = Option<unsafe extern "C" fn(udp: *mut uva_udp_t, data: *mut c_void)>;
pub type uva_poll_close_cb = Option<unsafe extern "C" fn(poll: *mut uva_poll_t, data: *mut c_void)>;
pub type uva_process_close_cb = Option<unsafe extern "C" fn(process: *mut uva_process_t, data: *mut c_void)>;
pub type uva_signal_cb = Option<unsafe extern "C" fn(sig: *mut uva_signal_t, signum: c_int, data: *mut c_void)>;
pub type uva_signal_close_cb = Option<unsafe extern "C" fn(sig: *mut uva_signal_t, data: *mut c_void)>;
pub type uva_work_fn = Option<unsafe extern "C" fn(data: *mut c_void)>;
pub type uva_work_done_cb = Option<unsafe extern "C" fn(work: *mut uva_work_t, status: c_int, data: *mut c_void)>;

extern "C" {
    pub fn uva_version() -> c_uint;
    pub fn uva_version_string() -> *const c_char;
    pub fn uva_strerror(err: c_int) -> *const c_char;
    pub fn uva_err_name(err: c_int) -> *const c_char;
    pub fn uva_strerror_r(err: c_int, buf: *mut c_char, buflen: usize) -> *mut c_char;
    pub fn uva_err_name_r(err: c_int, buf: *mut c_char, buflen: usize) -> *mut c_char;
    pub fn uva_loop_new(out: *mut *mut uva_loop_t) -> c_int;
    pub fn uva_loop_run(loop_: *mut uva_loop_t, mode: uva_run_mode) -> c_int;
    pub fn uva_loop_stop(loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_loop_alive(out: *mut c_int, loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_loop_now(out: *mut u64, loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_loop_call_soon(loop_: *mut uva_loop_t, cb: uva_callback_cb, data: *mut c_void) -> c_int;
    pub fn uva_loop_call_soon_threadsafe(loop_: *mut uva_loop_t, cb: uva_callback_cb, data: *mut c_void) -> c_int;
    pub fn uva_loop_set_data(loop_: *mut uva_loop_t, data: *mut c_void, dtor: uva_free_cb) -> c_int;
    pub fn uva_loop_set_wait_hooks(
        loop_: *mut uva_loop_t,
        before: uva_callback_cb,
        after: uva_callback_cb,
        data: *mut c_void,
    ) -> c_int;
    pub fn uva_loop_get_data(out: *mut *mut c_void, loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_loop_close(loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_loop_retain(loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_loop_release(loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_loop_adopt(loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_task_spawn(
        out: *mut *mut uva_task_t,
        loop_: *mut uva_loop_t,
        step: uva_task_step_cb,
        data: *mut c_void,
        dtor: uva_free_cb,
    ) -> c_int;
    pub fn uva_task_yield(task: *mut uva_task_t) -> c_int;
    pub fn uva_task_sleep(task: *mut uva_task_t, ms: i64) -> c_int;
    pub fn uva_task_join(task: *mut uva_task_t, other: *mut uva_task_t) -> c_int;
    pub fn uva_task_wake(task: *mut uva_task_t) -> c_int;
    pub fn uva_task_cancel(task: *mut uva_task_t) -> c_int;
    pub fn uva_task_add_done_cb(task: *mut uva_task_t, cb: uva_task_done_cb, data: *mut c_void) -> c_int;
    pub fn uva_task_remove_done_cb(task: *mut uva_task_t, cb: uva_task_done_cb, data: *mut c_void) -> c_int;
    pub fn uva_task_done(out: *mut c_int, task: *mut uva_task_t) -> c_int;
    pub fn uva_task_result(out: *mut c_int, task: *mut uva_task_t) -> c_int;
    pub fn uva_task_current(out: *mut *mut uva_task_t, loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_task_get_data(out: *mut *mut c_void, task: *mut uva_task_t) -> c_int;
    pub fn uva_task_get_loop(out: *mut *mut uva_loop_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_task_ref(task: *mut uva_task_t) -> c_int;
    pub fn uva_task_unref(task: *mut uva_task_t) -> c_int;
    pub fn uva_task_retain(task: *mut uva_task_t) -> c_int;
    pub fn uva_task_release(task: *mut uva_task_t) -> c_int;
    pub fn uva_timer_new(
        out: *mut *mut uva_timer_t,
        loop_: *mut uva_loop_t,
        cb: uva_timer_cb,
        data: *mut c_void,
        dtor: uva_free_cb,
    ) -> c_int;
    pub fn uva_timer_start(timer: *mut uva_timer_t, timeout_ms: i64, repeat_ms: i64) -> c_int;
    pub fn uva_timer_stop(timer: *mut uva_timer_t) -> c_int;
    pub fn uva_timer_active(out: *mut c_int, timer: *mut uva_timer_t) -> c_int;
    pub fn uva_timer_get_data(out: *mut *mut c_void, timer: *mut uva_timer_t) -> c_int;
    pub fn uva_timer_ref(timer: *mut uva_timer_t) -> c_int;
    pub fn uva_timer_unref(timer: *mut uva_timer_t) -> c_int;
    pub fn uva_timer_close(timer: *mut uva_timer_t, close_cb: uva_timer_close_cb) -> c_int;
    pub fn uva_task_withdraw(task: *mut uva_task_t, object: *const c_void) -> c_int;
    pub fn uva_event_new(out: *mut *mut uva_event_t, loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_event_set(event: *mut uva_event_t) -> c_int;
    pub fn uva_event_clear(event: *mut uva_event_t) -> c_int;
    pub fn uva_event_is_set(out: *mut c_int, event: *mut uva_event_t) -> c_int;
    pub fn uva_event_wait(event: *mut uva_event_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_event_close(event: *mut uva_event_t) -> c_int;
    pub fn uva_lock_new(out: *mut *mut uva_lock_t, loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_lock_acquire(lock: *mut uva_lock_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_lock_try_acquire(lock: *mut uva_lock_t) -> c_int;
    pub fn uva_lock_release(lock: *mut uva_lock_t) -> c_int;
    pub fn uva_lock_locked(out: *mut c_int, lock: *mut uva_lock_t) -> c_int;
    pub fn uva_lock_close(lock: *mut uva_lock_t) -> c_int;
    pub fn uva_sem_new(out: *mut *mut uva_sem_t, loop_: *mut uva_loop_t, value: i64, bound: i64) -> c_int;
    pub fn uva_sem_acquire(sem: *mut uva_sem_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_sem_try_acquire(sem: *mut uva_sem_t) -> c_int;
    pub fn uva_sem_release(sem: *mut uva_sem_t) -> c_int;
    pub fn uva_sem_value(out: *mut i64, sem: *mut uva_sem_t) -> c_int;
    pub fn uva_sem_close(sem: *mut uva_sem_t) -> c_int;
    pub fn uva_queue_new(
        out: *mut *mut uva_queue_t,
        loop_: *mut uva_loop_t,
        maxsize: usize,
        item_dtor: uva_free_cb,
    ) -> c_int;
    pub fn uva_queue_put(queue: *mut uva_queue_t, task: *mut uva_task_t, item: *mut c_void) -> c_int;
    pub fn uva_queue_get(out: *mut *mut c_void, queue: *mut uva_queue_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_queue_put_nowait(queue: *mut uva_queue_t, item: *mut c_void) -> c_int;
    pub fn uva_queue_get_nowait(out: *mut *mut c_void, queue: *mut uva_queue_t) -> c_int;
    pub fn uva_queue_size(out: *mut usize, queue: *mut uva_queue_t) -> c_int;
    pub fn uva_queue_empty(out: *mut c_int, queue: *mut uva_queue_t) -> c_int;
    pub fn uva_queue_full(out: *mut c_int, queue: *mut uva_queue_t) -> c_int;
    pub fn uva_queue_close(queue: *mut uva_queue_t) -> c_int;
    pub fn uva_flag_new(out: *mut *mut uva_flag_t, loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_flag_set(flag: *mut uva_flag_t) -> c_int;
    pub fn uva_flag_wait(flag: *mut uva_flag_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_flag_close(flag: *mut uva_flag_t) -> c_int;
    pub fn uva_tcp_connect(
        out: *mut *mut uva_stream_t,
        loop_: *mut uva_loop_t,
        host: *const c_char,
        port: c_int,
    ) -> c_int;
    pub fn uva_pipe_connect(out: *mut *mut uva_stream_t, loop_: *mut uva_loop_t, path: *const c_char) -> c_int;
    pub fn uva_stream_wait_connected(stream: *mut uva_stream_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_stream_open_fd(out: *mut *mut uva_stream_t, loop_: *mut uva_loop_t, fd: c_int) -> c_int;
    pub fn uva_stream_set(stream: *mut uva_stream_t, option: uva_stream_option, value: usize) -> c_int;
    pub fn uva_stream_read(
        nread: *mut usize,
        stream: *mut uva_stream_t,
        task: *mut uva_task_t,
        buf: *mut c_void,
        len: usize,
    ) -> c_int;
    pub fn uva_stream_read_spill(
        nread: *mut usize,
        stream: *mut uva_stream_t,
        task: *mut uva_task_t,
        buf: *mut c_void,
        len: usize,
        spill: *mut c_void,
        spill_len: usize,
    ) -> c_int;
    pub fn uva_stream_read_hint(out: *mut usize, stream: *mut uva_stream_t) -> c_int;
    pub fn uva_stream_peek(
        data: *mut *const c_void,
        len: *mut usize,
        stream: *mut uva_stream_t,
        task: *mut uva_task_t,
    ) -> c_int;
    pub fn uva_stream_consume(stream: *mut uva_stream_t, n: usize) -> c_int;
    pub fn uva_stream_read_exactly(
        stream: *mut uva_stream_t,
        task: *mut uva_task_t,
        buf: *mut c_void,
        n: usize,
    ) -> c_int;
    pub fn uva_stream_read_line(
        len: *mut usize,
        stream: *mut uva_stream_t,
        task: *mut uva_task_t,
        buf: *mut c_void,
        buflen: usize,
    ) -> c_int;
    pub fn uva_stream_read_until(
        len: *mut usize,
        stream: *mut uva_stream_t,
        task: *mut uva_task_t,
        sep: *const c_void,
        seplen: usize,
        buf: *mut c_void,
        buflen: usize,
    ) -> c_int;
    pub fn uva_stream_read_state(state: *mut c_int, stream: *mut uva_stream_t) -> c_int;
    pub fn uva_stream_feed_eof(stream: *mut uva_stream_t) -> c_int;
    pub fn uva_stream_read_to_eof(len: *mut usize, stream: *mut uva_stream_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_stream_buffered(out: *mut usize, stream: *mut uva_stream_t) -> c_int;
    pub fn uva_stream_write(queued: *mut usize, stream: *mut uva_stream_t, buf: *const c_void, len: usize) -> c_int;
    pub fn uva_stream_writev(
        queued: *mut usize,
        stream: *mut uva_stream_t,
        bufs: *const uva_buf_t,
        nbufs: usize,
    ) -> c_int;
    pub fn uva_stream_drain(stream: *mut uva_stream_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_stream_write_drain(
        stream: *mut uva_stream_t,
        task: *mut uva_task_t,
        buf: *const c_void,
        len: usize,
    ) -> c_int;
    pub fn uva_stream_shutdown(stream: *mut uva_stream_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_stream_peer_address(
        stream: *mut uva_stream_t,
        host: *mut c_char,
        hostlen: usize,
        port: *mut c_int,
    ) -> c_int;
    pub fn uva_stream_local_address(
        stream: *mut uva_stream_t,
        host: *mut c_char,
        hostlen: usize,
        port: *mut c_int,
    ) -> c_int;
    pub fn uva_stream_fileno(fd: *mut c_int, stream: *mut uva_stream_t) -> c_int;
    pub fn uva_stream_close(stream: *mut uva_stream_t, close_cb: uva_stream_close_cb, data: *mut c_void) -> c_int;
    pub fn uva_stream_abort(stream: *mut uva_stream_t, close_cb: uva_stream_close_cb, data: *mut c_void) -> c_int;
    pub fn uva_tcp_listen(
        out: *mut *mut uva_server_t,
        loop_: *mut uva_loop_t,
        host: *const c_char,
        port: c_int,
        backlog: c_int,
    ) -> c_int;
    pub fn uva_pipe_listen(
        out: *mut *mut uva_server_t,
        loop_: *mut uva_loop_t,
        path: *const c_char,
        backlog: c_int,
    ) -> c_int;
    pub fn uva_server_accept(out: *mut *mut uva_stream_t, server: *mut uva_server_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_server_on_connection(
        server: *mut uva_server_t,
        cb: uva_server_connection_cb,
        data: *mut c_void,
    ) -> c_int;
    pub fn uva_server_address(server: *mut uva_server_t, host: *mut c_char, hostlen: usize, port: *mut c_int) -> c_int;
    pub fn uva_server_close(server: *mut uva_server_t, close_cb: uva_server_close_cb, data: *mut c_void) -> c_int;
    pub fn uva_udp_new(out: *mut *mut uva_udp_t, loop_: *mut uva_loop_t) -> c_int;
    pub fn uva_udp_bind(udp: *mut uva_udp_t, host: *const c_char, port: c_int) -> c_int;
    pub fn uva_udp_connect(udp: *mut uva_udp_t, host: *const c_char, port: c_int) -> c_int;
    pub fn uva_udp_set(udp: *mut uva_udp_t, option: uva_stream_option, value: usize) -> c_int;
    pub fn uva_udp_send(udp: *mut uva_udp_t, buf: *const c_void, len: usize, host: *const c_char, port: c_int)
        -> c_int;
    pub fn uva_udp_recv(
        len: *mut usize,
        udp: *mut uva_udp_t,
        task: *mut uva_task_t,
        buf: *mut c_void,
        buflen: usize,
        host: *mut c_char,
        hostlen: usize,
        port: *mut c_int,
    ) -> c_int;
    pub fn uva_udp_local_address(udp: *mut uva_udp_t, host: *mut c_char, hostlen: usize, port: *mut c_int) -> c_int;
    pub fn uva_udp_fileno(fd: *mut c_int, udp: *mut uva_udp_t) -> c_int;
    pub fn uva_udp_close(udp: *mut uva_udp_t, close_cb: uva_udp_close_cb, data: *mut c_void) -> c_int;
    pub fn uva_poll_new(out: *mut *mut uva_poll_t, loop_: *mut uva_loop_t, fd: c_int) -> c_int;
    pub fn uva_poll_wait(revents: *mut c_int, poll: *mut uva_poll_t, task: *mut uva_task_t, events: c_int) -> c_int;
    pub fn uva_poll_close(poll: *mut uva_poll_t, close_cb: uva_poll_close_cb, data: *mut c_void) -> c_int;
    pub fn uva_process_spawn(
        out: *mut *mut uva_process_t,
        loop_: *mut uva_loop_t,
        options: *const uva_process_options_t,
    ) -> c_int;
    pub fn uva_process_pid(pid: *mut c_int, process: *mut uva_process_t) -> c_int;
    pub fn uva_process_stream(out: *mut *mut uva_stream_t, process: *mut uva_process_t, fd: c_int) -> c_int;
    pub fn uva_process_wait(
        exit_status: *mut i64,
        term_signal: *mut c_int,
        process: *mut uva_process_t,
        task: *mut uva_task_t,
    ) -> c_int;
    pub fn uva_process_kill(process: *mut uva_process_t, signum: c_int) -> c_int;
    pub fn uva_process_close(process: *mut uva_process_t, close_cb: uva_process_close_cb, data: *mut c_void) -> c_int;
    pub fn uva_signal_new(out: *mut *mut uva_signal_t, loop_: *mut uva_loop_t, signum: c_int) -> c_int;
    pub fn uva_signal_wait(count: *mut u64, sig: *mut uva_signal_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_signal_on_signal(sig: *mut uva_signal_t, cb: uva_signal_cb, data: *mut c_void) -> c_int;
    pub fn uva_signal_signum(signum: *mut c_int, sig: *mut uva_signal_t) -> c_int;
    pub fn uva_signal_close(sig: *mut uva_signal_t, close_cb: uva_signal_close_cb, data: *mut c_void) -> c_int;
    pub fn uva_work_submit(
        out: *mut *mut uva_work_t,
        loop_: *mut uva_loop_t,
        fn_: uva_work_fn,
        data: *mut c_void,
        dtor: uva_free_cb,
        done: uva_work_done_cb,
    ) -> c_int;
    pub fn uva_work_wait(work: *mut uva_work_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_work_cancel(work: *mut uva_work_t) -> c_int;
    pub fn uva_work_done(out: *mut c_int, work: *mut uva_work_t) -> c_int;
    pub fn uva_work_close(work: *mut uva_work_t) -> c_int;
    pub fn uva_loop_configure(loop_: *mut uva_loop_t, option: uva_loop_option, value: u64) -> c_int;
    pub fn uva_loop_get_option(out: *mut u64, loop_: *mut uva_loop_t, option: uva_loop_option) -> c_int;
    pub fn uva_fs_open(
        out: *mut *mut uva_work_t,
        loop_: *mut uva_loop_t,
        path: *const c_char,
        flags: c_int,
        mode: c_int,
    ) -> c_int;
    pub fn uva_fs_close(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, fd: c_int) -> c_int;
    pub fn uva_fs_read(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, fd: c_int, len: usize, offset: i64) -> c_int;
    pub fn uva_fs_write(
        out: *mut *mut uva_work_t,
        loop_: *mut uva_loop_t,
        fd: c_int,
        data: *const c_void,
        len: usize,
        offset: i64,
    ) -> c_int;
    pub fn uva_fs_fsync(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, fd: c_int, datasync: c_int) -> c_int;
    pub fn uva_fs_ftruncate(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, fd: c_int, length: i64) -> c_int;
    pub fn uva_fs_stat(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, path: *const c_char) -> c_int;
    pub fn uva_fs_lstat(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, path: *const c_char) -> c_int;
    pub fn uva_fs_fstat(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, fd: c_int) -> c_int;
    pub fn uva_fs_rename(
        out: *mut *mut uva_work_t,
        loop_: *mut uva_loop_t,
        from: *const c_char,
        to: *const c_char,
    ) -> c_int;
    pub fn uva_fs_unlink(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, path: *const c_char) -> c_int;
    pub fn uva_fs_mkdir(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, path: *const c_char, mode: c_int) -> c_int;
    pub fn uva_fs_rmdir(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, path: *const c_char) -> c_int;
    pub fn uva_fs_readdir(out: *mut *mut uva_work_t, loop_: *mut uva_loop_t, path: *const c_char) -> c_int;
    pub fn uva_fs_sendfile(
        out: *mut *mut uva_work_t,
        stream: *mut uva_stream_t,
        in_fd: c_int,
        offset: i64,
        len: usize,
    ) -> c_int;
    pub fn uva_fs_result(out: *mut i64, work: *mut uva_work_t) -> c_int;
    pub fn uva_fs_data(data: *mut *const c_void, len: *mut usize, work: *mut uva_work_t) -> c_int;
    pub fn uva_fs_statbuf(out: *mut uva_stat_t, work: *mut uva_work_t) -> c_int;
    pub fn uva_fs_dirent(name: *mut *const c_char, type_: *mut uva_file_type, work: *mut uva_work_t, i: usize)
        -> c_int;
    pub fn uva_tls_available() -> c_int;
    pub fn uva_tls_ctx_new(out: *mut *mut uva_tls_ctx_t, role: uva_tls_role) -> c_int;
    pub fn uva_tls_ctx_free(ctx: *mut uva_tls_ctx_t);
    pub fn uva_tls_ctx_set_verify(ctx: *mut uva_tls_ctx_t, mode: c_int) -> c_int;
    pub fn uva_tls_ctx_set_verify_flags(ctx: *mut uva_tls_ctx_t, flags: c_int) -> c_int;
    pub fn uva_tls_ctx_load_ca(ctx: *mut uva_tls_ctx_t, file: *const c_char, dir: *const c_char) -> c_int;
    pub fn uva_tls_ctx_load_ca_pem(ctx: *mut uva_tls_ctx_t, pem: *const c_void, len: usize) -> c_int;
    pub fn uva_tls_ctx_use_cert_file(
        ctx: *mut uva_tls_ctx_t,
        chain_file: *const c_char,
        key_file: *const c_char,
        password: *const c_char,
    ) -> c_int;
    pub fn uva_tls_ctx_use_cert_pem(
        ctx: *mut uva_tls_ctx_t,
        chain_pem: *const c_void,
        chain_len: usize,
        key_pem: *const c_void,
        key_len: usize,
        password: *const c_char,
    ) -> c_int;
    pub fn uva_tls_ctx_set_versions(ctx: *mut uva_tls_ctx_t, min_version: c_int, max_version: c_int) -> c_int;
    pub fn uva_tls_ctx_set_ciphers(ctx: *mut uva_tls_ctx_t, tls12: *const c_char, tls13: *const c_char) -> c_int;
    pub fn uva_tls_ctx_set_alpn(ctx: *mut uva_tls_ctx_t, protos: *const *const c_char, count: usize) -> c_int;
    pub fn uva_tls_ctx_set_session_cache(ctx: *mut uva_tls_ctx_t, size: usize) -> c_int;
    pub fn uva_tls_start(stream: *mut uva_stream_t, ctx: *mut uva_tls_ctx_t, server_name: *const c_char) -> c_int;
    pub fn uva_tls_handshake(stream: *mut uva_stream_t, task: *mut uva_task_t) -> c_int;
    pub fn uva_tls_version(out: *mut c_int, stream: *mut uva_stream_t) -> c_int;
    pub fn uva_tls_alpn(stream: *mut uva_stream_t, buf: *mut c_char, buflen: usize) -> c_int;
    pub fn uva_tls_cipher(stream: *mut uva_stream_t, buf: *mut c_char, buflen: usize) -> c_int;
    pub fn uva_tls_server_name(stream: *mut uva_stream_t, buf: *mut c_char, buflen: usize) -> c_int;
    pub fn uva_tls_peer_cert(len: *mut usize, stream: *mut uva_stream_t, buf: *mut c_void, buflen: usize) -> c_int;
    pub fn uva_tls_verify_result(code: *mut c_int, stream: *mut uva_stream_t, buf: *mut c_char, buflen: usize)
        -> c_int;
    pub fn uva_tls_error_text(stream: *mut uva_stream_t, buf: *mut c_char, buflen: usize) -> c_int;
    pub fn uva_tls_session_reused(out: *mut c_int, stream: *mut uva_stream_t) -> c_int;
    pub fn uva_ticks_ms() -> c_long;
    pub fn uva_ticks_add(ticks: c_long, delta: c_long) -> c_long;
    pub fn uva_ticks_diff(a: c_long, b: c_long) -> c_long;
}
