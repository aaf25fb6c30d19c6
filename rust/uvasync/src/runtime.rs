//! The runtime: one core loop on the current thread.
use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::panic::resume_unwind;
use std::ptr;
use std::rc::Rc;

use uvasync_sys as sys;

use crate::error::{check, to_io};
use crate::panic;
use crate::task::{self, Header, JoinHandle};
use crate::work::Deferred;

/// The core loop, shared by the runtime and every handle made on it, so it
/// outlives them all (their `Drop` closes them on it).
pub(crate) struct LoopInner {
    pub(crate) raw: *mut sys::uva_loop_t,
    /// Sentinel of the circular list of unfinished tasks, for shutdown.
    live: Box<Header>,
    /// Pool jobs whose clean-up task was dropped at shutdown before they
    /// ended: finished once the loop has run every job to its end.
    deferred: RefCell<Vec<Deferred>>,
}

impl LoopInner {
    pub(crate) fn link(&self, h: &Header) {
        let head: &Header = &self.live;
        let first = head.next.get();
        h.prev.set(head);
        h.next.set(first);
        // SAFETY: listed headers are alive (unlinked when they finish).
        unsafe { (*first).prev.set(h) };
        head.next.set(h);
    }

    pub(crate) fn unlink(h: &Header) {
        let (prev, next) = (h.prev.get(), h.next.get());
        if prev.is_null() {
            return;
        }
        // SAFETY: neighbours on the list are alive, or the sentinel.
        unsafe {
            (*prev).next.set(next);
            (*next).prev.set(prev);
        }
        h.prev.set(ptr::null());
        h.next.set(ptr::null());
    }

    pub(crate) fn defer(&self, d: Deferred) {
        self.deferred.borrow_mut().push(d);
    }

    /// One `uva_loop_run`; a panic a callback stashed stays stashed.
    fn run_pass(&self, mode: sys::uva_run_mode) -> c_int {
        let was = LOOP_RUNNING.with(|r| r.replace(true));
        // SAFETY: our loop, on its thread (LoopInner is !Send).
        let rc = unsafe { sys::uva_loop_run(self.raw, mode) };
        LOOP_RUNNING.with(|r| r.set(was));
        rc
    }

    fn run_once(&self, mode: sys::uva_run_mode) -> io::Result<()> {
        let rc = self.run_pass(mode);
        panic::resume_stashed();
        check(rc).map(drop)
    }

    /// The loop's clock in milliseconds.
    pub(crate) fn now_ms(&self) -> u64 {
        let mut now = 0;
        // SAFETY: our loop, on its thread.
        unsafe { sys::uva_loop_now(&mut now, self.raw) };
        now
    }
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        // Let pending closes complete, then free the loop. If something still
        // holds a task (a Waker kept somewhere), closing is refused: the loop
        // is leaked rather than freed under it.
        self.run_pass(sys::UVA_RUN_DEFAULT);
        let deferred = std::mem::take(&mut *self.deferred.borrow_mut());
        if !deferred.is_empty() {
            // Every job has ended now (a job keeps the loop running).
            deferred.into_iter().for_each(Deferred::finish);
            self.run_pass(sys::UVA_RUN_NOWAIT);
        }
        // SAFETY: our loop, on its thread, not running.
        if unsafe { sys::uva_loop_close(self.raw) } != 0 {
            self.run_pass(sys::UVA_RUN_NOWAIT);
            unsafe { sys::uva_loop_close(self.raw) };
        }
    }
}

thread_local! {
    static CURRENT_LOOP: RefCell<Option<Rc<LoopInner>>> = const { RefCell::new(None) };
    /// True while one of our loops runs on this thread: the core runs one
    /// loop at a time per thread, so no block_on can run meanwhile.
    static LOOP_RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// The loop of the runtime running on this thread; panics outside one.
pub(crate) fn current_loop() -> Rc<LoopInner> {
    CURRENT_LOOP
        .with(|c| c.borrow().clone())
        .expect("uvasync: no runtime is running on this thread (use Runtime::block_on)")
}

/// The loop of the runtime current on this thread, if any.
pub(crate) fn try_current_loop() -> Option<Rc<LoopInner>> {
    CURRENT_LOOP.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Panics (as tokio's blocking calls do) if a runtime runs on this thread:
/// blocking it would stop its loop.
#[track_caller]
pub(crate) fn assert_not_in_runtime() {
    if LOOP_RUNNING.try_with(Cell::get).unwrap_or(false) || try_current_loop().is_some() {
        panic!(
            "Cannot block the current thread from within a runtime. This happens because a function attempted \
             to block the current thread while the thread is being used to drive asynchronous tasks."
        );
    }
}

/// The one message for an object of one runtime used from another
/// (`what` names the object): every such use, by any type, says this.
pub(crate) fn wrong_runtime_message(what: &str) -> String {
    format!("uvasync: this {what} belongs to another runtime; use it on the runtime that made it")
}

/// True if a runtime other than `lp` is the current one on this thread.
fn other_runtime(lp: &LoopInner) -> bool {
    CURRENT_LOOP.with(|c| c.borrow().as_ref().is_some_and(|cur| !ptr::eq(&**cur, lp)))
}

/// Refuses `lp`'s object in a task of another runtime (the core would
/// refuse it with a bare `EINVAL`). Outside every runtime it passes: the
/// call then fails on its own (or, with no task at all, needs none).
pub(crate) fn check_same_runtime(lp: &LoopInner, what: &str) -> io::Result<()> {
    if other_runtime(lp) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, wrong_runtime_message(what)));
    }
    Ok(())
}

