//! uvasync::fs: every function against the file system, errors with the
//! right io::ErrorKind, File's reads, writes and seeks, read_dir, a big
//! (256 MiB, or 1 GiB on request) copy through File in chunks with flat
//! memory, and futures-io copies.
use std::io::{ErrorKind, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::io::AsyncWriteExt;
use uvasync::fs::{self, File, OpenOptions};

/// A fresh directory under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("uvasync-fs-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Pseudo-random bytes, the same for the same seed.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn write_read_and_read_to_string() {
    let dir = TempDir::new("rw");
    uvasync::run(async {
        let p = dir.join("a.txt");
        fs::write(&p, "hello, file").await.unwrap();
        assert_eq!(fs::read(&p).await.unwrap(), b"hello, file");
        assert_eq!(fs::read_to_string(&p).await.unwrap(), "hello, file");
        // write truncates.
        fs::write(&p, b"hi").await.unwrap();
        assert_eq!(fs::read_to_string(&p).await.unwrap(), "hi");
        // Empty and large (several jobs) files.
        fs::write(&p, b"").await.unwrap();
        assert!(fs::read(&p).await.unwrap().is_empty());
        let big = bytes(1, 5 * 1024 * 1024 + 17);
        fs::write(&p, &big).await.unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), big);
        assert_eq!(fs::read(&p).await.unwrap(), big);
        // Not UTF-8.
        fs::write(&p, [0xff, 0xfe]).await.unwrap();
        assert_eq!(fs::read_to_string(&p).await.unwrap_err().kind(), ErrorKind::InvalidData);
    });
}

#[test]
fn metadata_and_symlink_metadata() {
    let dir = TempDir::new("meta");
    uvasync::run(async {
        let p = dir.join("m");
        let before = SystemTime::now() - Duration::from_secs(5);
        fs::write(&p, vec![7u8; 1234]).await.unwrap();
        let m = fs::metadata(&p).await.unwrap();
        assert_eq!(m.len(), 1234);
        assert!(m.is_file() && !m.is_dir() && !m.is_symlink());
        let modified = m.modified().unwrap();
        assert!(modified > before && modified < SystemTime::now() + Duration::from_secs(5));
        let std_m = std::fs::metadata(&p).unwrap();
        assert_eq!(modified, std_m.modified().unwrap());
        assert_eq!(m.permissions(), std_m.permissions());
        use std::os::unix::fs::MetadataExt;
        assert_eq!((m.ino(), m.dev(), m.nlink()), (std_m.ino(), std_m.dev(), std_m.nlink()));

        let d = fs::metadata(&dir.0).await.unwrap();
        assert!(d.is_dir() && !d.is_file());

        let link = dir.join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(fs::metadata(&link).await.unwrap().is_file()); // followed
        let l = fs::symlink_metadata(&link).await.unwrap();
        assert!(l.is_symlink() && !l.is_file());
        assert!(l.file_type().is_symlink());

        assert!(fs::try_exists(&p).await.unwrap());
        assert!(!fs::try_exists(dir.join("nope")).await.unwrap());
    });
}

