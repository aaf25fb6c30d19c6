//! Send/Sync of every public type, locked (tokio's async_send_sync style).
//! The runtime is single-threaded: handles are bound to their thread; wakers
//! and errors cross threads.
use static_assertions::{assert_impl_all, assert_not_impl_any};

use uvasync::*;
// The glob brings uvasync's #[test] attribute too (as tokio's would): name
// the standard one explicitly.
use core::prelude::v1::test;

assert_not_impl_any!(JoinSet<()>: Send, Sync);
assert_not_impl_any!(Notify: Send, Sync);
assert_not_impl_any!(RwLock<()>: Send, Sync);
assert_not_impl_any!(sync::oneshot::Sender<()>: Send, Sync);
assert_not_impl_any!(sync::watch::Receiver<()>: Send, Sync);
assert_not_impl_any!(sync::broadcast::Receiver<()>: Send, Sync);
assert_not_impl_any!(split::OwnedReadHalf<TcpStream>: Send, Sync);
assert_not_impl_any!(BufReader<TcpStream>: Send, Sync);
assert_impl_all!(Handle: Send, Sync, Clone);
assert_impl_all!(RemoteJoinHandle<u8>: Send, Sync);
assert_impl_all!(sync::mpsc::Sender<u8>: Send, Sync, Clone);
assert_not_impl_any!(sync::mpsc::Receiver<u8>: Send, Sync);
assert_impl_all!(TrySendError<u8>: Send, Sync, std::error::Error);
assert_impl_all!(sync::broadcast::error::RecvError: Send, Sync, std::error::Error);

assert_not_impl_any!(Runtime: Send, Sync);
assert_not_impl_any!(JoinHandle<()>: Send, Sync);
assert_impl_all!(JoinError: Send, std::error::Error);
assert_not_impl_any!(JoinError: Sync); // holds a panic payload (Box<dyn Any + Send>)
assert_not_impl_any!(Sleep: Send, Sync);
assert_not_impl_any!(Timeout<std::future::Ready<()>>: Send, Sync);
assert_not_impl_any!(Interval: Send, Sync);
assert_impl_all!(YieldNow: Send, Sync);
assert_impl_all!(Elapsed: Send, Sync, std::error::Error);
assert_not_impl_any!(TcpStream: Send, Sync);
assert_not_impl_any!(TcpListener: Send, Sync);
assert_not_impl_any!(UnixStream: Send, Sync);
assert_not_impl_any!(UnixListener: Send, Sync);
assert_not_impl_any!(UdpSocket: Send, Sync);
assert_not_impl_any!(Event: Send, Sync);
assert_not_impl_any!(Mutex<u8>: Send, Sync);
assert_not_impl_any!(MutexGuard<'static, u8>: Send, Sync);
assert_not_impl_any!(Semaphore: Send, Sync);
assert_not_impl_any!(SemaphorePermit<'static>: Send, Sync);
assert_not_impl_any!(Sender<u8>: Send, Sync);
assert_not_impl_any!(Receiver<u8>: Send, Sync);
assert_impl_all!(SendError<u8>: Send, Sync);
// A Command is only a description (as std's): it may be built anywhere.
assert_impl_all!(process::Command: Send, Sync);
assert_impl_all!(process::Stdio: Send, Sync);
assert_not_impl_any!(process::Child: Send, Sync);
assert_not_impl_any!(process::ChildStdin: Send, Sync);
assert_not_impl_any!(process::ChildStdout: Send, Sync);
assert_not_impl_any!(process::ChildStderr: Send, Sync);
assert_impl_all!(signal::SignalKind: Send, Sync, Copy);
assert_not_impl_any!(signal::Signal: Send, Sync);

#[test]
fn wakers_given_to_futures_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync>(_: &T) {}
    uvasync::run(std::future::poll_fn(|cx| {
        is_send_sync(cx.waker());
        let w = cx.waker().clone();
        std::thread::spawn(move || drop(w)).join().unwrap();
        std::task::Poll::Ready(())
    }));
}

// Blocking work and files.
assert_impl_all!(Builder: Send, Sync);
assert_not_impl_any!(fs::File: Send, Sync);
assert_not_impl_any!(fs::ReadDir: Send, Sync);
assert_impl_all!(fs::DirEntry: Send, Sync);
assert_impl_all!(fs::Metadata: Send, Sync);
assert_impl_all!(fs::FileType: Send, Sync);
assert_impl_all!(fs::OpenOptions: Send, Sync);

// TLS: a configured context serves loops on any thread; a stream belongs to
// its loop's thread, as a TcpStream does.
assert_impl_all!(uvasync::TlsConnector: Send, Sync, Clone);
assert_impl_all!(uvasync::TlsAcceptor: Send, Sync, Clone);
assert_impl_all!(uvasync::TlsError: Send, Sync, std::error::Error);
assert_not_impl_any!(uvasync::TlsStream: Send, Sync);
