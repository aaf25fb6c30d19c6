//! Safe code that used to reach undefined behaviour (issue 22, items 21-23):
//! a nested block_on, a fill_buf borrow held across an await, and panics
//! in wakers that the core's callbacks run. rust/sanitize.sh runs these
//! under ASan and valgrind too.
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use uvasync::{Event, Runtime};

fn message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
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

struct PanicOnWake;

impl Wake for PanicOnWake {
    fn wake(self: Arc<Self>) {
        panic!("waker panic");
    }
}

#[test]
fn a_join_waker_that_panics_does_not_unwind_into_c() {
    let rt = Runtime::new().unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let mut h = uvasync::spawn(async {
                uvasync::sleep_ms(1).await;
                7
            });
            // Poll the handle with a foreign waker that panics when the
            // task's end wakes it (from the task's step, called by C).
            let waker = Waker::from(Arc::new(PanicOnWake));
            assert!(Pin::new(&mut h).poll(&mut Context::from_waker(&waker)).is_pending());
            uvasync::sleep_ms(20).await;
            assert!(h.is_finished());
            h.await.unwrap()
        })
    }));
    // The waker's panic resumes in block_on, as a task's panic would.
    assert_eq!(message(&*r.unwrap_err()), "waker panic");
    assert_eq!(rt.block_on(async { 1 }), 1); // the runtime is still usable
}

struct PanicOnDrop;

impl Wake for PanicOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("waker drop panic");
    }
}

#[test]
fn dropping_a_parked_waker_that_panics_does_not_unwind_into_c() {
    let rt = Runtime::new().unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let h = uvasync::spawn(async {
                let ev = Event::new();
                // A leaf polled with a foreign waker parks that waker on the
                // task; the task then ends with it still parked, and the
                // task's end (in its step, called by C) drops it.
                let waker = Waker::from(Arc::new(PanicOnDrop));
                let mut wait = pin!(ev.wait());
                assert!(wait.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
            });
            h.await.unwrap();
        })
    }));
    assert_eq!(message(&*r.unwrap_err()), "waker drop panic");
}

#[cfg(feature = "futures-io")]
#[test]
fn a_fill_buf_borrow_held_across_an_await_stays_valid() {
    use futures_util::io::AsyncBufReadExt;
    let pattern: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    uvasync::run(async {
        let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
        // Read ahead far: the stream's buffer grows (and moves) meanwhile.
        b.set_high_water(4 << 20).unwrap();
        let go = Rc::new(Event::new());
        let writer = {
            let (go, pattern) = (go.clone(), pattern.clone());
            uvasync::spawn(async move {
                a.write_all(&pattern[..1000]).await.unwrap();
                go.wait().await;
                a.write_all(&pattern[1000..]).await.unwrap();
            })
        };
        let lent = b.fill_buf().await.unwrap();
        assert!(!lent.is_empty() && lent.len() <= 1000);
        let before = lent.to_vec();
        go.set();
        // While this task sleeps, the peer sends a lot and the stream reads
        // it ahead, growing its buffer (which moves it); allocations made
        // meanwhile reuse the memory freed (so that a dangling slice shows
        // without ASan too).
        let mut junk = Vec::new();
        for _ in 0..20 {
            uvasync::sleep_ms(2).await;
            for size in [60 << 10, 64 << 10, 68 << 10, 96 << 10, 128 << 10] {
                junk.push(vec![0xa5u8; size]);
            }
        }
        assert!(lent == &before[..], "the lent bytes changed under the borrow");
        assert!(lent == &pattern[..lent.len()]);
        drop(junk);
        let n = lent.len();
        // Consume part of it, then mix the buffered and plain reads: every
        // byte arrives once, in order.
        b.consume_unpin(n / 2);
        let mut got = pattern[..n / 2].to_vec();
        let mut buf = [0u8; 3];
        b.read_exact(&mut buf).await.unwrap();
        got.extend_from_slice(&buf);
        let more = b.fill_buf().await.unwrap();
        let take = more.len().min(5000);
        got.extend_from_slice(&more[..take]);
        b.consume_unpin(take);
        writer.await.unwrap();
        assert!(!b.fill_buf().await.unwrap().is_empty()); // lent again, then read past it
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), pattern.len());
        assert!(got == pattern, "the stream's bytes came out of order");
    });
}

