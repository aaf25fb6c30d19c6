//! The pieces a tokio user reaches for: JoinSet, oneshot, watch,
//! broadcast, Notify, RwLock, join!/select!, split halves, read_line and
//! BufReader, try_send's errors, channel(0), the attribute macros and the
//! one error for an object used on another runtime.
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use uvasync::sync::{broadcast, oneshot, watch};
use uvasync::{JoinSet, Notify, RwLock, TcpStream, TrySendError};

#[test]
fn join_set_gives_results_as_tasks_finish_and_aborts_on_drop() {
    uvasync::run(async {
        let mut set = JoinSet::new();
        for i in 0..4u64 {
            set.spawn(async move {
                uvasync::sleep_ms(40 - 10 * i).await;
                i
            });
        }
        assert_eq!(set.len(), 4);
        let mut got = vec![];
        while let Some(r) = set.join_next().await {
            got.push(r.unwrap());
        }
        assert_eq!(got, [3, 2, 1, 0]);
        assert!(set.is_empty());

        // A panic and an abort come back as JoinErrors.
        set.spawn(async { panic!("boom") });
        let r = set.join_next().await.unwrap();
        assert!(r.unwrap_err().is_panic());
        set.spawn(async {
            uvasync::sleep_ms(60_000).await;
            1
        });
        set.abort_all();
        assert!(set.join_next().await.unwrap().unwrap_err().is_cancelled());

        // Dropping the set aborts what is in it.
        let ran = Rc::new(Cell::new(false));
        let mut set = JoinSet::new();
        let r2 = ran.clone();
        set.spawn(async move {
            uvasync::sleep_ms(50).await;
            r2.set(true);
        });
        uvasync::yield_now().await;
        drop(set);
        uvasync::sleep_ms(100).await;
        assert!(!ran.get());

        // shutdown waits for every task to end.
        let mut set = JoinSet::new();
        for _ in 0..3 {
            set.spawn(async { uvasync::sleep_ms(60_000).await });
        }
        let t = Instant::now();
        set.shutdown().await;
        assert!(set.is_empty() && t.elapsed() < Duration::from_secs(5));
        assert!(set.try_join_next().is_none());
    });
}

#[test]
fn oneshot_delivers_or_reports_the_dropped_sender() {
    uvasync::run(async {
        let (tx, rx) = oneshot::channel();
        let h = uvasync::spawn(rx);
        uvasync::sleep_ms(5).await;
        tx.send(String::from("v")).unwrap();
        assert_eq!(h.await.unwrap().unwrap(), "v");

        let (tx, rx) = oneshot::channel::<u8>();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(3), Err(3));

        let (tx, mut rx) = oneshot::channel::<u8>();
        assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.await, Err(oneshot::RecvError(())));
    });
}

#[test]
fn watch_wakes_on_changes_and_ends_with_the_sender() {
    uvasync::run(async {
        let (tx, mut rx) = watch::channel(0);
        let mut rx2 = tx.subscribe();
        let seen = uvasync::spawn(async move {
            let mut seen = vec![];
            while rx2.changed().await.is_ok() {
                seen.push(*rx2.borrow_and_update());
            }
            seen
        });
        for i in 1..=3 {
            tx.send(i).unwrap();
            uvasync::sleep_ms(2).await;
        }
        assert_eq!(rx.has_changed(), Ok(true));
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 3);
        assert_eq!(rx.has_changed(), Ok(false));
        assert_eq!(tx.send_replace(4), 3);
        tx.send_modify(|v| *v += 1);
        assert!(!tx.send_if_modified(|_| false));
        drop(tx);
        // The last change is seen first, then the end.
        assert!(rx.changed().await.is_ok());
        assert_eq!(*rx.borrow(), 5);
        assert_eq!(rx.changed().await, Err(watch::RecvError(())));
        assert_eq!(seen.await.unwrap(), [1, 2, 3, 5]);

        let (tx, rx) = watch::channel(1);
        drop(rx);
        assert_eq!(tx.send(2), Err(watch::SendError(2)));
    });
}

