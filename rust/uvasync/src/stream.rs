//! What TCP and Unix streams share: the core stream and its async reads and
//! writes (buffering, read_exactly, read_line and flow control are the core's).
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::ptr;
use std::rc::Rc;
use std::task::{Context, Poll};

use uvasync_sys as sys;

use crate::error::{check, to_io};
use crate::runtime::{check_same_runtime, LoopInner};
use crate::task::CoreWait;

/// A core stream, closed gracefully (queued writes flushed) on drop.
pub(crate) struct RawStream {
    /// Keeps the loop alive while the stream exists.
    _lp: Rc<LoopInner>,
    pub(crate) raw: *mut sys::uva_stream_t,
    /// Waits of the poll_* (futures-io) methods, which outlive one call.
    pub(crate) read_wait: CoreWait,
    pub(crate) write_wait: CoreWait,
    /// What poll_fill_buf lends: a copy of the core's first buffered bytes
    /// (see there). Changed only through `&mut self`.
    lent: Vec<u8>,
    /// The part of `lent` not consumed yet, which the core still holds as
    /// its first bytes; (0, 0) after any other read (read_with has only
    /// `&self`, hence the Cell).
    lent_range: Cell<(usize, usize)>,
    /// True while read_with's closure borrows the core's bytes.
    lending: Cell<bool>,
}

/// The most poll_fill_buf copies at a time.
const LEND_MAX: usize = 64 * 1024;

impl Drop for RawStream {
    fn drop(&mut self) {
        self.read_wait.cancel();
        self.write_wait.cancel();
        // SAFETY: our stream; closing twice is a no-op in the core.
        unsafe { sys::uva_stream_close(self.raw, None, ptr::null_mut()) };
    }
}

fn obj(raw: *mut sys::uva_stream_t) -> *const c_void {
    raw as *const c_void
}

/// Parses the core's numeric host and port.
pub(crate) fn socket_addr(host: &[c_char], port: c_int) -> io::Result<SocketAddr> {
    // SAFETY: the core NUL-terminates `host`.
    let host = unsafe { CStr::from_ptr(host.as_ptr()) }.to_string_lossy();
    let ip =
        host.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("not an IP address: {host}")))?;
    Ok(SocketAddr::new(ip, port as u16))
}

impl RawStream {
    pub(crate) fn new(lp: Rc<LoopInner>, raw: *mut sys::uva_stream_t) -> RawStream {
        // A drain (flush) completes once everything was handed to the kernel.
        unsafe { sys::uva_stream_set(raw, sys::UVA_STREAM_LOW_WATER, 0) };
        RawStream {
            _lp: lp,
            raw,
            read_wait: CoreWait::new(),
            write_wait: CoreWait::new(),
            lent: Vec::new(),
            lent_range: Cell::new((0, 0)),
            lending: Cell::new(false),
        }
    }

    /// The error of a failed call that took a task. The core refuses a task
    /// of another loop with a bare UVA_EINVAL: say what happened.
    #[cold]
    #[inline(never)]
    fn error(&self, rc: c_int) -> io::Error {
        if rc == sys::UVA_EINVAL {
            if let Err(e) = check_same_runtime(&self._lp, "stream") {
                return e;
            }
        }
        to_io(rc)
    }

    /// `check`, with [`error`](Self::error)'s message.
    #[inline]
    fn check(&self, rc: c_int) -> io::Result<c_int> {
        if rc < 0 {
            Err(self.error(rc))
        } else {
            Ok(rc)
        }
    }

    /// Every read but poll_fill_buf's takes the core's bytes directly:
    /// the copy lent last no longer mirrors them.
    #[inline]
    fn forget_lent(&self) {
        self.lent_range.set((0, 0));
    }

