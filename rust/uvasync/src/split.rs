//! Read and write halves of a stream (borrowed and owned), and `BufReader`.
//!
//! The core stream buffers what it reads and queues what the kernel does not
//! take, and it lets one task wait for bytes while another waits for room:
//! a half is the stream with a wait of its own. `BufReader`'s buffer is the
//! core's (nothing is copied twice); it adds tokio's line API and the
//! futures-io traits over any readable stream of the crate.
use std::fmt;
use std::io;
use std::rc::Rc;
#[cfg(feature = "futures-io")]
use std::task::{Context, Poll};

use crate::stream::RawStream;
use crate::task::CoreWait;

pub(crate) mod sealed {
    /// A stream type of this crate (its core stream).
    #[allow(private_interfaces)]
    pub trait Source {
        fn raw_stream(&self) -> &crate::stream::RawStream;
    }
}

/// A stream of this crate that can be read: [`TcpStream`](crate::TcpStream),
/// [`UnixStream`](crate::UnixStream) and their read halves. Sealed.
pub trait ReadSource: sealed::Source {}

/// Appends one line (see `TcpStream::read_line`) to `buf`.
pub(crate) async fn read_line_into(s: &RawStream, buf: &mut String) -> io::Result<usize> {
    let bytes = s.read_line_bytes().await?;
    let line = std::str::from_utf8(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    buf.push_str(line);
    Ok(bytes.len())
}

/// The reading methods every read half has (docs: see `TcpStream`'s).
macro_rules! read_methods {
    () => {
        /// As [`TcpStream::read`](crate::TcpStream::read).
        pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.stream().read(buf).await
        }

        /// As [`TcpStream::read_exact`](crate::TcpStream::read_exact).
        pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
            self.stream().read_exact(buf).await
        }

        /// As [`TcpStream::read_line`](crate::TcpStream::read_line): appends
        /// one line to `buf`, returns its length (0 at the end).
        pub async fn read_line(&mut self, buf: &mut String) -> io::Result<usize> {
            read_line_into(self.stream(), buf).await
        }

        /// As [`TcpStream::read_to_end`](crate::TcpStream::read_to_end).
        pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
            self.stream().read_to_end(buf).await
        }
    };
}

/// The writing methods every write half has.
macro_rules! write_methods {
    () => {
        /// As [`TcpStream::write_all`](crate::TcpStream::write_all).
        pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            self.stream().write_all(buf).await
        }

        /// As [`TcpStream::write_nowait`](crate::TcpStream::write_nowait).
        pub fn write_nowait(&self, buf: &[u8]) -> io::Result<usize> {
            self.stream().write_now(buf)
        }

        /// As [`TcpStream::flush`](crate::TcpStream::flush).
        pub async fn flush(&mut self) -> io::Result<()> {
            self.stream().flush().await
        }

        /// Shuts the write side down (the peer reads the end of the
        /// stream); the read half still reads.
        pub async fn shutdown(&mut self) -> io::Result<()> {
            self.stream().shutdown().await
        }
    };
}

#[cfg(feature = "futures-io")]
macro_rules! futures_io_read {
    ($ty:ty $(, $s:ident)?) => {
        impl$(<$s: sealed::Source>)? futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let this = self.get_mut();
                let mut wait = std::mem::replace(&mut this.wait, CoreWait::new());
                let r = this.stream().poll_read_on(&mut wait, cx, buf);
                this.wait = wait;
                r
            }
        }
    };
}

#[cfg(feature = "futures-io")]
macro_rules! futures_io_write {
    ($ty:ty $(, $s:ident)?) => {
        impl$(<$s: sealed::Source>)? futures_io::AsyncWrite for $ty {
            fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let this = self.get_mut();
                let mut wait = std::mem::replace(&mut this.wait, CoreWait::new());
                let r = this.stream().poll_write_on(&mut wait, cx, buf);
                this.wait = wait;
                r
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let this = self.get_mut();
                let mut wait = std::mem::replace(&mut this.wait, CoreWait::new());
                let r = this.stream().poll_write_vectored_on(&mut wait, cx, bufs);
                this.wait = wait;
                r
            }

            fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let this = self.get_mut();
                let mut wait = std::mem::replace(&mut this.wait, CoreWait::new());
                let r = this.stream().poll_flush_on(&mut wait, cx);
                this.wait = wait;
                r
            }

            fn poll_close(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let this = self.get_mut();
                let mut wait = std::mem::replace(&mut this.wait, CoreWait::new());
                let r = this.stream().poll_shutdown_on(&mut wait, cx);
                this.wait = wait;
                r
            }
        }
    };
}

