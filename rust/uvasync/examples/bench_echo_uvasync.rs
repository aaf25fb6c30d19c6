//! Echo server for bench/run_rust.py on uvasync: `bench_echo_uvasync HOST PORT`.
//! Prints the port, serves until SIGTERM, then prints its CPU time.
mod bench_util;

use uvasync::{TcpListener, TcpStream};

/// The same code as bench_echo_tokio.rs: read into a reusable buffer,
/// write_all. (The core reads straight into a buffer this big when it has
/// nothing buffered, so the bytes take the same path as tokio's: kernel to
/// `buf`, `buf` to kernel.)
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

/// The zero-copy form, for comparison (UVA_BENCH_ZEROCOPY=1): the bytes go
/// from the core's read buffer straight to the write (read_with +
/// write_nowait), as bench/bench_echo_server.c does.
async fn handle_zero_copy(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
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
    let zero_copy = std::env::var_os("UVA_BENCH_ZEROCOPY").is_some();
    bench_util::exit_with_cpu_on_term();
    uvasync::run(async move {
        let l = TcpListener::bind((host.as_str(), port)).await.unwrap();
        println!("{}", l.local_addr().unwrap().port());
        loop {
            let (s, _) = l.accept().await.unwrap();
            if zero_copy {
                drop(uvasync::spawn(handle_zero_copy(s)));
            } else {
                drop(uvasync::spawn(handle(s)));
            }
        }
    });
}
