//! A TCP echo server on uvasync: one task per connection, each echoing what
//! it reads until the peer closes.
//!
//! ```sh
//! cargo run --example echo_server -- 127.0.0.1 7000   # serve until killed
//! cargo run --example echo_server -- --demo           # serve one client, then exit
//! ```
//!
//! With `--demo` it also starts a client task that sends a few lines,
//! prints the echoes, and the program exits once both are done.
use std::io;

use uvasync::{TcpListener, TcpStream};

async fn handle(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(()); // end of stream: dropping `conn` closes it gracefully
        }
        conn.write_all(&buf[..n]).await?;
    }
}

async fn serve(listener: TcpListener, max_conns: Option<usize>) -> io::Result<()> {
    let mut served = 0;
    while max_conns.is_none_or(|m| served < m) {
        let (conn, peer) = listener.accept().await?;
        served += 1;
        // Detached: the handler runs on its own; errors are reported.
        drop(uvasync::spawn(async move {
            if let Err(e) = handle(conn).await {
                eprintln!("echo_server: {peer}: {e}");
            }
        }));
    }
    Ok(())
}

async fn demo_client(port: u16) -> io::Result<()> {
    let mut s = TcpStream::connect(("localhost", port)).await?;
    for line in ["hello from Rust\n", "uvasync futures on core tasks\n", "bye\n"] {
        s.write_all(line.as_bytes()).await?;
        print!("echo: {}", {
            let mut line = String::new();
            s.read_line(&mut line).await?;
            line
        });
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let demo = args.iter().any(|a| a == "--demo");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "--demo").collect();
    let host = rest.first().map_or("127.0.0.1", |s| s.as_str()).to_string();
    let port: u16 = match rest.get(1) {
        Some(p) => p.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad port"))?,
        None if demo => 0,
        None => 7000,
    };
    uvasync::run(async move {
        let listener = TcpListener::bind((host.as_str(), port)).await?;
        let port = listener.local_addr()?.port();
        println!("echo_server: listening on {host}:{port}");
        if demo {
            let server = uvasync::spawn(serve(listener, Some(1)));
            demo_client(port).await?;
            server.await.expect("server task")?;
            println!("echo_server: demo done");
            Ok(())
        } else {
            serve(listener, None).await
        }
    })
}
