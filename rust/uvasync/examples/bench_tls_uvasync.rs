//! TLS echo server for bench/run_tls.py on the uvasync crate:
//! `bench_tls_uvasync HOST PORT`, the certificate and key (PEM files) from
//! BENCH_TLS_CERT and BENCH_TLS_KEY. Prints the port, serves until
//! SIGTERM, then prints its CPU time. The core does the TLS (OpenSSL).
mod bench_util;

use uvasync::{Identity, TcpListener, TlsAcceptor, TlsStream};

/// bench_echo_uvasync's zero-copy echo, over TLS: the plaintext goes from
/// the core's read buffer straight to the write (read_with +
/// write_nowait), as bench_tls_server.c does.
async fn handle(mut s: TlsStream) {
    loop {
        let r = s.read_with(|data| (data.len(), (!data.is_empty()).then(|| s.write_nowait(data)))).await;
        match r {
            Ok(Some(Ok(0))) => {}
            Ok(Some(Ok(_queued))) => {
                if s.flush().await.is_err() {
                    return;
                }
            }
            _ => return, // end of stream or error
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let host = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
    let cert = std::env::var("BENCH_TLS_CERT").expect("BENCH_TLS_CERT");
    let key = std::env::var("BENCH_TLS_KEY").expect("BENCH_TLS_KEY");
    let acceptor = TlsAcceptor::new(Identity::from_files(cert, key)).unwrap();
    bench_util::exit_with_cpu_on_term();
    uvasync::run(async move {
        let l = TcpListener::bind((host.as_str(), port)).await.unwrap();
        println!("{}", l.local_addr().unwrap().port());
        loop {
            let (tcp, _) = l.accept().await.unwrap();
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            drop(uvasync::spawn(async move {
                if let Ok(s) = acceptor.accept(tcp).await {
                    handle(s).await;
                }
            }));
        }
    });
}
