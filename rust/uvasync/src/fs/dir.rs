//! `read_dir`: one readdir job reads the whole directory; `ReadDir` hands
//! its entries out from the job, which it keeps until dropped.
use std::ffi::{c_char, CStr, OsStr, OsString};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;
use std::task::{Context, Poll};

use uvasync_sys as sys;

use super::{cpath, symlink_metadata, FileType, Metadata};
use crate::error::check;
use crate::work::Work;

/// The entries of a directory, from [`read_dir`]; as tokio's `ReadDir`.
pub struct ReadDir {
    work: Work,
    dir: Arc<Path>,
    next: usize,
    count: usize,
}

/// Reads the entries of the directory `path` (without "." and ".."), in
/// the order the system gives. The whole directory is read by one job on
/// the loop's pool; [`ReadDir::next_entry`] hands the entries out.
///
/// ```
/// uvasync::run(async {
///     let mut dir = uvasync::fs::read_dir(".").await.unwrap();
///     while let Some(entry) = dir.next_entry().await.unwrap() {
///         let _ = entry.file_name();
///     }
/// });
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref();
    let c = cpath(path)?;
    let mut work = Work::start(|out, lp| unsafe { sys::uva_fs_readdir(out, lp, c.as_ptr()) })?;
    work.end().await?;
    let count = work.result()? as usize;
    Ok(ReadDir { work, dir: Arc::from(path), next: 0, count })
}

impl ReadDir {
    /// The next entry, or `None` after the last.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// The poll form of [`next_entry`](ReadDir::next_entry) (always ready:
    /// the entries were read when the `ReadDir` was made).
    pub fn poll_next_entry(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        if self.next >= self.count {
            return Poll::Ready(Ok(None));
        }
        let mut name: *const c_char = ptr::null();
        let mut ty = sys::UVA_FILE_UNKNOWN;
        // SAFETY: our job; the name lives in it (copied below).
        let rc = unsafe { sys::uva_fs_dirent(&mut name, &mut ty, self.work.raw(), self.next) };
        self.next += 1;
        if let Err(e) = check(rc) {
            return Poll::Ready(Err(e));
        }
        // SAFETY: a NUL-terminated name, valid while the job is.
        let name = OsStr::from_bytes(unsafe { CStr::from_ptr(name) }.to_bytes()).to_os_string();
        Poll::Ready(Ok(Some(DirEntry { dir: self.dir.clone(), name, ty: FileType(ty) })))
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir").field("dir", &self.dir).field("left", &(self.count - self.next)).finish()
    }
}

/// An entry of a directory, from [`ReadDir::next_entry`].
pub struct DirEntry {
    dir: Arc<Path>,
    name: OsString,
    ty: FileType,
}

impl DirEntry {
    /// The entry's path: the directory given to `read_dir` joined with
    /// its name.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// The entry's name, without the directory.
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The entry's type, as the directory gives it (a symbolic link is a
    /// link); asks the file system (lstat) where the directory does not say.
    pub async fn file_type(&self) -> io::Result<FileType> {
        if self.ty.0 != sys::UVA_FILE_UNKNOWN {
            return Ok(self.ty);
        }
        Ok(self.metadata().await?.file_type())
    }

    /// The entry's metadata, not following a symbolic link (as std's).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        symlink_metadata(self.path()).await
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path()).finish()
    }
}
