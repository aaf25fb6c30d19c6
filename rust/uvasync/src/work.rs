//! A job on the loop's thread pool (`uva_work_t`): what `spawn_blocking`
//! and every file operation wait for.
//!
//! Closing a job that has not started drops it, so a job whose end still
//! matters (a write, the close of a descriptor a running read uses, an
//! open whose descriptor must not leak) is finished by `finish_later`: a
//! small task waits for its end and then cleans up. If the runtime shuts
//! down first, the clean-up goes to the loop, which runs it once every job
//! has ended (`LoopInner::drop`).
use std::ffi::{c_int, c_void};
use std::future::poll_fn;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr;
use std::rc::Rc;
use std::task::{Context, Poll};

use uvasync_sys as sys;

use crate::error::check;
use crate::runtime::{check_same_runtime, current_loop, LoopInner};
use crate::task::{spawn_on, CoreWait};

/// An owned job: dropping it withdraws the wait and closes it (one not
/// started is dropped; one running finishes and is freed then).
pub(crate) struct Work {
    lp: Rc<LoopInner>,
    raw: *mut sys::uva_work_t,
    wait: CoreWait,
}

impl Work {
    /// Starts a job on the current runtime's loop with `start(out, loop)`
    /// (one of the `uva_fs_*` calls, or `uva_work_submit`).
    pub(crate) fn start(
        start: impl FnOnce(*mut *mut sys::uva_work_t, *mut sys::uva_loop_t) -> c_int,
    ) -> io::Result<Work> {
        Work::start_on(current_loop(), start)
    }

    pub(crate) fn start_on(
        lp: Rc<LoopInner>,
        start: impl FnOnce(*mut *mut sys::uva_work_t, *mut sys::uva_loop_t) -> c_int,
    ) -> io::Result<Work> {
        let mut raw = ptr::null_mut();
        check(start(&mut raw, lp.raw))?;
        Ok(Work { lp, raw, wait: CoreWait::new() })
    }

    pub(crate) fn raw(&self) -> *mut sys::uva_work_t {
        self.raw
    }

    /// The loop the job belongs to.
    pub(crate) fn loop_inner(&self) -> &LoopInner {
        &self.lp
    }

    /// The job's status once it ended: 0, the file operation's error, or
    /// `UVA_ECANCELED` (dropped before it started).
    pub(crate) fn poll_end(&mut self, cx: &Context<'_>) -> Poll<c_int> {
        let raw = self.raw;
        self.wait.poll(raw as *const c_void, cx, |t| unsafe { sys::uva_work_wait(raw, t) })
    }

    /// `poll_end` as a future, with the status as an `io::Result`.
    pub(crate) async fn end(&mut self) -> io::Result<()> {
        let rc = poll_fn(|cx| self.poll_end(cx)).await;
        self.status(rc, "File")
    }

    /// A job's status as an `io::Result`; the core's bare EINVAL for a
    /// wait from another runtime's task says so (`what` owns the job).
    pub(crate) fn status(&self, rc: c_int, what: &str) -> io::Result<()> {
        if rc == sys::UVA_EINVAL {
            check_same_runtime(&self.lp, what)?;
        }
        check(rc).map(drop)
    }

    /// Drops the job if it has not started; true if it was dropped (it has
    /// ended then, with `UVA_ECANCELED`).
    pub(crate) fn cancel(&self) -> bool {
        // SAFETY: our job, owner thread.
        unsafe { sys::uva_work_cancel(self.raw) == 0 }
    }

    /// True once the job has ended.
    pub(crate) fn is_done(&self) -> bool {
        let mut out = 0;
        // SAFETY: our job.
        unsafe { sys::uva_work_done(&mut out, self.raw) };
        out != 0
    }

    /// A file job's result (after it ended with 0): the byte count, the
    /// descriptor opened, the number of entries.
    pub(crate) fn result(&self) -> io::Result<i64> {
        let mut out = 0;
        // SAFETY: our job.
        check(unsafe { sys::uva_fs_result(&mut out, self.raw) })?;
        Ok(out)
    }

