//! TCP and Unix-domain stream sockets and listeners.
use std::ffi::{c_char, CString};
use std::fmt;
use std::future::poll_fn;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::ptr;
use std::rc::Rc;

use uvasync_sys as sys;

use crate::error::check;
use crate::runtime::{current_loop, LoopInner};
use crate::stream::{socket_addr, RawStream};
use crate::task::CoreWait;

/// Addresses that name a TCP endpoint: `("host", port)`, `"host:port"`,
/// `"[::1]:port"` or a `SocketAddr`. Host names are resolved by the core,
/// asynchronously.
///
/// ```
/// use uvasync::ToHostPort;
/// assert_eq!(("localhost", 80).to_host_port().unwrap(), ("localhost".to_string(), 80));
/// assert_eq!("[::1]:8080".to_host_port().unwrap(), ("::1".to_string(), 8080));
/// ```
pub trait ToHostPort {
    /// The host (name or numeric address) and the port.
    fn to_host_port(&self) -> io::Result<(String, u16)>;
}

impl ToHostPort for (&str, u16) {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        Ok((self.0.to_string(), self.1))
    }
}

impl ToHostPort for (String, u16) {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        Ok((self.0.clone(), self.1))
    }
}

impl ToHostPort for SocketAddr {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        Ok((self.ip().to_string(), self.port()))
    }
}

impl ToHostPort for &str {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        let bad = || io::Error::new(io::ErrorKind::InvalidInput, format!("expected host:port, got {self:?}"));
        let (host, port) = self.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        Ok((host.to_string(), port))
    }
}

impl ToHostPort for String {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        self.as_str().to_host_port()
    }
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a name"))
}

fn path_cstring(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a path"))
}

/// A listening socket (TCP or Unix), closed on drop.
struct RawServer {
    lp: Rc<LoopInner>,
    raw: *mut sys::uva_server_t,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        // SAFETY: our server; waiting acceptors get UVA_ECLOSED.
        unsafe { sys::uva_server_close(self.raw, None, ptr::null_mut()) };
    }
}

impl RawServer {
    async fn accept(&self) -> io::Result<RawStream> {
        let raw = self.raw;
        let mut w = CoreWait::new();
        let mut out = ptr::null_mut();
        let rc =
            poll_fn(|cx| w.poll(raw as *const _, cx, |t| unsafe { sys::uva_server_accept(&mut out, raw, t) })).await;
        check(rc)?;
        Ok(RawStream::new(self.lp.clone(), out))
    }
}

