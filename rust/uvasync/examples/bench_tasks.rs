//! Task and timer benchmarks, uvasync vs tokio current-thread, for
//! bench/run_rust.py: `bench_tasks IMPL BENCH N` with IMPL uvasync|tokio and
//!
//!   spawn N   spawn-and-join: a task spawns batches of 1000 trivial tasks
//!             and awaits each JoinHandle
//!   sleep N   N tasks each sleep once (50..150 ms, fixed seed); RSS is
//!             sampled while all sleep (memory per sleeping task), and the
//!             CPU time covers spawning, arming, firing and finishing
//!
//! Prints one line: impl=.. name=.. n=.. ns_per_op=.. cpu_ns_per_op=..
//! [bytes_per_task=..].
mod bench_util;

use std::time::{Duration, Instant};

use bench_util::{cpu_seconds, rss_bytes, Rng};

const BATCH: usize = 1000;

fn delays(n: usize) -> Vec<u64> {
    let mut rng = Rng(42);
    (0..n).map(|_| 50 + rng.next() % 100).collect()
}

async fn uva_spawn(n: usize) {
    let mut done = 0;
    while done < n {
        let hs: Vec<_> = (0..BATCH.min(n - done)).map(|i| uvasync::spawn(async move { i })).collect();
        for h in hs {
            std::hint::black_box(h.await.unwrap());
        }
        done += BATCH;
    }
}

async fn tokio_spawn(n: usize) {
    let mut done = 0;
    while done < n {
        let hs: Vec<_> = (0..BATCH.min(n - done)).map(|i| tokio::spawn(async move { i })).collect();
        for h in hs {
            std::hint::black_box(h.await.unwrap());
        }
        done += BATCH;
    }
}

async fn uva_sleep(d: Vec<u64>) -> u64 {
    let base = rss_bytes();
    let hs: Vec<_> = d.into_iter().map(|ms| uvasync::spawn(uvasync::sleep_ms(ms))).collect();
    uvasync::sleep_ms(20).await; // every task has run once and sleeps
    let during = rss_bytes();
    for h in hs {
        h.await.unwrap();
    }
    during.saturating_sub(base)
}

async fn tokio_sleep(d: Vec<u64>) -> u64 {
    let base = rss_bytes();
    let hs: Vec<_> = d.into_iter().map(|ms| tokio::spawn(tokio::time::sleep(Duration::from_millis(ms)))).collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let during = rss_bytes();
    for h in hs {
        h.await.unwrap();
    }
    during.saturating_sub(base)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (imp, bench) = (args[1].as_str(), args[2].as_str());
    let n: usize = args[3].parse().unwrap();
    let d = delays(n);
    let tokio_rt = || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let uva_rt = || uvasync::Runtime::new().unwrap();
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let mut mem = None;
    match (imp, bench) {
        ("uvasync", "spawn") => uva_rt().block_on(uva_spawn(n)),
        ("tokio", "spawn") => tokio_rt().block_on(tokio_spawn(n)),
        ("uvasync", "sleep") => mem = Some(uva_rt().block_on(uva_sleep(d))),
        ("tokio", "sleep") => mem = Some(tokio_rt().block_on(tokio_sleep(d))),
        _ => panic!("usage: bench_tasks uvasync|tokio spawn|sleep N"),
    }
    let wall = t0.elapsed().as_secs_f64();
    let c1 = cpu_seconds();
    let cpu = (c1.0 - c0.0) + (c1.1 - c0.1);
    let mut line = format!(
        "impl={imp} name={bench} n={n} ns_per_op={:.1} cpu_ns_per_op={:.1}",
        wall * 1e9 / n as f64,
        cpu * 1e9 / n as f64
    );
    if let Some(m) = mem {
        line += &format!(" bytes_per_task={:.1}", m as f64 / n as f64);
    }
    println!("{line}");
}
