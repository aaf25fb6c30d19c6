//! Signals (issue 24, items 2 and 5): a signal raised to this process
//! reaches every watcher, on one runtime or on two in two threads;
//! ctrl_c; several arrivals, coalesced between two waits.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::Duration;

use uvasync::signal::{ctrl_c, signal, SignalKind};
use uvasync::Runtime;

/// The signals' dispositions are the process's: the tests take turns (a
/// test's last watcher closing gives a signal its default action back,
/// which would end the process when another test raises it then).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn raise(kind: SignalKind) {
    // SAFETY: kill(2) on our own pid.
    assert_eq!(unsafe { libc::kill(libc::getpid(), kind.as_raw_value()) }, 0);
}

const LONG: Duration = Duration::from_secs(5);

#[test]
fn a_raised_signal_is_received() {
    let _turn = one_at_a_time();
    uvasync::run(async {
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        assert_eq!(usr1.kind(), SignalKind::user_defined1());
        raise(SignalKind::user_defined1());
        assert_eq!(uvasync::timeout(LONG, usr1.recv()).await, Ok(Some(())));
    });
}

#[test]
fn a_signal_stream_receives_several_and_coalesces_between_waits() {
    let _turn = one_at_a_time();
    uvasync::run(async {
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        // One at a time: each wait gets its own.
        for _ in 0..5 {
            raise(SignalKind::user_defined1());
            assert_eq!(uvasync::timeout(LONG, usr1.recv()).await, Ok(Some(())));
        }
        // A waiting task is woken by one raised later.
        let waiter = uvasync::spawn(async move {
            usr1.recv().await.unwrap();
            usr1
        });
        uvasync::sleep_ms(10).await;
        raise(SignalKind::user_defined1());
        let mut usr1 = uvasync::timeout(LONG, waiter).await.unwrap().unwrap();
        // Three before a wait: one wait completes, then nothing is left.
        // (A signal sent to the process may be handled on another thread:
        // the loop runs meanwhile, so that all three are in.)
        for _ in 0..3 {
            raise(SignalKind::user_defined1());
        }
        uvasync::sleep_ms(100).await;
        assert_eq!(uvasync::timeout(LONG, usr1.recv()).await, Ok(Some(())));
        assert!(uvasync::timeout(Duration::from_millis(50), usr1.recv()).await.is_err());
        // That cancelled wait left nothing behind: the next one works.
        raise(SignalKind::user_defined1());
        assert_eq!(uvasync::timeout(LONG, usr1.recv()).await, Ok(Some(())));
    });
}

#[test]
fn two_watchers_on_one_runtime_both_receive() {
    let _turn = one_at_a_time();
    uvasync::run(async {
        let mut a = signal(SignalKind::user_defined2()).unwrap();
        let mut b = signal(SignalKind::user_defined2()).unwrap();
        raise(SignalKind::user_defined2());
        assert_eq!(uvasync::timeout(LONG, a.recv()).await, Ok(Some(())));
        assert_eq!(uvasync::timeout(LONG, b.recv()).await, Ok(Some(())));
    });
}

#[test]
fn ctrl_c_completes_at_the_next_sigint() {
    let _turn = one_at_a_time();
    uvasync::run(async {
        // The watcher exists from the call on: a SIGINT before the first
        // poll counts, and does not end the process.
        let interrupted = ctrl_c();
        raise(SignalKind::interrupt());
        uvasync::timeout(LONG, interrupted).await.unwrap().unwrap();
        // Awaited by a task, raised meanwhile.
        let waiter = uvasync::spawn(ctrl_c());
        uvasync::sleep_ms(10).await;
        raise(SignalKind::interrupt());
        uvasync::timeout(LONG, waiter).await.unwrap().unwrap().unwrap();
    });
}

#[test]
fn two_runtimes_in_two_threads_each_get_the_signal() {
    let _turn = one_at_a_time();
    let ready = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                Runtime::new().unwrap().block_on(async {
                    let mut hup = signal(SignalKind::hangup()).unwrap();
                    ready.wait(); // both watch before the signal is raised
                    uvasync::timeout(LONG, hup.recv()).await
                })
            })
        })
        .collect();
    ready.wait();
    raise(SignalKind::hangup());
    for t in threads {
        assert_eq!(t.join().unwrap(), Ok(Some(())));
    }
}

#[test]
fn signals_that_cannot_be_caught_are_refused() {
    uvasync::run(async {
        for signum in [0, libc::SIGKILL, libc::SIGSTOP, 100_000] {
            let err = signal(SignalKind::from_raw(signum)).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "signal {signum}: {err}");
        }
    });
}

#[test]
fn a_signal_used_from_another_runtime_panics_with_a_clear_message() {
    let rt1 = Runtime::new().unwrap();
    let rt2 = Runtime::new().unwrap();
    let mut sig = rt1.block_on(async { signal(SignalKind::window_change()).unwrap() });
    let r = catch_unwind(AssertUnwindSafe(|| rt2.block_on(async { sig.recv().await })));
    let payload = r.unwrap_err();
    let msg = payload.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("another runtime"), "unexpected panic: {msg:?}");
    drop(sig);
}
