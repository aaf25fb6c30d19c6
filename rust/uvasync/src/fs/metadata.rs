//! What a stat job gives: `Metadata` and `FileType`, as std's.
use std::fmt;
use std::io;
use std::mem;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uvasync_sys as sys;

use crate::error::check;
use crate::work::Work;

/// Information about a file, from [`metadata`](super::metadata),
/// [`symlink_metadata`](super::symlink_metadata) or
/// [`File::metadata`](super::File::metadata); as `std::fs::Metadata`.
#[derive(Clone)]
pub struct Metadata {
    st: sys::uva_stat_t,
}

impl Metadata {
    /// The result of a stat job that ended with 0.
    pub(crate) fn from_work(work: &Work) -> io::Result<Metadata> {
        let mut st = sys::uva_stat_t { size: mem::size_of::<sys::uva_stat_t>(), ..Default::default() };
        // SAFETY: our job; `st` is as large as its `size` says.
        check(unsafe { sys::uva_fs_statbuf(&mut st, work.raw()) })?;
        Ok(Metadata { st })
    }

    /// The size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.st.file_size
    }

    /// True for an empty file (size 0).
    pub fn is_empty(&self) -> bool {
        self.st.file_size == 0
    }

    /// The type of the file.
    pub fn file_type(&self) -> FileType {
        FileType(self.st.type_)
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    /// True for a symbolic link (only `symlink_metadata` sees one).
    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// The permission bits, as std's.
    pub fn permissions(&self) -> std::fs::Permissions {
        std::fs::Permissions::from_mode(self.st.mode as u32)
    }

    /// The time of the last modification.
    pub fn modified(&self) -> io::Result<SystemTime> {
        Ok(system_time(self.st.mtime_ns))
    }

    /// The time of the last access.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        Ok(system_time(self.st.atime_ns))
    }

    /// The creation time: the core's stat does not report it, so this is
    /// an `Unsupported` error, as std's on systems without it.
    pub fn created(&self) -> io::Result<SystemTime> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "creation time is not available"))
    }

    /// The time of the last status change (st_ctime).
    pub fn changed(&self) -> SystemTime {
        system_time(self.st.ctime_ns)
    }

    /// `st_mode`, type bits included.
    pub fn mode(&self) -> u32 {
        self.st.mode as u32
    }

    /// The device holding the file.
    pub fn dev(&self) -> u64 {
        self.st.dev
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.st.ino
    }

    /// The number of hard links.
    pub fn nlink(&self) -> u64 {
        self.st.nlink
    }

    /// The owner's user id.
    pub fn uid(&self) -> u32 {
        self.st.uid as u32
    }

    /// The owner's group id.
    pub fn gid(&self) -> u32 {
        self.st.gid as u32
    }

    /// The device a special file stands for.
    pub fn rdev(&self) -> u64 {
        self.st.rdev
    }

    /// The preferred I/O block size.
    pub fn blksize(&self) -> u64 {
        self.st.blksize
    }

    /// The 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.st.blocks
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("file_type", &self.file_type())
            .field("len", &self.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .field("modified", &self.modified().ok())
            .finish_non_exhaustive()
    }
}

fn system_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// The type of a file, as `std::fs::FileType`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileType(pub(crate) sys::uva_file_type);

impl FileType {
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.0 == sys::UVA_FILE_REGULAR
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.0 == sys::UVA_FILE_DIR
    }

    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.0 == sys::UVA_FILE_LINK
    }

    /// A named pipe.
    pub fn is_fifo(&self) -> bool {
        self.0 == sys::UVA_FILE_FIFO
    }

    /// A Unix-domain socket.
    pub fn is_socket(&self) -> bool {
        self.0 == sys::UVA_FILE_SOCKET
    }

    /// A character device.
    pub fn is_char_device(&self) -> bool {
        self.0 == sys::UVA_FILE_CHAR
    }

    /// A block device.
    pub fn is_block_device(&self) -> bool {
        self.0 == sys::UVA_FILE_BLOCK
    }
}

impl fmt::Debug for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            sys::UVA_FILE_REGULAR => "file",
            sys::UVA_FILE_DIR => "dir",
            sys::UVA_FILE_LINK => "symlink",
            sys::UVA_FILE_FIFO => "fifo",
            sys::UVA_FILE_SOCKET => "socket",
            sys::UVA_FILE_CHAR => "char_device",
            sys::UVA_FILE_BLOCK => "block_device",
            _ => "unknown",
        };
        write!(f, "FileType({name})")
    }
}
