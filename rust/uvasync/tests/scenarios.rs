//! The C suite's scenarios in Rust: fairness, abort while sleeping and while
//! reading, timeouts, EOF in the middle of read_exact, reset by peer, many
//! connections, cross-thread wake-ups.
use std::cell::RefCell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use uvasync::{Runtime, TcpListener, TcpStream};

#[test]
fn round_robin_fairness() {
    let trace = Rc::new(RefCell::new(String::new()));
    uvasync::run({
        let trace = trace.clone();
        async move {
            let workers: Vec<_> = ["a", "b", "c"]
                .into_iter()
                .map(|name| {
                    let trace = trace.clone();
                    uvasync::spawn(async move {
                        for i in 0..3 {
                            trace.borrow_mut().push_str(&format!("{name}{i} "));
                            uvasync::yield_now().await;
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await.unwrap();
            }
        }
    });
    assert_eq!(trace.borrow().as_str(), "a0 b0 c0 a1 b1 c1 a2 b2 c2 ");
}

#[test]
fn abort_while_sleeping() {
    uvasync::run(async {
        let dropped = Rc::new(RefCell::new(false));
        struct OnDrop(Rc<RefCell<bool>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                *self.0.borrow_mut() = true;
            }
        }
        let guard = OnDrop(dropped.clone());
        let h = uvasync::spawn(async move {
            let _g = guard;
            uvasync::sleep_ms(60_000).await;
            "woke"
        });
        uvasync::sleep_ms(5).await; // it sleeps now
        assert!(!h.is_finished());
        h.abort();
        let err = h.await.unwrap_err();
        assert!(err.is_cancelled());
        assert!(*dropped.borrow(), "the future was dropped");
    });
}

#[test]
fn abort_while_reading_leaves_the_bytes() {
    uvasync::run(async {
        let (mut c, d) = TcpStream::pair().await.unwrap();
        // An async mutex: the reader holds the stream across its await.
        let d = Rc::new(uvasync::Mutex::new(d));
        let d2 = d.clone();
        let r = uvasync::spawn(async move {
            let mut buf = [0u8; 4];
            let mut s = d2.lock().await;
            s.read_exact(&mut buf).await.map(|_| buf)
        });
        uvasync::sleep_ms(5).await;
        c.write_all(b"12").await.unwrap();
        uvasync::sleep_ms(5).await;
        r.abort();
        assert!(r.await.unwrap_err().is_cancelled());
        c.write_all(b"34").await.unwrap();
        let mut buf = [0u8; 4];
        d.lock().await.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"1234");
    });
}

#[test]
fn timeout_expires_and_the_read_is_withdrawn() {
    uvasync::run(async {
        let (mut a, mut b) = TcpStream::pair().await.unwrap();
        let mut buf = [0u8; 3];
        let r = uvasync::timeout(Duration::from_millis(20), b.read_exact(&mut buf)).await;
        assert!(r.is_err(), "nothing was sent");
        a.write_all(b"xyz").await.unwrap();
        let r = uvasync::timeout(Duration::from_secs(10), b.read_exact(&mut buf)).await;
        r.unwrap().unwrap();
        assert_eq!(&buf, b"xyz");
        let v = uvasync::timeout(Duration::from_secs(10), async { 5 }).await;
        assert_eq!(v, Ok(5));
    });
}

#[test]
fn eof_in_the_middle_of_read_exact() {
    uvasync::run(async {
        let (mut a, mut b) = TcpStream::pair().await.unwrap();
        a.write_all(b"abc").await.unwrap();
        a.shutdown().await.unwrap();
        let mut buf = [0u8; 5];
        let err = b.read_exact(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        // The bytes that did arrive stay buffered.
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"abc");
    });
}

#[test]
fn reset_by_peer() {
    uvasync::run(async {
        let (a, mut b) = TcpStream::pair().await.unwrap();
        b.write_all(b"unread").await.unwrap();
        uvasync::sleep_ms(5).await;
        a.abort(); // unread data + abort: the peer sees a reset
        let mut buf = [0u8; 16];
        let mut saw_reset = false;
        for _ in 0..100 {
            match b.read(&mut buf).await {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
                    saw_reset = true;
                    break;
                }
            }
        }
        assert!(saw_reset, "the read must fail with a reset");
    });
}

#[test]
fn thousand_concurrent_connections() {
    const N: usize = 1000;
    uvasync::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = uvasync::spawn(async move {
            let mut handlers = Vec::new();
            for _ in 0..N {
                let (mut s, _) = listener.accept().await.unwrap();
                handlers.push(uvasync::spawn(async move {
                    let line = {
                        let mut line = String::new();
                        s.read_line(&mut line).await.unwrap();
                        line
                    };
                    s.write_all(line.as_bytes()).await.unwrap();
                }));
            }
            for h in handlers {
                h.await.unwrap();
            }
        });
        let clients: Vec<_> = (0..N)
            .map(|i| {
                uvasync::spawn(async move {
                    let mut c = TcpStream::connect(addr).await.unwrap();
                    let msg = format!("client {i}\n");
                    c.write_all(msg.as_bytes()).await.unwrap();
                    assert_eq!(
                        {
                            let mut line = String::new();
                            c.read_line(&mut line).await.unwrap();
                            line
                        },
                        msg
                    );
                })
            })
            .collect();
        for c in clients {
            c.await.unwrap();
        }
        server.await.unwrap();
    });
}

