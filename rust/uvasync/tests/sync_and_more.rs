//! Sync primitives, the channel, UDP, Unix sockets, futures-io, and leaf
//! futures polled by combinators that wake children one by one.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use uvasync::{Event, Mutex, Semaphore, TcpStream, UdpSocket, UnixListener, UnixStream};

#[test]
fn mutex_serves_waiters_in_fifo_order() {
    uvasync::run(async {
        let m = Rc::new(Mutex::new(Vec::new()));
        let g = m.lock().await;
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let m = m.clone();
                uvasync::spawn(async move { m.lock().await.push(i) })
            })
            .collect();
        uvasync::sleep_ms(2).await; // all five wait now
        drop(g);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*m.lock().await, [0, 1, 2, 3, 4]);
    });
}

#[test]
fn a_lock_wait_dropped_by_timeout_passes_the_lock_on() {
    uvasync::run(async {
        let m = Rc::new(Mutex::new(0));
        let g = m.lock().await;
        let m2 = m.clone();
        // This task gives up waiting after 10 ms and then goes on.
        let quitter = uvasync::spawn(async move {
            let r = uvasync::timeout(Duration::from_millis(10), m2.lock()).await;
            assert!(r.is_err());
            uvasync::sleep_ms(60_000).await;
        });
        let m3 = m.clone();
        let waiter = uvasync::spawn(async move { *m3.lock().await += 1 });
        uvasync::sleep_ms(30).await;
        drop(g); // must go to `waiter`, not to the quitter's dropped wait
        uvasync::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
        assert_eq!(*m.lock().await, 1);
        quitter.abort();
    });
}

#[test]
fn semaphore_and_event() {
    uvasync::run(async {
        let sem = Rc::new(Semaphore::new(1));
        let ev = Rc::new(Event::new());
        let p = sem.acquire().await;
        let (s2, e2) = (sem.clone(), ev.clone());
        let t = uvasync::spawn(async move {
            e2.wait().await;
            let _p = s2.acquire().await;
            7
        });
        ev.set();
        uvasync::sleep_ms(2).await;
        assert!(!t.is_finished(), "it waits for the permit");
        drop(p);
        assert_eq!(t.await.unwrap(), 7);
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn channel_bounded_back_pressure_and_close() {
    uvasync::run(async {
        let (tx, mut rx) = uvasync::channel::<u32>(2);
        let producer = uvasync::spawn(async move {
            for i in 0..100 {
                tx.send(i).await.unwrap();
            }
        });
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.push(v);
        }
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        producer.await.unwrap();

        let (tx, rx) = uvasync::channel::<String>(1);
        tx.send("queued".into()).await.unwrap();
        let tx = Rc::new(tx);
        let tx2 = tx.clone();
        let blocked = uvasync::spawn(async move { tx2.send("blocked".into()).await });
        uvasync::sleep_ms(2).await;
        drop(rx); // the waiting sender gets its value back
        assert_eq!(blocked.await.unwrap().unwrap_err().0, "blocked");
    });
}

#[test]
fn udp_round_trip() {
    uvasync::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.send_to(b"hello datagram", b.local_addr().unwrap()).await.unwrap();
        let mut small = [0u8; 5];
        let (n, from) = b.recv_from(&mut small).await.unwrap();
        assert_eq!((n, &small), (5, b"hello"));
        assert_eq!(from, a.local_addr().unwrap());
    });
}

#[test]
fn unix_socket_round_trip() {
    let path = std::env::temp_dir().join(format!("uvasync-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    uvasync::run(async {
        let l = UnixListener::bind(&path).await.unwrap();
        let p2 = path.clone();
        let client = uvasync::spawn(async move {
            let mut c = UnixStream::connect(&p2).await.unwrap();
            c.write_all(b"over unix\n").await.unwrap();
            {
                let mut line = String::new();
                c.read_line(&mut line).await.unwrap();
                line
            }
        });
        let mut s = l.accept().await.unwrap();
        let line = {
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            line
        };
        s.write_all(line.as_bytes()).await.unwrap();
        assert_eq!(client.await.unwrap(), "over unix\n");
    });
    let _ = std::fs::remove_file(&path);
}

/// FuturesUnordered wakes each child through its own waker: leaves parked
/// with such wakers must still be woken by the core.
#[test]
fn leaves_under_futures_unordered_and_select() {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    uvasync::run(async {
        let (mut a1, b1) = TcpStream::pair().await.unwrap();
        let (mut a2, b2) = TcpStream::pair().await.unwrap();
        let readers = Rc::new(RefCell::new(vec![b1, b2]));
        let mut set = FuturesUnordered::new();
        for i in 0..2 {
            let readers = readers.clone();
            set.push(async move {
                let mut s = readers.borrow_mut().remove(0);
                let line = {
                    let mut line = String::new();
                    s.read_line(&mut line).await.unwrap();
                    line
                };
                (i, line)
            });
        }
        let writer = uvasync::spawn(async move {
            uvasync::sleep_ms(5).await;
            a2.write_all(b"second\n").await.unwrap();
            uvasync::sleep_ms(5).await;
            a1.write_all(b"first\n").await.unwrap();
            (a1, a2)
        });
        let mut got = Vec::new();
        while let Some(r) = set.next().await {
            got.push(r);
        }
        got.sort();
        assert_eq!(got, [(0, "first\n".to_string()), (1, "second\n".to_string())]);
        let _keep = writer.await.unwrap();

        // select! between a read and a sleep, in a loop.
        let (mut a, mut b) = TcpStream::pair().await.unwrap();
        let mut ticks = 0;
        let w = uvasync::spawn(async move {
            uvasync::sleep_ms(30).await;
            a.write_all(b"x").await.unwrap();
            a
        });
        let mut buf = [0u8; 1];
        loop {
            let read = std::pin::pin!(b.read(&mut buf));
            let tick = std::pin::pin!(uvasync::sleep_ms(2));
            match futures_util::future::select(read, tick).await {
                futures_util::future::Either::Left((r, _)) => {
                    assert_eq!(r.unwrap(), 1);
                    break;
                }
                futures_util::future::Either::Right(_) => ticks += 1,
            }
        }
        assert!(ticks > 0);
        let _a = w.await.unwrap();
    });
}