    /// Waits until a connect completed (at once for accepted streams).
    pub(crate) async fn connected(&self) -> io::Result<()> {
        let raw = self.raw;
        let mut w = CoreWait::new();
        let rc = poll_fn(|cx| w.poll(obj(raw), cx, |t| unsafe { sys::uva_stream_wait_connected(raw, t) })).await;
        self.check(rc).map(drop)
    }

    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.forget_lent();
        let raw = self.raw;
        let mut w = CoreWait::new();
        let mut n = 0usize;
        let rc = poll_fn(|cx| {
            w.poll(obj(raw), cx, |t| unsafe {
                sys::uva_stream_read(&mut n, raw, t, buf.as_mut_ptr() as *mut c_void, buf.len())
            })
        })
        .await;
        self.check(rc).map(|_| n)
    }

    pub(crate) async fn read_exact(&self, buf: &mut [u8]) -> io::Result<()> {
        self.forget_lent();
        let raw = self.raw;
        let mut w = CoreWait::new();
        let rc = poll_fn(|cx| {
            w.poll(obj(raw), cx, |t| unsafe {
                sys::uva_stream_read_exactly(raw, t, buf.as_mut_ptr() as *mut c_void, buf.len())
            })
        })
        .await;
        self.check(rc).map(drop)
    }

    pub(crate) async fn read_line_bytes(&self) -> io::Result<Vec<u8>> {
        self.forget_lent();
        let raw = self.raw;
        let mut w = CoreWait::new();
        let mut buf = vec![0u8; 256];
        loop {
            let mut len = 0usize;
            let rc = poll_fn(|cx| {
                w.poll(obj(raw), cx, |t| unsafe {
                    sys::uva_stream_read_line(&mut len, raw, t, buf.as_mut_ptr() as *mut c_void, buf.len())
                })
            })
            .await;
            if rc == sys::UVA_ENOBUFS {
                buf.resize(len, 0); // nothing consumed: again with room
                continue;
            }
            self.check(rc)?;
            buf.truncate(len);
            return Ok(buf);
        }
    }

    pub(crate) async fn read_to_end(&self, out: &mut Vec<u8>) -> io::Result<usize> {
        self.forget_lent();
        let raw = self.raw;
        let mut w = CoreWait::new();
        let mut len = 0usize;
        let rc = poll_fn(|cx| w.poll(obj(raw), cx, |t| unsafe { sys::uva_stream_read_to_eof(&mut len, raw, t) })).await;
        self.check(rc)?;
        let start = out.len();
        out.resize(start + len, 0);
        let mut got = 0;
        while got < len {
            let mut n = 0usize;
            // Everything is buffered now: this read completes at once.
            let rc = unsafe {
                let task = crate::task::current().task;
                sys::uva_stream_read(&mut n, raw, task, out[start + got..].as_mut_ptr() as *mut c_void, len - got)
            };
            self.check(rc)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        out.truncate(start + got);
        Ok(got)
    }

    /// Zero copy: waits for buffered bytes (none at the end of the stream),
    /// lends them to `f`, then consumes as many as `f` says it used.
    pub(crate) async fn read_with<R>(&self, f: impl FnOnce(&[u8]) -> (usize, R)) -> io::Result<R> {
        // `f` may reach this stream through `&self`, and so poll a read_with
        // of its own, which would consume (and may move) the lent bytes.
        assert!(!self.lending.get(), "uvasync: read_with called from inside its own closure");
        self.forget_lent();
        let raw = self.raw;
        let mut w = CoreWait::new();
        let mut data: *const c_void = ptr::null();
        let mut len = 0usize;
        let rc =
            poll_fn(|cx| w.poll(obj(raw), cx, |t| unsafe { sys::uva_stream_peek(&mut data, &mut len, raw, t) })).await;
        self.check(rc)?;
        // SAFETY: the bytes stay valid until the next read or consume on
        // this stream (nested read_with is refused; the other `&self`
        // methods, writes included, leave the read buffer alone) or the end
        // of the step, and `f` cannot await.
        let bytes = if len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(data as *const u8, len) } };
        struct Lending<'a>(&'a Cell<bool>);
        impl Drop for Lending<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        self.lending.set(true);
        let lending = Lending(&self.lending);
        let (used, r) = f(bytes);
        drop(lending);
        if used > 0 {
            check(unsafe { sys::uva_stream_consume(raw, used.min(len)) })?;
        }
        Ok(r)
    }

    /// Queues what the kernel does not take at once; never waits.
    pub(crate) fn write_now(&self, buf: &[u8]) -> io::Result<usize> {
        let mut queued = 0usize;
        // SAFETY: buf is read during the call only (the rest is copied).
        check(unsafe { sys::uva_stream_write(&mut queued, self.raw, buf.as_ptr() as *const c_void, buf.len()) })?;
        Ok(queued)
    }

    /// As `write_now`, for the concatenation of `bufs`, in one call into
    /// the core (one vectored system call, one copy of what is queued).
    /// Takes the leading buffers whose total fits the core's limit
    /// (4 GiB - 1); returns (bytes taken, bytes queued after the call).
    pub(crate) fn write_vectored_now(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<(usize, usize)> {
        let mut total = 0usize;
        let mut pieces: Vec<sys::uva_buf_t> = Vec::with_capacity(bufs.len());
        for b in bufs {
            if total + b.len() > u32::MAX as usize && !pieces.is_empty() {
                break;
            }
            total += b.len();
            pieces.push(sys::uva_buf_t { base: b.as_ptr() as *const c_void, len: b.len() });
        }
        let mut queued = 0usize;
        // SAFETY: the buffers are read during the call only (the rest is
        // copied); `pieces` outlives it.
        check(unsafe { sys::uva_stream_writev(&mut queued, self.raw, pieces.as_ptr(), pieces.len()) })?;
        Ok((total, queued))
    }

    pub(crate) async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        if self.write_now(buf)? > 0 {
            self.flush().await?; // the kernel did not take it all: wait
        }
        Ok(())
    }

    pub(crate) async fn flush(&self) -> io::Result<()> {
        let raw = self.raw;
        let mut w = CoreWait::new();
        let rc = poll_fn(|cx| w.poll(obj(raw), cx, |t| unsafe { sys::uva_stream_drain(raw, t) })).await;
        self.check(rc).map(drop)
    }

    pub(crate) async fn shutdown(&self) -> io::Result<()> {
        let raw = self.raw;
        let mut w = CoreWait::new();
        let rc = poll_fn(|cx| w.poll(obj(raw), cx, |t| unsafe { sys::uva_stream_shutdown(raw, t) })).await;
        self.check(rc).map(drop)
    }

    pub(crate) fn address(&self, peer: bool) -> io::Result<SocketAddr> {
        let mut host = [0 as c_char; 64];
        let mut port = 0;
        let rc = unsafe {
            if peer {
                sys::uva_stream_peer_address(self.raw, host.as_mut_ptr(), host.len(), &mut port)
            } else {
                sys::uva_stream_local_address(self.raw, host.as_mut_ptr(), host.len(), &mut port)
            }
        };
        check(rc)?;
        socket_addr(&host, port)
    }

    pub(crate) fn set(&self, option: sys::uva_stream_option, value: usize) -> io::Result<()> {
        check(unsafe { sys::uva_stream_set(self.raw, option, value) }).map(drop)
    }

    pub(crate) fn abort(&self) {
        unsafe { sys::uva_stream_abort(self.raw, None, ptr::null_mut()) };
    }

    // ---- poll forms (futures-io) ----
}