/// The methods TCP and Unix streams share (docs use TCP; Unix is the same).
// The methods that only forward to RawStream return its future itself: an
// `async fn` around it would add a state machine to every call (measurable
// per echo round trip).
macro_rules! stream_methods {
    ($ty:ident) => {
        impl $ty {
            /// Reads what is buffered, up to `buf.len()` bytes, waiting until
            /// at least one byte is there; `Ok(0)` at end of stream.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.write_all(b"hi").await.unwrap();
            /// let mut buf = [0u8; 16];
            /// let n = b.read(&mut buf).await.unwrap();
            /// assert_eq!(&buf[..n], b"hi");
            /// # });
            /// ```
            pub fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
                self.inner.read(buf)
            }

            /// Fills `buf` exactly. If the stream ends first the error's kind
            /// is `UnexpectedEof` and the bytes that did arrive stay buffered.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.write_all(b"abcd").await.unwrap();
            /// let mut buf = [0u8; 4];
            /// b.read_exact(&mut buf).await.unwrap();
            /// assert_eq!(&buf, b"abcd");
            /// # });
            /// ```
            pub fn read_exact<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<()>> + 'a {
                self.inner.read_exact(buf)
            }

            /// Reads one line, `\n` included, and appends it to `buf` (as
            /// tokio's `read_line`); returns its length in bytes, 0 at the
            /// end of the stream (a last line without `\n` comes whole
            /// first). A line longer than the line limit (64 KiB unless set)
            /// fails with `InvalidData`, as does one that is not UTF-8 (`buf`
            /// is left as it was).
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.write_all(b"one\ntwo").await.unwrap();
            /// a.shutdown().await.unwrap();
            /// let mut line = String::new();
            /// assert_eq!(b.read_line(&mut line).await.unwrap(), 4);
            /// assert_eq!(b.read_line(&mut line).await.unwrap(), 3);
            /// assert_eq!(line, "one\ntwo");
            /// assert_eq!(b.read_line(&mut line).await.unwrap(), 0);
            /// # });
            /// ```
            pub fn read_line<'a>(&'a mut self, buf: &'a mut String) -> impl Future<Output = io::Result<usize>> + 'a {
                crate::split::read_line_into(&self.inner, buf)
            }

            /// Reads until the end of the stream, appending to `buf`; returns
            /// the number of bytes read.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.write_all(b"all of it").await.unwrap();
            /// drop(a);
            /// let mut buf = Vec::new();
            /// b.read_to_end(&mut buf).await.unwrap();
            /// assert_eq!(buf, b"all of it");
            /// # });
            /// ```
            pub fn read_to_end<'a>(&'a mut self, buf: &'a mut Vec<u8>) -> impl Future<Output = io::Result<usize>> + 'a {
                self.inner.read_to_end(buf)
            }

            /// Zero-copy read: waits until bytes are buffered, then calls `f`
            /// with all of them (an empty slice at the end of the stream); `f`
            /// returns how many it used (those are consumed) and a result.
            /// `f` may pass the bytes straight to
            /// [`write_nowait`](Self::write_nowait), so an echo copies
            /// nothing in user space.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.write_all(b"ping").await.unwrap();
            /// // Echo what arrived, without copying it.
            /// let queued = b.read_with(|data| (data.len(), b.write_nowait(data))).await.unwrap().unwrap();
            /// if queued > 0 { b.flush().await.unwrap(); }
            /// let mut buf = [0u8; 4];
            /// a.read_exact(&mut buf).await.unwrap();
            /// assert_eq!(&buf, b"ping");
            /// # });
            /// ```
            pub fn read_with<'a, R: 'a>(
                &'a self,
                f: impl FnOnce(&[u8]) -> (usize, R) + 'a,
            ) -> impl Future<Output = io::Result<R>> + 'a {
                self.inner.read_with(f)
            }

            /// Writes `buf` without waiting: what the kernel takes now is
            /// sent, the rest is copied and queued. Returns the number of
            /// bytes queued after the call (0: all sent); await
            /// [`flush`](Self::flush) to wait for them.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, _b) = uvasync::TcpStream::pair().await.unwrap();
            /// if a.write_nowait(b"hello").unwrap() > 0 {
            ///     a.flush().await.unwrap();
            /// }
            /// # });
            /// ```
            pub fn write_nowait(&self, buf: &[u8]) -> io::Result<usize> {
                self.inner.write_now(buf)
            }

            /// As [`write_nowait`](Self::write_nowait) for the
            /// concatenation of `bufs`, in one vectored system call (many
            /// small pieces cost one call, not one each). All of them are
            /// taken unless together they pass 4 GiB - 1; returns the
            /// bytes taken and the bytes queued after the call.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// use std::io::IoSlice;
            /// let (taken, queued) = a
            ///     .write_vectored_nowait(&[IoSlice::new(b"head "), IoSlice::new(b"body")])
            ///     .unwrap();
            /// assert_eq!(taken, 9);
            /// if queued > 0 {
            ///     a.flush().await.unwrap();
            /// }
            /// let mut buf = [0u8; 9];
            /// b.read_exact(&mut buf).await.unwrap();
            /// assert_eq!(&buf, b"head body");
            /// # });
            /// ```
            pub fn write_vectored_nowait(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<(usize, usize)> {
                self.inner.write_vectored_now(bufs)
            }

            /// Writes all of `buf`: what the kernel takes at once is sent,
            /// the rest is queued and this waits until it was sent.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, _b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.write_all(b"data").await.unwrap();
            /// # });
            /// ```
            pub fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
                self.inner.write_all(buf)
            }

            /// Sends up to `len` bytes of `file` from its position to the
            /// stream, without copying them through user space where the
            /// system can (sendfile(2), on the loop's pool), behind the
            /// bytes already queued; returns the count sent (fewer than
            /// `len` only at the end of the file) and advances the file's
            /// position by it. Writes made meanwhile queue behind it.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// let path = std::env::temp_dir().join(format!("uvasync-doc-sendfile-{}", std::process::id()));
            /// uvasync::fs::write(&path, b"0123456789").await.unwrap();
            /// let mut file = uvasync::fs::File::open(&path).await.unwrap();
            /// assert_eq!(a.send_file(&mut file, 4).await.unwrap(), 4);
            /// let mut buf = [0u8; 4];
            /// b.read_exact(&mut buf).await.unwrap();
            /// assert_eq!(&buf, b"0123");
            /// # uvasync::fs::remove_file(&path).await.unwrap();
            /// # });
            /// ```
            pub async fn send_file(&mut self, file: &mut crate::fs::File, len: usize) -> io::Result<usize> {
                file.send_to(&self.inner, len).await
            }

            /// Waits until every queued byte was handed to the kernel.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, _b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.write_all(b"data").await.unwrap();
            /// a.flush().await.unwrap();
            /// # });
            /// ```
            pub fn flush(&mut self) -> impl Future<Output = io::Result<()>> + '_ {
                self.inner.flush()
            }

            /// Half-closes: once the queued bytes are written the peer sees
            /// the end of the stream; reading goes on.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.shutdown().await.unwrap();
            /// assert_eq!(b.read(&mut [0u8; 4]).await.unwrap(), 0);
            /// # });
            /// ```
            pub fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> + '_ {
                self.inner.shutdown()
            }

            /// Closes at once, dropping queued writes (a TCP peer sees a
            /// reset). Dropping the stream instead closes it gracefully.
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (a, _b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.abort();
            /// # });
            /// ```
            pub fn abort(self) {
                self.inner.abort();
            }

            /// Reading pauses while this many bytes are buffered (default
            /// 64 KiB).
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (a, _b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.set_high_water(1 << 20).unwrap();
            /// # });
            /// ```
            pub fn set_high_water(&self, bytes: usize) -> io::Result<()> {
                self.inner.set(sys::UVA_STREAM_HIGH_WATER, bytes)
            }

            /// The longest line [`read_line`](Self::read_line) accepts
            /// (default 64 KiB).
            ///
            /// ```
            /// # uvasync::run(async {
            /// # let (a, _b) = uvasync::TcpStream::pair().await.unwrap();
            /// a.set_line_limit(1024).unwrap();
            /// # });
            /// ```
            pub fn set_line_limit(&self, bytes: usize) -> io::Result<()> {
                self.inner.set(sys::UVA_STREAM_LINE_LIMIT, bytes)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }

        #[cfg(feature = "futures-io")]
        crate::io_traits::impl_futures_io!($ty);

        #[allow(private_interfaces)]

        impl crate::split::sealed::Source for $ty {
            fn raw_stream(&self) -> &RawStream {
                &self.inner
            }
        }
        impl crate::split::ReadSource for $ty {}

        impl $ty {
            /// Borrowed halves, for reading and writing at once in one task
            /// (with [`join!`](crate::join) or [`select!`](crate::select)).
            ///
            /// ```
            /// # uvasync::run(async {
            /// let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// let (mut r, mut w) = a.split();
            /// b.write_all(b"in\n").await.unwrap();
            /// let mut line = String::new();
            /// let (n, wrote) = uvasync::join!(r.read_line(&mut line), w.write_all(b"out"));
            /// assert_eq!((n.unwrap(), line.as_str()), (3, "in\n"));
            /// wrote.unwrap();
            /// # });
            /// ```
            pub fn split(&mut self) -> (crate::split::ReadHalf<'_>, crate::split::WriteHalf<'_>) {
                crate::split::ReadHalf::pair(&self.inner)
            }

            /// Owned halves, for a reader task and a writer task; put them
            /// back together with [`OwnedReadHalf::reunite`](crate::split::OwnedReadHalf::reunite).
            ///
            /// ```
            /// # uvasync::run(async {
            /// let (a, mut b) = uvasync::TcpStream::pair().await.unwrap();
            /// let (mut r, mut w) = a.into_split();
            /// let writer = uvasync::spawn(async move { w.write_all(b"x\n").await.unwrap(); w });
            /// let mut line = String::new();
            /// b.read_line(&mut line).await.unwrap();
            /// b.write_all(b"y").await.unwrap();
            /// let mut buf = [0u8; 1];
            /// r.read_exact(&mut buf).await.unwrap();
            /// let w = writer.await.unwrap();
            /// let _a: uvasync::TcpStream = r.reunite(w).unwrap();
            /// # });
            /// ```
            pub fn into_split(self) -> (crate::split::OwnedReadHalf<$ty>, crate::split::OwnedWriteHalf<$ty>) {
                crate::split::OwnedReadHalf::pair(self)
            }
        }
    };
}