#[test]
fn read_and_write_of_one_stream_in_one_task() {
    // Both halves wait on the same core object from the same task.
    use futures_util::future::join;
    uvasync::run(async {
        let (mut a, mut b) = TcpStream::pair().await.unwrap();
        let big = vec![7u8; 4 << 20];
        let send = async {
            a.write_all(&big).await.unwrap();
            a.shutdown().await.unwrap();
        };
        let recv = async {
            let mut out = Vec::new();
            b.read_to_end(&mut out).await.unwrap();
            out.len()
        };
        let ((), n) = join(send, recv).await;
        assert_eq!(n, big.len());
    });
}

#[cfg(feature = "futures-io")]
#[test]
fn futures_io_traits() {
    use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    uvasync::run(async {
        let (mut a, mut b) = TcpStream::pair().await.unwrap();
        a.write_all(b"line one\nrest").await.unwrap();
        a.close().await.unwrap();
        let mut line = String::new();
        AsyncBufReadExt::read_line(&mut b, &mut line).await.unwrap();
        assert_eq!(line, "line one\n");
        let mut rest = String::new();
        AsyncReadExt::read_to_string(&mut b, &mut rest).await.unwrap();
        assert_eq!(rest, "rest");
        // futures' copy, driven by the traits.
        let (mut c, d) = TcpStream::pair().await.unwrap();
        c.write_all(&[1u8; 100_000]).await.unwrap();
        AsyncWriteExt::close(&mut c).await.unwrap();
        let mut sink = Vec::new();
        let n = futures_util::io::copy(d, &mut sink).await.unwrap();
        assert_eq!(n, 100_000);
    });
}

#[test]
fn write_vectored_nowait_keeps_order_past_a_full_kernel() {
    use std::io::IoSlice;
    uvasync::run(async {
        let (a, mut b) = TcpStream::pair().await.unwrap();
        // 2000 pieces (past IOV_MAX) of 1..=1000 bytes, about 1 MB: more
        // than the kernel takes at once, so the rest is queued in order.
        let data: Vec<u8> = (0..1_001_000u32).map(|i| (i % 251) as u8).collect();
        let mut pieces = Vec::new();
        let mut off = 0;
        for i in 0..2000usize {
            let len = i % 1000 + 1;
            pieces.push(&data[off..off + len]);
            off += len;
        }
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        let (taken, _queued) = a.write_vectored_nowait(&slices).unwrap();
        assert_eq!(taken, off);
        let (_, queued) = a.write_vectored_nowait(&[IoSlice::new(b"end")]).unwrap();
        let _ = queued;
        let mut got = vec![0u8; off + 3];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..off], &data[..off]);
        assert_eq!(&got[off..], b"end");
    });
}

#[cfg(feature = "futures-io")]
#[test]
fn futures_io_write_vectored() {
    use futures_util::io::{AsyncReadExt, AsyncWriteExt};
    use std::io::IoSlice;
    uvasync::run(async {
        let (mut a, mut b) = TcpStream::pair().await.unwrap();
        let n = AsyncWriteExt::write_vectored(&mut a, &[IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cd")])
            .await
            .unwrap();
        assert_eq!(n, 4);
        AsyncWriteExt::close(&mut a).await.unwrap();
        let mut out = Vec::new();
        AsyncReadExt::read_to_end(&mut b, &mut out).await.unwrap();
        assert_eq!(out, b"abcd");
    });
}

#[cfg(feature = "futures-io")]
/// In a task of its own, registers a pending read on the stream in `slot`
/// and puts the stream back, the wait still registered, as the task ends.
async fn leave_a_read_wait(slot: Rc<RefCell<Option<TcpStream>>>) {
    use futures_util::io::AsyncRead;
    use std::pin::Pin;
    use std::task::Poll;
    uvasync::spawn(async move {
        let mut b = slot.borrow_mut().take().unwrap();
        let mut buf = [0u8; 8];
        std::future::poll_fn(|cx| {
            assert!(Pin::new(&mut b).poll_read(cx, &mut buf).is_pending());
            Poll::Ready(())
        })
        .await;
        *slot.borrow_mut() = Some(b);
    })
    .await
    .unwrap();
}

#[cfg(feature = "futures-io")]
#[test]
fn a_read_wait_outlives_the_task_that_made_it() {
    // A task leaves a pending poll_read registered on a stream and gives the
    // stream away before it finishes: the next task reads from it (and the
    // one after drops a registered stream) with the first task long gone.
    uvasync::run(async {
        let (mut a, b) = TcpStream::pair().await.unwrap();
        let slot = Rc::new(RefCell::new(Some(b)));
        leave_a_read_wait(slot.clone()).await;
        uvasync::yield_now().await;
        let mut b = slot.borrow_mut().take().unwrap();
        a.write_all(b"moved").await.unwrap();
        let mut buf = [0u8; 8];
        let n = futures_util::io::AsyncReadExt::read(&mut b, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"moved");

        // The same, and the stream is dropped with the wait still counted.
        let slot = Rc::new(RefCell::new(Some(b)));
        leave_a_read_wait(slot.clone()).await;
        uvasync::yield_now().await;
        drop(slot.borrow_mut().take());
        a.write_all(b"gone").await.unwrap();
    });
}
