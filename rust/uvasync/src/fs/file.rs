//! `File`: a descriptor whose reads and writes are jobs on the loop's pool,
//! one in flight at a time, as tokio's `File`.
//!
//! A read starts a `uva_fs_read` job of at least 64 KiB (up to the buffer
//! size, at most `max_buf_size`); the job keeps the bytes and later reads
//! are served from it, so a small reader costs one job per 64 KiB. A write
//! starts a `uva_fs_write` job (which copies the bytes) and returns at
//! once; the next operation waits for it and reports its error. Regular
//! files and block devices are read and written at the position the
//! `File` keeps (pread/pwrite), so a read dropped in flight moves nothing;
//! other files (pipes, terminals) use the descriptor's own position.
use std::ffi::c_int;
use std::fmt;
use std::future::poll_fn;
use std::io::{self, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::rc::Rc;
use std::task::{Context, Poll};

use uvasync_sys as sys;

use super::{cpath, Metadata};
use crate::runtime::{current_loop, LoopInner};
use crate::work::{Then, Work};

/// The least a read job asks for (what a small reader's reads share).
const MIN_READ: usize = 64 * 1024;
/// The default most bytes of one read or write job (tokio's default too).
const DEFAULT_MAX_BUF: usize = 2 * 1024 * 1024;

/// An open file, as tokio's `File`: every operation is a job on the loop's
/// thread pool, one in flight at a time. Implements futures-io's
/// `AsyncRead`, `AsyncBufRead`, `AsyncWrite` and `AsyncSeek` (feature
/// `futures-io`) besides its own async methods.
///
/// Writes are buffered: `write` hands the bytes to a job and returns; the
/// next operation waits for that job and reports its error. Call
/// [`flush`](File::flush) (or [`sync_all`](File::sync_all)) to know a write
/// went through. Dropping a `File` closes it once the job in flight (a
/// write that must go through) has ended.
///
/// ```
/// uvasync::run(async {
///     let path = std::env::temp_dir().join(format!("uvasync-doc-file-{}", std::process::id()));
///     let mut f = uvasync::fs::File::create(&path).await.unwrap();
///     f.write_all(b"hello world").await.unwrap();
///     f.seek(std::io::SeekFrom::Start(6)).await.unwrap();
///     let mut buf = [0u8; 5];
///     f.flush().await.unwrap();
///     drop(f);
///     let mut f = uvasync::fs::File::open(&path).await.unwrap();
///     f.seek(std::io::SeekFrom::Start(6)).await.unwrap();
///     f.read_exact(&mut buf).await.unwrap();
///     assert_eq!(&buf, b"world");
///     uvasync::fs::remove_file(&path).await.unwrap();
/// });
/// ```
pub struct File {
    _lp: Rc<LoopInner>,
    /// Always Some until dropped.
    fd: Option<OwnedFd>,
    /// Read and written at `pos` (a regular file or block device).
    positional: bool,
    /// Opened with O_APPEND: writes go to the end (offset -1).
    append: bool,
    /// The position, for positional files; None after an append until a
    /// stat tells the size.
    pos: Option<u64>,
    /// The job in flight.
    busy: Option<(Work, Op)>,
    /// A read job whose bytes are handed out, with how many were.
    ready: Option<(Work, usize)>,
    /// The size the last stat gave, valid until a write or truncate starts.
    size: Option<u64>,
    /// The count of the last sendfile, for its caller.
    sent: usize,
    max_buf: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    /// A write of so many bytes, which must go through even if the `File`
    /// is dropped.
    Write(usize),
    Stat,
    /// A sendfile to a stream: its count advances the position.
    Send,
    Other,
}

/// Options to open a file with, as `std::fs::OpenOptions` (with unix's
/// `mode` and `custom_flags`).
///
/// ```
/// uvasync::run(async {
///     let path = std::env::temp_dir().join(format!("uvasync-doc-opts-{}", std::process::id()));
///     let f = uvasync::fs::OpenOptions::new().write(true).create_new(true).open(&path).await.unwrap();
///     drop(f);
///     let again = uvasync::fs::OpenOptions::new().write(true).create_new(true).open(&path).await;
///     assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
///     uvasync::fs::remove_file(&path).await.unwrap();
/// });
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Every option off; mode 0o666.
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.read = read;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.write = write;
        self
    }

    /// Every write goes to the end (implies writing).
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.append = append;
        self
    }

    /// Truncate to 0 bytes when opened (needs writing).
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist (needs writing).
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists.
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.create_new = create_new;
        self
    }

    /// The permission bits of a file created (less the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// More O_* flags for open(2) (the access mode bits are ignored).
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags;
        self
    }

    fn flags(&self) -> io::Result<c_int> {
        let invalid = || Err(io::Error::from_raw_os_error(libc::EINVAL));
        let access = match (self.read, self.write, self.append) {
            (true, false, false) => libc::O_RDONLY,
            (false, true, false) => libc::O_WRONLY,
            (true, true, false) => libc::O_RDWR,
            (false, _, true) => libc::O_WRONLY | libc::O_APPEND,
            (true, _, true) => libc::O_RDWR | libc::O_APPEND,
            (false, false, false) => return invalid(),
        };
        // std's rules: creating or truncating needs writing; append and
        // truncate together only with create_new.
        if !self.write && !self.append && (self.truncate || self.create || self.create_new) {
            return invalid();
        }
        if self.append && self.truncate && !self.create_new {
            return invalid();
        }
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (false, false, false) => 0,
        };
        Ok(access | creation | (self.custom_flags & !libc::O_ACCMODE))
    }

    /// Opens the file at `path` with these options.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let flags = self.flags()?;
        let c = cpath(path.as_ref())?;
        let mode = self.mode as c_int;
        let work = Work::start(|out, lp| unsafe { sys::uva_fs_open(out, lp, c.as_ptr(), flags, mode) })?;
        // Dropped while the open runs: the descriptor it gives is closed.
        struct Opening(Option<Work>);
        impl Drop for Opening {
            fn drop(&mut self) {
                if let Some(w) = self.0.take() {
                    w.finish_later(Then { may_cancel: true, fd: None, opened: true });
                }
            }
        }
        let mut opening = Opening(Some(work));
        opening.0.as_mut().expect("open job").end().await?;
        let work = opening.0.take().expect("open job");
        let raw = work.result()? as RawFd;
        // SAFETY: the descriptor the open gave; ours now.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        drop(work);
        let append = self.append || self.custom_flags & libc::O_APPEND != 0;
        File::from_fd(fd, append).await
    }
}

