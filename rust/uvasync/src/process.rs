//! Child processes: a [`Command`] builder as std's and tokio's, and a
//! [`Child`] whose exit is a core wait (cancelled by dropping the future)
//! and whose pipes are core streams.
//!
//! No zombie is left behind: the core reaps every child it started, also
//! after its `Child` was dropped and after the runtime was dropped. A
//! dropped child keeps running unless [`Command::kill_on_drop`] was set.
//!
//! ```
//! use uvasync::process::{Command, Stdio};
//!
//! uvasync::run(async {
//!     let out = Command::new("echo").arg("hello").output().await.unwrap();
//!     assert!(out.status.success());
//!     assert_eq!(out.stdout, b"hello\n");
//! });
//! ```
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CString, OsStr, OsString};
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{ExitStatus, Output};
use std::ptr;
use std::rc::Rc;
use std::task::Poll;

use uvasync_sys as sys;

use crate::error::{check, to_io};
use crate::runtime::{check_same_runtime, current_loop, LoopInner};
use crate::signal::SignalKind;
use crate::stream::RawStream;
use crate::task::{call_once, CoreWait};

/// How one of the child's descriptors 0, 1, 2 is set up (std's and
/// tokio's `Stdio`): the parent's, `/dev/null`, a pipe, or a descriptor
/// of the parent's (`From<File>`, `From<OwnedFd>`).
///
/// ```
/// use uvasync::process::{Command, Stdio};
/// let mut cmd = Command::new("true");
/// cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
/// ```
pub struct Stdio(StdioKind);

enum StdioKind {
    Inherit,
    Null,
    Piped,
    /// Duplicated onto the child's descriptor at each spawn; kept (and
    /// closed) by the parent.
    Fd(OwnedFd),
}

impl Stdio {
    /// The parent's descriptor of the same number.
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// `/dev/null` (reading gives end of file, writes are discarded).
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// A pipe whose parent end becomes the child's `stdin`, `stdout` or
    /// `stderr` field.
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }

    fn raw(&self) -> sys::uva_stdio_t {
        let (kind, fd) = match &self.0 {
            StdioKind::Inherit => (sys::UVA_STDIO_INHERIT, 0),
            StdioKind::Null => (sys::UVA_STDIO_NULL, 0),
            StdioKind::Piped => (sys::UVA_STDIO_PIPE, 0),
            StdioKind::Fd(fd) => (sys::UVA_STDIO_FD, fd.as_raw_fd()),
        };
        sys::uva_stdio_t { kind, fd }
    }
}

/// The child gets a duplicate of `fd`; the `Command` keeps `fd` open until
/// it is dropped (so it may spawn again).
impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(StdioKind::Fd(fd))
    }
}

/// The child reads or writes the file (a duplicate of its descriptor).
///
/// ```
/// # let path = std::env::temp_dir().join(format!("uva-doc-stdio-{}", std::process::id()));
/// use uvasync::process::Command;
/// uvasync::run(async {
///     let file = std::fs::File::create(&path).unwrap();
///     Command::new("echo").arg("to a file").stdout(file).status().await.unwrap();
/// });
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "to a file\n");
/// # std::fs::remove_file(&path).unwrap();
/// ```
impl From<std::fs::File> for Stdio {
    fn from(file: std::fs::File) -> Stdio {
        Stdio::from(OwnedFd::from(file))
    }
}

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            StdioKind::Inherit => f.write_str("Stdio::inherit()"),
            StdioKind::Null => f.write_str("Stdio::null()"),
            StdioKind::Piped => f.write_str("Stdio::piped()"),
            StdioKind::Fd(fd) => write!(f, "Stdio::from(fd {})", fd.as_raw_fd()),
        }
    }
}

/// A process builder, as `std::process::Command` and tokio's: the
/// program (looked up in `PATH` unless it contains a `/`), its arguments,
/// environment, working directory and standard descriptors. One `Command`
/// may spawn many children.
///
/// ```
/// use uvasync::process::Command;
/// uvasync::run(async {
///     let out = Command::new("sh")
///         .args(["-c", "echo \"$GREETING, $1\"", "sh", "world"])
///         .env("GREETING", "hello")
///         .output()
///         .await
///         .unwrap();
///     assert_eq!(out.stdout, b"hello, world\n");
/// });
/// ```
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env_clear: bool,
    /// Changes to the environment: a value to set, or None to remove.
    env: BTreeMap<OsString, Option<OsString>>,
    cwd: Option<PathBuf>,
    /// None: the default of the call (inherit for spawn and status; null,
    /// piped, piped for output).
    stdio: [Option<Stdio>; 3],
    kill_on_drop: bool,
    setsid: bool,
}

