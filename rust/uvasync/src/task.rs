//! The executor: every spawned future is a core task whose step polls it,
//! and whose `Waker` calls `uva_task_wake` (thread-safe, coalescing).
//!
//! Leaf futures (reads, lock acquisitions, ...) call the core's "call again"
//! functions with the task being stepped. On `UVA_EAGAIN` the core wakes that
//! task when the object has something for it; the step then polls the whole
//! future again, and the leaf calls again. A leaf polled with a waker other
//! than its task's own (a combinator that wakes children one by one) parks
//! that waker on the task, and the step wakes every parked waker before it
//! polls, so such combinators see their child woken too.
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_int, c_void};
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use uvasync_sys as sys;

use crate::blocking::Blocking;
use crate::error::expect_ok;
use crate::panic;
use crate::runtime::LoopInner;

/// The non-generic part of every task: what leaf futures and the runtime
/// need without knowing the future's type.
pub(crate) struct Header {
    pub(crate) task: *mut sys::uva_task_t,
    /// The object this task waits on through the core, with how many leaves
    /// wait on it (the core keeps one registration per task and object;
    /// count 0: none). Most tasks wait on one object at a time; the others
    /// go to `waits.objects`.
    first: Cell<(*const c_void, u32)>,
    /// Allocated when needed (a parked waker, a second object): a sleeping
    /// task stays small.
    waits: UnsafeCell<Option<Box<Waits>>>,
    join_waker: UnsafeCell<Option<Waker>>,
    finished: Cell<bool>,
    /// The runtime's circular list of unfinished tasks (for shutdown).
    pub(crate) prev: Cell<*const Header>,
    pub(crate) next: Cell<*const Header>,
}

#[derive(Default)]
struct Waits {
    /// Wakers of leaves that wait on the core with a foreign waker.
    parked: Vec<Waker>,
    /// Objects waited on besides `Header::first`, with their counts.
    objects: Vec<(*const c_void, u32)>,
}

impl Header {
    /// An empty header: the head of a runtime's task list.
    pub(crate) fn sentinel() -> Header {
        Header {
            task: ptr::null_mut(),
            first: Cell::new((ptr::null(), 0)),
            waits: UnsafeCell::new(None),
            join_waker: UnsafeCell::new(None),
            finished: Cell::new(false),
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
        }
    }

    #[allow(clippy::mut_from_ref)]
    fn waits(&self) -> &mut Waits {
        // SAFETY: loop thread only; no reference outlives the calls below.
        unsafe { (*self.waits.get()).get_or_insert_with(Box::default) }
    }

    /// True if some object besides `first` is waited on.
    fn has_other_objects(&self) -> bool {
        // SAFETY: loop thread only.
        unsafe { (*self.waits.get()).as_ref().is_some_and(|w| !w.objects.is_empty()) }
    }
}

/// `Header` plus the output slot: all a `JoinHandle<T>` needs.
#[repr(C)]
struct Head<T> {
    header: Header,
    output: UnsafeCell<Option<Result<T, JoinError>>>,
}

#[repr(C)]
struct TaskCell<F: Future> {
    head: Head<F::Output>,
    future: UnsafeCell<Option<F>>,
}

thread_local! {
    /// The task whose step is running on this thread.
    static CURRENT: Cell<*const Header> = const { Cell::new(ptr::null()) };
    /// A task whose own wake-ups are redundant right now (its step is about
    /// to poll it anyway).
    static SUPPRESS: Cell<*mut sys::uva_task_t> = const { Cell::new(ptr::null_mut()) };
}

/// The header of the task being stepped; panics outside a task.
#[inline]
pub(crate) fn current() -> &'static Header {
    let h = CURRENT.with(Cell::get);
    assert!(!h.is_null(), "uvasync: this future must be polled inside a uvasync task (block_on or spawn)");
    // SAFETY: set only for the duration of a step, during which the cell lives.
    unsafe { &*h }
}

// ---- waker ------------------------------------------------------------------

static VTABLE: RawWakerVTable = RawWakerVTable::new(w_clone, w_wake, w_wake_by_ref, w_drop);