/// The read half of a stream, borrowed by `split`.
pub struct ReadHalf<'a> {
    stream: &'a RawStream,
    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    wait: CoreWait,
}

/// The write half of a stream, borrowed by `split`.
pub struct WriteHalf<'a> {
    stream: &'a RawStream,
    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    wait: CoreWait,
}

impl<'a> ReadHalf<'a> {
    pub(crate) fn pair(stream: &'a RawStream) -> (ReadHalf<'a>, WriteHalf<'a>) {
        (ReadHalf { stream, wait: CoreWait::new() }, WriteHalf { stream, wait: CoreWait::new() })
    }

    fn stream(&self) -> &RawStream {
        self.stream
    }

    read_methods!();
}

impl WriteHalf<'_> {
    fn stream(&self) -> &RawStream {
        self.stream
    }

    write_methods!();
}

#[allow(private_interfaces)]
impl sealed::Source for ReadHalf<'_> {
    fn raw_stream(&self) -> &RawStream {
        self.stream
    }
}
impl ReadSource for ReadHalf<'_> {}

impl fmt::Debug for ReadHalf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadHalf")
    }
}

impl fmt::Debug for WriteHalf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteHalf")
    }
}

/// The read half of a stream `S`, owned (made by `into_split`).
pub struct OwnedReadHalf<S> {
    inner: Rc<S>,
    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    wait: CoreWait,
}

/// The write half of a stream `S`, owned (made by `into_split`). Dropping
/// it leaves the stream open until the read half is dropped too.
pub struct OwnedWriteHalf<S> {
    inner: Rc<S>,
    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    wait: CoreWait,
}

/// The error of [`OwnedReadHalf::reunite`] with halves of two different
/// streams; it gives them back.
pub struct ReuniteError<S>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

impl<S> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same stream")
    }
}

impl<S> std::error::Error for ReuniteError<S> {}

impl<S: sealed::Source> OwnedReadHalf<S> {
    pub(crate) fn pair(stream: S) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
        let inner = Rc::new(stream);
        (OwnedReadHalf { inner: inner.clone(), wait: CoreWait::new() }, OwnedWriteHalf { inner, wait: CoreWait::new() })
    }

    fn stream(&self) -> &RawStream {
        self.inner.raw_stream()
    }

    read_methods!();

    /// The stream again, from its two halves; fails (giving them back) if
    /// `write` is another stream's.
    ///
    /// ```
    /// # uvasync::run(async {
    /// let (a, b) = uvasync::TcpStream::pair().await.unwrap();
    /// let (ra, wa) = a.into_split();
    /// let (rb, wb) = b.into_split();
    /// let err = ra.reunite(wb).unwrap_err();
    /// let (ra, wb) = (err.0, err.1);
    /// let _a = ra.reunite(wa).unwrap();
    /// let _b = rb.reunite(wb).unwrap();
    /// # });
    /// ```
    pub fn reunite(self, write: OwnedWriteHalf<S>) -> Result<S, ReuniteError<S>> {
        if !Rc::ptr_eq(&self.inner, &write.inner) {
            return Err(ReuniteError(self, write));
        }
        let OwnedReadHalf { inner, wait } = self;
        let OwnedWriteHalf { inner: other, wait: other_wait } = write;
        drop((wait, other_wait, other));
        match Rc::try_unwrap(inner) {
            Ok(s) => Ok(s),
            Err(_) => unreachable!("a stream's halves hold the only references"),
        }
    }
}

impl<S: sealed::Source> OwnedWriteHalf<S> {
    fn stream(&self) -> &RawStream {
        self.inner.raw_stream()
    }

    write_methods!();

    /// The stream again (see [`OwnedReadHalf::reunite`]).
    pub fn reunite(self, read: OwnedReadHalf<S>) -> Result<S, ReuniteError<S>> {
        read.reunite(self)
    }
}

#[allow(private_interfaces)]
impl<S: sealed::Source> sealed::Source for OwnedReadHalf<S> {
    fn raw_stream(&self) -> &RawStream {
        self.inner.raw_stream()
    }
}
impl<S: sealed::Source> ReadSource for OwnedReadHalf<S> {}

impl<S> fmt::Debug for OwnedReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnedReadHalf")
    }
}

impl<S> fmt::Debug for OwnedWriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnedWriteHalf")
    }
}