impl Command {
    /// A command that runs `program` with no arguments, the parent's
    /// environment and working directory.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env_clear: false,
            env: BTreeMap::new(),
            cwd: None,
            stdio: [None, None, None],
            kill_on_drop: false,
            setsid: false,
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.env.insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Sets environment variables of the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes a variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// The child starts with an empty environment (plus what is set after
    /// this call). A program named without a `/` is looked up in the
    /// child's `PATH`; with none set, in the system's default path (as
    /// std's `Command` does).
    ///
    /// ```
    /// use uvasync::process::Command;
    /// uvasync::run(async {
    ///     let out = Command::new("env").env_clear().env("ONLY", "1").output().await.unwrap();
    ///     assert_eq!(out.stdout, b"ONLY=1\n");
    /// });
    /// ```
    pub fn env_clear(&mut self) -> &mut Command {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's descriptor 0.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdio[0] = Some(cfg.into());
        self
    }

    /// The child's descriptor 1.
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdio[1] = Some(cfg.into());
        self
    }

    /// The child's descriptor 2.
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdio[2] = Some(cfg.into());
        self
    }

    /// With `true`, dropping the [`Child`] while the process still runs
    /// sends it SIGKILL (it is reaped all the same). Default `false`: a
    /// dropped child runs on, and is reaped when it exits.
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// With `true`, the child calls `setsid()`: it leads a new session and
    /// a new process group (whose id is its pid), without a controlling
    /// terminal, as a shell's job or a daemon. This is the core's option;
    /// std's `process_group(pgid)` (joining any group) has no counterpart.
    pub fn setsid(&mut self, setsid: bool) -> &mut Command {
        self.setsid = setsid;
        self
    }

    /// Starts the child (standard descriptors inherited unless set).
    /// Errors: `NotFound` for a missing program or working directory,
    /// `PermissionDenied`, `InvalidInput` for a NUL byte in a string.
    /// Panics outside a runtime.
    ///
    /// ```
    /// use uvasync::process::Command;
    /// uvasync::run(async {
    ///     let err = Command::new("no-such-program-here").spawn().unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_with([StdioKind::Inherit, StdioKind::Inherit, StdioKind::Inherit])
    }

    /// Runs the child to its end and returns its exit status (standard
    /// descriptors inherited unless set).
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        child.wait().await
    }

    /// Runs the child to its end and collects its output: stdout and
    /// stderr are piped and stdin is `/dev/null` unless set.
    pub async fn output(&mut self) -> io::Result<Output> {
        self.spawn_with([StdioKind::Null, StdioKind::Piped, StdioKind::Piped])?.wait_with_output().await
    }

    fn spawn_with(&mut self, defaults: [StdioKind; 3]) -> io::Result<Child> {
        let lp = current_loop();
        let file = cstring(&self.program)?;
        let mut args = vec![file.clone()];
        for a in &self.args {
            args.push(cstring(a)?);
        }
        let argv = pointers(&args);
        let env = self.env_strings()?;
        let envp = env.as_ref().map(|e| pointers(e));
        let cwd = self.cwd.as_ref().map(|d| cstring(d.as_os_str())).transpose()?;
        let defaults = defaults.map(Stdio);
        let stdio: [&Stdio; 3] = std::array::from_fn(|i| self.stdio[i].as_ref().unwrap_or(&defaults[i]));
        let options = sys::uva_process_options_t {
            size: std::mem::size_of::<sys::uva_process_options_t>(),
            file: file.as_ptr(),
            args: argv.as_ptr(),
            env: envp.as_ref().map_or(ptr::null(), |e| e.as_ptr()),
            cwd: cwd.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
            stdio: stdio.map(Stdio::raw),
            flags: if self.kill_on_drop { sys::UVA_PROCESS_KILL_ON_CLOSE } else { 0 }
                | if self.setsid { sys::UVA_PROCESS_SETSID } else { 0 },
        };
        let mut raw = ptr::null_mut();
        // SAFETY: every pointer in options lives until the call returns;
        // the core reads them during the call only.
        check(unsafe { sys::uva_process_spawn(&mut raw, lp.raw, &options) })?;
        // Owned from here: an error below closes it.
        let mut process = RawProcess { lp, raw, pid: 0, status: Cell::new(None) };
        let mut pid = 0;
        // SAFETY: the process just spawned.
        check(unsafe { sys::uva_process_pid(&mut pid, raw) })?;
        process.pid = pid as u32;
        let mut pipes = [None, None, None];
        for (fd, cfg) in stdio.iter().enumerate() {
            if matches!(cfg.0, StdioKind::Piped) {
                let mut s = ptr::null_mut();
                // SAFETY: our process; fd was spawned as a pipe.
                check(unsafe { sys::uva_process_stream(&mut s, process.raw, fd as c_int) })?;
                pipes[fd] = Some(RawStream::new(process.lp.clone(), s));
            }
        }
        let [stdin, stdout, stderr] = pipes;
        Ok(Child {
            process,
            stdin: stdin.map(|inner| ChildStdin { inner }),
            stdout: stdout.map(|inner| ChildStdout { inner }),
            stderr: stderr.map(|inner| ChildStderr { inner }),
        })
    }

    /// "NAME=value" strings, or None for the parent's environment as is.
    fn env_strings(&self) -> io::Result<Option<Vec<CString>>> {
        if !self.env_clear && self.env.is_empty() {
            return Ok(None);
        }
        let mut vars: BTreeMap<OsString, OsString> =
            if self.env_clear { BTreeMap::new() } else { std::env::vars_os().collect() };
        for (k, v) in &self.env {
            if k.is_empty() || k.as_bytes().contains(&b'=') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("bad environment variable name {k:?}"),
                ));
            }
            match v {
                Some(v) => vars.insert(k.clone(), v.clone()),
                None => vars.remove(k),
            };
        }
        vars.into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(OsStr::from_bytes(&kv))
            })
            .collect::<io::Result<Vec<_>>>()
            .map(Some)
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env_clear", &self.env_clear)
            .field("env", &self.env)
            .field("cwd", &self.cwd)
            .field("stdio", &self.stdio)
            .field("kill_on_drop", &self.kill_on_drop)
            .field("setsid", &self.setsid)
            .finish()
    }
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("NUL byte in a command's string: {s:?}")))
}