unsafe fn w_clone(p: *const ()) -> RawWaker {
    // Thread-safe; the core frees the task only when the last reference goes.
    sys::uva_task_retain(p as *mut sys::uva_task_t);
    RawWaker::new(p, &VTABLE)
}
unsafe fn w_wake(p: *const ()) {
    w_wake_by_ref(p);
    w_drop(p);
}
unsafe fn w_wake_by_ref(p: *const ()) {
    let task = p as *mut sys::uva_task_t;
    if SUPPRESS.with(Cell::get) == task {
        return;
    }
    // Thread-safe; waking a finished task does nothing.
    sys::uva_task_wake(task);
}
unsafe fn w_drop(p: *const ()) {
    sys::uva_task_release(p as *mut sys::uva_task_t);
}

/// The task's own waker, borrowed (no reference taken until cloned).
fn borrowed_waker(task: *mut sys::uva_task_t) -> ManuallyDrop<Waker> {
    // SAFETY: the vtable's functions uphold the RawWaker contract.
    ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(task as *const (), &VTABLE)) })
}

fn is_own_waker(waker: &Waker, task: *mut sys::uva_task_t) -> bool {
    waker.data() == task as *const () && ptr::eq(waker.vtable(), &VTABLE)
}

/// The task being stepped, if `waker` is its own: a leaf polled this way is
/// polled again whenever the task runs, so it may rely on the task's own
/// sleep (which any wake-up abandons) instead of registering a waker.
pub(crate) fn own_task(waker: &Waker) -> Option<*mut sys::uva_task_t> {
    let h = CURRENT.with(Cell::get);
    // SAFETY: set only while the task's step runs.
    (!h.is_null() && is_own_waker(waker, unsafe { (*h).task })).then(|| unsafe { (*h).task })
}

// ---- leaf waits ---------------------------------------------------------------

/// One leaf future's wait on a core object, following the call-again
/// protocol. Dropping it withdraws the wait (a lock already handed over goes
/// to the next waiter), so a future dropped by `timeout` or `select` leaves
/// no trace.
///
/// It takes no core reference on its task: an unfinished task is alive (the
/// loop holds it), and a task that finishes while waits of its own are
/// still counted (they live outside its future) is kept alive by `finish`
/// until the last of them is gone.
pub(crate) struct CoreWait {
    /// The header of the task registered with the core, or null.
    header: *const Header,
    obj: *const c_void,
}

impl CoreWait {
    pub(crate) const fn new() -> Self {
        CoreWait { header: ptr::null(), obj: ptr::null() }
    }

    /// Calls `op(task)` with the running task: `Ready(rc)` when it
    /// completed, `Pending` when it returned `UVA_EAGAIN` (registered).
    #[inline]
    pub(crate) fn poll(
        &mut self,
        obj: *const c_void,
        cx: &Context<'_>,
        op: impl FnOnce(*mut sys::uva_task_t) -> c_int,
    ) -> Poll<c_int> {
        let header = current();
        if !self.header.is_null() && (!ptr::eq(self.header, header) || self.obj != obj) {
            self.cancel(); // moved to another task: give the old wait up
        }
        let rc = op(header.task);
        if rc == sys::UVA_EAGAIN {
            if self.header.is_null() {
                self.header = header;
                self.obj = obj;
                header.count_wait(obj, 1);
            }
            if !is_own_waker(cx.waker(), header.task) {
                park(header, cx.waker());
            }
            return Poll::Pending;
        }
        // The core keeps one registration per task and object, and a call
        // that completes drops it, also when it was made by another leaf of
        // this task (a stream's read waits while a write's drain completes
        // at once): run the task again so that those leaves call again.
        let others = if !self.header.is_null() {
            self.header = ptr::null();
            header.count_wait(obj, -1)
        } else {
            header.count_wait(obj, 0)
        };
        if others > 0 {
            // SAFETY: the running task is alive.
            unsafe { sys::uva_task_wake(header.task) };
        }
        Poll::Ready(rc)
    }

