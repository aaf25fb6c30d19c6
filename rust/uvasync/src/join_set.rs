//! JoinSet: a set of tasks whose results come back in the order they
//! finish. Each task's handle is polled with a waker of its own that puts
//! the task's id on a ready list, so `join_next` looks only at tasks that
//! finished (no scan of the whole set).
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::task::{JoinError, JoinHandle};

/// Ids of tasks whose handles were woken, and the waker of `join_next`.
#[derive(Default)]
struct Ready {
    ids: VecDeque<u64>,
    waker: Option<Waker>,
}

struct TaskWaker {
    id: u64,
    ready: Arc<Mutex<Ready>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waker = {
            let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            r.ids.push_back(self.id);
            r.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A set of tasks spawned on the current runtime, as tokio's `JoinSet`:
/// [`join_next`](JoinSet::join_next) gives the result of the next one to
/// finish. Dropping the set aborts the tasks still in it (use
/// [`detach_all`](JoinSet::detach_all) to let them run on).
///
/// ```
/// uvasync::run(async {
///     let mut set = uvasync::JoinSet::new();
///     for i in 0..3u64 {
///         set.spawn(async move { uvasync::sleep_ms(30 - 10 * i).await; i });
///     }
///     let mut order = vec![];
///     while let Some(r) = set.join_next().await {
///         order.push(r.unwrap());
///     }
///     assert_eq!(order, [2, 1, 0]);
/// });
/// ```
pub struct JoinSet<T> {
    tasks: HashMap<u64, (JoinHandle<T>, Waker)>,
    ready: Arc<Mutex<Ready>>,
    next_id: u64,
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet { tasks: HashMap::new(), ready: Arc::default(), next_id: 0 }
    }

    /// Spawns `future` on the current runtime (panics outside one) into
    /// the set.
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(crate::spawn(future));
    }

    /// Adds a task spawned elsewhere (its handle) to the set.
    pub fn insert(&mut self, handle: JoinHandle<T>) {
        let id = self.next_id;
        self.next_id += 1;
        let waker = Waker::from(Arc::new(TaskWaker { id, ready: self.ready.clone() }));
        // Polled once now so that its completion wakes our waker; a task
        // that finished already is ready at once.
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).ids.push_back(id);
        self.tasks.insert(id, (handle, waker));
    }

    /// How many tasks are in the set (finished ones not joined yet count).
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True if the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The result of the next task to finish, `None` once the set is empty.
    /// A task aborted gives a cancelled [`JoinError`]; one that panicked a
    /// panic one. Cancel-safe: a result is taken only when returned.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// As [`join_next`](JoinSet::join_next) without waiting: `None` if no
    /// task has finished (or the set is empty).
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        // (Waker::noop is newer than the crate's rust-version.)
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Noop));
        match self.poll_join_next(&mut Context::from_waker(&waker)) {
            Poll::Ready(r) => r,
            Poll::Pending => None,
        }
    }

    fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.tasks.is_empty() {
            return Poll::Ready(None);
        }
        loop {
            let id = {
                let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
                match r.ids.pop_front() {
                    Some(id) => id,
                    None => {
                        r.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            };
            // An id may be listed twice, or be of a task joined already.
            let Some((handle, waker)) = self.tasks.get_mut(&id) else { continue };
            if let Poll::Ready(out) = Pin::new(handle).poll(&mut Context::from_waker(waker)) {
                self.tasks.remove(&id);
                return Poll::Ready(Some(out));
            }
        }
    }

    /// Aborts every task in the set; they stay in it until joined (each
    /// then gives a cancelled error, unless it finished first).
    pub fn abort_all(&mut self) {
        for (handle, _) in self.tasks.values() {
            handle.abort();
        }
    }

    /// Aborts every task and waits until all of them have ended; the set
    /// is empty then.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let mut set = uvasync::JoinSet::new();
    ///     set.spawn(async { uvasync::sleep_ms(60_000).await });
    ///     set.shutdown().await;
    ///     assert!(set.is_empty());
    /// });
    /// ```
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Empties the set, leaving its tasks to run on.
    pub fn detach_all(&mut self) {
        self.tasks.clear(); // a dropped JoinHandle detaches its task
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).ids.clear();
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for (handle, _) in self.tasks.values() {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.tasks.len()).finish()
    }
}
