//! Synchronisation for the tasks of one runtime, as tokio's `sync`: Event,
//! Mutex, Semaphore, Notify and RwLock on the core's primitives (waiters are
//! served in FIFO order by hand-off; a waiter dropped before it ran passes
//! what it was handed to the next one), and the [`oneshot`], [`watch`] and
//! [`broadcast`] channels (the mpsc channel is the crate root's
//! [`channel`](crate::channel); [`mpsc`] has the one whose sender other
//! threads use).
//!
//! These objects belong to the runtime that made them (made outside one,
//! they panic). Used from a task of another runtime, each panics (or, for
//! calls that return `io::Result`, fails) with the same message: "this X
//! belongs to another runtime; use it on the runtime that made it".
use std::cell::{RefCell, UnsafeCell};
use std::ffi::c_void;
use std::fmt;
use std::future::{poll_fn, Future};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::task::{Context, Poll};

use uvasync_sys as sys;

use crate::error::expect_ok;
use crate::runtime::{current_loop, expect_ok_on, LoopInner};
use crate::task::CoreWait;

pub mod broadcast;
pub mod mpsc;
pub mod oneshot;
pub mod watch;

/// An event: [`set`](Event::set) wakes every task waiting in
/// [`wait`](Event::wait) and later waits complete at once until
/// [`clear`](Event::clear). (It plays the part of tokio's `Notify` too.)
///
/// ```
/// use std::rc::Rc;
/// uvasync::run(async {
///     let ev = Rc::new(uvasync::Event::new());
///     let ev2 = ev.clone();
///     let waiter = uvasync::spawn(async move { ev2.wait().await });
///     ev.set();
///     waiter.await.unwrap();
/// });
/// ```
pub struct Event {
    _lp: Rc<LoopInner>,
    raw: *mut sys::uva_event_t,
}

impl Event {
    /// A new, clear event on the current runtime. Panics outside one.
    ///
    /// ```
    /// uvasync::run(async { let _ev = uvasync::Event::new(); });
    /// ```
    pub fn new() -> Event {
        let lp = current_loop();
        let mut raw = ptr::null_mut();
        expect_ok(unsafe { sys::uva_event_new(&mut raw, lp.raw) }, "uva_event_new");
        Event { _lp: lp, raw }
    }

    /// Sets the event, waking every waiter.
    ///
    /// ```
    /// uvasync::run(async { let ev = uvasync::Event::new(); ev.set(); assert!(ev.is_set()); });
    /// ```
    pub fn set(&self) {
        expect_ok(unsafe { sys::uva_event_set(self.raw) }, "uva_event_set");
    }

    /// Clears the event.
    ///
    /// ```
    /// uvasync::run(async { let ev = uvasync::Event::new(); ev.set(); ev.clear(); assert!(!ev.is_set()); });
    /// ```
    pub fn clear(&self) {
        expect_ok(unsafe { sys::uva_event_clear(self.raw) }, "uva_event_clear");
    }

    /// Whether the event is set.
    ///
    /// ```
    /// uvasync::run(async { assert!(!uvasync::Event::new().is_set()); });
    /// ```
    pub fn is_set(&self) -> bool {
        let mut out = 0;
        unsafe { sys::uva_event_is_set(&mut out, self.raw) };
        out != 0
    }

    /// Waits until the event is set (at once if it is).
    ///
    /// ```
    /// uvasync::run(async { let ev = uvasync::Event::new(); ev.set(); ev.wait().await; });
    /// ```
    pub async fn wait(&self) {
        let raw = self.raw;
        let mut w = CoreWait::new();
        let rc = poll_fn(|cx| w.poll(raw as *const c_void, cx, |t| unsafe { sys::uva_event_wait(raw, t) })).await;
        expect_ok_on(&self._lp, "Event", rc, "uva_event_wait");
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        unsafe { sys::uva_event_close(self.raw) };
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("set", &self.is_set()).finish()
    }
}

/// A mutual-exclusion lock for tasks of one runtime, on the core's lock:
/// waiters get it in FIFO order.
///
/// ```
/// use std::rc::Rc;
/// uvasync::run(async {
///     let m = Rc::new(uvasync::Mutex::new(0));
///     let tasks: Vec<_> = (0..3).map(|_| {
///         let m = m.clone();
///         uvasync::spawn(async move { *m.lock().await += 1 })
///     }).collect();
///     for t in tasks { t.await.unwrap(); }
///     assert_eq!(*m.lock().await, 3);
/// });
/// ```
pub struct Mutex<T: ?Sized> {
    _lp: Rc<LoopInner>,
    raw: *mut sys::uva_lock_t,
    value: UnsafeCell<T>,
}