#[test]
fn wake_from_another_thread() {
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    let flag = Arc::new(AtomicBool::new(false));
    let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
    let rt = Runtime::new().unwrap();
    let (flag2, slot2) = (flag.clone(), slot.clone());
    let thread = std::thread::spawn(move || {
        // Wait until the task parked its waker, then set and wake.
        let waker = loop {
            if let Some(w) = slot2.lock().unwrap().take() {
                break w;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        flag2.store(true, Ordering::SeqCst);
        waker.wake();
    });
    rt.block_on(poll_fn(|cx| {
        if flag.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }));
    thread.join().unwrap();
}

#[test]
fn wakers_cloned_to_many_threads() {
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Poll;

    let count = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::new().unwrap();
    let mut started = false;
    let mut threads = Vec::new();
    rt.block_on(poll_fn(|cx| {
        if !started {
            started = true;
            for _ in 0..4 {
                let (w, c) = (cx.waker().clone(), count.clone());
                threads.push(std::thread::spawn(move || {
                    for _ in 0..1000 {
                        w.wake_by_ref();
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                    w.wake();
                }));
            }
        }
        if count.load(Ordering::SeqCst) == 4 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }));
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn panics_in_tasks_become_join_errors_and_block_on_resumes_them() {
    uvasync::run(async {
        let h = uvasync::spawn(async {
            uvasync::sleep_ms(1).await;
            panic!("task panic");
        });
        let e = h.await.unwrap_err();
        assert!(e.is_panic());
    });
    let r = std::panic::catch_unwind(|| uvasync::run(async { panic!("root panic") }));
    assert_eq!(*r.unwrap_err().downcast::<&str>().unwrap(), "root panic");
}

#[test]
fn detached_tasks_run_on_and_shutdown_aborts_the_rest() {
    let done = Rc::new(RefCell::new(0));
    let rt = Runtime::new().unwrap();
    rt.block_on({
        let done = done.clone();
        async move {
            let d = done.clone();
            drop(uvasync::spawn(async move {
                uvasync::sleep_ms(1).await;
                *d.borrow_mut() += 1;
            }));
            let d = done.clone();
            drop(uvasync::spawn(async move {
                uvasync::sleep_ms(60_000).await;
                *d.borrow_mut() += 100;
            }));
            uvasync::sleep_ms(20).await;
        }
    });
    drop(rt); // aborts the one still sleeping
    assert_eq!(*done.borrow(), 1);
}

#[test]
fn interval_ticks() {
    uvasync::run(async {
        let mut iv = uvasync::interval(Duration::from_millis(2));
        for _ in 0..5 {
            iv.tick().await;
        }
    });
}

#[test]
fn sleep_is_not_early() {
    uvasync::run(async {
        let t0 = std::time::Instant::now();
        uvasync::sleep_ms(10).await;
        assert!(t0.elapsed() >= Duration::from_millis(9));
    });
}
