//! Time: sleeps, timeouts, intervals and yielding, on the core's timers.
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use uvasync_sys as sys;

use crate::error::expect_ok;
use crate::panic;
use crate::runtime::{assert_same_runtime, current_loop, LoopInner};

/// What a core timer shares with its `Sleep` (owned by the timer: freed by
/// its destructor once the close completed).
struct Shared {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

unsafe extern "C" fn on_fire(_timer: *mut sys::uva_timer_t, data: *mut c_void) {
    let shared = &*(data as *const Shared);
    shared.fired.set(true);
    // Everything that may panic (the RefCell, the waker) inside the guard.
    panic::guard(|| {
        let waker = shared.waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    });
}

unsafe extern "C" fn free_shared(data: *mut c_void) {
    panic::guard(|| drop(Box::from_raw(data as *mut Shared)));
}

fn duration_ms(d: Duration) -> u64 {
    // Round up: a sleep never ends early.
    let ms = d.as_nanos().div_ceil(1_000_000);
    ms.min(1 << 40) as u64
}

/// A future that completes at a deadline; made by [`sleep`] and [`sleep_ms`].
/// Awaited directly by a task it costs nothing but the task's own sleep (a
/// heap node in the core); under a combinator that gives it another waker,
/// or next to another sleep in the same task, it takes a core timer (no
/// libuv handle), cancelled on drop.
///
/// ```
/// uvasync::run(async {
///     uvasync::sleep(std::time::Duration::from_millis(5)).await;
/// });
/// ```
pub struct Sleep {
    lp: Rc<LoopInner>,
    deadline_ms: u64,
    timer: *mut sys::uva_timer_t,
    shared: *const Shared,
}

/// Sleeps for `duration` (rounded up to whole milliseconds).
///
/// ```
/// uvasync::run(async {
///     uvasync::sleep(std::time::Duration::from_millis(2)).await;
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let lp = current_loop();
    let deadline_ms = lp.now_ms().saturating_add(duration_ms(duration));
    Sleep { lp, deadline_ms, timer: ptr::null_mut(), shared: ptr::null() }
}

/// Sleeps for `ms` milliseconds.
///
/// ```
/// uvasync::run(async { uvasync::sleep_ms(2).await });
/// ```
pub fn sleep_ms(ms: u64) -> Sleep {
    sleep(Duration::from_millis(ms))
}

impl Sleep {
    /// True once the deadline has passed.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let s = uvasync::sleep_ms(0);
    ///     s.await;
    /// });
    /// ```
    pub fn is_elapsed(&self) -> bool {
        if self.shared.is_null() {
            self.lp.now_ms() >= self.deadline_ms
        } else {
            // SAFETY: shared lives until the timer's close completes.
            unsafe { (*self.shared).fired.get() }
        }
    }

    /// Moves the deadline to `duration` from now.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let mut s = Box::pin(uvasync::sleep_ms(60_000));
    ///     s.as_mut().reset(std::time::Duration::from_millis(1));
    ///     s.await;
    /// });
    /// ```
    pub fn reset(self: Pin<&mut Self>, duration: Duration) {
        let this = self.get_mut();
        this.deadline_ms = this.lp.now_ms().saturating_add(duration_ms(duration));
        if !this.timer.is_null() {
            // SAFETY: our timer and its shared state.
            unsafe {
                (*this.shared).fired.set(false);
                sys::uva_timer_stop(this.timer);
            }
            this.arm();
        }
    }

