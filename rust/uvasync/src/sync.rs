//! Event, Mutex and Semaphore on the core's primitives (waiters are served
//! in FIFO order by hand-off; a waiter dropped before it ran passes what it
//! was handed to the next one).
use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::fmt;
use std::future::poll_fn;
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::rc::Rc;

use uvasync_sys as sys;

use crate::error::expect_ok;
use crate::runtime::{current_loop, LoopInner};
use crate::task::CoreWait;

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
        expect_ok(rc, "uva_event_wait");
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
        expect_ok(rc, "uva_lock_acquire");
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
        expect_ok(rc, "uva_sem_acquire");
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