#[test]
fn errors_have_the_right_kind() {
    let dir = TempDir::new("errors");
    uvasync::run(async {
        let missing = dir.join("missing");
        assert_eq!(fs::read(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(fs::metadata(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(fs::symlink_metadata(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(fs::remove_file(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(fs::remove_dir(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(fs::rename(&missing, dir.join("x")).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(fs::read_dir(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(File::open(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(fs::create_dir(missing.join("sub")).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(fs::copy(&missing, dir.join("y")).await.unwrap_err().kind(), ErrorKind::NotFound);

        let sub = dir.join("sub");
        fs::create_dir(&sub).await.unwrap();
        assert_eq!(fs::create_dir(&sub).await.unwrap_err().kind(), ErrorKind::AlreadyExists);
        fs::write(sub.join("f"), "x").await.unwrap();
        assert_eq!(fs::remove_dir(&sub).await.unwrap_err().kind(), ErrorKind::DirectoryNotEmpty);
        assert_eq!(fs::remove_file(&sub).await.unwrap_err().kind(), ErrorKind::IsADirectory);
        assert_eq!(fs::read(&sub).await.unwrap_err().kind(), ErrorKind::IsADirectory);
        assert_eq!(fs::read_dir(sub.join("f")).await.unwrap_err().kind(), ErrorKind::NotADirectory);
        let again = OpenOptions::new().write(true).create_new(true).open(sub.join("f")).await;
        assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);

        // Refused before any job: no access mode, a NUL in the path.
        assert_eq!(OpenOptions::new().open(sub.join("f")).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(
            OpenOptions::new().read(true).create(true).open(sub.join("g")).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(fs::metadata("a\0b").await.unwrap_err().kind(), ErrorKind::InvalidInput);

        // Permission denied (not as root, who may do anything).
        let ro = dir.join("ro");
        fs::write(&ro, "r").await.unwrap();
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
        if !is_root() {
            assert_eq!(fs::write(&ro, "w").await.unwrap_err().kind(), ErrorKind::PermissionDenied);
        }
    });
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn rename_remove_and_copy() {
    let dir = TempDir::new("rename");
    uvasync::run(async {
        let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
        fs::write(&a, "content").await.unwrap();
        fs::rename(&a, &b).await.unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read_to_string(&b).await.unwrap(), "content");
        // rename replaces the target.
        fs::write(&c, "old").await.unwrap();
        fs::rename(&b, &c).await.unwrap();
        assert_eq!(fs::read_to_string(&c).await.unwrap(), "content");

        let data = bytes(2, 3 * 1024 * 1024 + 5);
        fs::write(&a, &data).await.unwrap();
        std::fs::set_permissions(&a, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        assert_eq!(fs::copy(&a, &b).await.unwrap(), data.len() as u64);
        assert_eq!(fs::read(&b).await.unwrap(), data);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&b).await.unwrap().permissions().mode() & 0o777, 0o640);
        // copy onto an existing, longer file truncates it.
        assert_eq!(fs::copy(&c, &b).await.unwrap(), 7);
        assert_eq!(fs::read(&b).await.unwrap(), b"content");

        fs::remove_file(&a).await.unwrap();
        fs::remove_file(&b).await.unwrap();
        assert!(!a.exists() && !b.exists());
    });
}

#[test]
fn create_dir_all_and_remove_dir() {
    let dir = TempDir::new("dirs");
    uvasync::run(async {
        let deep = dir.join("a/b/c/d");
        fs::create_dir_all(&deep).await.unwrap();
        assert!(deep.is_dir());
        fs::create_dir_all(&deep).await.unwrap(); // exists: fine
        fs::create_dir_all(dir.join("a/b/e")).await.unwrap();
        assert!(dir.join("a/b/e").is_dir());
        // A file on the way is an error.
        fs::write(dir.join("file"), "x").await.unwrap();
        assert!(fs::create_dir_all(dir.join("file/sub")).await.is_err());
        assert_eq!(fs::create_dir_all(dir.join("file")).await.unwrap_err().kind(), ErrorKind::AlreadyExists);

        for p in ["a/b/c/d", "a/b/c", "a/b/e", "a/b", "a"] {
            fs::remove_dir(dir.join(p)).await.unwrap();
        }
        assert!(!dir.join("a").exists());
    });
}

#[test]
fn read_dir_lists_every_entry() {
    let dir = TempDir::new("readdir");
    uvasync::run(async {
        for name in ["one", "two", "three"] {
            fs::write(dir.join(name), name).await.unwrap();
        }
        fs::create_dir(dir.join("sub")).await.unwrap();
        std::os::unix::fs::symlink("one", dir.join("link")).unwrap();

        let mut rd = fs::read_dir(&dir.0).await.unwrap();
        let mut seen = Vec::new();
        while let Some(e) = rd.next_entry().await.unwrap() {
            let name = e.file_name().into_string().unwrap();
            assert_eq!(e.path(), dir.join(&name));
            let ty = e.file_type().await.unwrap();
            let kind = if ty.is_dir() {
                "dir"
            } else if ty.is_symlink() {
                "link"
            } else {
                assert!(ty.is_file());
                assert_eq!(e.metadata().await.unwrap().len(), name.len() as u64);
                "file"
            };
            seen.push((name, kind));
        }
        assert!(rd.next_entry().await.unwrap().is_none());
        seen.sort();
        let want = [("link", "link"), ("one", "file"), ("sub", "dir"), ("three", "file"), ("two", "file")];
        assert_eq!(seen, want.map(|(n, k)| (n.to_string(), k)));

        let mut empty = fs::read_dir(dir.join("sub")).await.unwrap();
        assert!(empty.next_entry().await.unwrap().is_none());
    });
}

#[test]
fn file_read_write_seek() {
    let dir = TempDir::new("file");
    uvasync::run(async {
        let p = dir.join("f");
        let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p).await.unwrap();
        f.write_all(b"hello world").await.unwrap();
        assert_eq!(f.stream_position().await.unwrap(), 11);
        f.rewind().await.unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
        assert_eq!(f.read(&mut [0u8; 4]).await.unwrap(), 0); // end of file

        assert_eq!(f.seek(SeekFrom::End(-5)).await.unwrap(), 6);
        let mut w = [0u8; 5];
        f.read_exact(&mut w).await.unwrap();
        assert_eq!(&w, b"world");
        assert_eq!(f.seek(SeekFrom::Current(-11)).await.unwrap(), 0);
        assert_eq!(f.seek(SeekFrom::Current(-1)).await.unwrap_err().kind(), ErrorKind::InvalidInput);

        // Overwrite in the middle, then write past the end (a hole).
        f.seek(SeekFrom::Start(6)).await.unwrap();
        f.write_all(b"W").await.unwrap();
        f.seek(SeekFrom::Start(13)).await.unwrap();
        f.write_all(b"!").await.unwrap();
        f.flush().await.unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello World\0\0!");
        assert_eq!(f.read_exact(&mut [0u8; 1]).await.unwrap_err().kind(), ErrorKind::UnexpectedEof);

        // set_len cuts or extends; the position stays.
        f.set_len(5).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 5);
        assert_eq!(f.stream_position().await.unwrap(), 14);
        f.set_len(8).await.unwrap();
        f.sync_all().await.unwrap();
        f.sync_data().await.unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello\0\0\0");

        // A read right after a write sees it (one job at a time, in order).
        f.rewind().await.unwrap();
        f.write_all(b"HE").await.unwrap();
        let mut two = [0u8; 3];
        f.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"llo");
        f.rewind().await.unwrap();
        let mut all = Vec::new();
        f.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"HEllo\0\0\0");
    });
}

#[test]
fn small_reads_of_a_large_file() {
    let dir = TempDir::new("small");
    uvasync::run(async {
        let p = dir.join("f");
        let data = bytes(3, 300 * 1024 + 11);
        fs::write(&p, &data).await.unwrap();
        let mut f = File::open(&p).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = f.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data);
        // Seeking into the middle of what was read ahead.
        f.seek(SeekFrom::Start(100_000)).await.unwrap();
        f.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, data[100_000..100_007]);
        assert_eq!(f.seek(SeekFrom::Current(0)).await.unwrap(), 100_007);
    });
}

#[test]
fn append_mode_writes_at_the_end() {
    let dir = TempDir::new("append");
    uvasync::run(async {
        let p = dir.join("log");
        fs::write(&p, "one\n").await.unwrap();
        let mut f = OpenOptions::new().append(true).read(true).open(&p).await.unwrap();
        f.write_all(b"two\n").await.unwrap();
        f.seek(SeekFrom::Start(0)).await.unwrap();
        f.write_all(b"three\n").await.unwrap(); // still at the end
        assert_eq!(f.stream_position().await.unwrap(), 14);
        f.rewind().await.unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "one\ntwo\nthree\n");
    });
}

#[test]
fn a_pipe_is_read_and_written_in_order_and_cannot_seek() {
    use std::os::fd::FromRawFd;
    uvasync::run(async {
        let mut fds = [0; 2];
        // SAFETY: two descriptors, each owned by one std File below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let mut r = File::from_std(unsafe { std::fs::File::from_raw_fd(fds[0]) });
        let mut w = File::from_std(unsafe { std::fs::File::from_raw_fd(fds[1]) });
        let writer = uvasync::spawn(async move {
            for i in 0..200 {
                w.write_all(format!("line {i}\n").as_bytes()).await.unwrap();
            }
            w.flush().await.unwrap();
            // Dropped: the reader sees the end.
        });
        let mut got = String::new();
        r.read_to_string(&mut got).await.unwrap();
        writer.await.unwrap();
        let want: String = (0..200).map(|i| format!("line {i}\n")).collect();
        assert_eq!(got, want);
        assert_eq!(r.seek(SeekFrom::Start(0)).await.unwrap_err().raw_os_error(), Some(libc::ESPIPE));
    });
}

#[test]
fn from_std_goes_on_at_the_descriptors_position() {
    let dir = TempDir::new("fromstd");
    uvasync::run(async {
        let p = dir.join("f");
        fs::write(&p, "0123456789").await.unwrap();
        let mut std_file = std::fs::File::open(&p).unwrap();
        std::io::Seek::seek(&mut std_file, SeekFrom::Start(4)).unwrap();
        let mut f = File::from_std(std_file);
        let mut s = String::new();
        f.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "456789");
    });
}

#[test]
fn a_dropped_file_still_writes_what_it_took() {
    let dir = TempDir::new("dropped");
    uvasync::run(async {
        let p = dir.join("f");
        let data = bytes(4, 3 * 1024 * 1024);
        let mut f = File::create(&p).await.unwrap();
        // write() hands the bytes to a job and returns: drop before it ends.
        let n = f.write(&data).await.unwrap();
        drop(f);
        // The descriptor is closed after the job; poll until then.
        for _ in 0..500 {
            if std::fs::metadata(&p).unwrap().len() == n as u64 {
                break;
            }
            uvasync::sleep_ms(2).await;
        }
        assert_eq!(std::fs::read(&p).unwrap(), &data[..n]);
    });
}

#[test]
fn a_write_accepted_before_the_runtime_is_dropped_still_lands() {
    let dir = TempDir::new("shutdown");
    let p = dir.join("f");
    let data = bytes(8, 1 << 20);
    {
        let rt = uvasync::Builder::new_current_thread().max_blocking_threads(1).build().unwrap();
        rt.block_on(async {
            let mut f = File::create(&p).await.unwrap();
            // The write queues behind a busy pool thread; the File and then
            // the runtime go before it runs: the loop finishes it, then
            // closes the descriptor.
            drop(uvasync::spawn_blocking(|| std::thread::sleep(Duration::from_millis(50))));
            assert_eq!(f.write(&data).await.unwrap(), data.len());
            drop(f);
        });
    }
    assert_eq!(std::fs::read(&p).unwrap(), data);
    assert!(!open_fds().contains(&p), "the descriptor was not closed");
}

/// The files this process has open.
fn open_fds() -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd").unwrap().filter_map(|e| std::fs::read_link(e.unwrap().path()).ok()).collect()
}

#[test]
fn dropping_futures_mid_operation_is_sound() {
    let dir = TempDir::new("cancel");
    let rt = uvasync::Builder::new_current_thread().max_blocking_threads(1).build().unwrap();
    rt.block_on(async {
        let p = dir.join("f");
        fs::write(&p, bytes(5, 1 << 20)).await.unwrap();
        // Queue behind a blocking job, then drop: the job is dropped
        // before it starts, or runs and is freed later.
        for round in 0..50 {
            let gate = uvasync::spawn_blocking(|| std::thread::sleep(Duration::from_millis(1)));
            let mut f = File::open(&p).await.unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let read = uvasync::timeout(Duration::from_micros(round * 20), f.read(&mut buf)).await;
            drop(buf);
            drop(f);
            let open = uvasync::timeout(Duration::from_micros(round * 20), File::open(&p)).await;
            drop(open);
            let meta = uvasync::timeout(Duration::from_micros(round * 10), fs::metadata(&p)).await;
            drop((read, meta));
            gate.await.unwrap();
        }
    });
    // Every descriptor the jobs opened was closed: the loop closes cleanly
    // (counted below), and this process has no descriptor left on the file.
    drop(rt);
    assert!(!open_fds().contains(&dir.join("f")), "a descriptor on the file leaked");
}

/// Under AddressSanitizer (`rust/sanitize.sh asan`) freed memory waits in
/// a quarantine, 256 MiB by default, which the big copy's max-RSS check
/// would count as growth: this binary keeps it small. (Unused otherwise.)
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"quarantine_size_mb=16".as_ptr()
}

/// Polls `f` once.
async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut *f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[test]
fn an_open_dropped_after_its_job_ran_closes_the_descriptor() {
    let dir = TempDir::new("openrun");
    let p = dir.join("f");
    std::fs::write(&p, "x").unwrap();
    let rt = uvasync::Builder::new_current_thread().max_blocking_threads(1).build().unwrap();
    rt.block_on(async {
        for loop_saw_it in [false, true] {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let gate = uvasync::spawn_blocking(move || rx.recv().unwrap());
            let mut open = Box::pin(File::open(&p));
            assert!(poll_once(&mut open).await.is_none()); // queued behind the gate
            tx.send(()).unwrap();
            if loop_saw_it {
                uvasync::sleep_ms(50).await; // the loop takes the job's end
            } else {
                std::thread::sleep(Duration::from_millis(50)); // the pool ran it; the loop did not see it
            }
            drop(open);
            gate.await.unwrap();
            for _ in 0..100 {
                if !open_fds().contains(&p) {
                    break;
                }
                uvasync::sleep_ms(1).await;
            }
            assert!(!open_fds().contains(&p), "the descriptor opened for a dropped future leaked ({loop_saw_it})");
        }
    });
}

fn maxrss_kib() -> i64 {
    // SAFETY: an out struct for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss
}

/// A cheap checksum (8 lanes of rotate-xor over u64 words): fast enough
/// without optimisation for a big file.
#[derive(Default, PartialEq, Debug, Clone, Copy)]
struct Sum([u64; 8], u64);

impl Sum {
    fn add(&mut self, buf: &[u8]) {
        // SAFETY: any bytes are valid u64s.
        let (head, words, tail) = unsafe { buf.align_to::<[u64; 8]>() };
        assert!(head.is_empty() && tail.is_empty(), "chunks are 64-byte multiples");
        let a = &mut self.0;
        for w in words {
            a[0] = a[0].rotate_left(7) ^ w[0];
            a[1] = a[1].rotate_left(7) ^ w[1];
            a[2] = a[2].rotate_left(7) ^ w[2];
            a[3] = a[3].rotate_left(7) ^ w[3];
            a[4] = a[4].rotate_left(7) ^ w[4];
            a[5] = a[5].rotate_left(7) ^ w[5];
            a[6] = a[6].rotate_left(7) ^ w[6];
            a[7] = a[7].rotate_left(7) ^ w[7];
        }
        self.1 += buf.len() as u64;
    }
}

/// Reads `f` to its end in `chunk`-byte reads and sums it.
async fn sum_file(f: &mut File, chunk: usize) -> Sum {
    let mut buf = vec![0u8; chunk];
    let mut sum = Sum::default();
    loop {
        let mut got = 0;
        while got < chunk {
            match f.read(&mut buf[got..]).await.unwrap() {
                0 => break,
                n => got += n,
            }
        }
        if got == 0 {
            return sum;
        }
        sum.add(&buf[..got]);
    }
}

/// The size of the big copy in MiB: 256 by default, which keeps this
/// test to a few seconds on a loaded 2-core machine (a debug build sums
/// each byte twice); `UVASYNC_BIG_FILE_MIB=1024` runs the 1 GiB copy.
fn big_file_size() -> usize {
    let mib: usize = std::env::var("UVASYNC_BIG_FILE_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    mib.max(1) << 20
}

#[test]
fn a_big_file_copied_through_file_in_chunks_with_flat_memory() {
    let size = big_file_size();
    const CHUNK: usize = 1 << 20;
    let dir = TempDir::new("big");
    let t0 = std::time::Instant::now();
    let rss_before = maxrss_kib();
    uvasync::run(async {
        let (src, dst) = (dir.join("src"), dir.join("dst"));
        // The source: a random block, each chunk stamped with its index.
        let block = bytes(6, CHUNK);
        let mut want = Sum::default();
        let mut f = File::create(&src).await.unwrap();
        let mut chunk = block.clone();
        for i in 0..size / CHUNK {
            chunk[..8].copy_from_slice(&(i as u64).to_le_bytes());
            chunk[CHUNK / 2..CHUNK / 2 + 8].copy_from_slice(&(!i as u64).to_le_bytes());
            want.add(&chunk);
            f.write_all(&chunk).await.unwrap();
        }
        f.flush().await.unwrap();
        drop(f);

        // The copy: chunked reads from one File, writes to another.
        let mut from = File::open(&src).await.unwrap();
        let mut to = File::create(&dst).await.unwrap();
        let mut buf = vec![0u8; CHUNK];
        let mut copied = 0usize;
        loop {
            let n = from.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            to.write_all(&buf[..n]).await.unwrap();
            copied += n;
        }
        to.flush().await.unwrap();
        drop(to);
        assert_eq!(copied, size);

        let mut back = File::open(&dst).await.unwrap();
        assert_eq!(back.metadata().await.unwrap().len(), size as u64);
        let got = sum_file(&mut back, CHUNK).await;
        assert_eq!(got, want);
    });
    let grew_mib = (maxrss_kib() - rss_before) / 1024;
    let took = t0.elapsed();
    eprintln!("{} MiB written, copied and read back in {took:?}; max RSS grew {grew_mib} MiB", size >> 20);
    assert!(grew_mib < 64, "memory grew by {grew_mib} MiB for a {} MiB copy", size >> 20);
}

#[test]
fn futures_io_copy_between_files_and_to_a_tcp_stream() {
    let dir = TempDir::new("copy");
    uvasync::run(async {
        let (a, b) = (dir.join("a"), dir.join("b"));
        let data = bytes(7, 4 * 1024 * 1024 + 3);
        fs::write(&a, &data).await.unwrap();

        // File to File with futures::io::copy (AsyncRead -> AsyncWrite).
        let from = File::open(&a).await.unwrap();
        let mut to = File::create(&b).await.unwrap();
        let n = futures_util::io::copy(from, &mut to).await.unwrap();
        to.close().await.unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(fs::read(&b).await.unwrap(), data);

        // File to a TCP stream with copy_buf (the read job's bytes lent).
        let listener = uvasync::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = uvasync::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            conn.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut client = uvasync::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut from = File::open(&a).await.unwrap();
        from.seek(SeekFrom::Start(3)).await.unwrap();
        let n = futures_util::io::copy_buf(&mut from, &mut client).await.unwrap();
        assert_eq!(n, data.len() as u64 - 3);
        client.close().await.unwrap();
        assert_eq!(server.await.unwrap(), &data[3..]);
    });
}

#[test]
fn send_file_to_a_tcp_stream_from_the_files_position() {
    let dir = TempDir::new("sendfile");
    uvasync::run(async {
        let p = dir.join("f");
        let data = bytes(9, 3 * 1024 * 1024 + 7);
        fs::write(&p, &data).await.unwrap();
        let (mut a, mut b) = uvasync::TcpStream::pair().await.unwrap();
        let reader = uvasync::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut f = File::open(&p).await.unwrap();
        f.seek(SeekFrom::Start(100)).await.unwrap();
        assert_eq!(a.send_file(&mut f, 1000).await.unwrap(), 1000);
        assert_eq!(f.stream_position().await.unwrap(), 1100);
        a.write_all(b"|").await.unwrap();
        // More than is left: what is left, then nothing.
        assert_eq!(a.send_file(&mut f, data.len()).await.unwrap(), data.len() - 1100);
        assert_eq!(a.send_file(&mut f, 10).await.unwrap(), 0);
        a.shutdown().await.unwrap();
        let got = reader.await.unwrap();
        let mut want = data[100..1100].to_vec();
        want.push(b'|');
        want.extend_from_slice(&data[1100..]);
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    });
}