/// A NULL-terminated array of the strings' pointers (valid while they are).
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(ptr::null())).collect()
}

/// The exit status as `waitpid` would have reported it, so that std's
/// `code()` and `signal()` work.
fn exit_status(code: i64, signal: c_int) -> ExitStatus {
    if signal != 0 {
        ExitStatus::from_raw(signal & 0x7f)
    } else {
        ExitStatus::from_raw(((code as c_int) & 0xff) << 8)
    }
}

/// The core process handle, closed on drop (SIGKILL first if it was spawned
/// with kill-on-close); the core reaps the child whenever it exits.
struct RawProcess {
    lp: Rc<LoopInner>,
    raw: *mut sys::uva_process_t,
    pid: u32,
    /// Known once a wait completed.
    status: Cell<Option<ExitStatus>>,
}

impl Drop for RawProcess {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once.
        unsafe { sys::uva_process_close(self.raw, None, ptr::null_mut()) };
    }
}

impl RawProcess {
    fn obj(&self) -> *const c_void {
        self.raw as *const c_void
    }

    async fn wait(&self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status.get() {
            return Ok(status);
        }
        check_same_runtime(&self.lp, "Child")?;
        let (raw, obj) = (self.raw, self.obj());
        let (mut code, mut signal) = (0i64, 0 as c_int);
        let mut w = CoreWait::new();
        let rc =
            poll_fn(|cx| w.poll(obj, cx, |t| unsafe { sys::uva_process_wait(&mut code, &mut signal, raw, t) })).await;
        check(rc)?;
        let status = exit_status(code, signal);
        self.status.set(Some(status));
        Ok(status)
    }

    fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status.get() {
            return Ok(Some(status));
        }
        check_same_runtime(&self.lp, "Child")?;
        let raw = self.raw;
        let (mut code, mut signal) = (0i64, 0 as c_int);
        // In a step: the task's call, withdrawn if it registered. Outside
        // one: "no task", UVA_EINVAL while the child runs.
        let rc = call_once(self.obj(), |t| unsafe { sys::uva_process_wait(&mut code, &mut signal, raw, t) });
        match rc {
            0 => {
                let status = exit_status(code, signal);
                self.status.set(Some(status));
                Ok(Some(status))
            }
            sys::UVA_EAGAIN | sys::UVA_EINVAL => Ok(None),
            rc => Err(to_io(rc)),
        }
    }

    /// Sends `signum`; a child that already exited is no error (it was
    /// reaped: its pid is not signalled).
    fn kill(&self, signum: c_int) -> io::Result<()> {
        if self.status.get().is_some() {
            return Ok(());
        }
        // SAFETY: our handle.
        match unsafe { sys::uva_process_kill(self.raw, signum) } {
            sys::UVA_ESRCH => Ok(()),
            rc => check(rc).map(drop),
        }
    }
}