pub(crate) use stream_methods;

/// A TCP connection. Dropping it closes it gracefully (queued bytes are sent
/// first).
///
/// ```no_run
/// # uvasync::run(async {
/// let mut s = uvasync::TcpStream::connect(("example.com", 80)).await?;
/// s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct TcpStream {
    pub(crate) inner: RawStream,
}

impl TcpStream {
    /// Connects to a host (a name, resolved asynchronously, or an address)
    /// and port; every resolved address is tried in turn.
    ///
    /// ```
    /// # uvasync::run(async {
    /// let l = uvasync::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let port = l.local_addr().unwrap().port();
    /// let s = uvasync::TcpStream::connect(("localhost", port)).await.unwrap();
    /// # });
    /// ```
    pub async fn connect(addr: impl ToHostPort) -> io::Result<TcpStream> {
        let (host, port) = addr.to_host_port()?;
        let host = cstring(&host)?;
        let lp = current_loop();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::uva_tcp_connect(&mut raw, lp.raw, host.as_ptr(), c_int_port(port)) })?;
        let inner = RawStream::new(lp, raw);
        inner.connected().await?;
        Ok(TcpStream { inner })
    }

    /// A connected pair over 127.0.0.1 (handy for tests and examples).
    ///
    /// ```
    /// # uvasync::run(async {
    /// let (a, b) = uvasync::TcpStream::pair().await.unwrap();
    /// assert_eq!(a.local_addr().unwrap(), b.peer_addr().unwrap());
    /// # });
    /// ```
    pub async fn pair() -> io::Result<(TcpStream, TcpStream)> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let a = TcpStream::connect(l.local_addr()?).await?;
        let (b, _) = l.accept().await?;
        Ok((a, b))
    }

    /// The local address.
    ///
    /// ```
    /// # uvasync::run(async {
    /// # let (a, _b) = uvasync::TcpStream::pair().await.unwrap();
    /// assert!(a.local_addr().unwrap().ip().is_loopback());
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.address(false)
    }

    /// The peer's address.
    ///
    /// ```
    /// # uvasync::run(async {
    /// # let (a, _b) = uvasync::TcpStream::pair().await.unwrap();
    /// assert!(a.peer_addr().unwrap().ip().is_loopback());
    /// # });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.address(true)
    }

    /// Disables (true) or enables Nagle's algorithm.
    ///
    /// ```
    /// # uvasync::run(async {
    /// # let (a, _b) = uvasync::TcpStream::pair().await.unwrap();
    /// a.set_nodelay(true).unwrap();
    /// # });
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set(sys::UVA_STREAM_NODELAY, nodelay as usize)
    }
}

