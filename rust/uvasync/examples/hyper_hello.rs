//! A hyper "hello world" HTTP/1 server on uvasync:
//! `hyper_hello [HOST [PORT]]`. Prints the port, then answers every request
//! with "Hello, World!" (keep-alive) until SIGTERM, when it prints its CPU
//! time (bench/run_hyper.py's protocol; hyper_hello_tokio is the same
//! server on tokio).
mod bench_util;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{server::conn::http1, service::service_fn, Request, Response};
use uvasync::hyper::{Io, Timer};
use uvasync::{TcpListener, TcpStream};

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"Hello, World!"))))
}

async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Errors (a client gone mid-request) end this connection only.
    let _ = http1::Builder::new().timer(Timer).serve_connection(Io::new(stream), service_fn(hello)).await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let host = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
    bench_util::exit_with_cpu_on_term();
    uvasync::run(async move {
        let l = TcpListener::bind((host.as_str(), port)).await.unwrap();
        println!("{}", l.local_addr().unwrap().port());
        loop {
            let (s, _) = l.accept().await.unwrap();
            drop(uvasync::spawn(serve(s)));
        }
    });
}