    /// The bytes a read job read (valid while the job is).
    pub(crate) fn data(&self) -> &[u8] {
        let mut data: *const c_void = ptr::null();
        let mut len = 0usize;
        // SAFETY: our job; the bytes live in it until it is closed, which
        // the borrow of self prevents.
        let rc = unsafe { sys::uva_fs_data(&mut data, &mut len, self.raw) };
        if rc < 0 || len == 0 || data.is_null() {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(data as *const u8, len) }
    }

    /// Gives the job up without closing it: whoever holds its pointer
    /// closes it.
    pub(crate) fn forget(mut self) {
        self.wait.cancel();
        self.raw = ptr::null_mut();
    }

    /// Gives the job up without dropping it: it runs to its end, then
    /// `then` cleans up (closes the descriptor it used, or the one it
    /// opened). At once if it has ended, or (if `may_cancel`) was dropped
    /// before it started.
    pub(crate) fn finish_later(self, then: Then) {
        if self.is_done() || (then.may_cancel && self.cancel()) {
            then.run(&self);
            return;
        }
        let lp = self.lp.clone();
        let mut later = Later { work: Some(self), then: Some(then) };
        spawn_on(&lp, async move {
            if let Some(w) = later.work.as_mut() {
                poll_fn(|cx| w.poll_end(cx)).await;
            }
            later.finish();
        });
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        // Withdrawn first: a close with a task waiting would leave the
        // memory to that task's last call.
        self.wait.cancel();
        // SAFETY: our job, closed once (NULL: handed to the loop).
        unsafe { sys::uva_work_close(self.raw) };
    }
}

/// What to do once a job given up has ended.
pub(crate) struct Then {
    /// The job may be dropped if it has not started (a read, a stat).
    pub(crate) may_cancel: bool,
    /// A descriptor the job used, closed after it.
    pub(crate) fd: Option<OwnedFd>,
    /// An open job: the descriptor it opened (if it did) is closed.
    pub(crate) opened: bool,
}

impl Then {
    fn run(self, work: &Work) {
        self.run_raw(work.raw);
    }

    fn run_raw(self, raw: *mut sys::uva_work_t) {
        if self.opened {
            let (mut done, mut fd) = (0, -1i64);
            // SAFETY: the job is alive (closed by our caller after this).
            let ok = unsafe { sys::uva_work_done(&mut done, raw) == 0 && sys::uva_fs_result(&mut fd, raw) == 0 };
            if ok && done != 0 && fd >= 0 {
                // SAFETY: the open succeeded and nobody took its descriptor.
                drop(unsafe { OwnedFd::from_raw_fd(fd as c_int) });
            }
        }
        drop(self.fd);
    }
}

/// A job handed to the loop when the runtime shut down before it ended:
/// `LoopInner::drop` finishes it once every job has ended.
pub(crate) struct Deferred {
    raw: *mut sys::uva_work_t,
    then: Then,
}

impl Deferred {
    pub(crate) fn finish(self) {
        self.then.run_raw(self.raw);
        // SAFETY: the job we were given, closed once.
        unsafe { sys::uva_work_close(self.raw) };
    }
}

/// The state of a `finish_later` task: if the task is dropped before the
/// job ended (the runtime shuts down), the loop finishes it instead.
struct Later {
    work: Option<Work>,
    then: Option<Then>,
}

impl Later {
    fn finish(&mut self) {
        if let (Some(work), Some(then)) = (self.work.take(), self.then.take()) {
            then.run(&work);
        }
    }
}

impl Drop for Later {
    fn drop(&mut self) {
        let (Some(work), Some(then)) = (self.work.take(), self.then.take()) else { return };
        if work.is_done() {
            then.run(&work);
            return;
        }
        // The job stays open (not dropped): the loop closes it later.
        let (raw, lp) = (work.raw, work.lp.clone());
        work.forget();
        lp.defer(Deferred { raw, then });
    }
}
