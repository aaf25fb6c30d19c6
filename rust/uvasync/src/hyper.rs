//! hyper 1.x on uvasync (feature `hyper`): what hyper asks of a runtime that
//! is not tokio. [`Io`] gives the crate's streams hyper's `rt::Read` and
//! `rt::Write`, [`Executor`] spawns hyper's background tasks on the current
//! runtime and [`Timer`] makes hyper's timeouts (`header_read_timeout`)
//! from the crate's [`sleep`](crate::sleep).
//!
//! The runtime is single-threaded and its futures are not `Send`: use
//! hyper's HTTP/1 connection APIs (`hyper::server::conn::http1`,
//! `hyper::client::conn::http1`), whose futures are polled where they were
//! made. hyper still asks for `Send` in two places, upgrades
//! (`with_upgrades`) and timers: [`Io`] and the timer's sleeps are `Send`
//! by checking the thread instead. They belong to the thread that made
//! them: used on another one they panic, dropped on another one they are
//! leaked (never touched there).
//!
//! ```
//! use std::convert::Infallible;
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::{body::Bytes, service::service_fn, Request, Response};
//! use uvasync::hyper::Io;
//!
//! uvasync::run(async {
//!     let listener = uvasync::TcpListener::bind("127.0.0.1:0").await.unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     uvasync::spawn(async move {
//!         let (stream, _) = listener.accept().await.unwrap();
//!         let hello = service_fn(|_req| async {
//!             Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//!         });
//!         hyper::server::conn::http1::Builder::new()
//!             .serve_connection(Io::new(stream), hello)
//!             .await
//!             .unwrap();
//!     });
//!     let stream = uvasync::TcpStream::connect(addr).await.unwrap();
//!     let (mut sender, conn) = hyper::client::conn::http1::handshake(Io::new(stream)).await.unwrap();
//!     uvasync::spawn(conn);
//!     let req = Request::get("/").header("host", "localhost").body(Empty::<Bytes>::new()).unwrap();
//!     let res = sender.send_request(req).await.unwrap();
//!     let body = res.into_body().collect().await.unwrap().to_bytes();
//!     assert_eq!(body, "hello");
//! });
//! ```
use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use ::hyper::rt;

use crate::net::{TcpStream, UnixStream};
use crate::task::CoreWait;

thread_local! {
    /// This thread's id, without std's `thread::current()` (an Arc clone).
    static THREAD: ThreadId = thread::current().id();
}

fn this_thread() -> ThreadId {
    THREAD.with(|t| *t)
}

/// A value of this thread that may be moved to another (hyper asks for
/// `Send`) but is used only here: elsewhere `get` panics and drop leaks it.
struct Local<T> {
    value: ManuallyDrop<T>,
    owner: ThreadId,
}

// SAFETY: the value is reached only on its owner thread (`get` checks, drop
// leaks it elsewhere), so moving the wrapper moves no access to it.
unsafe impl<T> Send for Local<T> {}
// SAFETY: `&Local` gives no access to the value.
unsafe impl<T> Sync for Local<T> {}

impl<T> Local<T> {
    fn new(value: T) -> Self {
        Local { value: ManuallyDrop::new(value), owner: this_thread() }
    }

    #[inline]
    fn get(&mut self) -> &mut T {
        assert!(
            self.owner == this_thread(),
            "uvasync::hyper: a stream or timer used on a thread other than its runtime's"
        );
        &mut self.value
    }

    fn into_inner(mut self) -> T {
        self.get();
        // SAFETY: taken once; `self` is forgotten so its drop does not run.
        let value = unsafe { ManuallyDrop::take(&mut self.value) };
        std::mem::forget(self);
        value
    }
}

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        if self.owner == this_thread() {
            // SAFETY: dropped once, on the owner thread.
            unsafe { ManuallyDrop::drop(&mut self.value) };
        }
        // Elsewhere: leaked, as the value may not be touched there.
    }
}

/// A stream of this crate ([`TcpStream`], [`UnixStream`]) as hyper's
/// `rt::Read` and `rt::Write`: reads copy from the core's buffer straight
/// into hyper's, writes (vectored: one system call for head and body) are
/// the core's.
///
/// `Io` is `Send`, as `with_upgrades` and hyper's `Upgraded` ask, but it
/// belongs to the thread that made it (see the [module](self) docs);
/// `Upgraded::downcast::<Io<TcpStream>>()` gives the stream back after an
/// upgrade.
pub struct Io<T> {
    inner: Local<Inner<T>>,
}

struct Inner<T> {
    // The waits go before the stream they wait on (fields drop in order).
    read_wait: CoreWait,
    write_wait: CoreWait,
    /// Bytes the core still queued after our last write (`UNKNOWN` once
    /// the stream was lent out): a flush with none queued returns at once
    /// and leaves the core alone. (The core keeps one registration per
    /// task and stream: a drain that completes drops the read's, which
    /// costs the task another step; hyper flushes on every pass.)
    queued: usize,
    stream: T,
}

const UNKNOWN: usize = usize::MAX;

