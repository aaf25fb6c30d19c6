//! A multi-producer, multi-consumer channel where every receiver sees
//! every value, as tokio's `sync::broadcast`: the last `capacity` values
//! are kept, and a receiver that fell further behind gets
//! `RecvError::Lagged(n)` (n values it missed) and goes on from the oldest
//! kept. Receivers wait on a core event that each send sets (and replaces).
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use crate::sync::Event;

struct Shared<T> {
    /// The kept values; the first has sequence number `first`.
    values: RefCell<VecDeque<T>>,
    first: Cell<u64>,
    capacity: usize,
    senders: Cell<usize>,
    receivers: Cell<usize>,
    sent: RefCell<Rc<Event>>,
}

impl<T> Shared<T> {
    fn end(&self) -> u64 {
        self.first.get() + self.values.borrow().len() as u64
    }

    fn notify(&self) {
        let old = self.sent.replace(Rc::new(Event::new()));
        old.set();
    }
}

/// A broadcast channel keeping the last `capacity` values, on the current
/// runtime. Panics outside one, and if `capacity` is 0 (as tokio's).
///
/// ```
/// use uvasync::sync::broadcast::{self, error::RecvError};
/// uvasync::run(async {
///     let (tx, mut rx1) = broadcast::channel(2);
///     let mut rx2 = tx.subscribe();
///     for i in 0..3 { tx.send(i).unwrap(); }
///     assert_eq!(rx1.recv().await, Err(RecvError::Lagged(1)));
///     assert_eq!(rx1.recv().await, Ok(1));
///     assert_eq!(rx2.recv().await, Err(RecvError::Lagged(1)));
///     drop(tx);
///     assert_eq!(rx1.recv().await, Ok(2));
///     assert_eq!(rx1.recv().await, Err(RecvError::Closed));
/// });
/// ```
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "broadcast channel capacity cannot be zero");
    let shared = Rc::new(Shared {
        values: RefCell::new(VecDeque::with_capacity(capacity)),
        first: Cell::new(0),
        capacity,
        senders: Cell::new(1),
        receivers: Cell::new(1),
        sent: RefCell::new(Rc::new(Event::new())),
    });
    (Sender { shared: shared.clone() }, Receiver { shared, next: 0 })
}

/// The errors of the channel's calls, as tokio's `broadcast::error`.
pub mod error {
    use std::fmt;

    /// The error of `send` when no receiver is left; holds the value.
    #[derive(PartialEq, Eq)]
    pub struct SendError<T>(pub T);

    impl<T> fmt::Debug for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("SendError(..)")
        }
    }

    impl<T> fmt::Display for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl<T> std::error::Error for SendError<T> {}

    /// The error of `recv`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RecvError {
        /// Every sender is gone and every kept value was received.
        Closed,
        /// This many values were dropped before this receiver got them;
        /// the next `recv` gives the oldest kept one.
        Lagged(u64),
    }

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                RecvError::Closed => f.write_str("channel closed"),
                RecvError::Lagged(n) => write!(f, "channel lagged by {n}"),
            }
        }
    }

    impl std::error::Error for RecvError {}

    /// The error of `try_recv`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TryRecvError {
        /// No new value yet.
        Empty,
        /// As [`RecvError::Closed`].
        Closed,
        /// As [`RecvError::Lagged`].
        Lagged(u64),
    }

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("channel empty"),
                TryRecvError::Closed => f.write_str("channel closed"),
                TryRecvError::Lagged(n) => write!(f, "channel lagged by {n}"),
            }
        }
    }

    impl std::error::Error for TryRecvError {}
}

use error::{RecvError, SendError, TryRecvError};

/// Sends values to every receiver; clone it for more senders.
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Sends `value` to the receivers there are now; returns how many.
    /// Fails (giving it back) if there is none. Never waits: the oldest
    /// kept value goes if the channel is full.
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let s = &self.shared;
        if s.receivers.get() == 0 {
            return Err(SendError(value));
        }
        {
            let mut values = s.values.borrow_mut();
            if values.len() == s.capacity {
                values.pop_front();
                s.first.set(s.first.get() + 1);
            }
            values.push_back(value);
        }
        s.notify();
        Ok(s.receivers.get())
    }

    /// A new receiver, which gets the values sent from now on.
    pub fn subscribe(&self) -> Receiver<T> {
        self.shared.receivers.set(self.shared.receivers.get() + 1);
        Receiver { shared: self.shared.clone(), next: self.shared.end() }
    }

    /// How many receivers there are.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.get()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.set(self.shared.senders.get() + 1);
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let n = self.shared.senders.get() - 1;
        self.shared.senders.set(n);
        if n == 0 {
            self.shared.notify(); // waiting receivers learn that it is over
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("broadcast::Sender")
    }
}

/// Receives every value sent after it was made (or subscribed).
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    /// Sequence number of the next value to receive.
    next: u64,
}

impl<T: Clone> Receiver<T> {
    /// The next value without waiting.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let s = &self.shared;
        let first = s.first.get();
        if self.next < first {
            let missed = first - self.next;
            self.next = first;
            return Err(TryRecvError::Lagged(missed));
        }
        if let Some(v) = s.values.borrow().get((self.next - first) as usize) {
            self.next += 1;
            return Ok(v.clone());
        }
        if s.senders.get() == 0 {
            return Err(TryRecvError::Closed);
        }
        Err(TryRecvError::Empty)
    }

    /// Waits for the next value. Cancel-safe: a value is taken only when
    /// returned.
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        loop {
            match self.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Lagged(n)) => return Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {}
            }
            let event = self.shared.sent.borrow().clone();
            event.wait().await;
        }
    }

    /// A new receiver at the end of the channel (it gets what is sent from
    /// now on).
    pub fn resubscribe(&self) -> Receiver<T> {
        self.shared.receivers.set(self.shared.receivers.get() + 1);
        Receiver { shared: self.shared.clone(), next: self.shared.end() }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.set(self.shared.receivers.get() - 1);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("broadcast::Receiver")
    }
}