#[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
impl RawStream {
    pub(crate) fn poll_read(&mut self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut wait = std::mem::replace(&mut self.read_wait, CoreWait::new());
        let r = self.poll_read_on(&mut wait, cx, buf);
        self.read_wait = wait;
        r
    }

    /// poll_read with a wait of the caller's (a split half's).
    pub(crate) fn poll_read_on(
        &self,
        wait: &mut CoreWait,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.forget_lent();
        let raw = self.raw;
        let mut n = 0usize;
        let rc = std::task::ready!(wait.poll(obj(raw), cx, |t| unsafe {
            sys::uva_stream_read(&mut n, raw, t, buf.as_mut_ptr() as *mut c_void, buf.len())
        }));
        Poll::Ready(self.check(rc).map(|_| n))
    }

    /// poll_read_on into memory that may be uninitialised (hyper's read
    /// buffers): the core writes up to `len` bytes at `ptr` and says how
    /// many; no Rust reference to the bytes is made before they are written.
    #[cfg_attr(not(feature = "hyper"), allow(dead_code))]
    pub(crate) fn poll_read_raw_on(
        &self,
        wait: &mut CoreWait,
        cx: &Context<'_>,
        ptr: *mut u8,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        self.forget_lent();
        let raw = self.raw;
        let mut n = 0usize;
        let rc = std::task::ready!(
            wait.poll(obj(raw), cx, |t| unsafe { sys::uva_stream_read(&mut n, raw, t, ptr as *mut c_void, len) })
        );
        Poll::Ready(self.check(rc).map(|_| n))
    }