impl<T> Io<T> {
    /// Wraps `stream` for hyper.
    pub fn new(stream: T) -> Self {
        let inner = Inner { read_wait: CoreWait::new(), write_wait: CoreWait::new(), queued: UNKNOWN, stream };
        Io { inner: Local::new(inner) }
    }

    /// The stream (on the thread that made the `Io`; panics elsewhere).
    pub fn get_mut(&mut self) -> &mut T {
        let inner = self.inner.get();
        inner.queued = UNKNOWN; // the caller may write
        &mut inner.stream
    }

    /// Unwraps the stream (on the thread that made the `Io`; panics
    /// elsewhere).
    pub fn into_inner(self) -> T {
        let Inner { read_wait, write_wait, stream, .. } = self.inner.into_inner();
        drop((read_wait, write_wait));
        stream
    }
}

impl<T> std::fmt::Debug for Io<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").finish_non_exhaustive()
    }
}

/// rt::Read and rt::Write for `Io<$ty>`, through the stream's core stream.
macro_rules! impl_hyper_io {
    ($ty:ty) => {
        impl Inner<$ty> {
            /// Waits until the core queues nothing (at once if our writes
            /// left nothing queued).
            fn poll_drain(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
                if self.queued == 0 {
                    return Poll::Ready(Ok(()));
                }
                std::task::ready!(self.stream.inner.poll_flush_on(&mut self.write_wait, cx))?;
                self.queued = 0;
                Poll::Ready(Ok(()))
            }
        }

        impl rt::Read for Io<$ty> {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                mut buf: rt::ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                let this = self.get_mut().inner.get();
                let stream = &this.stream.inner;
                // SAFETY: the core only writes the bytes it reports; they
                // are marked filled after that and no sooner.
                unsafe {
                    let room = buf.as_mut();
                    let (ptr, len) = (room.as_mut_ptr() as *mut u8, room.len());
                    let n = std::task::ready!(stream.poll_read_raw_on(&mut this.read_wait, cx, ptr, len))?;
                    buf.advance(n);
                }
                Poll::Ready(Ok(()))
            }
        }

        impl rt::Write for Io<$ty> {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let this = self.get_mut().inner.get();
                // Over the low-water mark (0): wait for room first.
                std::task::ready!(this.poll_drain(cx))?;
                this.queued = this.stream.inner.write_now(buf)?;
                Poll::Ready(Ok(buf.len()))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let this = self.get_mut().inner.get();
                std::task::ready!(this.poll_drain(cx))?;
                let (taken, queued) = this.stream.inner.write_vectored_now(bufs)?;
                this.queued = queued;
                Poll::Ready(Ok(taken))
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().inner.get().poll_drain(cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let this = self.get_mut().inner.get();
                this.stream.inner.poll_shutdown_on(&mut this.write_wait, cx)
            }
        }
    };
}

impl_hyper_io!(TcpStream);
impl_hyper_io!(UnixStream);

/// hyper's `rt::Executor`: spawns on the current runtime (with
/// [`spawn`](crate::spawn)), so the futures need not be `Send`. Made and
/// used inside a runtime.
///
/// ```
/// use hyper::rt::Executor as _;
/// uvasync::run(async {
///     let (tx, rx) = uvasync::sync::oneshot::channel();
///     uvasync::hyper::Executor.execute(async move { tx.send(7).unwrap() });
///     assert_eq!(rx.await.unwrap(), 7);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Executor;

impl<F> rt::Executor<F> for Executor
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        // Detached: hyper's tasks end by themselves.
        drop(crate::spawn(future));
    }
}

/// hyper's `rt::Timer`, on the current runtime's timers: give it to a
/// builder's `.timer(...)` so that timeouts such as `header_read_timeout`
/// fire. Its sleeps are made and polled inside a runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer;

/// A sleep of [`Timer`]: the crate's [`Sleep`](crate::Sleep), made at its
/// first poll (hyper makes one per request head, which is most often read
/// without waiting), `Send` and `Sync` as hyper asks by belonging to one
/// thread (see the [module](self) docs).
pub struct Sleep {
    deadline: Instant,
    inner: Option<Local<crate::time::Sleep>>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let deadline = this.deadline;
        let inner = this
            .inner
            .get_or_insert_with(|| Local::new(crate::sleep(deadline.saturating_duration_since(Instant::now()))));
        Pin::new(inner.get()).poll(cx)
    }
}

impl rt::Sleep for Sleep {}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep").field("deadline", &self.deadline).finish_non_exhaustive()
    }
}

impl rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn rt::Sleep>> {
        Box::pin(Sleep { deadline, inner: None })
    }

    /// Moves a sleep of ours in place (its core timer, if any, is kept).
    fn reset(&self, sleep: &mut Pin<Box<dyn rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            Some(ours) => {
                let ours = ours.get_mut();
                ours.deadline = new_deadline;
                if let Some(inner) = &mut ours.inner {
                    Pin::new(inner.get()).reset(new_deadline.saturating_duration_since(Instant::now()));
                }
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}