#[cfg(feature = "futures-io")]
futures_io_read!(ReadHalf<'_>);
#[cfg(feature = "futures-io")]
futures_io_write!(WriteHalf<'_>);
#[cfg(feature = "futures-io")]
futures_io_read!(OwnedReadHalf<S>, S);
#[cfg(feature = "futures-io")]
futures_io_write!(OwnedWriteHalf<S>, S);

/// A buffered reader over a readable stream of the crate, with tokio's
/// line API: [`read_line`](BufReader::read_line) and
/// [`lines`](BufReader::lines). The buffer is the core stream's own (it
/// reads ahead already), so this adds no copy; with the `futures-io`
/// feature it is `AsyncRead` and `AsyncBufRead` (`poll_fill_buf` lends a
/// copy of up to 64 KiB of the core's bytes, which may move meanwhile).
///
/// ```
/// uvasync::run(async {
///     let (mut a, b) = uvasync::TcpStream::pair().await.unwrap();
///     a.write_all(b"x\ny\n").await.unwrap();
///     drop(a);
///     let mut lines = uvasync::BufReader::new(b).lines();
///     assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("x"));
///     assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("y"));
///     assert_eq!(lines.next_line().await.unwrap(), None);
/// });
/// ```
pub struct BufReader<R> {
    inner: R,
    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    wait: CoreWait,
    /// poll_fill_buf's copy of the core's first bytes, and the part of it
    /// not consumed yet (which the core still holds first).
    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    lent: Vec<u8>,
    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    lent_range: (usize, usize),
}

impl<R: ReadSource> BufReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> BufReader<R> {
        BufReader { inner, wait: CoreWait::new(), lent: Vec::new(), lent_range: (0, 0) }
    }

    fn stream(&mut self) -> &RawStream {
        self.lent_range = (0, 0); // a direct read: the copy is stale
        self.inner.raw_stream()
    }

    read_methods!();

    /// The lines that follow, without their `\n` (or `\r\n`), as tokio's
    /// `Lines`.
    pub fn lines(self) -> Lines<R> {
        Lines { reader: self, line: String::new() }
    }

    /// The stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The stream, for writing (a read through it goes past this reader's
    /// lent bytes: they are not lent again).
    pub fn get_mut(&mut self) -> &mut R {
        self.lent_range = (0, 0);
        &mut self.inner
    }

    /// The stream; what was buffered stays in the core stream for it.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R> fmt::Debug for BufReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BufReader")
    }
}

#[cfg(feature = "futures-io")]
impl<R: ReadSource + Unpin> futures_io::AsyncRead for BufReader<R> {
    fn poll_read(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.lent_range = (0, 0);
        let mut wait = std::mem::replace(&mut this.wait, CoreWait::new());
        let r = this.inner.raw_stream().poll_read_on(&mut wait, cx, buf);
        this.wait = wait;
        r
    }
}

#[cfg(feature = "futures-io")]
impl<R: ReadSource + Unpin> futures_io::AsyncBufRead for BufReader<R> {
    fn poll_fill_buf(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        const LEND_MAX: usize = 64 * 1024;
        let this = self.get_mut();
        let (start, end) = this.lent_range;
        if start < end {
            return Poll::Ready(Ok(&this.lent[start..end]));
        }
        let mut wait = std::mem::replace(&mut this.wait, CoreWait::new());
        let r = this.inner.raw_stream().poll_peek_on(&mut wait, cx);
        this.wait = wait;
        let bytes = std::task::ready!(r)?;
        let n = bytes.len().min(LEND_MAX);
        this.lent.clear();
        this.lent.extend_from_slice(&bytes[..n]);
        this.lent_range = (0, n);
        Poll::Ready(Ok(&this.lent[..n]))
    }

    fn consume(self: std::pin::Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let (start, end) = this.lent_range;
        let n = amt.min(end - start);
        if n > 0 {
            this.inner.raw_stream().consume_raw(n);
            this.lent_range = (start + n, end);
        }
    }
}

/// The lines of a [`BufReader`] (its [`lines`](BufReader::lines)).
pub struct Lines<R> {
    reader: BufReader<R>,
    line: String,
}

impl<R: ReadSource> Lines<R> {
    /// The next line without its end (`\n` or `\r\n`), `None` at the end of
    /// the stream.
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        self.line.clear();
        if self.reader.read_line(&mut self.line).await? == 0 {
            return Ok(None);
        }
        if self.line.ends_with('\n') {
            self.line.pop();
            if self.line.ends_with('\r') {
                self.line.pop();
            }
        }
        Ok(Some(std::mem::take(&mut self.line)))
    }

    /// The reader back.
    pub fn into_inner(self) -> BufReader<R> {
        self.reader
    }
}

impl<R> fmt::Debug for Lines<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lines")
    }
}
