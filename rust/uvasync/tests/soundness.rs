//! Safe code that used to reach undefined behaviour (issue 22, items 21-23):
//! a nested block_on, a fill_buf borrow held across an await, and panics
//! in wakers that the core's callbacks run. rust/sanitize.sh runs these
//! under ASan and valgrind too.
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use uvasync::Runtime;

fn message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Sets its flag when dropped, through a borrow of the caller's stack.
struct DropMark<'a>(&'a Cell<bool>);

impl Drop for DropMark<'_> {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn block_on_inside_a_task_of_the_same_runtime_panics_and_drops_the_future_in_place() {
    let rt = Rc::new(Runtime::new().unwrap());
    let inner_rt = rt.clone();
    rt.block_on(async move {
        let dropped = Cell::new(false); // on this future's stack
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mark = DropMark(&dropped);
            inner_rt.block_on(async move {
                let _mark = mark;
                uvasync::sleep_ms(1).await;
            })
        }));
        let msg = message(&*r.unwrap_err());
        assert!(msg.contains("inside"), "unexpected panic: {msg}");
        // The refused future is gone already, not left in the loop to be
        // dropped after `dropped` (which it borrows) is gone.
        assert!(dropped.get(), "the refused future was not dropped in place");
        uvasync::sleep_ms(2).await; // the loop goes on
    });
}

#[test]
fn block_on_inside_a_task_of_another_runtime_panics_too() {
    // The core runs one loop per thread at a time: a second runtime's
    // block_on is refused the same way, before its future is spawned.
    let dropped = Cell::new(false);
    uvasync::run(async {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mark = DropMark(&dropped);
            uvasync::run(async move {
                let _mark = mark;
                uvasync::sleep_ms(1).await;
            })
        }));
        assert!(r.is_err());
        assert!(dropped.get(), "the refused future was not dropped in place");
    });
}

thread_local! {
    static KEPT: RefCell<Option<Runtime>> = const { RefCell::new(None) };
}

#[test]
fn a_runtime_kept_in_a_thread_local_drops_at_thread_exit() {
    // Thread-locals are destroyed in some order at the thread's exit: the
    // runtime's own may be gone when this one drops (it must not panic
    // there: that aborts the process).
    std::thread::spawn(|| {
        KEPT.with(|k| *k.borrow_mut() = Some(Runtime::new().unwrap()));
        KEPT.with(|k| {
            let k = k.borrow();
            let rt = k.as_ref().unwrap();
            drop(rt.spawn(async { uvasync::sleep_ms(60_000).await })); // aborted by the drop
            rt.block_on(async { uvasync::sleep_ms(1).await });
        });
    })
    .join()
    .unwrap();
}