impl<T> Mutex<T> {
    /// A new unlocked mutex on the current runtime. Panics outside one.
    ///
    /// ```
    /// uvasync::run(async { let _m = uvasync::Mutex::new(vec![1, 2]); });
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        let lp = current_loop();
        let mut raw = ptr::null_mut();
        expect_ok(unsafe { sys::uva_lock_new(&mut raw, lp.raw) }, "uva_lock_new");
        Mutex { _lp: lp, raw, value: UnsafeCell::new(value) }
    }

    /// The value, when nobody can hold the lock any more.
    ///
    /// ```
    /// uvasync::run(async { assert_eq!(uvasync::Mutex::new(5).into_inner(), 5); });
    /// ```
    pub fn into_inner(self) -> T {
        let mut this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is not used again: each field is dropped or moved
        // out once (through `&mut`, not a pointer cast from `&`).
        unsafe {
            sys::uva_lock_close(this.raw);
            ptr::drop_in_place(&mut this._lp);
            ptr::read(&this.value).into_inner()
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let m = uvasync::Mutex::new(1);
    ///     *m.lock().await += 1;
    ///     assert_eq!(*m.lock().await, 2);
    /// });
    /// ```
    pub async fn lock(&self) -> MutexGuard<'_, T> {
        let raw = self.raw;
        let mut w = CoreWait::new();
        let rc = poll_fn(|cx| w.poll(raw as *const c_void, cx, |t| unsafe { sys::uva_lock_acquire(raw, t) })).await;
        expect_ok_on(&self._lp, "Mutex", rc, "uva_lock_acquire");
        MutexGuard { mutex: self }
    }

    /// Takes the lock if it is free.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let m = uvasync::Mutex::new(());
    ///     let g = m.try_lock().unwrap();
    ///     assert!(m.try_lock().is_none());
    ///     drop(g);
    /// });
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        (unsafe { sys::uva_lock_try_acquire(self.raw) } == 0).then_some(MutexGuard { mutex: self })
    }
}

impl<T: ?Sized> Drop for Mutex<T> {
    fn drop(&mut self) {
        unsafe { sys::uva_lock_close(self.raw) };
    }
}

impl<T: ?Sized> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex").finish_non_exhaustive()
    }
}

/// Access to a [`Mutex`]'s value; dropping it releases the lock (to the
/// first waiter).
///
/// ```
/// uvasync::run(async {
///     let m = uvasync::Mutex::new(String::new());
///     let mut g: uvasync::MutexGuard<'_, String> = m.lock().await;
///     g.push('x');
/// });
/// ```
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        unsafe { sys::uva_lock_release(self.mutex.raw) };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// A counting semaphore on the core's: permits are handed to waiters in
/// FIFO order.
///
/// ```
/// uvasync::run(async {
///     let sem = uvasync::Semaphore::new(2);
///     let a = sem.acquire().await;
///     let b = sem.acquire().await;
///     assert!(sem.try_acquire().is_none());
///     drop(a);
///     assert!(sem.try_acquire().is_some());
/// });
/// ```
pub struct Semaphore {
    _lp: Rc<LoopInner>,
    raw: *mut sys::uva_sem_t,
}