/// As `check_same_runtime`, for calls that return no `Result`: panics
/// with the same message.
#[track_caller]
pub(crate) fn assert_same_runtime(lp: &LoopInner, what: &str) {
    if other_runtime(lp) {
        panic!("{}", wrong_runtime_message(what));
    }
}

/// For a core call that failed: panics with the wrong-runtime message if
/// that is the reason, else as `expect_ok`.
#[track_caller]
pub(crate) fn expect_ok_on(lp: &LoopInner, what: &str, rc: c_int, call: &str) {
    if rc < 0 {
        assert_same_runtime(lp, what);
        crate::error::expect_ok(rc, call);
    }
}

/// A uvasync runtime: one event loop on the current thread, which runs the
/// futures given to [`block_on`](Runtime::block_on) and [`spawn`](crate::spawn).
/// Dropping it aborts the tasks still running and closes the loop.
///
/// ```
/// let rt = uvasync::Runtime::new().unwrap();
/// let v = rt.block_on(async {
///     uvasync::sleep_ms(1).await;
///     7
/// });
/// assert_eq!(v, 7);
/// ```
pub struct Runtime {
    inner: Rc<LoopInner>,
    _not_send: PhantomData<*mut ()>,
}

impl Runtime {
    /// Creates a runtime with a new loop owned by this thread.
    ///
    /// ```
    /// let rt = uvasync::Runtime::new()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Runtime> {
        Builder::new_current_thread().build()
    }

    /// Runs `future` to completion on this thread, with every task spawned
    /// meanwhile; returns its output. A panic in `future` resumes here.
    /// Panics, dropping `future` first, if a runtime is already running on
    /// this thread (called from inside a task, a `Drop` or a waker run by
    /// the loop): await the future there instead.
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if LOOP_RUNNING.with(Cell::get) {
            // Refused before the future is spawned: it may borrow the
            // caller's stack, and a task left in the loop would outlive it.
            drop(future);
            panic!(
                "uvasync: block_on called inside a running runtime (a task, Drop or waker); await the future instead"
            );
        }
        struct Restore(Option<Rc<LoopInner>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                CURRENT_LOOP.with(|c| *c.borrow_mut() = prev);
            }
        }
        let prev = CURRENT_LOOP.with(|c| c.borrow_mut().replace(self.inner.clone()));
        let _restore = Restore(prev);

        // The root future may borrow from the caller: it is dropped before
        // we return (it finishes, or the guard aborts it and runs the loop).
        // SAFETY: see above.
        let handle = unsafe { task::spawn_unchecked(&self.inner, future) };

        struct AbortRoot<'a, T>(&'a JoinHandle<T>, &'a LoopInner);
        impl<T> Drop for AbortRoot<'_, T> {
            fn drop(&mut self) {
                if !self.0.is_finished() {
                    // Unwinding: drop the root future now, while its
                    // borrows are still valid. It must not outlive this
                    // frame: if the loop cannot run, abort the process.
                    self.0.abort();
                    while !self.0.is_finished() {
                        let rc = self.1.run_pass(sys::UVA_RUN_NOWAIT);
                        if rc < 0 {
                            eprintln!("uvasync: block_on cannot drop its future: {}", to_io(rc));
                            std::process::abort();
                        }
                    }
                    // A panic stashed meanwhile came second to the one
                    // unwinding now: dropped, not resumed later elsewhere.
                    panic::discard_stashed();
                }
            }
        }
        let guard = AbortRoot(&handle, &self.inner);
        while !handle.is_finished() {
            if let Err(e) = self.inner.run_once(sys::UVA_RUN_ONCE) {
                panic!("uvasync: block_on cannot run the loop: {e} (nested block_on?)");
            }
        }
        drop(guard);
        match handle.take_output() {
            Ok(v) => v,
            Err(e) if e.is_panic() => resume_unwind(e.into_panic()),
            Err(_) => panic!("uvasync: the block_on future was aborted"),
        }
    }

    /// A handle that other threads can use to spawn onto this runtime
    /// (see [`Handle`](crate::Handle)).
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// let h: uvasync::Handle = rt.handle();
    /// let t = std::thread::spawn(move || h.spawn(async { "from another thread" }));
    /// let remote = t.join().unwrap();
    /// assert_eq!(rt.block_on(remote).unwrap(), "from another thread");
    /// ```
    pub fn handle(&self) -> crate::Handle {
        crate::Handle::new(self.inner.raw)
    }

    /// Spawns a task on this runtime; it runs once the loop runs (in
    /// [`block_on`](Runtime::block_on)).
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// let h = rt.spawn(async { 5 });
    /// assert_eq!(rt.block_on(h).unwrap(), 5);
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        task::spawn_on(&self.inner, future)
    }
}