#[test]
fn broadcast_lagging_receivers_get_lagged_n() {
    use broadcast::error::{RecvError, TryRecvError};
    uvasync::run(async {
        let (tx, mut rx) = broadcast::channel(4);
        let mut slow = tx.subscribe();
        let fast = uvasync::spawn(async move {
            let mut got = vec![];
            while let Ok(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        for i in 0..10 {
            assert_eq!(tx.send(i).unwrap(), 2);
            uvasync::yield_now().await;
        }
        // slow read nothing: 6 of the 10 were dropped, 4 are kept.
        assert_eq!(slow.recv().await, Err(RecvError::Lagged(6)));
        for i in 6..10 {
            assert_eq!(slow.recv().await, Ok(i));
        }
        assert_eq!(slow.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(slow.recv().await, Err(RecvError::Closed));
        assert_eq!(fast.await.unwrap(), (0..10).collect::<Vec<_>>());
    });
    let r = catch_unwind(|| uvasync::run(async { broadcast::channel::<u8>(0) }));
    assert!(r.is_err());
}

#[test]
fn notify_stores_one_permit_and_notify_waiters_wakes_those_made_before() {
    uvasync::run(async {
        let n = Rc::new(Notify::new());
        // Two notify_one with nobody waiting store one permit.
        n.notify_one();
        n.notify_one();
        n.notified().await;
        let r = uvasync::timeout(Duration::from_millis(20), n.notified()).await;
        assert!(r.is_err(), "a second permit was stored");

        // notify_one wakes waiters one at a time, in order.
        let order = Rc::new(std::cell::RefCell::new(vec![]));
        let mut hs = vec![];
        for i in 0..3 {
            let (n, order) = (n.clone(), order.clone());
            hs.push(uvasync::spawn(async move {
                n.notified().await;
                order.borrow_mut().push(i);
            }));
            uvasync::yield_now().await;
        }
        n.notify_one();
        uvasync::sleep_ms(5).await;
        assert_eq!(*order.borrow(), [0]);
        n.notify_waiters();
        for h in hs {
            h.await.unwrap();
        }
        assert_eq!(*order.borrow(), [0, 1, 2]);

        // A Notified made before notify_waiters completes even if it was
        // first polled after; one made after waits; nothing is stored.
        let early = n.notified();
        n.notify_waiters();
        early.await;
        let r = uvasync::timeout(Duration::from_millis(20), n.notified()).await;
        assert!(r.is_err());
    });
}

#[test]
fn rwlock_many_readers_or_one_writer() {
    uvasync::run(async {
        let lock = Rc::new(RwLock::new(0));
        let r1 = lock.read().await;
        let r2 = lock.try_read().unwrap();
        assert!(lock.try_write().is_none());
        let l2 = lock.clone();
        let writer = uvasync::spawn(async move {
            *l2.write().await += 1;
        });
        uvasync::sleep_ms(5).await;
        assert!(!writer.is_finished());
        drop((r1, r2));
        writer.await.unwrap();
        assert_eq!(*lock.read().await, 1);
        // A writer dropped while it waits gives back what it took.
        let r = lock.read().await;
        assert!(uvasync::timeout(Duration::from_millis(10), lock.write()).await.is_err());
        drop(r);
        *lock.try_write().unwrap() = 7;
        assert_eq!(*lock.read().await, 7);
    });
}

#[test]
fn join_and_select_macros() {
    uvasync::run(async {
        let (a, b, c) = uvasync::join!(async { 1 }, uvasync::sleep_ms(2), async { "c" });
        assert_eq!((a, b, c), (1, (), "c"));

        let (tx, mut rx) = uvasync::channel::<u32>(1);
        let v = uvasync::select! {
            Some(v) = rx.recv() => v,
            _ = uvasync::sleep_ms(10) => 99,
        };
        assert_eq!(v, 99);
        tx.try_send(4).unwrap();
        let v = uvasync::select! {
            Some(v) = rx.recv() => { v * 2 }
            _ = uvasync::sleep_ms(1000) => 99,
        };
        assert_eq!(v, 8);
        // A branch whose pattern does not match is disabled; else runs
        // when all are.
        drop(tx);
        let v = uvasync::select! {
            Some(v) = rx.recv() => v,
            else => 0,
        };
        assert_eq!(v, 0);
        // A JoinHandle by &mut (Unpin), kept across loops, and await in a
        // branch.
        let mut h = uvasync::spawn(async {
            uvasync::sleep_ms(15).await;
            3
        });
        let mut ticks = 0;
        let out = loop {
            uvasync::select! {
                r = &mut h => break r.unwrap(),
                _ = uvasync::sleep_ms(2) => { ticks += 1; uvasync::yield_now().await; }
            }
        };
        assert_eq!(out, 3);
        assert!(ticks >= 1);
    });
}

#[test]
fn split_halves_read_and_write_at_once() {
    uvasync::run(async {
        // Borrowed: one task reads and writes through both halves.
        let (mut a, mut b) = TcpStream::pair().await.unwrap();
        let (mut r, mut w) = a.split();
        let echo = async {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            line
        };
        let big = vec![b'x'; 4 << 20];
        let write = async {
            w.write_all(&big).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let peer = async {
            b.write_all(b"ping\n").await.unwrap();
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got.len()
        };
        let (line, (), n) = uvasync::join!(echo, write, peer);
        assert_eq!((line.as_str(), n), ("ping\n", 4 << 20));

        // Owned: a reader task and a writer task, then reunited.
        let (a, mut b) = TcpStream::pair().await.unwrap();
        let (mut r, mut w) = a.into_split();
        let reader = uvasync::spawn(async move {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            (r, line)
        });
        let writer = uvasync::spawn(async move {
            w.write_all(b"from a\n").await.unwrap();
            w
        });
        let mut line = String::new();
        b.read_line(&mut line).await.unwrap();
        assert_eq!(line, "from a\n");
        b.write_all(b"to a\n").await.unwrap();
        let (r, got) = reader.await.unwrap();
        assert_eq!(got, "to a\n");
        let w = writer.await.unwrap();
        let (c, d) = TcpStream::pair().await.unwrap();
        let (rc, _wc) = c.into_split();
        let err = rc.reunite(w).unwrap_err();
        let a = r.reunite(err.1).unwrap();
        drop((a, d));
    });
}

#[test]
fn a_flush_that_completes_at_once_keeps_a_waiting_read_of_the_same_task() {
    uvasync::run(async {
        // One task: the read waits (registered on the stream), then the
        // flush of the same stream completes at once. The core keeps one
        // registration per task and stream, which the flush took: the read
        // must still be woken by the bytes.
        let (mut a, mut b) = TcpStream::pair().await.unwrap();
        let (mut r, mut w) = a.split();
        let read = async {
            let mut buf = [0u8; 4];
            r.read_exact(&mut buf).await.unwrap();
            buf
        };
        let flush = async {
            uvasync::sleep_ms(5).await;
            w.flush().await.unwrap();
        };
        // Another task writes, so nothing else wakes this one.
        let peer = uvasync::spawn(async move {
            uvasync::sleep_ms(30).await;
            b.write_all(b"ping").await.unwrap();
            b
        });
        let t = Instant::now();
        // (A timeout re-polls the read when it fires, which hid the lost wake.)
        let joined = async { uvasync::join!(read, flush) };
        let (buf, ()) = uvasync::timeout(Duration::from_secs(3), joined).await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "the read was not woken: {:?}", t.elapsed());
        assert_eq!(&buf, b"ping");
        drop(peer.await.unwrap());
    });
}

#[test]
fn read_line_appends_and_buf_reader_lines() {
    uvasync::run(async {
        let (mut a, mut b) = TcpStream::pair().await.unwrap();
        a.write_all(b"one\r\ntwo\n\xff\nlast").await.unwrap();
        a.shutdown().await.unwrap();
        let mut buf = String::from("> ");
        assert_eq!(b.read_line(&mut buf).await.unwrap(), 5);
        assert_eq!(b.read_line(&mut buf).await.unwrap(), 4);
        assert_eq!(buf, "> one\r\ntwo\n");
        // Not UTF-8: an error, buf as it was.
        let e = b.read_line(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(buf, "> one\r\ntwo\n");
        let mut lines = uvasync::BufReader::new(b).lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("last"));
        assert_eq!(lines.next_line().await.unwrap(), None);

        let (mut a, b) = TcpStream::pair().await.unwrap();
        a.write_all(b"x\r\ny\n").await.unwrap();
        drop(a);
        let (r, _w) = b.into_split();
        let mut lines = uvasync::BufReader::new(r).lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("x"));
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("y"));
        assert_eq!(lines.next_line().await.unwrap(), None);
    });
}

#[cfg(feature = "futures-io")]
#[test]
fn buf_reader_and_halves_are_futures_io() {
    use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    uvasync::run(async {
        let (a, b) = TcpStream::pair().await.unwrap();
        let (_ra, mut wa) = a.into_split();
        wa.write_all(b"hello\nworld").await.unwrap();
        wa.close().await.unwrap();
        let mut br = uvasync::BufReader::new(b);
        let mut line = String::new();
        AsyncBufReadExt::read_line(&mut br, &mut line).await.unwrap();
        assert_eq!(line, "hello\n");
        let mut rest = String::new();
        AsyncReadExt::read_to_string(&mut br, &mut rest).await.unwrap();
        assert_eq!(rest, "world");
    });
}

#[test]
fn try_send_tells_full_from_closed_and_channel_0_is_refused() {
    uvasync::run(async {
        let (tx, rx) = uvasync::channel(1);
        tx.try_send(1).unwrap();
        assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
        drop(rx);
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
        let r = catch_unwind(|| uvasync::channel::<u8>(0));
        let msg = *r.unwrap_err().downcast::<&str>().unwrap();
        assert_eq!(msg, "mpsc bounded channel requires buffer > 0");
        let (tx, mut rx) = uvasync::unbounded_channel();
        for i in 0..100 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(rx.recv().await, Some(0));
    });
}

/// A receiver waiting when the last sender sends and goes got `None`: the
/// message handed to it was skipped (found by oneshot, which does just
/// that).
#[test]
fn a_waiting_receiver_gets_the_last_senders_message() {
    uvasync::run(async {
        let (tx, mut rx) = uvasync::channel(1);
        let h = uvasync::spawn(async move { rx.recv().await });
        uvasync::sleep_ms(2).await;
        tx.try_send(9).unwrap();
        drop(tx);
        assert_eq!(h.await.unwrap(), Some(9));
    });
}

fn panic_message(r: std::thread::Result<()>) -> String {
    let e = r.unwrap_err();
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap()
}

/// Every object made on one runtime and used on another says so the same
/// way (before: recv gave None, Mutex::lock panicked with EINVAL).
#[test]
fn objects_of_another_runtime_give_one_clear_error() {
    let rt1 = uvasync::Runtime::new().unwrap();
    let rt2 = uvasync::Runtime::new().unwrap();
    let (mutex, sem, event, notify, (tx, rx), stream) = rt1.block_on(async {
        let m = uvasync::Mutex::new(0);
        let g = m.try_lock().unwrap();
        std::mem::forget(g); // held: lock() has to wait
        let (a, b) = TcpStream::pair().await.unwrap();
        drop(b);
        (m, uvasync::Semaphore::new(0), uvasync::Event::new(), Notify::new(), uvasync::channel::<u8>(1), a)
    });
    let rx = std::cell::Cell::new(Some(rx));
    let want = "belongs to another runtime; use it on the runtime that made it";
    type Case<'a> = (&'static str, Box<dyn Fn() + 'a>);
    let cases: Vec<Case<'_>> = vec![
        ("Mutex", Box::new(|| rt2.block_on(async { drop(mutex.lock().await) }))),
        ("Semaphore", Box::new(|| rt2.block_on(async { drop(sem.acquire().await) }))),
        ("Event", Box::new(|| rt2.block_on(event.wait()))),
        ("Notify", Box::new(|| rt2.block_on(notify.notified()))),
        // Before the Receiver case, which drops the receiver.
        (
            "Sender",
            Box::new(|| {
                tx.try_send(1).unwrap();
                drop(rt2.block_on(tx.send(2)))
            }),
        ),
        (
            "Receiver",
            Box::new(|| {
                let mut r = rx.take().unwrap();
                rt2.block_on(async { r.recv().await });
            }),
        ),
    ];
    for (what, f) in cases {
        let msg = panic_message(catch_unwind(AssertUnwindSafe(f)));
        assert_eq!(msg, format!("uvasync: this {what} {want}"), "{what}");
    }
    // A sleep's clock is its runtime's: elsewhere it would never end.
    // (The futures are made inside rt1 and handed out in a tuple.)
    let (sleep,) = rt1.block_on(async { (uvasync::sleep_ms(5),) });
    let msg = panic_message(catch_unwind(AssertUnwindSafe(|| rt2.block_on(sleep))));
    assert_eq!(msg, format!("uvasync: this Sleep {want}"));
    let (job,) = rt1.block_on(async { (uvasync::spawn_blocking(|| 1),) });
    std::thread::sleep(Duration::from_millis(20));
    let msg = panic_message(catch_unwind(AssertUnwindSafe(|| {
        rt2.block_on(job).ok();
    })));
    assert_eq!(msg, format!("uvasync: this JoinHandle {want}"));
    let path = std::env::temp_dir().join(format!("uvasync-wrong-rt-{}", std::process::id()));
    std::fs::write(&path, b"data").unwrap();
    let mut file = rt1.block_on(uvasync::fs::File::open(&path)).unwrap();
    let err = rt2.block_on(async { file.metadata().await.unwrap_err() });
    assert_eq!(err.to_string(), format!("uvasync: this File {want}"));
    let err = rt2.block_on(async {
        let mut buf = Vec::new();
        uvasync::fs::File::read_to_end(&mut file, &mut buf).await.unwrap_err()
    });
    assert_eq!(err.to_string(), format!("uvasync: this File {want}"));
    drop(file);
    let _ = std::fs::remove_file(&path);
    let mut stream = stream;
    let err = rt2.block_on(async { stream.read(&mut [0u8; 4]).await.unwrap_err() });
    assert_eq!(err.to_string(), format!("uvasync: this stream {want}"));
    drop(stream);
}

#[uvasync::test]
async fn the_test_attribute_runs_an_async_test() {
    uvasync::sleep_ms(1).await;
    let (tx, rx) = oneshot::channel();
    uvasync::spawn(async move { tx.send(1).unwrap() });
    assert_eq!(rx.await, Ok(1));
}

#[uvasync::test]
async fn the_test_attribute_may_return_a_result() -> Result<(), std::io::Error> {
    let (mut a, mut b) = TcpStream::pair().await?;
    a.write_all(b"k\n").await?;
    let mut s = String::new();
    b.read_line(&mut s).await?;
    assert_eq!(s, "k\n");
    Ok(())
}