    /// Peeks at the core's buffered bytes for a reader that keeps its own
    /// lent copy (a BufReader): Ready(Ok(slice)) valid until the next call
    /// on this stream.
    pub(crate) fn poll_peek_on(&self, wait: &mut CoreWait, cx: &Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.forget_lent();
        let raw = self.raw;
        let mut data: *const c_void = ptr::null();
        let mut len = 0usize;
        let rc = std::task::ready!(
            wait.poll(obj(raw), cx, |t| unsafe { sys::uva_stream_peek(&mut data, &mut len, raw, t) })
        );
        if rc < 0 {
            return Poll::Ready(Err(self.error(rc)));
        }
        if len == 0 {
            return Poll::Ready(Ok(&[]));
        }
        // SAFETY: the peek just returned them: valid until the next call
        // on this stream.
        Poll::Ready(Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len) }))
    }

    /// Drops `n` buffered bytes (which a peek showed).
    pub(crate) fn consume_raw(&self, n: usize) {
        self.forget_lent();
        let rc = unsafe { sys::uva_stream_consume(self.raw, n) };
        crate::error::expect_ok(rc, "uva_stream_consume");
    }

    /// Lends a copy of the core's first buffered bytes. The slice borrows
    /// `self`, but the caller may hold it across an await, while the loop
    /// runs and the core reads ahead into its buffer (which may move it):
    /// the core's own bytes are valid only until then. The copy changes
    /// only through `&mut self`. The bytes stay buffered in the core until
    /// `consume`, which drops them from both, so every other read (which
    /// forgets the copy) still sees them.
    pub(crate) fn poll_fill_buf(&mut self, cx: &Context<'_>) -> Poll<io::Result<&[u8]>> {
        let (start, end) = self.lent_range.get();
        if start < end {
            return Poll::Ready(Ok(&self.lent[start..end]));
        }
        let raw = self.raw;
        let mut data: *const c_void = ptr::null();
        let mut len = 0usize;
        let rc = std::task::ready!(self
            .read_wait
            .poll(obj(raw), cx, |t| unsafe { sys::uva_stream_peek(&mut data, &mut len, raw, t) }));
        if rc < 0 {
            return Poll::Ready(Err(self.error(rc)));
        }
        if len == 0 {
            return Poll::Ready(Ok(&[]));
        }
        let n = len.min(LEND_MAX);
        // SAFETY: the peek just returned them: valid until the next call on
        // this stream (the copy below is none).
        let bytes = unsafe { std::slice::from_raw_parts(data as *const u8, n) };
        self.lent.clear();
        self.lent.extend_from_slice(bytes);
        self.lent_range.set((0, n));
        Poll::Ready(Ok(&self.lent[..n]))
    }

    /// Consumes `n` of the bytes poll_fill_buf lent (at most those, as
    /// std's BufReader).
    pub(crate) fn consume(&mut self, n: usize) {
        let (start, end) = self.lent_range.get();
        let n = n.min(end - start);
        if n == 0 {
            return;
        }
        let rc = unsafe { sys::uva_stream_consume(self.raw, n) };
        crate::error::expect_ok(rc, "uva_stream_consume");
        self.lent_range.set((start + n, end));
    }

    pub(crate) fn poll_write(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut wait = std::mem::replace(&mut self.write_wait, CoreWait::new());
        let r = self.poll_write_on(&mut wait, cx, buf);
        self.write_wait = wait;
        r
    }

    /// poll_write with a wait of the caller's (a split half's).
    pub(crate) fn poll_write_on(&self, wait: &mut CoreWait, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // Over the low-water mark: wait for room before taking more.
        std::task::ready!(self.poll_flush_on(wait, cx))?;
        Poll::Ready(self.write_now(buf).map(|_| buf.len()))
    }

    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut wait = std::mem::replace(&mut self.write_wait, CoreWait::new());
        let r = self.poll_write_vectored_on(&mut wait, cx, bufs);
        self.write_wait = wait;
        r
    }

    pub(crate) fn poll_write_vectored_on(
        &self,
        wait: &mut CoreWait,
        cx: &Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_flush_on(wait, cx))?;
        Poll::Ready(self.write_vectored_now(bufs).map(|(taken, _)| taken))
    }

    pub(crate) fn poll_flush_on(&self, wait: &mut CoreWait, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let raw = self.raw;
        let rc = std::task::ready!(wait.poll(obj(raw), cx, |t| unsafe { sys::uva_stream_drain(raw, t) }));
        Poll::Ready(self.check(rc).map(drop))
    }

    pub(crate) fn poll_flush(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let mut wait = std::mem::replace(&mut self.write_wait, CoreWait::new());
        let r = self.poll_flush_on(&mut wait, cx);
        self.write_wait = wait;
        r
    }

    pub(crate) fn poll_shutdown(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let mut wait = std::mem::replace(&mut self.write_wait, CoreWait::new());
        let r = self.poll_shutdown_on(&mut wait, cx);
        self.write_wait = wait;
        r
    }

    pub(crate) fn poll_shutdown_on(&self, wait: &mut CoreWait, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let raw = self.raw;
        let rc = std::task::ready!(wait.poll(obj(raw), cx, |t| unsafe { sys::uva_stream_shutdown(raw, t) }));
        Poll::Ready(self.check(rc).map(drop))
    }
}
