//! spawn_blocking: results and panics come back to the awaiting task, jobs
//! overlap up to the pool's size, abort drops a job not started, a dropped
//! handle detaches, and whatever the job held is dropped exactly once.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use uvasync::{spawn_blocking, Builder, Runtime};

fn pool(n: usize) -> Runtime {
    Builder::new_current_thread().max_blocking_threads(n).build().unwrap()
}

#[test]
fn results_come_back_to_the_awaiting_task() {
    uvasync::run(async {
        assert_eq!(spawn_blocking(|| 6 * 7).await.unwrap(), 42);
        let s = spawn_blocking(|| "x".repeat(3)).await.unwrap();
        assert_eq!(s, "xxx");
        // The closure runs on another thread than the loop's.
        let loop_thread = std::thread::current().id();
        let job_thread = spawn_blocking(|| std::thread::current().id()).await.unwrap();
        assert_ne!(job_thread, loop_thread);
    });
}

#[test]
fn a_panic_is_carried_to_the_awaiter() {
    uvasync::run(async {
        let err = spawn_blocking(|| -> u32 { panic!("boom in the pool") }).await.unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom in the pool");
        // The pool goes on.
        assert_eq!(spawn_blocking(|| 1).await.unwrap(), 1);
    });
}

#[test]
fn a_resumed_panic_unwinds_out_of_block_on() {
    let caught = std::panic::catch_unwind(|| {
        uvasync::run(async {
            let err = spawn_blocking(|| panic!("resumed")).await.unwrap_err();
            std::panic::resume_unwind(err.into_panic());
        })
    });
    assert_eq!(*caught.unwrap_err().downcast::<&str>().unwrap(), "resumed");
}

#[test]
fn blocking_calls_overlap() {
    let rt = pool(4);
    let took = rt.block_on(async {
        let t0 = Instant::now();
        let hs: Vec<_> = (0..4).map(|_| spawn_blocking(|| std::thread::sleep(Duration::from_millis(200)))).collect();
        for h in hs {
            h.await.unwrap();
        }
        t0.elapsed()
    });
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_millis(700), "four 200 ms sleeps did not overlap: {took:?}");
}

#[test]
fn the_pool_size_bounds_the_jobs_running_at_once() {
    let rt = pool(3);
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    rt.block_on(async {
        let hs: Vec<_> = (0..12)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                spawn_blocking(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    assert_eq!(most.load(Ordering::SeqCst), 3);
}

#[test]
fn the_loop_runs_while_a_job_blocks() {
    uvasync::run(async {
        let (tx, rx) = mpsc::channel::<()>();
        let job = spawn_blocking(move || rx.recv().unwrap());
        // Timers fire and tasks run meanwhile.
        let ticker = uvasync::spawn(async {
            for _ in 0..5 {
                uvasync::sleep_ms(2).await;
            }
            7
        });
        assert_eq!(ticker.await.unwrap(), 7);
        assert!(!job.is_finished());
        tx.send(()).unwrap();
        job.await.unwrap();
    });
}

/// Counts drops of what a job captures or returns.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn abort_drops_a_job_not_started_and_its_closure_once() {
    let rt = pool(1);
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let (tx, rx) = mpsc::channel::<()>();
        let first = spawn_blocking(move || rx.recv().unwrap());
        let held = Counted(drops.clone());
        let r = ran.clone();
        let second = spawn_blocking(move || {
            let _held = held;
            r.store(true, Ordering::SeqCst);
        });
        second.abort();
        assert!(second.is_finished());
        assert!(second.await.unwrap_err().is_cancelled());
        assert_eq!(drops.load(Ordering::SeqCst), 1, "the closure never run is dropped once");
        tx.send(()).unwrap();
        first.await.unwrap();
    });
    drop(rt);
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn abort_leaves_a_running_job_to_its_result() {
    uvasync::run(async {
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let h = spawn_blocking(move || {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            5
        });
        while started_rx.try_recv().is_err() {
            uvasync::sleep_ms(1).await;
        }
        h.abort(); // too late: it runs, as tokio's
        assert_eq!(h.await.unwrap(), 5);
    });
}

#[test]
fn a_dropped_handle_detaches_the_job() {
    let done = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = pool(1);
    rt.block_on(async {
        let (tx, rx) = mpsc::channel::<()>();
        let blocker = spawn_blocking(move || rx.recv().unwrap());
        // Not started yet when its handle goes: it still runs.
        let (d, c) = (done.clone(), drops.clone());
        drop(spawn_blocking(move || {
            d.store(true, Ordering::SeqCst);
            Counted(c)
        }));
        tx.send(()).unwrap();
        blocker.await.unwrap();
        let t0 = Instant::now();
        while !done.load(Ordering::SeqCst) {
            assert!(t0.elapsed() < Duration::from_secs(5));
            uvasync::sleep_ms(1).await;
        }
    });
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the result nobody took is dropped once");
}

#[test]
fn dropping_the_runtime_waits_for_a_detached_job() {
    let done = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let rt = pool(2);
        let (d, c) = (done.clone(), drops.clone());
        rt.block_on(async move {
            drop(spawn_blocking(move || {
                std::thread::sleep(Duration::from_millis(50));
                d.store(true, Ordering::SeqCst);
                Counted(c)
            }));
        });
    }
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_handle_awaited_in_another_task() {
    uvasync::run(async {
        let h = spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(10));
            9
        });
        let waiter = uvasync::spawn(async move { h.await.unwrap() + 1 });
        assert_eq!(waiter.await.unwrap(), 10);
    });
}

