//! Async Rust on the uvasync core.
//!
//! The crate is an executor whose wakers wake core tasks: every spawned
//! future is a core task (`uva_task_spawn`) whose step polls it, and its
//! `Waker` calls the thread-safe `uva_task_wake`. Timers, stream buffers,
//! flow control, name resolution and the synchronisation primitives are the
//! core's, shared with the C, Python and other bindings, so a scenario
//! behaves the same in every language.
//!
//! Child processes are [`process`] (`Command`, `Child`, pipes that are core
//! streams), Unix signals [`signal`] (`signal`, `ctrl_c`).
//! Blocking calls go to the loop's thread pool with [`spawn_blocking`], and
//! [`fs`] reads and writes files through the pool's jobs, as tokio's.
//!
//! TLS (the core's, on OpenSSL) is [`TlsConnector`] and [`TlsAcceptor`],
//! as tokio-native-tls: they turn a `TcpStream` into a [`TlsStream`] with
//! the same methods.
//!
//! tokio's toolbox has its counterparts: [`JoinSet`], [`sync`] (`oneshot`,
//! `watch`, `broadcast`, `mpsc` with a sender for other threads, `Notify`,
//! `RwLock`), [`join!`] and [`select!`], split halves of streams
//! ([`split`]), [`BufReader`], a [`Handle`] that spawns from other threads,
//! and the `#[uvasync::main]`/`#[uvasync::test]` attributes (feature
//! `macros`, default).
//!
//! With the `hyper` feature, `uvasync::hyper` runs hyper 1.x's HTTP/1
//! server and client on the crate's streams (its `rt::Read`/`rt::Write`,
//! an executor and a timer).
//!
//! The runtime is single-threaded (like tokio's current-thread runtime):
//! futures need not be `Send`, and the handle types are `!Send`. Wakers are
//! `Send + Sync`; waking from any thread is safe.
//!
//! ```
//! use uvasync::{Runtime, TcpListener, TcpStream};
//!
//! let rt = Runtime::new().unwrap();
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
//!     let port = listener.local_addr().unwrap().port();
//!     let server = uvasync::spawn(async move {
//!         let (mut conn, _) = listener.accept().await.unwrap();
//!         let mut line = String::new();
//!         conn.read_line(&mut line).await.unwrap();
//!         conn.write_all(line.to_uppercase().as_bytes()).await.unwrap();
//!     });
//!     let mut client = TcpStream::connect(("localhost", port)).await.unwrap();
//!     client.write_all(b"hello\n").await.unwrap();
//!     let mut reply = String::new();
//!     client.read_line(&mut reply).await.unwrap();
//!     assert_eq!(reply, "HELLO\n");
//!     server.await.unwrap();
//! });
//! ```
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

mod blocking;
mod channel;
mod error;
pub mod fs;
mod handle;
#[cfg(feature = "hyper")]
pub mod hyper;
#[cfg(feature = "futures-io")]
mod io_traits;
mod join_set;
mod macros;
mod net;
mod panic;
pub mod process;
mod runtime;
pub mod signal;
pub mod split;
mod stream;
pub mod sync;
mod task;
mod time;
mod tls;
mod udp;
mod work;

pub use blocking::spawn_blocking;
pub use channel::{channel, unbounded_channel, Receiver, SendError, Sender, TryRecvError, TrySendError};
pub use handle::{Handle, RemoteJoinHandle};
pub use join_set::JoinSet;
pub use net::{TcpListener, TcpStream, ToHostPort, UnixListener, UnixStream};
pub use runtime::{run, spawn, Builder, Runtime};
pub use sync::{
    Event, Mutex, MutexGuard, Notified, Notify, RwLock, RwLockReadGuard, RwLockWriteGuard, Semaphore, SemaphorePermit,
};
pub use task::{JoinError, JoinHandle};
pub use time::{interval, sleep, sleep_ms, timeout, yield_now, Elapsed, Interval, Sleep, Timeout, YieldNow};
pub use tls::{
    Identity, TlsAcceptor, TlsAcceptorBuilder, TlsConnector, TlsConnectorBuilder, TlsError, TlsErrorKind, TlsStream,
    TlsVersion,
};

pub use split::BufReader;
pub use udp::UdpSocket;

/// `#[uvasync::main]` and `#[uvasync::test]` (feature `macros`, default):
/// the `async fn` runs on a new runtime (`uvasync::run`); `main` may
/// return a `Result`. `#[uvasync::test]` is a `#[test]`.
///
/// ```
/// #[uvasync::main]
/// async fn main() -> std::io::Result<()> {
///     let (mut a, mut b) = uvasync::TcpStream::pair().await?;
///     a.write_all(b"hi\n").await?;
///     let mut line = String::new();
///     b.read_line(&mut line).await?;
///     assert_eq!(line, "hi\n");
///     Ok(())
/// }
/// ```
#[cfg(feature = "macros")]
pub use uvasync_macros::{main, test};

/// The raw FFI crate, for what the safe API does not cover.
pub use uvasync_sys as sys;