/// Builds a [`Runtime`] with settings, as tokio's `runtime::Builder`.
///
/// ```
/// let rt = uvasync::Builder::new_current_thread().max_blocking_threads(4).build()?;
/// assert_eq!(rt.block_on(async { uvasync::spawn_blocking(|| 6 * 7).await.unwrap() }), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    max_blocking_threads: Option<usize>,
}

impl Builder {
    /// A builder for the (only) kind of runtime: one loop on the current
    /// thread.
    pub fn new_current_thread() -> Builder {
        Builder::default()
    }

    /// The most threads of the loop's pool, which runs
    /// [`spawn_blocking`](crate::spawn_blocking) closures and file
    /// operations; jobs beyond them wait in FIFO order. Default: the
    /// core's, min(32, CPUs + 4). Panics if `n` is 0; `build` fails if it
    /// is above the core's limit (1024).
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Builder {
        assert!(n > 0, "max_blocking_threads cannot be 0");
        self.max_blocking_threads = Some(n);
        self
    }

    /// Creates the runtime (a new loop owned by this thread).
    pub fn build(&mut self) -> io::Result<Runtime> {
        let mut raw = ptr::null_mut();
        // SAFETY: out pointer.
        check(unsafe { sys::uva_loop_new(&mut raw) })?;
        let live = Box::new(Header::sentinel());
        live.prev.set(&*live);
        live.next.set(&*live);
        let inner = Rc::new(LoopInner { raw, live, deferred: RefCell::new(Vec::new()) });
        if let Some(n) = self.max_blocking_threads {
            // SAFETY: our loop, on its thread.
            check(unsafe { sys::uva_loop_configure(raw, sys::UVA_LOOP_POOL_SIZE, n as u64) })?;
        }
        Ok(Runtime { inner, _not_send: PhantomData })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Abort every unfinished task and run the loop until they are gone.
        // try_with: a runtime kept in a thread-local may drop after ours.
        let prev = CURRENT_LOOP.try_with(|c| c.borrow_mut().replace(self.inner.clone()));
        let sentinel: *const Header = &*self.inner.live;
        for _ in 0..1000 {
            let mut h = self.inner.live.next.get();
            if h == sentinel {
                break;
            }
            while h != sentinel {
                // SAFETY: listed headers belong to unfinished, alive tasks.
                unsafe {
                    task::cancel_header(&*h);
                    h = (*h).next.get();
                }
            }
            if self.inner.run_pass(sys::UVA_RUN_NOWAIT) < 0 {
                break;
            }
        }
        if let Ok(prev) = prev {
            let _ = CURRENT_LOOP.try_with(|c| *c.borrow_mut() = prev);
        }
        // A panic of a task's Drop: resumed here, unless one unwinds already.
        if std::thread::panicking() {
            panic::discard_stashed();
        } else {
            panic::resume_stashed();
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// Spawns a task on the runtime running on this thread and returns its
/// handle. The future need not be `Send`: it stays on this thread.
/// Panics outside a runtime.
///
/// ```
/// let rt = uvasync::Runtime::new().unwrap();
/// rt.block_on(async {
///     let h = uvasync::spawn(async { "done" });
///     assert_eq!(h.await.unwrap(), "done");
/// });
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    task::spawn_on(&current_loop(), future)
}

/// Creates a runtime and runs `future` on it: `Runtime::new()` then
/// [`block_on`](Runtime::block_on).
///
/// ```
/// assert_eq!(uvasync::run(async { 3 }), 3);
/// ```
pub fn run<F: Future>(future: F) -> F::Output {
    Runtime::new().expect("uvasync: cannot create a loop").block_on(future)
}