impl Semaphore {
    /// A semaphore with `permits` free permits. Panics outside a runtime.
    ///
    /// ```
    /// uvasync::run(async { let _s = uvasync::Semaphore::new(3); });
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        let lp = current_loop();
        let mut raw = ptr::null_mut();
        expect_ok(unsafe { sys::uva_sem_new(&mut raw, lp.raw, permits as i64, 0) }, "uva_sem_new");
        Semaphore { _lp: lp, raw }
    }

    /// Waits for a permit; dropping the permit gives it back.
    ///
    /// ```
    /// uvasync::run(async { let s = uvasync::Semaphore::new(1); let _p = s.acquire().await; });
    /// ```
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        let raw = self.raw;
        let mut w = CoreWait::new();
        let rc = poll_fn(|cx| w.poll(raw as *const c_void, cx, |t| unsafe { sys::uva_sem_acquire(raw, t) })).await;
        expect_ok_on(&self._lp, "Semaphore", rc, "uva_sem_acquire");
        SemaphorePermit { sem: self }
    }

    /// Takes a permit if one is free.
    ///
    /// ```
    /// uvasync::run(async { assert!(uvasync::Semaphore::new(0).try_acquire().is_none()); });
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        (unsafe { sys::uva_sem_try_acquire(self.raw) } == 0).then_some(SemaphorePermit { sem: self })
    }

    /// Adds `n` permits.
    ///
    /// ```
    /// uvasync::run(async { let s = uvasync::Semaphore::new(0); s.add_permits(2); assert_eq!(s.available_permits(), 2); });
    /// ```
    pub fn add_permits(&self, n: usize) {
        for _ in 0..n {
            expect_ok(unsafe { sys::uva_sem_release(self.raw) }, "uva_sem_release");
        }
    }

    /// Free permits now.
    ///
    /// ```
    /// uvasync::run(async { assert_eq!(uvasync::Semaphore::new(4).available_permits(), 4); });
    /// ```
    pub fn available_permits(&self) -> usize {
        let mut v = 0i64;
        unsafe { sys::uva_sem_value(&mut v, self.raw) };
        v.max(0) as usize
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        unsafe { sys::uva_sem_close(self.raw) };
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").field("available", &self.available_permits()).finish()
    }
}

/// A permit of a [`Semaphore`]; dropping it releases the permit.
///
/// ```
/// uvasync::run(async {
///     let s = uvasync::Semaphore::new(1);
///     let p: uvasync::SemaphorePermit<'_> = s.acquire().await;
///     p.forget(); // keep the permit taken
///     assert_eq!(s.available_permits(), 0);
/// });
/// ```
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Consumes the permit without giving it back.
    ///
    /// ```
    /// uvasync::run(async { let s = uvasync::Semaphore::new(1); s.acquire().await.forget(); });
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        unsafe { sys::uva_sem_release(self.sem.raw) };
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

/// Wakes tasks, as tokio's `Notify`: [`notify_one`](Notify::notify_one)
/// wakes one waiter, or stores one permit for the next
/// [`notified`](Notify::notified) if none waits (at most one is stored);
/// [`notify_waiters`](Notify::notify_waiters) wakes every `Notified` made
/// before it (polled or not) and stores nothing. Waiters of `notify_one`
/// are served in FIFO order (a core semaphore bounded at one permit); each
/// `notify_waiters` sets a core event that the `Notified` made before it
/// hold.
///
/// ```
/// use std::rc::Rc;
/// uvasync::run(async {
///     let n = Rc::new(uvasync::Notify::new());
///     n.notify_one(); // stored
///     n.notified().await; // takes the permit at once
///     let n2 = n.clone();
///     let waiter = uvasync::spawn(async move { n2.notified().await });
///     uvasync::yield_now().await;
///     n.notify_waiters();
///     waiter.await.unwrap();
/// });
/// ```
pub struct Notify {
    lp: Rc<LoopInner>,
    permit: *mut sys::uva_sem_t,
    /// Set by the next notify_waiters (then replaced).
    generation: RefCell<Rc<Event>>,
}

impl Notify {
    /// A new Notify on the current runtime (panics outside one).
    pub fn new() -> Notify {
        let lp = current_loop();
        let mut raw = ptr::null_mut();
        expect_ok(unsafe { sys::uva_sem_new(&mut raw, lp.raw, 0, 1) }, "uva_sem_new");
        Notify { lp, permit: raw, generation: RefCell::new(Rc::new(Event::new())) }
    }

    /// Wakes the first waiter, or stores a permit if none waits.
    pub fn notify_one(&self) {
        // Refused (bound reached) when a permit is stored already: one is
        // all there can be.
        unsafe { sys::uva_sem_release(self.permit) };
    }

    /// Wakes every [`Notified`] made before this call; stores no permit.
    pub fn notify_waiters(&self) {
        let old = self.generation.replace(Rc::new(Event::new()));
        old.set();
    }

    /// A future that completes at a `notify_one` (or at once with a stored
    /// permit) or at a `notify_waiters` after it was made.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: self.generation.borrow().clone(),
            permit_wait: CoreWait::new(),
            generation_wait: CoreWait::new(),
        }
    }
}

