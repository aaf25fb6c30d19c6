//! A runtime's handle for other threads: `Handle::spawn` sends a `Send`
//! future to the runtime's thread through the core's thread-safe queue
//! (`uva_loop_call_soon_threadsafe`), where it becomes a task; its result
//! comes back through a `RemoteJoinHandle`, which any thread can await.
use std::ffi::c_void;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use uvasync_sys as sys;

use crate::runtime::try_current_loop;
use crate::task::JoinError;

/// A reference to a runtime's loop that other threads can hold
/// (`Runtime::handle`). It is `Send + Sync + Clone`; it does not keep the
/// runtime alive: once the runtime is dropped, spawning through it gives a
/// handle that fails with a cancelled [`JoinError`].
///
/// ```
/// let rt = uvasync::Runtime::new().unwrap();
/// let handle = rt.handle();
/// let remote = std::thread::spawn(move || handle.spawn(async { 6 * 7 })).join().unwrap();
/// assert_eq!(rt.block_on(remote).unwrap(), 42);
/// ```
pub struct Handle {
    /// Retained (uva_loop_retain): only the thread-safe calls are made on
    /// it from here, which stay safe after the loop closed.
    raw: *mut sys::uva_loop_t,
}

// SAFETY: the pointer is used only for the core's thread-safe calls
// (call_soon_threadsafe, retain, release), with a reference held.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Handle {
    pub(crate) fn new(raw: *mut sys::uva_loop_t) -> Handle {
        // SAFETY: the loop is open (its runtime exists, on this thread).
        unsafe { sys::uva_loop_retain(raw) };
        Handle { raw }
    }

    /// The handle of the runtime running on this thread, as tokio's
    /// `Handle::current`. Panics outside a runtime.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let h = uvasync::Handle::current();
    ///     let worker = std::thread::spawn(move || h.spawn(async { 2 + 2 }));
    ///     let remote = worker.join().unwrap();
    ///     assert_eq!(remote.await.unwrap(), 4);
    /// });
    /// ```
    pub fn current() -> Handle {
        Handle::new(crate::runtime::current_loop().raw)
    }

    /// Spawns `future` on the runtime, from any thread: it runs as a task
    /// of the runtime once its loop runs (in `block_on`). Returns a handle
    /// to its result that any thread can await (in any executor). The
    /// crate's own futures (sleeps, streams, locks) are not `Send`: to use
    /// them, make the future on the runtime's thread with
    /// [`spawn_with`](Handle::spawn_with).
    pub fn spawn<F>(&self, future: F) -> RemoteJoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with(move || future)
    }

    /// Sends `make` to the runtime's thread, which calls it there and runs
    /// the future it returns as a task: only `make` (what it captures) and
    /// the output need be `Send`, so the future may use every type of the
    /// crate.
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// let h = rt.handle();
    /// let remote = std::thread::spawn(move || {
    ///     h.spawn_with(|| async {
    ///         uvasync::sleep_ms(1).await; // a !Send future: made on the loop's thread
    ///         "slept"
    ///     })
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!(rt.block_on(remote).unwrap(), "slept");
    /// ```
    pub fn spawn_with<M, F>(&self, make: M) -> RemoteJoinHandle<F::Output>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let shared = Arc::new(Mutex::new(Slot { out: None, waker: None }));
        let job = Box::new(Job { make, done: Completer(shared.clone()), lp: self.raw });
        let data = Box::into_raw(job) as *mut c_void;
        // SAFETY: retained loop; the callback owns `data` when this
        // returns 0 (it is then called exactly once).
        let rc = unsafe { sys::uva_loop_call_soon_threadsafe(self.raw, Some(run_job::<M, F>), data) };
        if rc != 0 {
            // The loop is closed: the job is dropped here (its Completer
            // reports the task as cancelled).
            drop(unsafe { Box::from_raw(data as *mut Job<M, F::Output>) });
        }
        RemoteJoinHandle { shared }
    }
}

impl Clone for Handle {
    fn clone(&self) -> Self {
        // SAFETY: we hold a reference.
        unsafe { sys::uva_loop_retain(self.raw) };
        Handle { raw: self.raw }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: ours; thread-safe.
        unsafe { sys::uva_loop_release(self.raw) };
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handle")
    }
}

struct Slot<T> {
    out: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
}

/// Delivers the result once; dropped without one, reports a cancel.
struct Completer<T>(Arc<Mutex<Slot<T>>>);

impl<T> Completer<T> {
    fn complete(&self, out: Result<T, JoinError>) {
        let waker = {
            let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if slot.out.is_some() {
                return;
            }
            slot.out = Some(out);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let unset = self.0.lock().unwrap_or_else(|e| e.into_inner()).out.is_none();
        if unset {
            self.complete(Err(JoinError::cancelled()));
        }
    }
}

struct Job<M, T> {
    make: M,
    done: Completer<T>,
    /// The loop the job was sent to.
    lp: *mut sys::uva_loop_t,
}

/// On the loop thread: spawn the job as a task of the loop's runtime.
/// Called while the loop closes (its runtime is not current then), it
/// starts nothing: the job is dropped (cancelled).
unsafe extern "C" fn run_job<M, F>(data: *mut c_void)
where
    M: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let job = Box::from_raw(data as *mut Job<M, F::Output>);
    crate::panic::guard(move || {
        let Job { make, done, lp: target } = *job;
        // The runtime current here must be the job's: a loop closing while
        // another runtime's task runs (its last object dropped there) runs
        // its callbacks with that other runtime current.
        let Some(lp) = try_current_loop().filter(|lp| lp.raw == target) else { return };
        let future = make();
        // The task's own JoinHandle keeps panics and aborts apart; a
        // second task hands its result over (and, dropped by the
        // runtime's shutdown, reports the cancel).
        let inner = crate::task::spawn_on(&lp, future);
        crate::task::spawn_on(&lp, async move { done.complete(inner.await) });
    });
}

/// The result of a task spawned with [`Handle::spawn`]: a `Send` future
/// that any thread (and any executor) can await.
pub struct RemoteJoinHandle<T> {
    shared: Arc<Mutex<Slot<T>>>,
}

impl<T> RemoteJoinHandle<T> {
    /// True once the result is there.
    pub fn is_finished(&self) -> bool {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).out.is_some()
    }

    /// Blocks this thread until the result is there (not from inside a
    /// runtime, whose loop would stop).
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// let h = rt.handle();
    /// let t = std::thread::spawn(move || h.spawn(async { 1 }).blocking_join().unwrap());
    /// rt.block_on(async { while !t.is_finished() { uvasync::sleep_ms(1).await } });
    /// assert_eq!(t.join().unwrap(), 1);
    /// ```
    pub fn blocking_join(self) -> Result<T, JoinError> {
        crate::runtime::assert_not_in_runtime();
        let thread = std::thread::current();
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(thread)));
        loop {
            {
                let mut slot = self.shared.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(out) = slot.out.take() {
                    return out;
                }
                slot.waker = Some(waker.clone());
            }
            std::thread::park();
        }
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(out) = slot.out.take() {
            return Poll::Ready(out);
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle").field("finished", &self.is_finished()).finish()
    }
}
