//! UDP sockets on the core's datagram buffering.
use std::ffi::{c_char, c_void, CString};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::ptr;
use std::rc::Rc;

use uvasync_sys as sys;

use crate::error::check;
use crate::net::ToHostPort;
use crate::runtime::{check_same_runtime, current_loop, LoopInner};
use crate::stream::socket_addr;
use crate::task::CoreWait;

/// A UDP socket; closed on drop.
///
/// ```
/// uvasync::run(async {
///     let a = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     let b = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).await.unwrap();
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).await.unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// });
/// ```
pub struct UdpSocket {
    _lp: Rc<LoopInner>,
    raw: *mut sys::uva_udp_t,
}

fn host_port(addr: impl ToHostPort) -> io::Result<(CString, i32)> {
    let (host, port) = addr.to_host_port()?;
    let host = CString::new(host).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in host"))?;
    Ok((host, port as i32))
}

impl UdpSocket {
    /// A socket bound to a numeric host and port (port 0 picks one).
    ///
    /// ```
    /// uvasync::run(async { let s = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap(); });
    /// ```
    pub async fn bind(addr: impl ToHostPort) -> io::Result<UdpSocket> {
        let (host, port) = host_port(addr)?;
        let lp = current_loop();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::uva_udp_new(&mut raw, lp.raw) })?;
        let sock = UdpSocket { _lp: lp, raw };
        check(unsafe { sys::uva_udp_bind(raw, host.as_ptr(), port) })?;
        Ok(sock)
    }

    /// Sets the default peer of [`send`](Self::send) and the only source
    /// [`recv`](Self::recv) accepts.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let a = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     let b = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     a.connect(b.local_addr().unwrap()).await.unwrap();
    ///     a.send(b"x").await.unwrap();
    ///     assert_eq!(b.recv(&mut [0u8; 4]).await.unwrap(), 1);
    /// });
    /// ```
    pub async fn connect(&self, addr: impl ToHostPort) -> io::Result<()> {
        let (host, port) = host_port(addr)?;
        check(unsafe { sys::uva_udp_connect(self.raw, host.as_ptr(), port) }).map(drop)
    }

    /// Sends one datagram to a numeric address.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let a = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     a.send_to(b"x", "127.0.0.1:9").await.unwrap();
    /// });
    /// ```
    pub async fn send_to(&self, buf: &[u8], addr: impl ToHostPort) -> io::Result<usize> {
        let (host, port) = host_port(addr)?;
        check(unsafe { sys::uva_udp_send(self.raw, buf.as_ptr() as *const c_void, buf.len(), host.as_ptr(), port) })?;
        Ok(buf.len())
    }

    /// Sends one datagram to the connected peer.
    ///
    /// ```no_run
    /// # uvasync::run(async {
    /// # let a = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// a.send(b"x").await.unwrap();
    /// # });
    /// ```
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        check(unsafe { sys::uva_udp_send(self.raw, buf.as_ptr() as *const c_void, buf.len(), ptr::null(), 0) })?;
        Ok(buf.len())
    }

    /// Receives one datagram; a datagram longer than `buf` is truncated.
    /// Returns its length (as copied) and its source.
    ///
    /// ```no_run
    /// # uvasync::run(async {
    /// # let s = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// let mut buf = [0u8; 1500];
    /// let (n, from) = s.recv_from(&mut buf).await.unwrap();
    /// # });
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let raw = self.raw;
        let mut w = CoreWait::new();
        let mut host = [0 as c_char; 64];
        let mut port = 0;
        let mut big: Vec<u8> = Vec::new();
        loop {
            let mut len = 0usize;
            let (ptr_, cap) =
                if big.is_empty() { (buf.as_mut_ptr(), buf.len()) } else { (big.as_mut_ptr(), big.len()) };
            let rc = poll_fn(|cx| {
                w.poll(raw as *const c_void, cx, |t| unsafe {
                    sys::uva_udp_recv(
                        &mut len,
                        raw,
                        t,
                        ptr_ as *mut c_void,
                        cap,
                        host.as_mut_ptr(),
                        host.len(),
                        &mut port,
                    )
                })
            })
            .await;
            if rc == sys::UVA_ENOBUFS && big.is_empty() {
                big = vec![0; len]; // nothing consumed: take it whole, truncate
                continue;
            }
            if rc == sys::UVA_EINVAL {
                check_same_runtime(&self._lp, "UdpSocket")?;
            }
            check(rc)?;
            if !big.is_empty() {
                let n = buf.len().min(len);
                buf[..n].copy_from_slice(&big[..n]);
                len = n;
            }
            return Ok((len, socket_addr(&host, port)?));
        }
    }

    /// Receives one datagram (see [`recv_from`](Self::recv_from)).
    ///
    /// ```no_run
    /// # uvasync::run(async {
    /// # let s = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// let n = s.recv(&mut [0u8; 1500]).await.unwrap();
    /// # });
    /// ```
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_from(buf).await.map(|(n, _)| n)
    }

    /// The bound address.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let s = uvasync::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     assert_ne!(s.local_addr().unwrap().port(), 0);
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut host = [0 as c_char; 64];
        let mut port = 0;
        check(unsafe { sys::uva_udp_local_address(self.raw, host.as_mut_ptr(), host.len(), &mut port) })?;
        socket_addr(&host, port)
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        unsafe { sys::uva_udp_close(self.raw, None, ptr::null_mut()) };
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket").field("local", &self.local_addr().ok()).finish()
    }
}
