//! A channel that other threads feed into a runtime, as tokio's
//! `sync::mpsc` with a `Send + Clone` sender: `send().await` from any
//! executor, `try_send` and `blocking_send` from plain threads. The
//! receiver stays on the runtime's thread.
//!
//! Messages travel by the core's thread-safe queue
//! (`uva_loop_call_soon_threadsafe`, FIFO) into a core queue that the
//! receiver waits on; the capacity is a count of free slots under a mutex,
//! which senders wait on (a condition variable for `blocking_send`, wakers
//! for `send`) and the receiver gives back as it takes messages.
use std::collections::VecDeque;
use std::ffi::c_void;
use std::fmt;
use std::future::poll_fn;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use uvasync_sys as sys;

use crate::channel::{SendError, TrySendError};
use crate::error::expect_ok;
use crate::runtime::{assert_not_in_runtime, assert_same_runtime, current_loop, LoopInner};
use crate::task::CoreWait;

struct State {
    /// Slots free (capacity minus messages sent and not yet received).
    free: usize,
    /// The receiver is gone: sends fail, messages in flight are dropped.
    closed: bool,
    /// Async senders waiting for a slot.
    waiters: VecDeque<Waker>,
}

struct Inner {
    /// Retained loop (only its thread-safe calls are made off its thread).
    lp: *mut sys::uva_loop_t,
    /// The receiver's core queue; touched on the loop thread only, and only
    /// while `closed` is false.
    queue: *mut sys::uva_queue_t,
    state: Mutex<State>,
    room: Condvar,
    senders: AtomicUsize,
}

// SAFETY: `lp` is used off its thread only for the thread-safe calls; the
// queue only on the loop thread (in callbacks and the receiver), under the
// `closed` check.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: our reference; thread-safe.
        unsafe { sys::uva_loop_release(self.lp) };
    }
}

/// A channel of `capacity` messages whose sender other threads may use,
/// made on the current runtime (panics outside one, and if `capacity` is 0
/// as tokio's).
///
/// ```
/// use uvasync::sync::mpsc;
/// uvasync::run(async {
///     let (tx, mut rx) = mpsc::channel(8);
///     let producer = std::thread::spawn(move || {
///         for i in 0..100 { tx.blocking_send(i).unwrap(); }
///     });
///     let mut sum = 0;
///     while let Some(v) = rx.recv().await { sum += v; }
///     producer.join().unwrap();
///     assert_eq!(sum, 4950);
/// });
/// ```
pub fn channel<T: Send + 'static>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mpsc bounded channel requires buffer > 0");
    let lp = current_loop();
    let mut queue = ptr::null_mut();
    // The core queue has no limit: the slots count is the limit.
    let rc = unsafe { sys::uva_queue_new(&mut queue, lp.raw, 0, Some(drop_item::<T>)) };
    expect_ok(rc, "uva_queue_new");
    // SAFETY: open loop, on its thread.
    unsafe { sys::uva_loop_retain(lp.raw) };
    let inner = Arc::new(Inner {
        lp: lp.raw,
        queue,
        state: Mutex::new(State { free: capacity, closed: false, waiters: VecDeque::new() }),
        room: Condvar::new(),
        senders: AtomicUsize::new(1),
    });
    (
        Sender { inner: inner.clone(), _items: std::marker::PhantomData },
        Receiver { lp, inner, _not_send: std::marker::PhantomData },
    )
}

unsafe extern "C" fn drop_item<T>(item: *mut c_void) {
    if !item.is_null() {
        crate::panic::guard(|| drop(Box::from_raw(item as *mut T)));
    }
}

/// A message on its way to the loop thread.
struct Delivery<T> {
    inner: Arc<Inner>,
    /// None: the last sender went (the receiver's end marker).
    value: Option<T>,
}

unsafe extern "C" fn deliver<T>(data: *mut c_void) {
    let d = Box::from_raw(data as *mut Delivery<T>);
    crate::panic::guard(move || {
        let Delivery { inner, value } = *d;
        if inner.state().closed {
            return; // the receiver is gone: the value is dropped here
        }
        let item = match value {
            Some(v) => Box::into_raw(Box::new(v)) as *mut c_void,
            None => ptr::null_mut(),
        };
        // Unbounded: the put cannot be refused while the queue is open.
        let rc = sys::uva_queue_put_nowait(inner.queue, item);
        if rc != 0 {
            drop_item::<T>(item);
        }
    });
}

/// Sends `value` to the loop; the slot is taken already.
fn post<T: Send>(inner: &Arc<Inner>, value: Option<T>) -> Result<(), Option<T>> {
    let d = Box::into_raw(Box::new(Delivery { inner: inner.clone(), value })) as *mut c_void;
    // SAFETY: retained loop; `deliver` owns `d` when this returns 0.
    let rc = unsafe { sys::uva_loop_call_soon_threadsafe(inner.lp, Some(deliver::<T>), d) };
    if rc == 0 {
        return Ok(());
    }
    // The loop is closed (its runtime is gone).
    let d = unsafe { Box::from_raw(d as *mut Delivery<T>) };
    Err(d.value)
}