    /// True while registered with the core (the last call said UVA_EAGAIN).
    #[inline]
    pub(crate) fn is_waiting(&self) -> bool {
        !self.header.is_null()
    }

    /// Give the wait up (the future is dropped or moved).
    #[inline]
    pub(crate) fn cancel(&mut self) {
        if !self.header.is_null() {
            self.withdraw();
        }
    }

    #[inline(never)]
    fn withdraw(&mut self) {
        // SAFETY: the header is alive: its task is unfinished, or finish()
        // took a reference that the last counted wait drops (below).
        let header = unsafe { &*self.header };
        self.header = ptr::null();
        let left = header.count_wait(self.obj, -1);
        if header.finished.get() {
            // The core withdrew everything when the task finished.
            if header.waiting() == 0 {
                // SAFETY: the reference finish() took for the waits counted.
                unsafe { sys::uva_task_release(header.task) };
            }
        } else if left == 0 {
            // SAFETY: an unfinished task is alive. UVA_ENOENT is fine: the
            // wait may have completed.
            unsafe { sys::uva_task_withdraw(header.task, self.obj) };
        } else {
            // Siblings keep the registration; let them re-check.
            unsafe { sys::uva_task_wake(header.task) };
        }
    }
}

impl Drop for CoreWait {
    #[inline]
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Calls a "call again" function once, never waiting: `op(task)` with the
/// running task (NULL outside a step, where the core's functions work as
/// "no task"). A registration that `UVA_EAGAIN` made is withdrawn, unless a
/// leaf of the task waits on `obj` already (it is theirs then); a
/// completion, which drops the task's registration, lets such leaves call
/// again. Returns op's code.
pub(crate) fn call_once(obj: *const c_void, op: impl FnOnce(*mut sys::uva_task_t) -> c_int) -> c_int {
    let h = CURRENT.with(Cell::get);
    if h.is_null() {
        return op(ptr::null_mut());
    }
    // SAFETY: set only while the task's step runs.
    let header = unsafe { &*h };
    let rc = op(header.task);
    let shared = header.waits_on(obj);
    if rc == sys::UVA_EAGAIN && !shared {
        // SAFETY: the running task is alive.
        unsafe { sys::uva_task_withdraw(header.task, obj) };
    } else if rc != sys::UVA_EAGAIN && shared {
        unsafe { sys::uva_task_wake(header.task) };
    }
    rc
}

/// Parks a foreign waker on the task (woken at its next step).
#[cold]
fn park(header: &Header, waker: &Waker) {
    let parked = &mut header.waits().parked;
    if !parked.iter().any(|w| w.will_wake(waker)) {
        parked.push(waker.clone());
    }
}

impl Header {
    /// Adds `delta` to the count of leaves waiting on `obj`; returns the new
    /// count.
    #[inline]
    fn count_wait(&self, obj: *const c_void, delta: i32) -> u32 {
        let (o, n) = self.first.get();
        if n > 0 && o == obj {
            let n = (n as i32 + delta).max(0) as u32;
            self.first.set((o, n));
            return n;
        }
        if delta > 0 && n == 0 && !self.has_other_objects() {
            self.first.set((obj, delta as u32));
            return delta as u32;
        }
        self.count_other_wait(obj, delta)
    }

    #[cold]
    fn count_other_wait(&self, obj: *const c_void, delta: i32) -> u32 {
        let w = self.waits();
        if delta > 0 && self.first.get().1 == 0 && w.objects.iter().all(|(o, _)| *o != obj) {
            self.first.set((obj, delta as u32));
            return delta as u32;
        }
        let waits = &mut w.objects;
        match waits.iter().position(|(o, _)| *o == obj) {
            Some(i) => {
                let n = (waits[i].1 as i32 + delta).max(0) as u32;
                if n == 0 {
                    waits.swap_remove(i);
                } else {
                    waits[i].1 = n;
                }
                n
            }
            None if delta > 0 => {
                waits.push((obj, delta as u32));
                delta as u32
            }
            None => 0,
        }
    }