/// A running (or finished) child process, made by [`Command::spawn`].
///
/// Its exit status comes from [`wait`](Child::wait), which may be
/// cancelled (dropped, by a timeout for example) and called again. Dropping
/// the `Child` leaves the process running unless
/// [`kill_on_drop`](Command::kill_on_drop) was set; either way the core
/// reaps it, so it never stays a zombie.
///
/// ```
/// use uvasync::process::{Command, Stdio};
/// uvasync::run(async {
///     let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
///     let mut stdin = child.stdin.take().unwrap();
///     stdin.write_all(b"through cat\n").await.unwrap();
///     drop(stdin); // end of file for cat
///     let mut stdout = child.stdout.take().unwrap();
///     assert_eq!(stdout.read_line().await.unwrap(), "through cat\n");
///     assert!(child.wait().await.unwrap().success());
/// });
/// ```
pub struct Child {
    process: RawProcess,
    /// The writing end of the child's stdin, if it was [`Stdio::piped`].
    pub stdin: Option<ChildStdin>,
    /// The reading end of the child's stdout, if it was [`Stdio::piped`].
    pub stdout: Option<ChildStdout>,
    /// The reading end of the child's stderr, if it was [`Stdio::piped`].
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// The process id; `None` once its exit status was collected (the pid
    /// may then belong to another process).
    pub fn id(&self) -> Option<u32> {
        match self.process.status.get() {
            Some(_) => None,
            None => Some(self.process.pid),
        }
    }

    /// Waits for the child to exit and returns its status. `stdin` is
    /// closed first (a child reading it would wait for its end forever).
    /// Dropping the future gives the wait up and changes nothing else;
    /// after the exit every call returns the same status at once.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use uvasync::process::Command;
    /// uvasync::run(async {
    ///     let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    ///     assert_eq!(child.wait().await.unwrap().code(), Some(3));
    ///     let mut child = Command::new("sleep").arg("10").spawn().unwrap();
    ///     child.start_kill().unwrap();
    ///     assert_eq!(child.wait().await.unwrap().signal(), Some(9));
    /// });
    /// ```
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        self.process.wait().await
    }

    /// The exit status if the child has exited (as far as the loop has
    /// seen), else `None`; never waits.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.process.try_wait()
    }

    /// Sends SIGKILL and returns at once (see [`kill`](Child::kill)). A
    /// child that already exited is no error.
    pub fn start_kill(&mut self) -> io::Result<()> {
        self.process.kill(libc::SIGKILL)
    }

    /// Sends SIGKILL and waits for the child's end.
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Sends the signal `kind` (SIGTERM for a graceful stop, for example).
    /// A child that already exited is no error.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use uvasync::{process::Command, signal::SignalKind};
    /// uvasync::run(async {
    ///     let mut child = Command::new("sleep").arg("10").spawn().unwrap();
    ///     child.send_signal(SignalKind::terminate()).unwrap();
    ///     assert_eq!(child.wait().await.unwrap().signal(), Some(SignalKind::terminate().as_raw_value()));
    /// });
    /// ```
    pub fn send_signal(&self, kind: SignalKind) -> io::Result<()> {
        self.process.kill(kind.as_raw_value())
    }

    /// Closes stdin, reads stdout and stderr (those that are piped) to
    /// their end while waiting for the exit, and returns all three.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (mut stdout, mut stderr) = (self.stdout.take(), self.stderr.take());
        let mut out_read = pin!(read_all(stdout.as_mut().map(|s| &mut s.inner)));
        let mut err_read = pin!(read_all(stderr.as_mut().map(|s| &mut s.inner)));
        let (mut out, mut err) = (None, None);
        // Both at once: a child that fills one pipe while we wait on the
        // other would otherwise stall.
        poll_fn(|cx| {
            if out.is_none() {
                if let Poll::Ready(r) = out_read.as_mut().poll(cx) {
                    out = Some(r);
                }
            }
            if err.is_none() {
                if let Poll::Ready(r) = err_read.as_mut().poll(cx) {
                    err = Some(r);
                }
            }
            if out.is_some() && err.is_some() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        let (stdout, stderr) = (out.unwrap_or(Ok(Vec::new()))?, err.unwrap_or(Ok(Vec::new()))?);
        let status = self.wait().await?;
        Ok(Output { status, stdout, stderr })
    }
}

