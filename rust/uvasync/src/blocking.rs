//! `spawn_blocking`: a closure run on the loop's thread pool
//! (`uva_work_submit`), awaited through the same `JoinHandle` as a task.
//!
//! The job's data is a boxed `Job` the core owns: the pool thread takes the
//! closure out and stores its result (or its panic, caught there: nothing
//! unwinds into C); the loop thread takes the result after the job ended;
//! the core's destructor frees the box, exactly once, on the loop thread.
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::{Context, Poll};

use uvasync_sys as sys;

use crate::error::expect_ok;
use crate::panic;
use crate::runtime::{assert_same_runtime, current_loop};
use crate::task::{JoinError, JoinHandle};
use crate::work::Work;

type Output<T> = Result<T, Box<dyn Any + Send + 'static>>;

/// The job's data. `out` first (repr(C)): the handle reads it without
/// knowing the closure's type.
#[repr(C)]
struct Job<F, T> {
    out: UnsafeCell<Option<Output<T>>>,
    /// Set (loop thread) when the handle was dropped before the job ended:
    /// the done callback closes the job then.
    detached: Cell<bool>,
    f: UnsafeCell<Option<F>>,
}

/// What `Job<F, T>` begins with.
#[repr(C)]
struct JobHead<T> {
    out: UnsafeCell<Option<Output<T>>>,
    detached: Cell<bool>,
}

/// Runs `f` on a thread of the runtime's pool and returns a handle to
/// await its result, as tokio's `spawn_blocking`: for blocking calls (a
/// driver, a compression, a lookup of its own) that would stall the loop.
///
/// The handle is the same [`JoinHandle`] as [`spawn`](crate::spawn)'s: a
/// panic in `f` comes back as a [`JoinError`] whose `is_panic()` is true
/// (`into_panic()` gives the payload to resume it). Dropping the handle
/// detaches the job, which still runs; [`abort`](JoinHandle::abort) drops
/// it if it has not started (awaiting gives a cancelled `JoinError`), and
/// does nothing to one running. The pool's size is
/// [`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads);
/// jobs beyond it wait in FIFO order. Panics outside a runtime, and if the
/// pool has no thread and cannot start one.
///
/// ```
/// uvasync::run(async {
///     let sum = uvasync::spawn_blocking(|| (1..=10u64).sum::<u64>()).await.unwrap();
///     assert_eq!(sum, 55);
///     let err = uvasync::spawn_blocking(|| panic!("boom")).await.unwrap_err();
///     assert!(err.is_panic());
/// });
/// ```
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let job: *mut Job<F, T> = Box::into_raw(Box::new(Job {
        out: UnsafeCell::new(None),
        detached: Cell::new(false),
        f: UnsafeCell::new(Some(f)),
    }));
    let lp = current_loop();
    let started = Work::start_on(lp, |out, lp| unsafe {
        sys::uva_work_submit(out, lp, Some(run::<F, T>), job as *mut c_void, Some(free::<F, T>), Some(done::<T>))
    });
    let work = match started {
        Ok(w) => w,
        Err(e) => {
            // SAFETY: on error the core did not take the data.
            drop(unsafe { Box::from_raw(job) });
            panic!("uvasync: spawn_blocking cannot queue the job: {e}");
        }
    };
    JoinHandle::blocking(Blocking { work: Some(work), head: job as *const JobHead<T> })
}

/// Pool thread: runs the closure, keeps its result or its panic.
unsafe extern "C" fn run<F: FnOnce() -> T, T>(data: *mut c_void) {
    let job = &*(data as *const Job<F, T>);
    // The core runs fn once, and nothing else touches `f` and `out` until
    // the job ended (the core's hand-over orders the memory).
    let f = (*job.f.get()).take();
    if let Some(f) = f {
        let out = catch_unwind(AssertUnwindSafe(f));
        *job.out.get() = Some(out);
    }
}

/// Loop thread, when the job ended: a detached job is closed now.
unsafe extern "C" fn done<T>(work: *mut sys::uva_work_t, _status: c_int, data: *mut c_void) {
    let head = &*(data as *const JobHead<T>);
    if head.detached.get() {
        sys::uva_work_close(work);
    }
}

/// Loop thread, once: frees the job (a result nobody took, or a closure
/// never run, is dropped here).
unsafe extern "C" fn free<F, T>(data: *mut c_void) {
    panic::guard(|| drop(Box::from_raw(data as *mut Job<F, T>)));
}

/// The blocking side of a `JoinHandle`.
pub(crate) struct Blocking<T> {
    /// None once the result was taken (the job is closed then).
    work: Option<Work>,
    head: *const JobHead<T>,
}

impl<T> Blocking<T> {
    pub(crate) fn poll(&mut self, cx: &Context<'_>) -> Poll<Result<T, JoinError>> {
        let work = self.work.as_mut().expect("JoinHandle polled after it completed");
        let rc = std::task::ready!(work.poll_end(cx));
        if rc == sys::UVA_EINVAL {
            assert_same_runtime(work.loop_inner(), "JoinHandle");
        }
        // SAFETY: the job has ended: the pool thread is done with `out`,
        // and the data lives until the job is closed (below).
        let out = unsafe { (*(*self.head).out.get()).take() };
        self.work = None;
        Poll::Ready(match (rc, out) {
            (0, Some(Ok(v))) => Ok(v),
            (0, Some(Err(p))) => Err(JoinError::panicked(p)),
            (sys::UVA_ECANCELED, _) => Err(JoinError::cancelled()),
            (rc, _) => {
                expect_ok(rc.min(-1), "uva_work_wait");
                unreachable!()
            }
        })
    }

    pub(crate) fn abort(&self) {
        if let Some(w) = &self.work {
            w.cancel();
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.work.as_ref().is_none_or(Work::is_done)
    }
}

impl<T> Drop for Blocking<T> {
    fn drop(&mut self) {
        let Some(work) = self.work.take() else { return };
        if !work.is_done() {
            // Detach: closing it now would drop a job not yet started; the
            // done callback closes it once it ended.
            // SAFETY: the data lives until the job is closed.
            unsafe { (*self.head).detached.set(true) };
            work.forget();
            return;
        }
        drop(work);
    }
}
