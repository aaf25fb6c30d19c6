//! No panic unwinds through C: callbacks catch it, stash the payload, and the
//! runtime resumes it once the C call that ran the callback has returned.
use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

thread_local! {
    static STASHED: RefCell<Option<Box<dyn Any + Send>>> = const { RefCell::new(None) };
}

/// Keeps the first payload; later ones are dropped (as a double panic would
/// have aborted anyway).
pub(crate) fn stash(payload: Box<dyn Any + Send>) {
    let mut payload = Some(payload);
    // try_with: while the thread exits the slot may be gone already.
    let _ = STASHED.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = payload.take();
        }
    });
    if let Some(p) = payload {
        drop_payload(p);
    }
}

/// Drops a payload that will not be resumed. Its `Drop` is user code that
/// may panic too: that second payload is leaked, not unwound into C.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(again);
    }
}

/// Runs `f` from a C callback: a panic is stashed instead of unwinding.
pub(crate) fn guard<R>(f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(p) => {
            stash(p);
            None
        }
    }
}

/// After a C call returned: resume a panic that a callback stashed.
pub(crate) fn resume_stashed() {
    if let Some(p) = STASHED.try_with(|s| s.borrow_mut().take()).ok().flatten() {
        resume_unwind(p);
    }
}

/// While another panic unwinds: drop a stashed one instead of resuming it.
pub(crate) fn discard_stashed() {
    if let Some(p) = STASHED.try_with(|s| s.borrow_mut().take()).ok().flatten() {
        drop_payload(p);
    }
}
