//! Task-switch benchmark, uvasync vs tokio current-thread, for
//! bench/run_rust.py: `bench_yield IMPL N [TASKS]` with IMPL uvasync|tokio.
//!
//! TASKS tasks (default 1000) each call `yield_now().await` N / TASKS times,
//! the shape of the C benchmark `bench_core yield`: one op is one switch.
//! Prints one line: impl=.. name=yield n=.. ns_per_op=.. cpu_ns_per_op=..
//! (a separate program from bench_tasks.rs so that the two can change apart).
mod bench_util;

use std::time::Instant;

use bench_util::cpu_seconds;

async fn uva_yield(tasks: usize, rounds: usize) {
    let hs: Vec<_> = (0..tasks)
        .map(|_| {
            uvasync::spawn(async move {
                for _ in 0..rounds {
                    uvasync::yield_now().await;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
}

async fn tokio_yield(tasks: usize, rounds: usize) {
    let hs: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..rounds {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        panic!("usage: bench_yield uvasync|tokio N [TASKS]");
    }
    let imp = args[1].as_str();
    let n: usize = args[2].parse().unwrap();
    let tasks: usize = args.get(3).map_or(1000, |t| t.parse().unwrap());
    let rounds = (n / tasks).max(1);
    let switches = tasks * rounds;
    let (c0, t0) = (cpu_seconds(), Instant::now());
    match imp {
        "uvasync" => uvasync::Runtime::new().unwrap().block_on(uva_yield(tasks, rounds)),
        "tokio" => tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(tokio_yield(tasks, rounds)),
        _ => panic!("usage: bench_yield uvasync|tokio N [TASKS]"),
    }
    let wall = t0.elapsed().as_secs_f64();
    let c1 = cpu_seconds();
    let cpu = (c1.0 - c0.0) + (c1.1 - c0.1);
    println!(
        "impl={imp} name=yield n={switches} ns_per_op={:.2} cpu_ns_per_op={:.2}",
        wall * 1e9 / switches as f64,
        cpu * 1e9 / switches as f64
    );
}
