use uvasync::{Runtime, TcpListener, TcpStream};

#[test]
fn block_on_spawn_sleep() {
    let rt = Runtime::new().unwrap();
    let v = rt.block_on(async {
        let h = uvasync::spawn(async {
            uvasync::sleep_ms(5).await;
            40
        });
        h.await.unwrap() + 2
    });
    assert_eq!(v, 42);
}

#[test]
fn tcp_echo_line() {
    uvasync::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = uvasync::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let line = {
                let mut line = String::new();
                conn.read_line(&mut line).await.unwrap();
                line
            };
            conn.write_all(line.to_uppercase().as_bytes()).await.unwrap();
        });
        let mut client = TcpStream::connect(("localhost", port)).await.unwrap();
        client.write_all(b"hello\n").await.unwrap();
        assert_eq!(
            {
                let mut line = String::new();
                client.read_line(&mut line).await.unwrap();
                line
            },
            "HELLO\n"
        );
        server.await.unwrap();
    });
}
