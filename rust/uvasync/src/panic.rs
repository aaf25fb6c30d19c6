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
    STASHED.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Some(payload);
        }
    });
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
    if let Some(p) = STASHED.with(|s| s.borrow_mut().take()) {
        resume_unwind(p);
    }
}
