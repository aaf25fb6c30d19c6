//! Core error codes as `std::io::Error`.
use std::ffi::{c_int, CStr};
use std::io;

use uvasync_sys as sys;

/// The `io::Error` for a negative core code: an OS error for `-errno` codes,
/// a matching [`io::ErrorKind`] with the core's message for the others (a
/// [`TlsError`](crate::TlsError) inside for the TLS codes).
#[cold]
#[inline(never)]
pub(crate) fn to_io(code: c_int) -> io::Error {
    if let Some(e) = crate::tls::tls_error(code, "") {
        return e;
    }
    let kind = match code {
        sys::UVA_EOF | sys::UVA_EINCOMPLETE => io::ErrorKind::UnexpectedEof,
        sys::UVA_ECLOSED => io::ErrorKind::NotConnected,
        sys::UVA_ETIMEDOUT => io::ErrorKind::TimedOut,
        sys::UVA_ELINETOOLONG => io::ErrorKind::InvalidData,
        c if c > -4096 && c < 0 && !(-3100..=-3000).contains(&c) => return io::Error::from_raw_os_error(-c),
        _ => io::ErrorKind::Other,
    };
    // SAFETY: uva_err_name/uva_strerror return static, NUL-terminated strings.
    let (name, msg) = unsafe {
        (
            CStr::from_ptr(sys::uva_err_name(code)).to_string_lossy(),
            CStr::from_ptr(sys::uva_strerror(code)).to_string_lossy(),
        )
    };
    io::Error::new(kind, format!("{msg} ({name})"))
}

/// `Ok(rc)` for `rc >= 0`, else the error.
#[inline]
pub(crate) fn check(rc: c_int) -> io::Result<c_int> {
    if rc < 0 {
        Err(to_io(rc))
    } else {
        Ok(rc)
    }
}

/// For calls that cannot fail unless the binding itself is wrong (a NULL or
/// a handle of the wrong kind): a failure is a bug, reported loudly.
pub(crate) fn expect_ok(rc: c_int, what: &str) {
    assert!(rc >= 0, "uvasync: {what} failed: {}", to_io(rc));
}
