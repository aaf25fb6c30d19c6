//! Shared by the benchmark programs (examples, so that tokio stays a
//! dev-dependency): process CPU time and RSS, a fixed-seed RNG, and the
//! SIGTERM handler the echo driver (bench/run_echo.py's protocol) expects.
#![allow(dead_code)]
use std::fmt::Write as _;

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    rest: [i64; 14],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    fn signal(sig: i32, handler: extern "C" fn(i32)) -> usize;
    fn write(fd: i32, buf: *const u8, n: usize) -> isize;
    fn _exit(code: i32) -> !;
}

/// (user, system) CPU seconds of the whole process.
pub fn cpu_seconds() -> (f64, f64) {
    let mut r = Rusage { utime: Timeval { sec: 0, usec: 0 }, stime: Timeval { sec: 0, usec: 0 }, rest: [0; 14] };
    unsafe { getrusage(0, &mut r) };
    (r.utime.sec as f64 + r.utime.usec as f64 / 1e6, r.stime.sec as f64 + r.stime.usec as f64 / 1e6)
}

/// Resident set size in bytes (/proc/self/statm).
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// splitmix64, the C benchmarks' RNG.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

struct Fixed {
    buf: [u8; 128],
    len: usize,
}
impl std::fmt::Write for Fixed {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let b = s.as_bytes();
        let n = b.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn on_term(_sig: i32) {
    // getrusage, formatting into a stack buffer, write and _exit: no
    // allocation and no lock in the handler.
    let (u, s) = cpu_seconds();
    let mut out = Fixed { buf: [0; 128], len: 0 };
    let _ = writeln!(out, "user_s={u:.6} sys_s={s:.6}");
    unsafe {
        write(1, out.buf.as_ptr(), out.len);
        _exit(0);
    }
}

/// On SIGTERM/SIGINT: print "user_s=.. sys_s=.." and exit 0.
pub fn exit_with_cpu_on_term() {
    unsafe {
        signal(15, on_term);
        signal(2, on_term);
    }
}