    /// True if some leaf of this task waits on `obj`.
    fn waits_on(&self, obj: *const c_void) -> bool {
        let (o, n) = self.first.get();
        // SAFETY: loop thread only.
        (n > 0 && o == obj)
            || unsafe { (*self.waits.get()).as_ref() }
                .is_some_and(|w| w.objects.iter().any(|&(o, n)| o == obj && n > 0))
    }

    /// How many leaves wait on core objects, over all objects.
    fn waiting(&self) -> u32 {
        // SAFETY: loop thread only.
        let others =
            unsafe { (*self.waits.get()).as_ref() }.map_or(0, |w| w.objects.iter().map(|(_, n)| n).sum::<u32>());
        self.first.get().1 + others
    }
}

// ---- spawning -------------------------------------------------------------------

/// Spawns `future` as a core task on `lp`; returns the handle.
pub(crate) fn spawn_on<F>(lp: &Rc<LoopInner>, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    // SAFETY: 'static future.
    unsafe { spawn_unchecked(lp, future) }
}

/// As `spawn_on` for a future that may borrow: the caller makes sure the
/// task finishes (or is aborted and run) before the borrows end.
pub(crate) unsafe fn spawn_unchecked<F: Future>(lp: &Rc<LoopInner>, future: F) -> JoinHandle<F::Output> {
    let cell = Box::new(TaskCell {
        head: Head { header: Header::sentinel(), output: UnsafeCell::new(None) },
        future: UnsafeCell::new(Some(future)),
    });
    let data = Box::into_raw(cell);
    let mut task = ptr::null_mut();
    // SAFETY: data is transferred to the task; drop_cell::<F> frees it.
    let rc =
        unsafe { sys::uva_task_spawn(&mut task, lp.raw, Some(step::<F>), data as *mut c_void, Some(drop_cell::<F>)) };
    if rc != 0 {
        // SAFETY: on error the core did not take the data.
        drop(unsafe { Box::from_raw(data) });
        expect_ok(rc, "uva_task_spawn");
    }
    // The task has not run yet (it runs at the next pass): set its pointer,
    // before any reference to the header exists.
    // SAFETY: `data` is the Box's pointer, not derived from a reference.
    unsafe { ptr::addr_of_mut!((*data).head.header.task).write(task) };
    // SAFETY: the cell lives until the task's memory is freed, which our
    // reference (held by the JoinHandle) prevents.
    let header = unsafe { &(*data).head.header };
    lp.link(header);
    JoinHandle { kind: Kind::Task { head: data as *const Head<F::Output>, _loop: lp.clone() } }
}

unsafe extern "C" fn drop_cell<F: Future>(data: *mut c_void) {
    panic::guard(|| drop(Box::from_raw(data as *mut TaskCell<F>)));
}

unsafe extern "C" fn step<F: Future>(task: *mut sys::uva_task_t, status: c_int, data: *mut c_void) -> c_int {
    let cell = &*(data as *const TaskCell<F>);
    let header = &cell.head.header;
    if status == sys::UVA_ECANCELED {
        // Abort: drop the future here, on the loop thread, inside the step
        // (its leaves withdraw what they waited for).
        let prev = CURRENT.with(|c| c.replace(header));
        let dropped = catch_unwind(AssertUnwindSafe(|| *cell.future.get() = None));
        CURRENT.with(|c| c.set(prev));
        let result = match dropped {
            Ok(()) => Err(JoinError { panic: None }),
            Err(p) => Err(JoinError { panic: Some(p) }),
        };
        finish(cell, result);
        return sys::UVA_ECANCELED;
    }

    // Leaves parked with foreign wakers may have been served: wake them
    // (their wake-ups of this very task are redundant: we poll next).
    let parked = match &mut *header.waits.get() {
        Some(w) if !w.parked.is_empty() => Some(std::mem::take(&mut w.parked)),
        _ => None,
    };
    if let Some(parked) = parked {
        wake_parked(task, parked);
    }

    let prev = CURRENT.with(|c| c.replace(header));
    let waker = borrowed_waker(task);
    let polled = catch_unwind(AssertUnwindSafe(|| {
        let fut = (*cell.future.get()).as_mut().expect("polled after completion");
        let mut cx = Context::from_waker(&waker);
        // SAFETY: the future never moves: it lives in the boxed cell.
        Pin::new_unchecked(fut).poll(&mut cx)
    }));
    CURRENT.with(|c| c.set(prev));
    let result = match polled {
        Ok(Poll::Pending) => return sys::UVA_TASK_PENDING,
        Ok(Poll::Ready(v)) => Ok(v),
        Err(p) => Err(JoinError { panic: Some(p) }),
    };
    let prev = CURRENT.with(|c| c.replace(header));
    let dropped = catch_unwind(AssertUnwindSafe(|| *cell.future.get() = None));
    CURRENT.with(|c| c.set(prev));
    if let Err(p) = dropped {
        panic::stash(p);
    }
    let rc = if result.is_ok() { 0 } else { sys::UVA_EUSER };
    finish(cell, result);
    rc
}

/// Wakes the wakers parked on `task` (their wake-ups of `task` itself are
/// redundant: its step polls it next).
#[cold]
fn wake_parked(task: *mut sys::uva_task_t, parked: Vec<Waker>) {
    SUPPRESS.with(|s| s.set(task));
    let woke = catch_unwind(AssertUnwindSafe(|| parked.into_iter().for_each(Waker::wake)));
    SUPPRESS.with(|s| s.set(ptr::null_mut()));
    if let Err(p) = woke {
        panic::stash(p);
    }
}

/// Records the task's end, then wakes its join waker. Runs in the step,
/// called by C: the wakers' code (waking, and dropping the parked ones)
/// runs last, with the task's state complete, and its panics are stashed.
unsafe fn finish<F: Future>(cell: &TaskCell<F>, result: Result<F::Output, JoinError>) {
    let header = &cell.head.header;
    header.finished.set(true);
    let parked = match &mut *header.waits.get() {
        Some(w) => std::mem::take(&mut w.parked),
        None => Vec::new(),
    };
    if header.waiting() > 0 {
        // Leaf waits that live outside the future (in a stream moved to
        // another task) still point here: keep the task, and with it this
        // header, until the last of them is gone (CoreWait::cancel).
        sys::uva_task_retain(header.task);
    }
    *cell.head.output.get() = Some(result);
    LoopInner::unlink(header);
    let join_waker = (*header.join_waker.get()).take();
    panic::guard(|| drop(parked));
    if let Some(w) = join_waker {
        panic::guard(|| w.wake());
    }
}

// ---- join handle ----------------------------------------------------------------

/// Why a task gave no output: it was aborted, or it panicked.
pub struct JoinError {
    panic: Option<Box<dyn Any + Send + 'static>>,
}

impl JoinError {
    pub(crate) fn cancelled() -> JoinError {
        JoinError { panic: None }
    }

