//! Files and directories, as tokio's `fs`: every operation is a job on the
//! loop's thread pool (the core's `uva_fs_*`), awaited by the task, so the
//! loop never blocks on the disk.
//!
//! Errors are `io::Error`s with the system's code (`ErrorKind::NotFound`,
//! `AlreadyExists`, `PermissionDenied`, ...). A future dropped in the
//! middle of an operation is sound: the job owns its arguments and its
//! buffer, a job not started is dropped, a running one finishes on its
//! thread (a descriptor it uses is closed after it, never under it). Large
//! reads and writes go in chunks (2 MiB by default): nothing holds a whole
//! file in memory but `read`, which returns it.
//!
//! ```
//! uvasync::run(async {
//!     let dir = std::env::temp_dir().join(format!("uvasync-doc-fs-{}", std::process::id()));
//!     uvasync::fs::create_dir_all(&dir).await.unwrap();
//!     let path = dir.join("hello.txt");
//!     uvasync::fs::write(&path, "hello").await.unwrap();
//!     assert_eq!(uvasync::fs::read_to_string(&path).await.unwrap(), "hello");
//!     assert_eq!(uvasync::fs::metadata(&path).await.unwrap().len(), 5);
//!     uvasync::fs::remove_file(&path).await.unwrap();
//!     uvasync::fs::remove_dir(&dir).await.unwrap();
//! });
//! ```
use std::ffi::{c_char, c_int, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use uvasync_sys as sys;

use crate::work::Work;

mod dir;
mod file;
mod metadata;

pub use dir::{read_dir, DirEntry, ReadDir};
pub use file::{File, OpenOptions};
pub use metadata::{FileType, Metadata};

/// A path as the core takes it.
pub(crate) fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file name contained an unexpected NUL byte"))
}

type PathJob = unsafe extern "C" fn(*mut *mut sys::uva_work_t, *mut sys::uva_loop_t, *const c_char) -> c_int;

/// Runs a job on one path to its end.
async fn path_job(path: &Path, op: PathJob) -> io::Result<Work> {
    let c = cpath(path)?;
    let mut work = Work::start(|out, lp| unsafe { op(out, lp, c.as_ptr()) })?;
    work.end().await?;
    Ok(work)
}

/// The whole contents of a file.
///
/// ```
/// uvasync::run(async {
///     let err = uvasync::fs::read("/no/such/file").await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// });
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let mut file = File::open(path).await?;
    let mut out = Vec::new();
    file.read_to_end(&mut out).await?;
    Ok(out)
}

/// The whole contents of a file as a `String` (`InvalidData` if it is not
/// UTF-8).
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let bytes = read(path).await?;
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

/// Creates or truncates the file at `path` and writes `contents` to it.
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let mut file = File::create(path).await?;
    file.write_all(contents.as_ref()).await?;
    file.flush().await
}

/// Copies the contents of `from` to `to` (created with `from`'s permission
/// bits, less the umask, or truncated), in chunks; returns the bytes
/// copied.
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let mut src = File::open(from).await?;
    let mode = src.metadata().await?.mode() & 0o7777;
    let mut dst = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(to).await?;
    let mut total = 0u64;
    loop {
        let chunk = src.fill_buf().await?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        dst.write_all(chunk).await?;
        src.consume(n);
        total += n as u64;
    }
    dst.flush().await?;
    Ok(total)
}

/// The metadata of the file at `path`, following symbolic links.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    Metadata::from_work(&path_job(path.as_ref(), sys::uva_fs_stat).await?)
}

/// The metadata of `path` itself, a symbolic link included (lstat).
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    Metadata::from_work(&path_job(path.as_ref(), sys::uva_fs_lstat).await?)
}

/// True if `path` exists (following links); an error if that cannot be
/// known (a permission error on the way), as std's `try_exists`.
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Renames `from` to `to`, replacing `to` if it exists (rename(2)).
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (cpath(from.as_ref())?, cpath(to.as_ref())?);
    let mut work = Work::start(|out, lp| unsafe { sys::uva_fs_rename(out, lp, from.as_ptr(), to.as_ptr()) })?;
    work.end().await
}

/// Removes a file (unlink(2)).
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    path_job(path.as_ref(), sys::uva_fs_unlink).await.map(drop)
}

/// Removes an empty directory.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    path_job(path.as_ref(), sys::uva_fs_rmdir).await.map(drop)
}

/// Creates a directory (`AlreadyExists` if something has that name).
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    mkdir(path.as_ref()).await
}

async fn mkdir(path: &Path) -> io::Result<()> {
    let c = cpath(path)?;
    let mut work = Work::start(|out, lp| unsafe { sys::uva_fs_mkdir(out, lp, c.as_ptr(), 0o777) })?;
    work.end().await
}

/// Creates a directory and every missing parent; success if it exists
/// already as a directory (as std's).
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    // Up from `path` to the first ancestor that exists or could be made,
    // then down again making the rest.
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if at.as_os_str().is_empty() {
            break;
        }
        match mkdir(at).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(at);
                match at.parent() {
                    Some(p) => at = p,
                    None => return Err(io::Error::other("failed to create whole tree")),
                }
            }
            Err(e) => {
                if is_dir(at).await {
                    break;
                }
                return Err(e);
            }
        }
    }
    while let Some(dir) = missing.pop() {
        if let Err(e) = mkdir(dir).await {
            if !is_dir(dir).await {
                return Err(e);
            }
        }
    }
    Ok(())
}

async fn is_dir(path: &Path) -> bool {
    metadata(path).await.is_ok_and(|m| m.is_dir())
}