impl File {
    /// Opens a file for reading.
    ///
    /// ```
    /// uvasync::run(async {
    ///     let err = uvasync::fs::File::open("/no/such/file").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens a file for writing, creating it or truncating it.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().write(true).create(true).truncate(true).open(path).await
    }

    /// Options to open a file with.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// A `File` for an open `std::fs::File` (a pipe's end, a descriptor
    /// inherited, ...), as tokio's. Whether it is read and written at a
    /// position of its own (a regular file or block device) is asked with
    /// one fstat(2) here, on the loop's thread (it does no disk I/O).
    /// Panics outside a runtime.
    pub fn from_std(file: std::fs::File) -> File {
        use std::os::unix::fs::FileTypeExt;
        let ty = file.metadata().map(|m| m.file_type()).ok();
        let positional = ty.is_some_and(|t| t.is_file() || t.is_block_device());
        // SAFETY: F_GETFL on a descriptor we own.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        let append = flags >= 0 && flags & libc::O_APPEND != 0;
        let mut f = File::new(OwnedFd::from(file), append, None);
        f.positional = positional;
        // The descriptor's own position, where reading and writing go on.
        if positional {
            // SAFETY: lseek(fd, 0, SEEK_CUR) only reads the position.
            let pos = unsafe { libc::lseek(f.raw_fd(), 0, libc::SEEK_CUR) };
            f.pos = Some(pos.max(0) as u64);
        }
        f
    }

    fn new(fd: OwnedFd, append: bool, busy: Option<(Work, Op)>) -> File {
        File {
            _lp: current_loop(),
            fd: Some(fd),
            positional: false,
            append,
            pos: Some(0),
            busy,
            ready: None,
            size: None,
            sent: 0,
            max_buf: DEFAULT_MAX_BUF,
        }
    }

    async fn from_fd(fd: OwnedFd, append: bool) -> io::Result<File> {
        let raw = fd.as_raw_fd();
        let stat = Work::start(|out, lp| unsafe { sys::uva_fs_fstat(out, lp, raw) })?;
        let mut file = File::new(fd, append, Some((stat, Op::Stat)));
        poll_fn(|cx| file.poll_busy(cx)).await?;
        Ok(file)
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.as_ref().expect("open file").as_raw_fd()
    }

    /// The most bytes one read or write job moves (default 2 MiB).
    pub fn set_max_buf_size(&mut self, max: usize) {
        self.max_buf = max.max(1);
    }

    /// The most bytes one read or write job moves.
    pub fn max_buf_size(&self) -> usize {
        self.max_buf
    }

    // ---- the one job in flight ----

    fn start(
        &mut self,
        op: Op,
        start: impl FnOnce(*mut *mut sys::uva_work_t, *mut sys::uva_loop_t) -> c_int,
    ) -> io::Result<()> {
        debug_assert!(self.busy.is_none());
        let work = Work::start_on(self._lp.clone(), start)?;
        self.busy = Some((work, op));
        Ok(())
    }

    /// Waits for the job in flight and takes its result: a read's bytes
    /// become `ready`, a stat's size `size`; a failed or short write is
    /// this call's error.
    fn poll_busy(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let Some((work, _)) = self.busy.as_mut() else { return Poll::Ready(Ok(())) };
        let rc = std::task::ready!(work.poll_end(cx));
        let (work, op) = self.busy.take().expect("job in flight");
        if rc < 0 {
            return Poll::Ready(Err(work.status(rc, "File").unwrap_err()));
        }
        match op {
            Op::Read => {
                if !work.data().is_empty() {
                    self.ready = Some((work, 0));
                }
            }
            Op::Write(len) => {
                let n = work.result()? as usize;
                if n < len {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("short write: {n} of {len} bytes"),
                    )));
                }
            }
            Op::Stat => {
                let meta = Metadata::from_work(&work)?;
                let ty = meta.file_type();
                self.positional = ty.is_file() || ty.is_block_device();
                self.size = Some(meta.len());
                if self.pos.is_none() {
                    self.pos = Some(meta.len());
                }
            }
            Op::Send => {
                let n = work.result()? as u64;
                self.sent = n as usize;
                if let Some(p) = self.pos.as_mut().filter(|_| self.positional) {
                    *p += n;
                }
            }
            Op::Other => {}
        }
        Poll::Ready(Ok(()))
    }

    /// Waits for every job, so the position is known: a stat after an
    /// append.
    fn poll_idle_with_pos(&mut self, cx: &Context<'_>) -> Poll<io::Result<u64>> {
        loop {
            std::task::ready!(self.poll_busy(cx))?;
            if let Some(pos) = self.pos {
                return Poll::Ready(Ok(pos));
            }
            let fd = self.raw_fd();
            self.start(Op::Stat, |out, lp| unsafe { sys::uva_fs_fstat(out, lp, fd) })?;
        }
    }

    // ---- reading ----

    /// Bytes read ahead, reading at least `want` (capped) if none are:
    /// empty at the end of the file.
    pub(crate) fn poll_fill(&mut self, cx: &Context<'_>, want: usize) -> Poll<io::Result<&[u8]>> {
        std::task::ready!(self.poll_ready(cx, want))?;
        Poll::Ready(Ok(self.ready_bytes()))
    }

    /// The bytes read ahead and not taken yet.
    fn ready_bytes(&self) -> &[u8] {
        self.ready.as_ref().map_or(&[][..], |(w, used)| &w.data()[*used..])
    }

    /// Until bytes are read ahead, or the file ended.
    fn poll_ready(&mut self, cx: &Context<'_>, want: usize) -> Poll<io::Result<()>> {
        loop {
            if self.ready.is_some() {
                return Poll::Ready(Ok(()));
            }
            if let Some((_, op)) = &self.busy {
                let was_read = *op == Op::Read;
                std::task::ready!(self.poll_busy(cx))?;
                if was_read && self.ready.is_none() {
                    return Poll::Ready(Ok(())); // end of file
                }
                continue;
            }
            let fd = self.raw_fd();
            let (len, offset) = if self.positional {
                let pos = std::task::ready!(self.poll_idle_with_pos(cx))?;
                if self.busy.is_some() {
                    continue;
                }
                (want.clamp(MIN_READ.min(self.max_buf), self.max_buf), pos as i64)
            } else {
                (want.clamp(1, self.max_buf), -1)
            };
            self.start(Op::Read, |out, lp| unsafe { sys::uva_fs_read(out, lp, fd, len, offset) })?;
        }
    }

    /// Marks `n` bytes of the ready ones as taken.
    pub(crate) fn take(&mut self, n: usize) {
        let Some((work, used)) = self.ready.as_mut() else { return };
        let n = n.min(work.data().len() - *used);
        *used += n;
        if let Some(pos) = self.pos.as_mut().filter(|_| self.positional) {
            *pos += n as u64;
        }
        if *used == work.data().len() {
            self.ready = None;
        }
    }

    fn poll_read_into(&mut self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let data = std::task::ready!(self.poll_fill(cx, buf.len()))?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.take(n);
        Poll::Ready(Ok(n))
    }

    /// Reads up to `buf.len()` bytes; 0 at the end of the file.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_into(cx, buf)).await
    }

    /// Reads exactly `buf.len()` bytes (`UnexpectedEof` if the file ends
    /// first).
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.read(&mut buf[got..]).await? {
                0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer")),
                n => got += n,
            }
        }
        Ok(())
    }

    /// Reads to the end of the file, appending to `out`; returns the count.
    pub async fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let start = out.len();
        if let (true, Some(size), Some(pos)) = (self.positional, self.size, self.pos) {
            out.reserve(size.saturating_sub(pos) as usize);
        }
        loop {
            let max = self.max_buf;
            poll_fn(|cx| self.poll_ready(cx, max)).await?;
            let data = self.ready_bytes();
            if data.is_empty() {
                return Ok(out.len() - start);
            }
            out.extend_from_slice(data);
            let n = data.len();
            self.take(n);
        }
    }

    /// Reads to the end of the file as UTF-8, appending to `out`.
    pub async fn read_to_string(&mut self, out: &mut String) -> io::Result<usize> {
        let mut bytes = Vec::new();
        let n = self.read_to_end(&mut bytes).await?;
        let s = String::from_utf8(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))?;
        out.push_str(&s);
        Ok(n)
    }

    /// The bytes read ahead (reading more if there are none; empty at the
    /// end of the file), without taking them: see [`consume`](File::consume).
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let max = self.max_buf;
        poll_fn(|cx| self.poll_ready(cx, max)).await?;
        Ok(self.ready_bytes())
    }

    /// Takes `n` of the bytes `fill_buf` gave.
    pub fn consume(&mut self, n: usize) {
        self.take(n);
    }

    // ---- writing ----

    fn poll_write_from(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_busy(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let fd = self.raw_fd();
        let n = buf.len().min(self.max_buf);
        let offset = if self.positional && !self.append {
            // Bytes read ahead are behind us now.
            self.ready = None;
            match self.pos {
                Some(p) => p as i64,
                None => -1,
            }
        } else {
            -1
        };
        // SAFETY: the job copies the bytes during the call.
        self.start(Op::Write(n), |out, lp| unsafe {
            sys::uva_fs_write(out, lp, fd, buf.as_ptr() as *const std::ffi::c_void, n, offset)
        })?;
        self.size = None;
        if self.positional {
            if self.append {
                self.ready = None;
                self.pos = None; // at the end: a stat tells where
            } else if let Some(p) = self.pos.as_mut() {
                *p += n as u64;
            }
        }
        Poll::Ready(Ok(n))
    }

    /// Hands up to `buf.len()` bytes (at most the max buffer size) to a
    /// write job and returns their count; the job's error comes with the
    /// next operation.
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write_from(cx, buf)).await
    }

    /// Writes the whole of `buf` (in jobs of at most the max buffer size).
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Waits for the write in flight; its error, if it failed.
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_busy(cx)).await
    }

    async fn run(
        &mut self,
        op: Op,
        start: impl FnOnce(*mut *mut sys::uva_work_t, *mut sys::uva_loop_t) -> c_int,
    ) -> io::Result<()> {
        self.flush().await?;
        self.start(op, start)?;
        self.flush().await
    }

    /// Writes the file's data and metadata to the device (fsync).
    pub async fn sync_all(&mut self) -> io::Result<()> {
        let fd = self.raw_fd();
        self.run(Op::Other, |out, lp| unsafe { sys::uva_fs_fsync(out, lp, fd, 0) }).await
    }

    /// Writes the file's data to the device (fdatasync).
    pub async fn sync_data(&mut self) -> io::Result<()> {
        let fd = self.raw_fd();
        self.run(Op::Other, |out, lp| unsafe { sys::uva_fs_fsync(out, lp, fd, 1) }).await
    }

    /// Truncates or extends the file to `size` bytes (the position stays).
    pub async fn set_len(&mut self, size: u64) -> io::Result<()> {
        let fd = self.raw_fd();
        let len = i64::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        self.flush().await?;
        self.ready = None;
        self.size = None;
        self.run(Op::Other, |out, lp| unsafe { sys::uva_fs_ftruncate(out, lp, fd, len) }).await
    }

    /// The file's metadata (after the write in flight).
    pub async fn metadata(&mut self) -> io::Result<Metadata> {
        self.flush().await?;
        let fd = self.raw_fd();
        let mut work = Work::start_on(self._lp.clone(), |out, lp| unsafe { sys::uva_fs_fstat(out, lp, fd) })?;
        work.end().await?;
        Metadata::from_work(&work)
    }

    /// Sends up to `len` bytes from the position to `stream` (see
    /// `TcpStream::send_file`); the job sits in the busy slot, so a future
    /// dropped meanwhile leaves the descriptor open until it ended and the
    /// position right.
    pub(crate) async fn send_to(&mut self, stream: &crate::stream::RawStream, len: usize) -> io::Result<usize> {
        self.flush().await?;
        // Bytes read ahead come first (a pipe's; a positional file forgets
        // them and sends from its position).
        let mut sent = 0;
        if !self.positional && self.ready.is_some() {
            let bytes = self.ready_bytes();
            let n = bytes.len().min(len);
            stream.write_now(&bytes[..n])?;
            self.take(n);
            sent = n;
        }
        if sent == len {
            return Ok(sent);
        }
        let offset = if self.positional {
            self.ready = None;
            poll_fn(|cx| self.poll_idle_with_pos(cx)).await? as i64
        } else {
            -1
        };
        let (fd, raw) = (self.raw_fd(), stream.raw);
        self.start(Op::Send, |out, _| unsafe { sys::uva_fs_sendfile(out, raw, fd, offset, len - sent) })?;
        self.flush().await?;
        Ok(sent + self.sent)
    }

    // ---- seeking ----

    fn poll_seek_to(&mut self, cx: &Context<'_>, to: SeekFrom) -> Poll<io::Result<u64>> {
        loop {
            std::task::ready!(self.poll_busy(cx))?;
            if !self.positional {
                return Poll::Ready(Err(io::Error::from_raw_os_error(libc::ESPIPE)));
            }
            let (base, delta) = match to {
                SeekFrom::Start(n) => (0, Some(n as i128)),
                SeekFrom::Current(d) => {
                    let pos = std::task::ready!(self.poll_idle_with_pos(cx))?;
                    if self.busy.is_some() {
                        continue;
                    }
                    (pos, Some(d as i128))
                }
                SeekFrom::End(d) => match self.size.take() {
                    Some(size) => (size, Some(d as i128)),
                    None => {
                        let fd = self.raw_fd();
                        self.start(Op::Stat, |out, lp| unsafe { sys::uva_fs_fstat(out, lp, fd) })?;
                        (0, None)
                    }
                },
            };
            let Some(delta) = delta else { continue };
            let new = base as i128 + delta;
            if new < 0 || new > i64::MAX as i128 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "invalid seek to a negative or overflowing position",
                )));
            }
            self.ready = None;
            self.pos = Some(new as u64);
            return Poll::Ready(Ok(new as u64));
        }
    }

    /// Moves the position (after the job in flight); returns the new one.
    /// A pipe or terminal cannot seek (error ESPIPE).
    pub async fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        poll_fn(|cx| self.poll_seek_to(cx, to)).await
    }

    /// The position (after the job in flight).
    pub async fn stream_position(&mut self) -> io::Result<u64> {
        self.seek(SeekFrom::Current(0)).await
    }

    /// Back to the start.
    pub async fn rewind(&mut self) -> io::Result<()> {
        self.seek(SeekFrom::Start(0)).await.map(drop)
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.raw_fd()
    }
}