    pub(crate) fn panicked(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError { panic: Some(payload) }
    }

    /// True if the task was aborted ([`JoinHandle::abort`]).
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let h = uvasync::spawn(uvasync::sleep_ms(10_000));
    ///     h.abort();
    ///     assert!(h.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.panic.is_none()
    }

    /// True if the task panicked.
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let h = uvasync::spawn(async { panic!("boom") });
    ///     assert!(h.await.unwrap_err().is_panic());
    /// });
    /// ```
    pub fn is_panic(&self) -> bool {
        self.panic.is_some()
    }

    /// The panic's payload, to resume it with `std::panic::resume_unwind`.
    /// Panics if the task was aborted instead.
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let err = uvasync::spawn(async { panic!("boom") }).await.unwrap_err();
    ///     let payload = err.into_panic();
    ///     assert_eq!(*payload.downcast::<&str>().unwrap(), "boom");
    /// });
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.panic.expect("the task was cancelled, it did not panic")
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_panic() { "JoinError::Panic" } else { "JoinError::Cancelled" })
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_panic() { "task panicked" } else { "task was cancelled" })
    }
}

impl std::error::Error for JoinError {}

/// An owned permission to await a spawned task's output, or the result of
/// a [`spawn_blocking`](crate::spawn_blocking) closure. Dropping it
/// detaches the task or job (it runs on); [`abort`](JoinHandle::abort)
/// cancels it.
///
/// ```
/// let rt = uvasync::Runtime::new().unwrap();
/// let n = rt.block_on(async { uvasync::spawn(async { 6 * 7 }).await.unwrap() });
/// assert_eq!(n, 42);
/// ```
pub struct JoinHandle<T> {
    kind: Kind<T>,
}

