//! Unix signals received on the loop, as `tokio::signal::unix`: a
//! [`Signal`] watches one signal kind and [`recv`](Signal::recv) waits for
//! its next arrival; [`ctrl_c`] waits for the next SIGINT.
//!
//! Every watcher of a signal, on any runtime in any thread, gets every
//! arrival. While one exists the signal's default action (ending the
//! process, for SIGINT and SIGTERM) does not happen; when the last one is
//! dropped the default action is back. Arrivals between two `recv` calls
//! coalesce into one, as the kernel coalesces pending signals.
//!
//! ```
//! use uvasync::signal::{signal, SignalKind};
//!
//! uvasync::run(async {
//!     let mut hup = signal(SignalKind::hangup()).unwrap();
//!     // Here another process would send it; we send it ourselves.
//!     std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().unwrap();
//!     hup.recv().await.unwrap();
//! });
//! ```
use std::ffi::{c_int, c_void};
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::ptr;
use std::rc::Rc;
use std::task::{Context, Poll};

use uvasync_sys as sys;

use crate::error::{check, to_io};
use crate::runtime::{assert_same_runtime, current_loop, LoopInner};
use crate::task::CoreWait;

/// A signal number, with constructors for the usual ones (their numbers
/// differ between systems).
///
/// ```
/// use uvasync::signal::SignalKind;
/// assert_eq!(SignalKind::from_raw(SignalKind::terminate().as_raw_value()), SignalKind::terminate());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalKind(c_int);

impl SignalKind {
    /// Any signal number (SIGKILL and SIGSTOP cannot be watched).
    pub const fn from_raw(signum: c_int) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal number.
    pub const fn as_raw_value(&self) -> c_int {
        self.0
    }

    /// SIGINT: Ctrl-C at a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// SIGTERM: a polite request to stop (`kill`'s default).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// SIGHUP: the terminal went away; daemons reload their configuration.
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// SIGQUIT: Ctrl-\ at a terminal.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// SIGUSR1.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// SIGUSR2.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// SIGCHLD: a child stopped or ended. The core reaps its own children
    /// whatever watchers of it do.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// SIGALRM.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// SIGPIPE.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// SIGWINCH: the terminal's size changed.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

impl From<c_int> for SignalKind {
    fn from(signum: c_int) -> SignalKind {
        SignalKind(signum)
    }
}

impl From<SignalKind> for c_int {
    fn from(kind: SignalKind) -> c_int {
        kind.0
    }
}

/// Starts watching `kind` on the current runtime (panics outside one).
/// Errors: `InvalidInput` for a signal that cannot be caught (0, SIGKILL,
/// SIGSTOP, out of range).
///
/// ```
/// use uvasync::signal::{signal, SignalKind};
/// uvasync::run(async {
///     assert!(signal(SignalKind::terminate()).is_ok());
///     let err = signal(SignalKind::from_raw(9)).unwrap_err(); // SIGKILL
///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// });
/// ```
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let lp = current_loop();
    let mut raw = ptr::null_mut();
    // SAFETY: out pointer; our loop on its thread.
    check(unsafe { sys::uva_signal_new(&mut raw, lp.raw, kind.0) })?;
    Ok(Signal { lp, raw, kind, wait: CoreWait::new() })
}

/// Completes at the next SIGINT (Ctrl-C). The watcher is made when this is
/// called, so a SIGINT that comes before the first poll counts; and while
/// the future exists, SIGINT does not end the process. Panics outside a
/// runtime.
///
/// ```no_run
/// uvasync::run(async {
///     uvasync::signal::ctrl_c().await.unwrap();
///     println!("shutting down");
/// });
/// ```
pub fn ctrl_c() -> impl Future<Output = io::Result<()>> {
    let watcher = signal(SignalKind::interrupt());
    async move {
        match watcher?.recv().await {
            Some(()) => Ok(()),
            None => Err(to_io(sys::UVA_ECLOSED)),
        }
    }
}

/// A watcher of one signal kind, made by [`signal`]; stops watching when
/// dropped. Used by the runtime that made it (another runtime's task
/// panics with a message saying so).
pub struct Signal {
    lp: Rc<LoopInner>,
    raw: *mut sys::uva_signal_t,
    kind: SignalKind,
    /// The wait of poll_recv, which outlives one call.
    wait: CoreWait,
}

impl Signal {
    fn obj(&self) -> *const c_void {
        self.raw as *const c_void
    }

    fn done(&self, rc: c_int) -> Option<()> {
        match rc {
            0 => Some(()),
            sys::UVA_ECLOSED => None,
            rc => panic!("uvasync: waiting for {:?} failed: {}", self.kind, to_io(rc)),
        }
    }

    fn check_runtime(&self) {
        assert_same_runtime(&self.lp, "Signal");
    }

    /// Waits for the next arrival (those that came since the last `recv`
    /// count: one or more give one `Some(())`). `None` would mean that no
    /// more can come. Dropping the future gives the wait up.
    ///
    /// ```
    /// use uvasync::signal::{signal, SignalKind};
    /// uvasync::run(async {
    ///     let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
    ///     std::process::Command::new("kill").args(["-USR1", &std::process::id().to_string()]).status().unwrap();
    ///     assert_eq!(usr1.recv().await, Some(()));
    /// });
    /// ```
    pub async fn recv(&mut self) -> Option<()> {
        self.check_runtime();
        // A wait poll_recv left (in this task or another): this one takes
        // over (one task may wait on a watcher at a time).
        self.wait.cancel();
        let (raw, obj) = (self.raw, self.obj());
        let mut w = CoreWait::new();
        let rc = poll_fn(|cx| w.poll(obj, cx, |t| unsafe { sys::uva_signal_wait(ptr::null_mut(), raw, t) })).await;
        self.done(rc)
    }

    /// The poll form of [`recv`](Signal::recv), for hand-written futures
    /// and streams.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.check_runtime();
        let (raw, obj) = (self.raw, self.obj());
        let rc =
            std::task::ready!(self.wait.poll(obj, cx, |t| unsafe { sys::uva_signal_wait(ptr::null_mut(), raw, t) }));
        Poll::Ready(self.done(rc))
    }

    /// The signal watched.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        self.wait.cancel();
        // SAFETY: our watcher, closed once.
        unsafe { sys::uva_signal_close(self.raw, None, ptr::null_mut()) };
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal").field("kind", &self.kind).finish()
    }
}
