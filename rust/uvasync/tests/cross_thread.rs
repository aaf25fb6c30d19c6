//! Other threads feeding a runtime: Handle::spawn through the core's
//! thread-safe queue, and the mpsc channel whose Sender is Send + Clone.
use std::sync::Arc;
use std::time::Duration;

use uvasync::sync::mpsc;
use uvasync::{Runtime, TrySendError};

#[test]
fn handle_spawns_from_other_threads_and_results_come_back() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            let h = handle.clone();
            std::thread::spawn(move || {
                let r = h.spawn_with(move || async move {
                    uvasync::sleep_ms(2).await;
                    i * 10
                });
                // Awaited on this thread, which runs no runtime.
                r.blocking_join().unwrap()
            })
        })
        .collect();
    let from_main = {
        let h = handle.clone();
        std::thread::spawn(move || h.spawn(async { panic!("remote boom") })).join().unwrap()
    };
    rt.block_on(async {
        let err = from_main.await.unwrap_err();
        assert!(err.is_panic());
        // Run the loop until every thread got its result.
        while threads.iter().any(|t| !t.is_finished()) {
            uvasync::sleep_ms(1).await;
        }
    });
    let got: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(got, [0, 10, 20, 30]);

    // A task still running when the runtime goes is cancelled; spawning
    // after that gives a cancelled result at once.
    let pending = handle.spawn_with(|| uvasync::sleep_ms(60_000));
    rt.block_on(async { uvasync::sleep_ms(5).await });
    drop(rt);
    assert!(pending.blocking_join().unwrap_err().is_cancelled());
    let late = handle.spawn(async { 1 });
    assert!(late.is_finished());
    assert!(late.blocking_join().unwrap_err().is_cancelled());
}

#[test]
fn mpsc_sender_feeds_the_loop_from_threads_and_other_executors() {
    uvasync::run(async {
        let (tx, mut rx) = mpsc::channel::<(u32, u32)>(4);
        let mut threads = vec![];
        for t in 0..3 {
            let tx = tx.clone();
            threads.push(std::thread::spawn(move || {
                for i in 0..200 {
                    tx.blocking_send((t, i)).unwrap();
                }
            }));
        }
        // One more producer inside a tokio runtime, with send().await.
        let tx_tokio = tx.clone();
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async move {
                for i in 0..200 {
                    tx_tokio.send((3, i)).await.unwrap();
                }
            });
        }));
        drop(tx);
        let mut next = [0u32; 4];
        let mut n = 0;
        while let Some((t, i)) = rx.recv().await {
            // Each producer's messages arrive in the order it sent them.
            assert_eq!(next[t as usize], i);
            next[t as usize] += 1;
            n += 1;
        }
        assert_eq!(n, 800);
        assert_eq!(rx.recv().await, None);
        for t in threads {
            t.join().unwrap();
        }
    });
}

#[test]
fn mpsc_try_send_full_closed_and_blocking_send_wakes_at_close() {
    uvasync::run(async {
        let (tx, mut rx) = mpsc::channel(2);
        let tx2 = tx.clone();
        let t = std::thread::spawn(move || {
            tx2.try_send(1).unwrap();
            tx2.try_send(2).unwrap();
            assert_eq!(tx2.try_send(3), Err(TrySendError::Full(3)));
            // Blocks until the receiver takes one.
            tx2.blocking_send(3).unwrap();
            // Blocks until the receiver is dropped: then fails.
            tx2.blocking_send(4).unwrap_err().0
        });
        uvasync::sleep_ms(20).await;
        assert_eq!(rx.recv().await, Some(1));
        uvasync::sleep_ms(20).await;
        drop(rx);
        // Let the sender's thread see the close.
        while !t.is_finished() {
            uvasync::sleep_ms(1).await;
        }
        assert_eq!(t.join().unwrap(), 4);
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(5), Err(TrySendError::Closed(5)));
    });
}

#[test]
fn blocking_send_inside_a_runtime_panics_as_tokios() {
    uvasync::run(async {
        let (tx, _rx) = mpsc::channel::<u8>(1);
        let r = std::panic::catch_unwind(|| tx.blocking_send(1));
        let msg = r.unwrap_err().downcast::<&str>().map(|s| s.to_string()).unwrap_or_default();
        assert!(msg.starts_with("Cannot block the current thread from within a runtime"), "{msg}");
    });
    let r = std::panic::catch_unwind(|| uvasync::run(async { mpsc::channel::<u8>(0) }));
    assert!(r.is_err());
}

#[test]
fn senders_outlive_the_runtime_safely() {
    let rt = Runtime::new().unwrap();
    let tx = rt.block_on(async {
        let (tx, rx) = mpsc::channel::<Arc<()>>(4);
        drop(rx);
        tx
    });
    drop(rt);
    let v = Arc::new(());
    assert!(tx.try_send(v.clone()).is_err());
    std::thread::sleep(Duration::from_millis(1));
    drop(tx);
    assert_eq!(Arc::strong_count(&v), 1);
    // A channel whose receiver is alive when the runtime goes: the
    // message in flight is dropped with the loop.
    let rt = Runtime::new().unwrap();
    let (tx, rx) = rt.block_on(async { mpsc::channel::<Arc<()>>(4) });
    tx.try_send(v.clone()).unwrap();
    drop(rx);
    drop(rt);
    drop(tx);
    assert_eq!(Arc::strong_count(&v), 1);
}

/// A loop that closes while another runtime runs (its last object dropped
/// in that runtime's task) runs its pending cross-thread calls then: a job
/// sent to it must not start on the other runtime.
#[test]
fn a_job_for_a_closing_loop_does_not_start_on_another_runtime() {
    let rt_a = Runtime::new().unwrap();
    let handle = rt_a.handle();
    let keep_a_alive = rt_a.block_on(async { uvasync::Mutex::new(()) });
    drop(rt_a);
    let job = handle.spawn_with(|| async { 1 });
    let rt_b = Runtime::new().unwrap();
    rt_b.block_on(async move {
        drop(keep_a_alive); // the loop of A closes here
        uvasync::sleep_ms(5).await;
    });
    assert!(job.blocking_join().unwrap_err().is_cancelled());
}