#[test]
fn read_with_called_from_its_own_closure_is_refused() {
    uvasync::run(async {
        let (mut a, b) = uvasync::TcpStream::pair().await.unwrap();
        a.write_all(b"abcdef").await.unwrap();
        let noop = Waker::from(Arc::new(Noop));
        let r = b
            .read_with(|data| {
                // A nested read would consume (and may move) the bytes
                // `data` borrows.
                let nested = catch_unwind(AssertUnwindSafe(|| {
                    let mut inner = pin!(b.read_with(|d| (d.len(), ())));
                    let _ = inner.as_mut().poll(&mut Context::from_waker(&noop));
                }));
                (1, (nested.is_err(), data[0]))
            })
            .await
            .unwrap();
        assert_eq!(r, (true, b'a'));
        let rest = b.read_with(|d| (d.len(), d.to_vec())).await.unwrap();
        assert_eq!(rest, b"bcdef");
    });
}

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

thread_local! {
    /// The runtime a waker's Drop runs (a Runtime is !Send: a waker cannot
    /// hold it).
    static RT: RefCell<Option<Rc<Runtime>>> = const { RefCell::new(None) };
    /// How long (ms) that Drop runs the loop.
    static DROP_RUNS_MS: Cell<u64> = const { Cell::new(30) };
}

/// A waker whose Drop runs the loop for a while.
struct RunsLoopOnDrop;

impl Wake for RunsLoopOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for RunsLoopOnDrop {
    fn drop(&mut self) {
        let rt = RT.with(|r| r.borrow().clone()).unwrap();
        let ms = DROP_RUNS_MS.with(Cell::get);
        rt.block_on(async move { uvasync::sleep_ms(ms).await });
    }
}

struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls with a waker whose Drop runs the loop, then again with a new one,
/// which drops the old one: the new one must be woken.
fn replace_a_waker_whose_drop_runs_the_loop(mut poll: impl FnMut(&mut Context<'_>) -> bool) {
    let old = Waker::from(Arc::new(RunsLoopOnDrop));
    let count = Arc::new(CountWakes(AtomicUsize::new(0)));
    let new = Waker::from(count.clone());
    assert!(!poll(&mut Context::from_waker(&old)));
    drop(old); // the slot holds the last reference
    assert!(!poll(&mut Context::from_waker(&new)));
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "the new waker was not woken");
}

#[test]
fn a_new_poll_of_a_join_handle_replaces_a_waker_whose_drop_runs_the_loop() {
    // A JoinHandle and a Sleep polled outside the loop (by another
    // executor): the new waker replaces the old one in its slot, and the old
    // one's Drop then runs the loop, which ends the task or fires the timer.
    // The slot must not be in use while the old waker drops.
    let rt = Rc::new(Runtime::new().unwrap());
    RT.with(|r| *r.borrow_mut() = Some(rt.clone()));
    let mut h = rt.spawn(async { 3 });
    replace_a_waker_whose_drop_runs_the_loop(|cx| Pin::new(&mut h).poll(cx).is_ready());
    assert_eq!(rt.block_on(h).unwrap(), 3);
    RT.with(|r| r.borrow_mut().take());
}

#[test]
fn a_new_poll_of_a_sleep_replaces_a_waker_whose_drop_runs_the_loop() {
    let rt = Rc::new(Runtime::new().unwrap());
    RT.with(|r| *r.borrow_mut() = Some(rt.clone()));
    // Made inside the runtime, polled outside it: long enough not to be
    // over before the first poll (valgrind), shorter than the Drop's run.
    DROP_RUNS_MS.with(|d| d.set(1000));
    let mut sleep = rt.block_on(poll_fn(|_| Poll::Ready(uvasync::sleep_ms(300))));
    replace_a_waker_whose_drop_runs_the_loop(|cx| Pin::new(&mut sleep).poll(cx).is_ready());
    assert!(sleep.is_elapsed());
    RT.with(|r| r.borrow_mut().take());
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
