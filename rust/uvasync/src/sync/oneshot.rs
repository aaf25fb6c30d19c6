//! A channel for one value, as tokio's `sync::oneshot`, on the core's
//! queue (one slot): the receiver is a future.
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::channel as mpsc;
use crate::task::CoreWait;

/// A oneshot channel on the current runtime (panics outside one).
///
/// ```
/// use uvasync::sync::oneshot;
/// uvasync::run(async {
///     let (tx, rx) = oneshot::channel();
///     uvasync::spawn(async move { tx.send(7).unwrap() });
///     assert_eq!(rx.await, Ok(7));
///     let (tx, rx) = oneshot::channel::<u8>();
///     drop(tx);
///     assert_eq!(rx.await, Err(oneshot::RecvError(())));
/// });
/// ```
pub fn channel<T: 'static>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::channel(1);
    (Sender { tx }, Receiver { rx, wait: CoreWait::new(), done: false })
}

/// Sends the one value.
pub struct Sender<T> {
    tx: mpsc::Sender<T>,
}

impl<T> Sender<T> {
    /// Sends `value`; gives it back if the receiver is gone.
    pub fn send(self, value: T) -> Result<(), T> {
        self.tx.try_send(value).map_err(mpsc::TrySendError::into_inner)
    }

    /// True once the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot::Sender")
    }
}

/// Awaits the value: `Err(RecvError)` if the sender was dropped without
/// sending.
pub struct Receiver<T> {
    rx: mpsc::Receiver<T>,
    wait: CoreWait,
    done: bool,
}

/// The sender was dropped without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError(pub ());

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl std::error::Error for RecvError {}

/// The error of [`Receiver::try_recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing sent yet.
    Empty,
    /// The sender is gone, or the value was taken already.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "channel empty",
            TryRecvError::Closed => "channel closed",
        })
    }
}

impl std::error::Error for TryRecvError {}

impl<T> Receiver<T> {
    /// The value if it was sent, without waiting.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if self.done {
            return Err(TryRecvError::Closed);
        }
        match self.rx.try_recv() {
            Ok(v) => {
                self.done = true;
                Ok(v)
            }
            Err(mpsc::TryRecvError::Empty) => Err(TryRecvError::Empty),
            Err(mpsc::TryRecvError::Disconnected) => {
                self.done = true;
                Err(TryRecvError::Closed)
            }
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut(); // Unpin: nothing is pinned
        assert!(!this.done, "oneshot::Receiver polled after it completed");
        let out = std::task::ready!(this.rx.poll_recv(&mut this.wait, cx));
        this.done = true;
        Poll::Ready(out.ok_or(RecvError(())))
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot::Receiver")
    }
}
