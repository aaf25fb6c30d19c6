//! A multi-producer, single-consumer channel on the core's queue.
use std::cell::Cell;
use std::ffi::c_void;
use std::fmt;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::ptr;
use std::rc::Rc;
use std::task::{Context, Poll};

use uvasync_sys as sys;

use crate::error::expect_ok;
use crate::runtime::{assert_same_runtime, current_loop, LoopInner};
use crate::task::CoreWait;

struct Chan<T> {
    lp: Rc<LoopInner>,
    raw: *mut sys::uva_queue_t,
    senders: Cell<usize>,
    receiver_alive: Cell<bool>,
    _items: PhantomData<T>,
}

unsafe extern "C" fn drop_item<T>(item: *mut c_void) {
    if !item.is_null() {
        crate::panic::guard(|| drop(Box::from_raw(item as *mut T)));
    }
}

impl<T> Chan<T> {
    /// Closes the queue once: the core may free it right after, so the
    /// pointer is not used again once the receiver is gone.
    fn close(&self) {
        if self.receiver_alive.replace(false) {
            // Items still queued go to drop_item when the queue is freed;
            // waiting senders are woken and get UVA_ECLOSED.
            unsafe { sys::uva_queue_close(self.raw) };
        }
    }
}

impl<T> Drop for Chan<T> {
    fn drop(&mut self) {
        self.close();
    }
}

/// A channel holding at most `capacity` messages: senders wait while it is
/// full; messages arrive in the order they were sent. Panics outside a
/// runtime, and if `capacity` is 0 (as tokio's: a channel with no room
/// would be a rendezvous, which this is not; use [`unbounded_channel`] for
/// no limit).
///
/// ```
/// uvasync::run(async {
///     let (tx, mut rx) = uvasync::channel(4);
///     uvasync::spawn(async move {
///         for i in 0..3 { tx.send(i).await.unwrap(); }
///     });
///     let mut got = vec![];
///     while let Some(v) = rx.recv().await { got.push(v); }
///     assert_eq!(got, [0, 1, 2]);
/// });
/// ```
pub fn channel<T: 'static>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mpsc bounded channel requires buffer > 0");
    new_channel(capacity)
}

/// A channel with no limit: [`Sender::send`] never waits. Panics outside a
/// runtime.
///
/// ```
/// uvasync::run(async {
///     let (tx, mut rx) = uvasync::unbounded_channel();
///     for i in 0..1000 { tx.try_send(i).unwrap(); }
///     drop(tx);
///     let mut n = 0;
///     while rx.recv().await.is_some() { n += 1; }
///     assert_eq!(n, 1000);
/// });
/// ```
pub fn unbounded_channel<T: 'static>() -> (Sender<T>, Receiver<T>) {
    new_channel(0) // the core's 0: no limit
}

fn new_channel<T: 'static>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let lp = current_loop();
    let mut raw = ptr::null_mut();
    let rc = unsafe { sys::uva_queue_new(&mut raw, lp.raw, capacity, Some(drop_item::<T>)) };
    expect_ok(rc, "uva_queue_new");
    let chan = Rc::new(Chan { lp, raw, senders: Cell::new(1), receiver_alive: Cell::new(true), _items: PhantomData });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending half of a [`channel`]; clone it for more producers. When
/// the last one is dropped the receiver gets `None` after the last message.
///
/// ```
/// uvasync::run(async {
///     let (tx, mut rx) = uvasync::channel::<u8>(2);
///     let tx2: uvasync::Sender<u8> = tx.clone();
///     tx2.try_send(1).unwrap();
///     drop((tx, tx2));
///     assert_eq!(rx.recv().await, Some(1));
///     assert_eq!(rx.recv().await, None);
/// });
/// ```
pub struct Sender<T> {
    chan: Rc<Chan<T>>,
}