    fn arm(&mut self) {
        let now = self.lp.now_ms();
        let delay = self.deadline_ms.saturating_sub(now) as i64;
        // SAFETY: our timer.
        let rc = unsafe { sys::uva_timer_start(self.timer, delay, 0) };
        expect_ok(rc, "uva_timer_start");
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.timer.is_null() {
            // On another runtime this loop's clock stands still: the sleep
            // would never end.
            assert_same_runtime(&this.lp, "Sleep");
            let now = this.lp.now_ms();
            if now >= this.deadline_ms {
                return Poll::Ready(());
            }
            // Fast path: polled by its own task, the task itself sleeps (a
            // heap node in the core task; nothing is allocated). Any other
            // wake-up abandons that sleep, and then this future is polled
            // again and sleeps for what is left.
            if let Some(task) = crate::task::own_task(cx.waker()) {
                // SAFETY: the running task, from its own step.
                let rc = unsafe { sys::uva_task_sleep(task, (this.deadline_ms - now) as i64) };
                if rc == 0 {
                    return Poll::Pending;
                }
                // UVA_EBUSY: another sleep of this step has the task's
                // slot; this one gets a timer.
            }
            let shared = Box::into_raw(Box::new(Shared { fired: Cell::new(false), waker: RefCell::new(None) }));
            let mut timer = ptr::null_mut();
            // SAFETY: shared is transferred to the timer (free_shared).
            let rc = unsafe {
                sys::uva_timer_new(&mut timer, this.lp.raw, Some(on_fire), shared as *mut c_void, Some(free_shared))
            };
            if rc != 0 {
                drop(unsafe { Box::from_raw(shared) });
                expect_ok(rc, "uva_timer_new");
            }
            this.timer = timer;
            this.shared = shared;
            this.arm();
        }
        // SAFETY: shared lives until the timer's close completes.
        let shared = unsafe { &*this.shared };
        if shared.fired.get() {
            return Poll::Ready(());
        }
        let mut slot = shared.waker.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            // The old waker's Drop (user code) runs after the borrow ends.
            let old = slot.replace(cx.waker().clone());
            drop(slot);
            drop(old);
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if !self.timer.is_null() {
            // SAFETY: our timer; the callback never fires after this call.
            unsafe { sys::uva_timer_close(self.timer, None) };
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("deadline_ms", &self.deadline_ms).finish()
    }
}

/// The error of a [`timeout`] whose deadline passed first.
///
/// ```
/// uvasync::run(async {
///     let r = uvasync::timeout(std::time::Duration::from_millis(1), uvasync::sleep_ms(1000)).await;
///     assert!(r.is_err());
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::ErrorKind::TimedOut.into()
    }
}

/// Runs `future` for at most `duration`; on time-out the future is dropped
/// (what it waited for is withdrawn) and the result is `Err(Elapsed)`.
///
/// ```
/// uvasync::run(async {
///     let r = uvasync::timeout(std::time::Duration::from_secs(1), async { 5 }).await;
///     assert_eq!(r, Ok(5));
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout { future, sleep: sleep(duration) }
}

/// The future of [`timeout`].
///
/// ```
/// uvasync::run(async {
///     let t: uvasync::Timeout<_> = uvasync::timeout(std::time::Duration::from_millis(1), async {});
///     t.await.unwrap();
/// });
/// ```
#[derive(Debug)]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `future`; `sleep` is Unpin.
        let this = unsafe { self.get_unchecked_mut() };
        if let Poll::Ready(v) = unsafe { Pin::new_unchecked(&mut this.future) }.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ticks every `period`; the first tick completes at once. Ticks that were
/// missed (the loop was busy) are not made up: the next comes one period
/// after the late one.
///
/// ```
/// uvasync::run(async {
///     let mut iv = uvasync::interval(std::time::Duration::from_millis(1));
///     for _ in 0..3 {
///         iv.tick().await;
///     }
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval: the period must be positive");
    Interval { period, sleep: Box::pin(sleep(Duration::ZERO)) }
}

/// A periodic timer made by [`interval`].
///
/// ```
/// uvasync::run(async {
///     let mut iv: uvasync::Interval = uvasync::interval(std::time::Duration::from_millis(1));
///     iv.tick().await;
/// });
/// ```
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl Interval {
    /// Waits for the next tick.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let mut iv = uvasync::interval(std::time::Duration::from_millis(2));
    ///     iv.tick().await; // at once
    ///     iv.tick().await; // 2 ms later
    /// });
    /// ```
    pub async fn tick(&mut self) {
        self.sleep.as_mut().await;
        let period = self.period;
        self.sleep.as_mut().reset(period);
    }
}

/// Lets the other ready tasks run: this task goes to the back of the run
/// queue (round-robin).
///
/// ```
/// uvasync::run(async { uvasync::yield_now().await });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
///
/// ```
/// uvasync::run(async {
///     let y: uvasync::YieldNow = uvasync::yield_now();
///     y.await;
/// });
/// ```
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