enum Kind<T> {
    Task { head: *const Head<T>, _loop: Rc<LoopInner> },
    Blocking(Blocking<T>),
}

impl<T> JoinHandle<T> {
    pub(crate) fn blocking(b: Blocking<T>) -> JoinHandle<T> {
        JoinHandle { kind: Kind::Blocking(b) }
    }

    /// Cancels the task: its future is dropped at its next step (with
    /// whatever it waited for withdrawn) and awaiting the handle gives a
    /// [`JoinError`] for which `is_cancelled()` is true. Does nothing once
    /// the task has finished. For a `spawn_blocking` job: drops it if it
    /// has not started (awaiting gives the same error); one running runs
    /// to its end and awaiting gives its result, as tokio's.
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let h = uvasync::spawn(async { uvasync::sleep_ms(60_000).await; 1 });
    ///     uvasync::yield_now().await;
    ///     h.abort();
    ///     assert!(h.await.is_err());
    /// });
    /// ```
    pub fn abort(&self) {
        match &self.kind {
            // SAFETY: our reference keeps the task alive; owner thread (!Send).
            Kind::Task { head, .. } => unsafe { sys::uva_task_cancel((**head).header.task) },
            Kind::Blocking(b) => {
                b.abort();
                0
            }
        };
    }

    /// True once the task has finished (with an output, a panic, or aborted),
    /// or the blocking job has ended.
    ///
    /// ```
    /// let rt = uvasync::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let h = uvasync::spawn(async {});
    ///     uvasync::yield_now().await;
    ///     assert!(h.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        match &self.kind {
            // SAFETY: the head lives while we hold a reference.
            Kind::Task { head, .. } => unsafe { (**head).header.finished.get() },
            Kind::Blocking(b) => b.is_finished(),
        }
    }

    /// The output of a finished task (once).
    pub(crate) fn take_output(&self) -> Result<T, JoinError> {
        let Kind::Task { head, .. } = &self.kind else { unreachable!("take_output of a blocking job") };
        // SAFETY: the head lives while we hold a reference; loop thread.
        unsafe { (*(**head).output.get()).take() }.expect("task output already taken")
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // JoinHandle is Unpin: nothing in it is pinned.
        let head = match &mut self.get_mut().kind {
            Kind::Task { head, .. } => *head,
            Kind::Blocking(b) => return b.poll(cx),
        };
        // SAFETY: the head lives while we hold a reference; loop thread only.
        let head = unsafe { &*head };
        if let Some(out) = unsafe { (*head.output.get()).take() } {
            return Poll::Ready(out);
        }
        assert!(!head.header.finished.get(), "JoinHandle polled after it completed");
        let slot = unsafe { &mut *head.header.join_waker.get() };
        if slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        // The old waker's Drop is user code: it runs once the slot holds
        // the new one and no reference into the slot is left.
        let old = slot.replace(cx.waker().clone());
        drop(old);
        Poll::Pending
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // Detach: the task runs on; the core frees it once it finished.
        // (A blocking job detaches in its own Drop.)
        if let Kind::Task { head, .. } = &self.kind {
            // SAFETY: our reference, dropped exactly once.
            unsafe { sys::uva_task_release((**head).header.task) };
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("finished", &self.is_finished()).finish()
    }
}

/// Cancels every unfinished task of a runtime that is shutting down.
pub(crate) fn cancel_header(h: &Header) {
    // SAFETY: an unfinished task is alive.
    unsafe { sys::uva_task_cancel(h.task) };
}