async fn read_all(pipe: Option<&mut RawStream>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(pipe) = pipe {
        pipe.read_to_end(&mut buf).await?;
    }
    Ok(buf)
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.process.pid)
            .field("status", &self.process.status.get())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

/// The parent's end of a child's stdin: a core stream. Dropping it closes
/// it once the queued bytes were written (the child then reads end of
/// file). With the `futures-io` feature it is an `AsyncWrite`.
pub struct ChildStdin {
    inner: RawStream,
}

impl ChildStdin {
    /// Writes all of `buf`: what the pipe takes at once is written, the
    /// rest is queued and this waits until it was written.
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf).await
    }

    /// Writes `buf` without waiting (the rest is copied and queued);
    /// returns the bytes queued after the call (0: all written).
    pub fn write_nowait(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_now(buf)
    }

    /// Waits until every queued byte was written to the pipe.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    /// Writes what is queued, then lets go of the pipe (the core's
    /// `uva_stream_shutdown`; a pipe has no half-close of its own): the
    /// child reads end of file while this stays open; later writes fail
    /// with `BrokenPipe`. Shutting down again returns at once.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown().await
    }
}

#[cfg(feature = "futures-io")]
impl futures_io::AsyncWrite for ChildStdin {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().inner.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.poll_flush(cx)
    }

    /// Flushes, then lets go of the pipe (see [`ChildStdin::shutdown`]).
    fn poll_close(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.poll_shutdown(cx)
    }
}

/// The read methods of ChildStdout and ChildStderr.
macro_rules! pipe_read_methods {
    ($ty:ident) => {
        impl $ty {
            /// Reads what is buffered, up to `buf.len()` bytes, waiting
            /// until at least one byte is there; `Ok(0)` at the end.
            pub fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
                self.inner.read(buf)
            }

            /// Fills `buf` exactly (`UnexpectedEof` if the pipe ends first).
            pub fn read_exact<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<()>> + 'a {
                self.inner.read_exact(buf)
            }

            /// Reads one line, `\n` included (at the end, what is left;
            /// `""` once nothing is).
            pub async fn read_line(&mut self) -> io::Result<String> {
                let bytes = self.inner.read_line_bytes().await?;
                String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            }

            /// Reads until the end, appending to `buf`; returns the bytes
            /// read.
            pub fn read_to_end<'a>(&'a mut self, buf: &'a mut Vec<u8>) -> impl Future<Output = io::Result<usize>> + 'a {
                self.inner.read_to_end(buf)
            }

            /// Zero-copy read: waits for buffered bytes and lends them to
            /// `f`, which returns how many it used and a result (as
            /// [`TcpStream::read_with`](crate::TcpStream::read_with)).
            pub fn read_with<'a, R: 'a>(
                &'a self,
                f: impl FnOnce(&[u8]) -> (usize, R) + 'a,
            ) -> impl Future<Output = io::Result<R>> + 'a {
                self.inner.read_with(f)
            }

            /// Reading ahead pauses while this many bytes are buffered
            /// (default 64 KiB).
            pub fn set_high_water(&self, bytes: usize) -> io::Result<()> {
                self.inner.set(sys::UVA_STREAM_HIGH_WATER, bytes)
            }
        }

        #[cfg(feature = "futures-io")]
        crate::io_traits::impl_futures_io_read!($ty);
    };
}

/// The parent's end of a child's stdout: a core stream. With the
/// `futures-io` feature it is an `AsyncRead` and `AsyncBufRead`.
pub struct ChildStdout {
    inner: RawStream,
}

/// The parent's end of a child's stderr; as [`ChildStdout`].
pub struct ChildStderr {
    inner: RawStream,
}

pipe_read_methods!(ChildStdout);
pipe_read_methods!(ChildStderr);

macro_rules! pipe_debug {
    ($($ty:ident),*) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }
    )*};
}

pipe_debug!(ChildStdin, ChildStdout, ChildStderr);