stream_methods!(TcpStream);

fn c_int_port(port: u16) -> std::ffi::c_int {
    port as std::ffi::c_int
}

/// A TCP listening socket; closed on drop.
///
/// ```
/// # uvasync::run(async {
/// let listener = uvasync::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// # });
/// ```
pub struct TcpListener {
    inner: RawServer,
}

impl TcpListener {
    /// Listens on host:port (port 0 picks a free port; host "" or
    /// "0.0.0.0" for every IPv4 address).
    ///
    /// ```
    /// # uvasync::run(async {
    /// let l = uvasync::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// # });
    /// ```
    pub async fn bind(addr: impl ToHostPort) -> io::Result<TcpListener> {
        let (host, port) = addr.to_host_port()?;
        let host = cstring(&host)?;
        let lp = current_loop();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::uva_tcp_listen(&mut raw, lp.raw, host.as_ptr(), c_int_port(port), 0) })?;
        Ok(TcpListener { inner: RawServer { lp, raw } })
    }

    /// Waits for the next connection.
    ///
    /// ```
    /// # uvasync::run(async {
    /// let l = uvasync::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let c = uvasync::TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    /// let (s, peer) = l.accept().await.unwrap();
    /// assert_eq!(peer, c.local_addr().unwrap());
    /// # });
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let inner = self.inner.accept().await?;
        let peer = inner.address(true)?;
        Ok((TcpStream { inner }, peer))
    }

    /// The bound address (with the port chosen for 0).
    ///
    /// ```
    /// # uvasync::run(async {
    /// let l = uvasync::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// println!("listening on {}", l.local_addr().unwrap());
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut host = [0 as c_char; 64];
        let mut port = 0;
        check(unsafe { sys::uva_server_address(self.inner.raw, host.as_mut_ptr(), host.len(), &mut port) })?;
        socket_addr(&host, port)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener").field("addr", &self.local_addr().ok()).finish()
    }
}

