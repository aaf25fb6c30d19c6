//! hyper 1.x on uvasync (feature `hyper`): server and client, keep-alive,
//! chunked bodies, `Expect: 100-continue`, an upgrade and a header read
//! timeout fired by uvasync's timer.
use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1 as client;
use hyper::rt::Executor as _;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper::{header, Request, Response, StatusCode};
use uvasync::hyper::{Executor, Io, Timer};
use uvasync::{TcpListener, TcpStream, UnixListener, UnixStream};

type Reply = Result<Response<Full<Bytes>>, Infallible>;

/// Echoes the request's method, path and body; "/upgrade" switches to an
/// echo protocol on the raw stream.
async fn handle(mut req: Request<Incoming>) -> Reply {
    if req.uri().path() == "/upgrade" {
        let on_upgrade = hyper::upgrade::on(&mut req);
        uvasync::spawn(async move {
            let upgraded = on_upgrade.await.unwrap();
            let parts = upgraded.downcast::<Io<TcpStream>>().unwrap();
            let mut stream = parts.io.into_inner();
            // Bytes the client sent right after its request, read by hyper.
            let mut line = String::from_utf8(parts.read_buf.to_vec()).unwrap();
            if !line.ends_with('\n') {
                stream.read_line(&mut line).await.unwrap();
            }
            stream.write_all(format!("echo: {line}").as_bytes()).await.unwrap();
        });
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        res.headers_mut().insert(header::CONNECTION, "upgrade".parse().unwrap());
        res.headers_mut().insert(header::UPGRADE, "echo".parse().unwrap());
        return Ok(res);
    }
    let head = format!("{} {} ", req.method(), req.uri().path());
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    Ok(Response::new(Full::new(Bytes::from(out))))
}

/// Serves every connection of `listener` with `handle` (with upgrades).
fn serve(listener: TcpListener) {
    uvasync::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            Executor.execute(async move {
                let conn = server::Builder::new().timer(Timer).serve_connection(Io::new(stream), service_fn(handle));
                conn.with_upgrades().await.unwrap();
            });
        }
    });
}

async fn connect(port: u16) -> client::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (sender, conn) = client::handshake(Io::new(stream)).await.unwrap();
    Executor.execute(async move {
        conn.with_upgrades().await.unwrap();
    });
    sender
}

async fn body_text(res: Response<Incoming>) -> String {
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).header(header::HOST, "localhost").body(Full::new(Bytes::new())).unwrap()
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    uvasync::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        serve(listener);
        let mut sender = connect(port).await;
        for i in 0..5 {
            sender.ready().await.unwrap();
            let req = Request::post(format!("/n/{i}"))
                .header(header::HOST, "localhost")
                .body(Full::new(Bytes::from(format!("body {i}"))))
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(body_text(res).await, format!("POST /n/{i} body {i}"));
        }
    });
}

#[test]
fn chunked_request_and_response_bodies() {
    uvasync::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // The server streams its answer in three chunks, a sleep apart.
        uvasync::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let chunks = service_fn(|req: Request<Incoming>| async move {
                assert_eq!(req.headers()[header::TRANSFER_ENCODING], "chunked");
                let got = req.into_body().collect().await.unwrap().to_bytes();
                let (tx, rx) = uvasync::channel::<Result<Frame<Bytes>, Infallible>>(4);
                uvasync::spawn(async move {
                    for part in [got, Bytes::from_static(b"-two"), Bytes::from_static(b"-three")] {
                        tx.send(Ok(Frame::data(part))).await.unwrap();
                        uvasync::sleep_ms(2).await;
                    }
                });
                let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|frame| (frame, rx))
                }));
                Ok::<_, Infallible>(Response::new(body))
            });
            server::Builder::new().serve_connection(Io::new(stream), chunks).await.unwrap();
        });
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut sender, conn) = client::handshake(Io::new(stream)).await.unwrap();
        uvasync::spawn(conn);
        // A body of unknown length goes chunked.
        let parts =
            futures_util::stream::iter(["one", "+", "1"].map(|s| Ok::<_, Infallible>(Frame::data(Bytes::from(s)))));
        let req = Request::post("/").header(header::HOST, "localhost").body(StreamBody::new(parts)).unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.headers()[header::TRANSFER_ENCODING], "chunked");
        let mut body = res.into_body();
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert!(frames.len() >= 2, "the answer came in one piece: {frames:?}");
        assert_eq!(frames.concat(), b"one+1-two-three");
    });
}