/// The error of a send whose receiver is gone; holds the message.
///
/// ```
/// uvasync::run(async {
///     let (tx, rx) = uvasync::channel(1);
///     drop(rx);
///     let err: uvasync::SendError<i32> = tx.send(7).await.unwrap_err();
///     assert_eq!(err.0, 7);
/// });
/// ```
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiver is gone")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// The error of [`Sender::try_send`]: the channel is full, or the receiver
/// is gone; either way it gives the message back.
///
/// ```
/// use uvasync::TrySendError;
/// uvasync::run(async {
///     let (tx, rx) = uvasync::channel(1);
///     tx.try_send(1).unwrap();
///     assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
///     drop(rx);
///     assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
/// });
/// ```
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel holds `capacity` messages.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "no available capacity",
            TrySendError::Closed(_) => "channel closed",
        })
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let (tx, mut rx) = uvasync::channel(1);
    ///     tx.send("hi").await.unwrap();
    ///     assert_eq!(rx.recv().await, Some("hi"));
    /// });
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        if !self.chan.receiver_alive.get() {
            return Err(SendError(value));
        }
        let raw = self.chan.raw;
        let item = Box::into_raw(Box::new(value)) as *mut c_void;
        // Until the put succeeds the item is ours (UVA_EAGAIN leaves it).
        struct Owned<T>(*mut c_void, PhantomData<T>);
        impl<T> Drop for Owned<T> {
            fn drop(&mut self) {
                if !self.0.is_null() {
                    drop(unsafe { Box::from_raw(self.0 as *mut T) });
                }
            }
        }
        let mut owned = Owned::<T>(item, PhantomData);
        let mut w = CoreWait::new();
        let rc = poll_fn(|cx| w.poll(raw as *const c_void, cx, |t| unsafe { sys::uva_queue_put(raw, t, item) })).await;
        if rc == 0 {
            owned.0 = ptr::null_mut();
            return Ok(());
        }
        owned.0 = ptr::null_mut();
        if rc != sys::UVA_ECLOSED {
            assert_same_runtime(&self.chan.lp, "Sender");
        }
        Err(SendError(*unsafe { Box::from_raw(item as *mut T) }))
    }

    /// Sends without waiting; gives the value back, saying whether the
    /// channel was full or the receiver gone.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let (tx, _rx) = uvasync::channel(1);
    ///     tx.try_send(1).unwrap();
    ///     assert_eq!(tx.try_send(2), Err(uvasync::TrySendError::Full(2)));
    /// });
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        if !self.chan.receiver_alive.get() {
            return Err(TrySendError::Closed(value));
        }
        let item = Box::into_raw(Box::new(value)) as *mut c_void;
        match unsafe { sys::uva_queue_put_nowait(self.chan.raw, item) } {
            0 => Ok(()),
            rc => {
                let value = *unsafe { Box::from_raw(item as *mut T) };
                Err(if rc == sys::UVA_EQUEUEFULL { TrySendError::Full(value) } else { TrySendError::Closed(value) })
            }
        }
    }

    /// True once the receiver is gone.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let (tx, rx) = uvasync::channel::<u8>(1);
    ///     assert!(!tx.is_closed());
    ///     drop(rx);
    ///     assert!(tx.is_closed());
    /// });
    /// ```
    pub fn is_closed(&self) -> bool {
        !self.chan.receiver_alive.get()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.set(self.chan.senders.get() + 1);
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let n = self.chan.senders.get() - 1;
        self.chan.senders.set(n);
        if n == 0 && self.chan.receiver_alive.get() {
            // Wake a waiting receiver with the end marker (NULL). If the
            // queue is full the receiver sees the end once it is empty.
            unsafe { sys::uva_queue_put_nowait(self.chan.raw, ptr::null_mut()) };
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender")
    }
}

/// The receiving half of a [`channel`].
///
/// ```
/// uvasync::run(async {
///     let (tx, mut rx): (_, uvasync::Receiver<i32>) = uvasync::channel(1);
///     tx.try_send(3).unwrap();
///     assert_eq!(rx.recv().await, Some(3));
/// });
/// ```
pub struct Receiver<T> {
    chan: Rc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// The next message, or `None` once every sender is gone and the
    /// channel is empty. Panics if awaited on another runtime than the
    /// channel's.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let (tx, mut rx) = uvasync::channel(1);
    ///     drop(tx);
    ///     assert_eq!(rx.recv().await, None::<u8>);
    /// });
    /// ```
    pub async fn recv(&mut self) -> Option<T> {
        let mut w = CoreWait::new();
        poll_fn(|cx| self.poll_recv(&mut w, cx)).await
    }

    /// recv's step, with the caller's wait (a oneshot receiver keeps it).
    pub(crate) fn poll_recv(&mut self, w: &mut CoreWait, cx: &Context<'_>) -> Poll<Option<T>> {
        let chan = &self.chan;
        let raw = chan.raw;
        let mut item: *mut c_void = ptr::null_mut();
        // With no sender left nothing more can come: no need to wait. But
        // a receiver already waiting may have been handed an item (the
        // core claims it for that task, and get_nowait skips claimed
        // items): it takes it with the call it waited with.
        let rc = if chan.senders.get() == 0 && !w.is_waiting() {
            let rc = unsafe { sys::uva_queue_get_nowait(&mut item, raw) };
            if rc == sys::UVA_EQUEUEEMPTY {
                0
            } else {
                rc
            }
        } else {
            std::task::ready!(w.poll(raw as *const c_void, cx, |t| unsafe { sys::uva_queue_get(&mut item, raw, t) }))
        };
        if rc != 0 && rc != sys::UVA_ECLOSED {
            assert_same_runtime(&chan.lp, "Receiver");
        }
        if rc != 0 || item.is_null() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(*unsafe { Box::from_raw(item as *mut T) }))
    }

    /// The next message if one is there: `Err(TryRecvError::Empty)` if
    /// none is yet, `Err(TryRecvError::Disconnected)` once every sender is
    /// gone and the channel is empty.
    ///
    /// ```
    /// use uvasync::TryRecvError;
    /// uvasync::run(async {
    ///     let (tx, mut rx) = uvasync::channel(1);
    ///     assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    ///     tx.try_send(5).unwrap();
    ///     assert_eq!(rx.try_recv(), Ok(5));
    ///     drop(tx);
    ///     assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// });
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut item: *mut c_void = ptr::null_mut();
        let rc = unsafe { sys::uva_queue_get_nowait(&mut item, self.chan.raw) };
        if rc == sys::UVA_EQUEUEEMPTY {
            return Err(if self.chan.senders.get() == 0 { TryRecvError::Disconnected } else { TryRecvError::Empty });
        }
        if rc != 0 || item.is_null() {
            return Err(TryRecvError::Disconnected);
        }
        Ok(*unsafe { Box::from_raw(item as *mut T) })
    }
}

/// The error of [`Receiver::try_recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No message yet.
    Empty,
    /// Every sender is gone and the channel is empty.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty channel",
            TryRecvError::Disconnected => "receiving on a closed channel",
        })
    }
}

impl std::error::Error for TryRecvError {}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.close();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver")
    }
}
