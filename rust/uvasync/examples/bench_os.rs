//! Operating-system benchmarks, uvasync vs tokio current-thread, for
//! bench/run_os.py: `bench_os IMPL BENCH ARGS` with IMPL uvasync|tokio and
//!
//!   spawn N            spawn /bin/true (stdio inherited) and wait for its
//!                      exit, N times one after another: processes/s
//!   work N INFLIGHT    INFLIGHT tasks each awaiting spawn_blocking of a
//!                      no-op closure in turn, N jobs in all: jobs/s
//!   read PATH CHUNK    open PATH and read it to the end into one CHUNK-byte
//!                      buffer (the crate's async file; tokio::fs::File):
//!                      MB/s (10^6 bytes)
//!
//! Prints the line of bench/bench_os.c: impl=.. name=.. n=.. rate=..
//! wall_s=.. cpu_s=.. ok=1.
mod bench_util;

use std::time::Instant;

use bench_util::cpu_seconds;

fn count(s: &str) -> usize {
    let (num, scale) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1e3),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1e6),
        _ => (s, 1.0),
    };
    (num.parse::<f64>().expect("a count") * scale) as usize
}

fn shares(n: usize, inflight: usize) -> Vec<usize> {
    (0..inflight).map(|i| n / inflight + usize::from(i < n % inflight)).collect()
}

async fn uva_spawn(n: usize) -> usize {
    for _ in 0..n {
        let mut child = uvasync::process::Command::new("/bin/true").spawn().unwrap();
        assert!(child.wait().await.unwrap().success());
    }
    n
}

async fn tokio_spawn(n: usize) -> usize {
    for _ in 0..n {
        let mut child = tokio::process::Command::new("/bin/true").spawn().unwrap();
        assert!(child.wait().await.unwrap().success());
    }
    n
}

async fn uva_work(n: usize, inflight: usize) -> usize {
    let workers: Vec<_> = shares(n, inflight)
        .into_iter()
        .map(|jobs| {
            uvasync::spawn(async move {
                for _ in 0..jobs {
                    uvasync::spawn_blocking(|| ()).await.unwrap();
                }
                jobs
            })
        })
        .collect();
    let mut done = 0;
    for w in workers {
        done += w.await.unwrap();
    }
    done
}

async fn tokio_work(n: usize, inflight: usize) -> usize {
    let workers: Vec<_> = shares(n, inflight)
        .into_iter()
        .map(|jobs| {
            tokio::spawn(async move {
                for _ in 0..jobs {
                    tokio::task::spawn_blocking(|| ()).await.unwrap();
                }
                jobs
            })
        })
        .collect();
    let mut done = 0;
    for w in workers {
        done += w.await.unwrap();
    }
    done
}

async fn uva_read(path: String, chunk: usize) -> usize {
    let mut file = uvasync::fs::File::open(&path).await.unwrap();
    let mut buf = vec![0u8; chunk];
    let mut total = 0;
    loop {
        let n = file.read(&mut buf).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

async fn tokio_read(path: String, chunk: usize) -> usize {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(&path).await.unwrap();
    let mut buf = vec![0u8; chunk];
    let mut total = 0;
    loop {
        let n = file.read(&mut buf).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// Runs `run` and gives its count, wall seconds and process CPU seconds.
fn timed(run: impl FnOnce() -> usize) -> (usize, f64, f64) {
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let n = run();
    let wall = t0.elapsed().as_secs_f64();
    let c1 = cpu_seconds();
    (n, wall, (c1.0 - c0.0) + (c1.1 - c0.1))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_os uvasync|tokio spawn N | work N INFLIGHT | read PATH CHUNK";
    assert!(args.len() >= 4, "{usage}");
    let (imp, bench) = (args[1].as_str(), args[2].as_str());
    let arg = |i: usize| args.get(i).map(|s| count(s)).expect(usage);
    let path = || args[3].clone();
    // Each runtime is made before and dropped after the measured region, as
    // the C programs' loops.
    let (n, wall, cpu) = match imp {
        "uvasync" => {
            let rt = uvasync::Runtime::new().unwrap();
            timed(|| match bench {
                "spawn" => rt.block_on(uva_spawn(arg(3))),
                "work" => rt.block_on(uva_work(arg(3), arg(4))),
                "read" => rt.block_on(uva_read(path(), arg(4))),
                _ => panic!("{usage}"),
            })
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            timed(|| match bench {
                "spawn" => rt.block_on(tokio_spawn(arg(3))),
                "work" => rt.block_on(tokio_work(arg(3), arg(4))),
                "read" => rt.block_on(tokio_read(path(), arg(4))),
                _ => panic!("{usage}"),
            })
        }
        _ => panic!("{usage}"),
    };
    let rate = n as f64 / wall / if bench == "read" { 1e6 } else { 1.0 };
    println!("impl={imp} name={bench} n={n} rate={rate:.1} wall_s={wall:.6} cpu_s={cpu:.6} ok=1");
}