#[test]
fn timeout_on_a_job_leaves_it_running() {
    uvasync::run(async {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let mut h = spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(60));
            d.store(true, Ordering::SeqCst);
            3
        });
        assert!(uvasync::timeout(Duration::from_millis(5), &mut h).await.is_err());
        assert_eq!(h.await.unwrap(), 3);
        assert!(done.load(Ordering::SeqCst));
    });
}

/// xorshift64*: a fixed pseudo-random sequence.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn ten_thousand_jobs_on_a_pool_of_four_with_random_aborts() {
    const N: usize = 10_000;
    let rt = pool(4);
    let ran: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let (ok, cancelled) = rt.block_on(async {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut handles = Vec::with_capacity(N);
        for i in 0..N {
            let ran = ran.clone();
            let h = spawn_blocking(move || {
                ran[i].store(true, Ordering::SeqCst);
                let mut x = i as u64;
                for _ in 0..100 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                }
                (i, x)
            });
            handles.push(h);
            // Now and then abort one of the recent jobs (queued or running).
            if rng.next() % 3 == 0 {
                let back = (rng.next() % 64) as usize;
                handles[i.saturating_sub(back)].abort();
            }
            if i % 1000 == 999 {
                uvasync::yield_now().await;
            }
        }
        let (mut ok, mut cancelled) = (0, 0);
        for (i, h) in handles.into_iter().enumerate() {
            match h.await {
                Ok((j, x)) => {
                    let mut want = i as u64;
                    for _ in 0..100 {
                        want = want.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    }
                    assert_eq!((j, x), (i, want));
                    assert!(ran[i].load(Ordering::SeqCst));
                    ok += 1;
                }
                Err(e) => {
                    assert!(e.is_cancelled());
                    assert!(!ran[i].load(Ordering::SeqCst), "job {i} ran but gave no result");
                    cancelled += 1;
                }
            }
        }
        (ok, cancelled)
    });
    eprintln!("{ok} jobs ran, {cancelled} were dropped before they started");
    assert_eq!(ok + cancelled, N);
    assert!(cancelled > 100, "few aborts reached a queued job: {cancelled}");
    assert!(ok > N / 2, "{ok}");
}