impl Default for Notify {
    fn default() -> Self {
        Notify::new()
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        unsafe { sys::uva_sem_close(self.permit) };
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify").finish_non_exhaustive()
    }
}

/// The future of [`Notify::notified`]. Dropped after `notify_one` handed
/// it the permit but before it completed, it passes the permit on.
pub struct Notified<'a> {
    // The waits come first: fields drop in order, and a wait must be
    // withdrawn before the event it waits on may be closed.
    permit_wait: CoreWait,
    generation_wait: CoreWait,
    notify: &'a Notify,
    generation: Rc<Event>,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut(); // Unpin: nothing is pinned
        let ev = this.generation.raw;
        let rc =
            this.generation_wait.poll(ev as *const std::ffi::c_void, cx, |t| unsafe { sys::uva_event_wait(ev, t) });
        if let Poll::Ready(rc) = rc {
            expect_ok_on(&this.notify.lp, "Notify", rc, "uva_event_wait");
            return Poll::Ready(());
        }
        let sem = this.notify.permit;
        let rc = std::task::ready!(this
            .permit_wait
            .poll(sem as *const std::ffi::c_void, cx, |t| unsafe { sys::uva_sem_acquire(sem, t) }));
        expect_ok_on(&this.notify.lp, "Notify", rc, "uva_sem_acquire");
        // The generation wait is withdrawn when this future is dropped.
        Poll::Ready(())
    }
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Notified")
    }
}

/// The most readers a [`RwLock`] lets in at once.
const MAX_READERS: usize = 32;

/// A reader-writer lock for tasks of one runtime, as tokio's `RwLock`:
/// many readers or one writer, served in FIFO order (a writer waiting
/// holds back the readers that come after it, so writers do not starve).
/// It is a core semaphore of 32 permits (a reader takes one, a writer all
/// of them, one writer at a time through a core lock): at most 32 readers
/// hold it at once, the next ones wait.
///
/// ```
/// uvasync::run(async {
///     let lock = uvasync::RwLock::new(5);
///     {
///         let r1 = lock.read().await;
///         let r2 = lock.read().await;
///         assert_eq!(*r1 + *r2, 10);
///         assert!(lock.try_write().is_none());
///     }
///     *lock.write().await += 1;
///     assert_eq!(*lock.read().await, 6);
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    permits: Semaphore,
    writers: Mutex<()>,
    value: UnsafeCell<T>,
}

impl<T> RwLock<T> {
    /// A new unlocked lock on the current runtime (panics outside one).
    pub fn new(value: T) -> RwLock<T> {
        RwLock { permits: Semaphore::new(MAX_READERS), writers: Mutex::new(()), value: UnsafeCell::new(value) }
    }

    /// The value, when nobody can hold the lock any more.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits for shared access.
    pub async fn read(&self) -> RwLockReadGuard<'_, T> {
        self.permits.acquire().await.forget();
        RwLockReadGuard { lock: self }
    }

    /// Shared access if it is free now (and no writer waits).
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let p = self.permits.try_acquire()?;
        p.forget();
        Some(RwLockReadGuard { lock: self })
    }

    /// Waits for exclusive access. Cancel-safe: dropped while waiting, it
    /// gives back the permits it took.
    pub async fn write(&self) -> RwLockWriteGuard<'_, T> {
        let gate = self.writers.lock().await;
        let mut held = Vec::with_capacity(MAX_READERS);
        for _ in 0..MAX_READERS {
            held.push(self.permits.acquire().await);
        }
        held.into_iter().for_each(SemaphorePermit::forget);
        drop(gate);
        RwLockWriteGuard { lock: self }
    }

    /// Exclusive access if it is free now.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let _gate = self.writers.try_lock()?;
        if self.permits.available_permits() < MAX_READERS {
            return None;
        }
        let mut held = Vec::with_capacity(MAX_READERS);
        for _ in 0..MAX_READERS {
            held.push(self.permits.try_acquire()?);
        }
        held.into_iter().for_each(SemaphorePermit::forget);
        Some(RwLockWriteGuard { lock: self })
    }

    /// The value, through `&mut` (no lock needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: ?Sized> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock").finish_non_exhaustive()
    }
}

/// Shared access to a [`RwLock`]'s value.
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read permit is held: no writer holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.permits.add_permits(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Exclusive access to a [`RwLock`]'s value.
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: every permit is held: nobody else has the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.permits.add_permits(MAX_READERS);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
