//! The same echo server on tokio's current-thread runtime:
//! `bench_echo_tokio HOST PORT`.
mod bench_util;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn handle(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    // Page-aligned, the same in both servers: where malloc put a 64 KiB
    // buffer changed the kernel's copies into and out of it by up to 15%
    // of a 100 KiB round trip, and decided that comparison by chance.
    let mut raw = vec![0u8; 64 * 1024 + 4096];
    let off = raw.as_ptr().align_offset(4096);
    let buf = &mut raw[off..off + 64 * 1024];
    loop {
        match s.read(buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let host = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
    bench_util::exit_with_cpu_on_term();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let l = TcpListener::bind((host.as_str(), port)).await.unwrap();
        println!("{}", l.local_addr().unwrap().port());
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(handle(s));
        }
    });
}
