//! A channel that keeps only the latest value, as tokio's `sync::watch`.
//! Receivers wait for a change on a core event that each send sets (and
//! replaces with a fresh one for the next change).
use std::cell::{Cell, Ref, RefCell};
use std::fmt;
use std::rc::Rc;

use crate::sync::Event;

struct Shared<T> {
    value: RefCell<T>,
    version: Cell<u64>,
    /// Set at the next change (or when the sender goes).
    changed: RefCell<Rc<Event>>,
    sender_alive: Cell<bool>,
    receivers: Cell<usize>,
}

impl<T> Shared<T> {
    fn notify(&self) {
        let old = self.changed.replace(Rc::new(Event::new()));
        old.set();
    }
}

/// A watch channel holding `init` on the current runtime (panics outside
/// one).
///
/// ```
/// use uvasync::sync::watch;
/// uvasync::run(async {
///     let (tx, mut rx) = watch::channel("starting");
///     let waiter = uvasync::spawn(async move {
///         rx.changed().await.unwrap();
///         *rx.borrow_and_update()
///     });
///     uvasync::yield_now().await;
///     tx.send("running").unwrap();
///     assert_eq!(waiter.await.unwrap(), "running");
/// });
/// ```
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Rc::new(Shared {
        value: RefCell::new(init),
        version: Cell::new(0),
        changed: RefCell::new(Rc::new(Event::new())),
        sender_alive: Cell::new(true),
        receivers: Cell::new(1),
    });
    (Sender { shared: shared.clone() }, Receiver { shared, seen: 0 })
}

/// The error of [`Sender::send`] when every receiver is gone; holds the
/// value.
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

/// The sender is gone (no change can come).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError(pub ());

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl std::error::Error for RecvError {}

/// Sends new values. Borrows of the value (`borrow`) must not be held
/// across a send: the value is in a `RefCell`, and a send during a borrow
/// panics.
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Stores `value` and wakes the receivers; fails (giving it back) if
    /// every receiver is gone, as tokio's.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.receivers.get() == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Stores `value` whether or not a receiver is left; returns the old
    /// value.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let (tx, rx) = uvasync::sync::watch::channel(1);
    ///     drop(rx);
    ///     assert_eq!(tx.send_replace(2), 1);
    ///     assert_eq!(*tx.borrow(), 2);
    /// });
    /// ```
    pub fn send_replace(&self, value: T) -> T {
        let old = self.shared.value.replace(value);
        self.bump();
        old
    }

    /// Changes the value in place and wakes the receivers.
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        modify(&mut self.shared.value.borrow_mut());
        self.bump();
    }

    /// Changes the value in place if `modify` returns true (then wakes the
    /// receivers); returns what `modify` returned.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let changed = modify(&mut self.shared.value.borrow_mut());
        if changed {
            self.bump();
        }
        changed
    }

    fn bump(&self) {
        self.shared.version.set(self.shared.version.get() + 1);
        self.shared.notify();
    }

    /// The current value.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// A new receiver, which sees the current value as seen.
    pub fn subscribe(&self) -> Receiver<T> {
        self.shared.receivers.set(self.shared.receivers.get() + 1);
        Receiver { shared: self.shared.clone(), seen: self.shared.version.get() }
    }

    /// How many receivers there are.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.get()
    }

    /// True once every receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.receivers.get() == 0
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.sender_alive.set(false);
        self.shared.notify(); // waiting receivers learn that it is over
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("watch::Sender")
    }
}

/// Reads the latest value and waits for changes.
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    seen: u64,
}

impl<T> Receiver<T> {
    /// The current value (not marked as seen).
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// The current value, marked as seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        self.seen = self.shared.version.get();
        self.shared.value.borrow()
    }

    /// True if a value came that was not seen; `Err` once the sender is
    /// gone.
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        if !self.shared.sender_alive.get() {
            return Err(RecvError(()));
        }
        Ok(self.seen != self.shared.version.get())
    }

    /// Marks the current value as seen.
    pub fn mark_unchanged(&mut self) {
        self.seen = self.shared.version.get();
    }

    /// Waits for a value not seen yet and marks it seen (at once if one is
    /// there); `Err` once the sender is gone and every change was seen.
    pub async fn changed(&mut self) -> Result<(), RecvError> {
        loop {
            if self.seen != self.shared.version.get() {
                self.seen = self.shared.version.get();
                return Ok(());
            }
            if !self.shared.sender_alive.get() {
                return Err(RecvError(()));
            }
            let event = self.shared.changed.borrow().clone();
            event.wait().await;
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.set(self.shared.receivers.get() + 1);
        Receiver { shared: self.shared.clone(), seen: self.seen }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.set(self.shared.receivers.get() - 1);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("watch::Receiver")
    }
}
