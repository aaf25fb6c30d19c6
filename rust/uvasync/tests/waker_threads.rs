//! Wakers are `Send + Sync`: one may outlive its runtime and be woken, and
//! dropped, from another thread while the runtime is dropped (its loop
//! closed) or after. Neither may touch a closed or freed loop.
//!
//! The dangerous moment is a waker's last drop in another thread racing the
//! runtime's drop: the core hands the task's free to the loop, and before
//! the fix the loop could be closed and freed between that hand-off and its
//! wake-up call (`uv_async_send`), which then aborted in libuv. The window
//! is a few instructions wide; this test binary widens it by defining
//! `uv_async_send` itself (the static core links to it; the real one is
//! found with `dlsym(RTLD_NEXT)`): a thread that set SLOW_SEND sleeps 1 ms
//! in its next wake-up call before making it.
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use uvasync::Runtime;

thread_local! {
    static SLOW_SEND: Cell<bool> = const { Cell::new(false) };
}
static SLOWED: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}
const RTLD_NEXT: *mut c_void = -1isize as *mut c_void; // glibc

type AsyncSend = unsafe extern "C" fn(*mut c_void) -> c_int;

/// libuv's `uv_async_send`, 1 ms late in a thread that asked for it.
///
/// # Safety
///
/// As libuv's: `handle` is an initialised `uv_async_t`.
#[no_mangle]
pub unsafe extern "C" fn uv_async_send(handle: *mut c_void) -> c_int {
    static REAL: OnceLock<usize> = OnceLock::new();
    let real = *REAL.get_or_init(|| {
        // SAFETY: a NUL-terminated name; RTLD_NEXT finds libuv's definition.
        let p = unsafe { dlsym(RTLD_NEXT, c"uv_async_send".as_ptr()) };
        assert!(!p.is_null(), "libuv's uv_async_send not found");
        p as usize
    });
    if SLOW_SEND.with(|s| s.replace(false)) {
        SLOWED.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: `real` is libuv's uv_async_send, called with our argument.
    unsafe { std::mem::transmute::<usize, AsyncSend>(real)(handle) }
}

/// The waker of the task that `block_on` runs, cloned out of it.
fn waker_of_a_finished_task(rt: &Runtime) -> Waker {
    rt.block_on(poll_fn(|cx| Poll::Ready(cx.waker().clone())))
}

#[test]
fn a_waker_dropped_in_another_thread_while_the_runtime_drops() {
    for _ in 0..50 {
        let rt = Runtime::new().unwrap();
        let waker = waker_of_a_finished_task(&rt);
        let go = Arc::new(Barrier::new(2));
        let go2 = go.clone();
        let th = thread::spawn(move || {
            go2.wait();
            SLOW_SEND.with(|s| s.set(true));
            drop(waker); // the last reference: the free goes to the loop
        });
        go.wait();
        thread::sleep(Duration::from_micros(200));
        drop(rt);
        th.join().unwrap();
    }
    assert!(SLOWED.load(Ordering::Relaxed) > 0, "uv_async_send was not interposed");
}

#[test]
fn a_waker_woken_from_another_thread_after_its_runtime_is_gone() {
    let rt = Runtime::new().unwrap();
    let waker = waker_of_a_finished_task(&rt);
    drop(rt); // the waker keeps the task: the loop cannot close, it stays
    thread::spawn(move || {
        for _ in 0..1000 {
            waker.wake_by_ref();
        }
        waker.wake();
    })
    .join()
    .unwrap();
}