impl Drop for File {
    fn drop(&mut self) {
        self.ready = None;
        let fd = self.fd.take();
        match self.busy.take() {
            // A write must go through (and a sendfile's bytes stay in
            // order on its stream); the descriptor closes after the job.
            Some((work, op)) => {
                work.finish_later(Then { may_cancel: !matches!(op, Op::Write(_) | Op::Send), fd, opened: false })
            }
            // As std's and tokio's File: closed now.
            None => drop(fd),
        }
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("fd", &self.fd).field("pos", &self.pos).finish_non_exhaustive()
    }
}

#[cfg(feature = "futures-io")]
mod futures_io_impls {
    use std::io::{self, SeekFrom};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::File;

    impl futures_io::AsyncRead for File {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            self.get_mut().poll_read_into(cx, buf)
        }
    }

    /// Lends the bytes of the read job itself (no copy).
    impl futures_io::AsyncBufRead for File {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            let this = self.get_mut();
            let max = this.max_buf;
            this.poll_fill(cx, max)
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            self.get_mut().take(amt)
        }
    }

    impl futures_io::AsyncWrite for File {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.get_mut().poll_write_from(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_busy(cx)
        }

        /// Flushes; the descriptor closes when the `File` is dropped.
        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_busy(cx)
        }
    }

    impl futures_io::AsyncSeek for File {
        fn poll_seek(self: Pin<&mut Self>, cx: &mut Context<'_>, pos: SeekFrom) -> Poll<io::Result<u64>> {
            self.get_mut().poll_seek_to(cx, pos)
        }
    }
}