/// A Unix-domain stream socket; the same methods as [`TcpStream`].
///
/// ```
/// # uvasync::run(async {
/// let dir = std::env::temp_dir().join(format!("uva-doc-{}", std::process::id()));
/// let _ = std::fs::remove_file(&dir);
/// let l = uvasync::UnixListener::bind(&dir).await.unwrap();
/// let mut c = uvasync::UnixStream::connect(&dir).await.unwrap();
/// let mut s = l.accept().await.unwrap();
/// c.write_all(b"x").await.unwrap();
/// assert_eq!(s.read(&mut [0u8; 1]).await.unwrap(), 1);
/// # drop(l); let _ = std::fs::remove_file(&dir);
/// # });
/// ```
pub struct UnixStream {
    pub(crate) inner: RawStream,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// ```no_run
    /// # uvasync::run(async {
    /// let s = uvasync::UnixStream::connect("/run/app.sock").await?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path_cstring(path.as_ref())?;
        let lp = current_loop();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::uva_pipe_connect(&mut raw, lp.raw, path.as_ptr()) })?;
        let inner = RawStream::new(lp, raw);
        inner.connected().await?;
        Ok(UnixStream { inner })
    }
}

stream_methods!(UnixStream);

/// A listening Unix-domain socket; closed on drop (the socket file stays).
///
/// ```no_run
/// # uvasync::run(async {
/// let l = uvasync::UnixListener::bind("/tmp/app.sock").await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct UnixListener {
    inner: RawServer,
}

impl UnixListener {
    /// Listens on `path`.
    ///
    /// ```no_run
    /// # uvasync::run(async {
    /// let l = uvasync::UnixListener::bind("/tmp/app.sock").await?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path_cstring(path.as_ref())?;
        let lp = current_loop();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::uva_pipe_listen(&mut raw, lp.raw, path.as_ptr(), 0) })?;
        Ok(UnixListener { inner: RawServer { lp, raw } })
    }

    /// Waits for the next connection.
    ///
    /// ```no_run
    /// # uvasync::run(async {
    /// # let l = uvasync::UnixListener::bind("/tmp/app.sock").await?;
    /// let conn = l.accept().await?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn accept(&self) -> io::Result<UnixStream> {
        Ok(UnixStream { inner: self.inner.accept().await? })
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener").finish_non_exhaustive()
    }
}