/// The sending half: `Send + Clone`, usable from any thread.
pub struct Sender<T> {
    inner: Arc<Inner>,
    /// Messages of type T go through it (T: Send is required to send).
    _items: std::marker::PhantomData<fn(T)>,
}

impl<T: Send + 'static> Sender<T> {
    /// Takes a slot if one is free: Ok(true); Ok(false) if none is;
    /// Err if the receiver is gone.
    fn take_slot(&self, st: &mut State) -> Result<bool, ()> {
        if st.closed {
            return Err(());
        }
        if st.free == 0 {
            return Ok(false);
        }
        st.free -= 1;
        Ok(true)
    }

    fn give_back_slot(&self) {
        self.inner.state().free += 1;
    }

    fn post(&self, value: T) -> Result<(), SendError<T>> {
        post(&self.inner, Some(value)).map_err(|v| {
            self.give_back_slot();
            SendError(v.expect("the value"))
        })
    }

    /// Sends `value`, waiting (in any executor) while the channel is full;
    /// fails, giving it back, once the receiver (or its runtime) is gone.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let got = poll_fn(|cx| {
            let mut st = self.inner.state();
            match self.take_slot(&mut st) {
                Err(()) => Poll::Ready(false),
                Ok(true) => Poll::Ready(true),
                Ok(false) => {
                    if !st.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                        st.waiters.push_back(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await;
        if !got {
            return Err(SendError(value));
        }
        self.post(value)
    }

    /// Sends without waiting: `Full` if no slot is free, `Closed` once the
    /// receiver is gone.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let r = self.take_slot(&mut self.inner.state());
        match r {
            Err(()) => Err(TrySendError::Closed(value)),
            Ok(false) => Err(TrySendError::Full(value)),
            Ok(true) => self.post(value).map_err(|SendError(v)| TrySendError::Closed(v)),
        }
    }

    /// Sends from a thread that runs no runtime, blocking it while the
    /// channel is full. Panics on a thread where a runtime runs (as
    /// tokio's).
    pub fn blocking_send(&self, value: T) -> Result<(), SendError<T>> {
        assert_not_in_runtime();
        let mut st = self.inner.state();
        loop {
            match self.take_slot(&mut st) {
                Err(()) => return Err(SendError(value)),
                Ok(true) => break,
                Ok(false) => st = self.inner.room.wait(st).unwrap_or_else(|e| e.into_inner()),
            }
        }
        drop(st);
        self.post(value)
    }

    /// True once the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.inner.state().closed
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.inner.senders.fetch_add(1, Ordering::Relaxed);
        Sender { inner: self.inner.clone(), _items: std::marker::PhantomData }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.inner.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The end marker, after every message this thread sent (the
            // cross-thread queue is FIFO). Refused: the loop is gone.
            let _ = post::<()>(&self.inner, None);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mpsc::Sender")
    }
}

/// The receiving half, on the runtime that made the channel.
pub struct Receiver<T> {
    lp: Rc<LoopInner>,
    inner: Arc<Inner>,
    _not_send: std::marker::PhantomData<*mut T>,
}

impl<T> Receiver<T> {
    /// The next message; `None` once every sender is gone and every message
    /// sent was received. Panics if awaited on another runtime.
    pub async fn recv(&mut self) -> Option<T> {
        let raw = self.inner.queue;
        let mut w = CoreWait::new();
        let mut item: *mut c_void = ptr::null_mut();
        let rc =
            poll_fn(|cx| w.poll(raw as *const c_void, cx, |t| unsafe { sys::uva_queue_get(&mut item, raw, t) })).await;
        if rc != 0 {
            assert_same_runtime(&self.lp, "Receiver");
            return None;
        }
        if item.is_null() {
            // The end marker: put it back for later calls.
            unsafe { sys::uva_queue_put_nowait(raw, ptr::null_mut()) };
            return None;
        }
        self.slot_free();
        Some(*unsafe { Box::from_raw(item as *mut T) })
    }

    fn slot_free(&self) {
        let waiters = {
            let mut st = self.inner.state();
            st.free += 1;
            std::mem::take(&mut st.waiters)
        };
        self.inner.room.notify_all();
        // Every waiter checks again; those that find no slot wait again.
        waiters.into_iter().for_each(Waker::wake);
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let waiters = {
            let mut st = self.inner.state();
            st.closed = true;
            std::mem::take(&mut st.waiters)
        };
        self.inner.room.notify_all();
        waiters.into_iter().for_each(Waker::wake);
        // Messages queued are dropped by the core; those in flight by
        // `deliver`, which sees `closed`.
        unsafe { sys::uva_queue_close(self.inner.queue) };
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mpsc::Receiver")
    }
}