#[test]
fn expect_100_continue_sends_the_body_after_the_interim_answer() {
    uvasync::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        serve(listener);
        // A raw client: hyper's server answers 100 Continue when the
        // service starts reading the body, and only then is it sent.
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
            .await
            .unwrap();
        let mut line = String::new();
        s.read_line(&mut line).await.unwrap();
        assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
        line.clear();
        s.read_line(&mut line).await.unwrap();
        assert_eq!(line, "\r\n");
        s.write_all(b"hello").await.unwrap();
        line.clear();
        s.read_line(&mut line).await.unwrap();
        assert_eq!(line, "HTTP/1.1 200 OK\r\n");
        let mut rest = Vec::new();
        s.shutdown().await.unwrap();
        s.read_to_end(&mut rest).await.unwrap();
        assert!(String::from_utf8(rest).unwrap().ends_with("\r\n\r\nPOST /up hello"));
    });
}

#[test]
fn an_upgrade_switches_the_connection_to_another_protocol() {
    uvasync::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        serve(listener);
        let mut sender = connect(port).await;
        let req = Request::get("/upgrade")
            .header(header::HOST, "localhost")
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "echo")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
        let upgraded = hyper::upgrade::on(res).await.unwrap();
        let parts = upgraded.downcast::<Io<TcpStream>>().unwrap();
        assert!(parts.read_buf.is_empty());
        let mut stream = parts.io.into_inner();
        stream.write_all(b"over the raw stream\n").await.unwrap();
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        assert_eq!(line, "echo: over the raw stream\n");
    });
}

#[test]
fn the_header_read_timeout_fires_through_the_timer() {
    uvasync::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = uvasync::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let t = Instant::now();
            let r = server::Builder::new()
                .timer(Timer)
                .header_read_timeout(Duration::from_millis(50))
                .serve_connection(Io::new(stream), service_fn(handle))
                .await;
            (r, t.elapsed())
        });
        // Half a request head, then nothing.
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
        let (r, took) = uvasync::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();
        let err = r.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(took >= Duration::from_millis(50) && took < Duration::from_secs(2), "{took:?}");
        // The server closed the connection.
        let mut rest = Vec::new();
        let eof = uvasync::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await.unwrap();
        eof.unwrap();
    });
}

#[test]
fn a_unix_stream_serves_hyper_too() {
    uvasync::run(async {
        let dir = std::env::temp_dir().join(format!("uvasync-hyper-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let path = dir.to_str().unwrap().to_owned();
        let listener = UnixListener::bind(&path).await.unwrap();
        uvasync::spawn(async move {
            let stream = listener.accept().await.unwrap();
            server::Builder::new().serve_connection(Io::new(stream), service_fn(handle)).await.unwrap();
        });
        let stream = UnixStream::connect(&path).await.unwrap();
        let (mut sender, conn) = client::handshake(Io::new(stream)).await.unwrap();
        uvasync::spawn(conn);
        let res = sender.send_request(get("/unix")).await.unwrap();
        assert_eq!(body_text(res).await, "GET /unix ");
        let _ = std::fs::remove_file(&dir);
    });
}

#[test]
fn an_io_moved_to_another_thread_panics_there() {
    let rt = uvasync::Runtime::new().unwrap();
    let io = rt.block_on(async {
        let (a, _b) = TcpStream::pair().await.unwrap();
        Io::new(a)
    });
    let r = std::thread::spawn(move || {
        let mut io = io;
        let used = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            io.get_mut();
        }));
        (used.is_err(), io)
    })
    .join();
    let (panicked, io) = r.unwrap();
    assert!(panicked);
    // Back home it works again.
    let mut io = io;
    rt.block_on(async move { io.get_mut().set_nodelay(true).unwrap() });
}

#[test]
fn the_timer_sleeps_and_moves_a_deadline() {
    use hyper::rt::Timer as _;
    uvasync::run(async {
        let t = Instant::now();
        let mut s = Timer.sleep(Duration::from_secs(5));
        assert!(futures_util::poll!(s.as_mut()).is_pending());
        // Earlier, in place: the sleep ends at the new deadline.
        Timer.reset(&mut s, Instant::now() + Duration::from_millis(20));
        s.await;
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(20) && took < Duration::from_secs(2), "{took:?}");
        // Reset before its first poll, and never polled at all.
        let mut s = Timer.sleep_until(Instant::now() + Duration::from_secs(5));
        Timer.reset(&mut s, Instant::now());
        s.await;
        drop(Timer.sleep(Duration::from_secs(5)));
    });
}
