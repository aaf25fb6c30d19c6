//! TLS against peers nobody here wrote: a rustls client (in a thread, over
//! std's blocking sockets) against a uvasync server, and a uvasync client
//! against `openssl s_server`; certificates made at test time by the
//! `openssl` command (a throwaway CA, a server certificate for localhost
//! and 127.0.0.1, an expired one, one for another host, a client one).
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use uvasync::{
    Identity, TcpListener, TcpStream, TlsAcceptor, TlsConnector, TlsError, TlsErrorKind, TlsStream, TlsVersion,
};

/// The certificates of one test, in a directory removed on drop.
struct Pki {
    dir: PathBuf,
}

fn openssl(dir: &PathBuf, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const REQ_CNF: &str = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n\
[ca]\ndefault_ca = ca_sect\n[ca_sect]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
default_md = sha256\npolicy = pol\ncopy_extensions = copy\n[pol]\ncommonName = supplied\n";

const NEW_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

impl Pki {
    fn new() -> Pki {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "uvasync-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("req.cnf"), REQ_CNF).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "01\n").unwrap();
        let mut ca = vec!["req", "-config", "req.cnf", "-x509"];
        ca.extend(NEW_KEY);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=uvasync test CA", "-days", "30"]);
        ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
        openssl(&dir, &ca);
        let leaf = |name: &str, cn: &str, san: &str| {
            let (key, pem, subj, san) =
                (format!("{name}.key"), format!("{name}.pem"), format!("/CN={cn}"), format!("subjectAltName={san}"));
            let mut a = vec!["req", "-config", "req.cnf", "-x509"];
            a.extend(NEW_KEY);
            a.extend([
                "-keyout", &key, "-out", &pem, "-subj", &subj, "-days", "30", "-CA", "ca.pem", "-CAkey", "ca.key",
            ]);
            a.extend(["-addext", &san, "-addext", "basicConstraints=critical,CA:FALSE"]);
            openssl(&dir, &a);
        };
        leaf("server", "localhost", "DNS:localhost,IP:127.0.0.1");
        leaf("wrong", "other.example", "DNS:other.example");
        leaf("client", "tls-test-client", "DNS:tls-test-client");
        // Expired: `openssl ca` takes explicit dates.
        let mut csr = vec!["req", "-config", "req.cnf", "-new"];
        csr.extend(NEW_KEY);
        csr.extend(["-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=localhost"]);
        csr.extend(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]);
        openssl(&dir, &csr);
        openssl(
            &dir,
            &[
                "ca",
                "-config",
                "req.cnf",
                "-batch",
                "-notext",
                "-cert",
                "ca.pem",
                "-keyfile",
                "ca.key",
                "-in",
                "expired.csr",
                "-out",
                "expired.pem",
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200102000000Z",
            ],
        );
        for name in ["server", "client"] {
            let (pem, der) = (format!("{name}.pem"), format!("{name}.der"));
            openssl(&dir, &["x509", "-in", &pem, "-outform", "DER", "-out", &der]);
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn identity(&self, name: &str) -> Identity {
        Identity::from_files(self.path(&format!("{name}.pem")), self.path(&format!("{name}.key")))
    }

    fn acceptor(&self, name: &str) -> TlsAcceptor {
        TlsAcceptor::new(self.identity(name)).unwrap()
    }

    fn connector(&self) -> TlsConnector {
        TlsConnector::builder().ca_pem(&self.read("ca.pem")).build().unwrap()
    }

    /// A rustls client configuration trusting the test CA.
    fn rustls_client(&self, alpn: &[&[u8]], client_cert: bool) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(self.path("ca.pem")).unwrap()).unwrap();
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let mut config = if client_cert {
            let chain = vec![CertificateDer::from_pem_file(self.path("client.pem")).unwrap()];
            let key = PrivateKeyDer::from_pem_file(self.path("client.key")).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The TLS failure inside an error (panics if there is none).
fn tls_kind(e: &io::Error) -> TlsErrorKind {
    TlsError::of(e).unwrap_or_else(|| panic!("not a TLS error: {e:?}")).kind()
}

/// A client and a server stream over 127.0.0.1 (each side's result).
async fn tls_pair(
    acceptor: TlsAcceptor,
    connector: &TlsConnector,
    name: &str,
) -> (io::Result<TlsStream>, io::Result<TlsStream>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let server = uvasync::spawn(async move {
        let (tcp, _) = l.accept().await?;
        acceptor.accept(tcp).await
    });
    let client = async { connector.connect(name, TcpStream::connect(("127.0.0.1", port)).await?).await }.await;
    (client, server.await.unwrap())
}

/// A rustls client in a thread against a uvasync server: `serve` runs on
/// the accepted TLS stream's result, `client` on the rustls connection.
fn rustls_against_uvasync<C, S, F>(
    acceptor: TlsAcceptor,
    config: Arc<rustls::ClientConfig>,
    client: C,
    serve: S,
) -> F::Output
where
    C: FnOnce(rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>) + Send + 'static,
    S: FnOnce(io::Result<TlsStream>) -> F,
    F: std::future::Future,
{
    let (out, thread) = uvasync::run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            let sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let conn = rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
            client(rustls::StreamOwned::new(conn, sock));
        });
        let (tcp, _) = l.accept().await.unwrap();
        let tls = uvasync::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await.unwrap();
        (serve(tls).await, thread)
    });
    thread.join().unwrap();
    out
}

#[test]
fn rustls_client_line_echo_alpn_and_session_queries() {
    let pki = Pki::new();
    let config = pki.rustls_client(&[b"h2", b"http/1.1"], false);
    let acceptor = TlsAcceptor::builder(pki.identity("server")).alpn(&["http/1.1", "h2"]).build().unwrap();
    rustls_against_uvasync(
        acceptor,
        config,
        |mut s| {
            s.write_all(b"hello\n").unwrap();
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).unwrap(); // the server's close_notify ends it cleanly
            assert_eq!(reply, b"HELLO\n");
            assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
            assert_eq!(s.conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
            s.conn.send_close_notify();
            s.flush().unwrap();
        },
        |tls| async move {
            let mut tls = tls.unwrap();
            assert_eq!(tls.alpn_protocol().unwrap().as_deref(), Some(&b"http/1.1"[..]));
            assert_eq!(tls.protocol_version().unwrap(), TlsVersion::Tls13);
            assert_eq!(tls.server_name().unwrap().as_deref(), Some("localhost"));
            assert!(tls.cipher_suite().unwrap().starts_with("TLS_"), "{}", tls.cipher_suite().unwrap());
            assert_eq!(tls.peer_certificate().unwrap(), None);
            let mut line = String::new();
            tls.read_line(&mut line).await.unwrap();
            tls.write_all(line.to_uppercase().as_bytes()).await.unwrap();
            tls.shutdown().await.unwrap();
            assert_eq!(tls.read(&mut [0u8; 8]).await.unwrap(), 0); // the client's close_notify
        },
    );
}

#[test]
fn mutual_tls_with_rustls_client() {
    let pki = Pki::new();
    let acceptor = || {
        TlsAcceptor::builder(pki.identity("server")).ca_file(pki.path("ca.pem")).require_client_cert().build().unwrap()
    };
    let client_der = pki.read("client.der");
    rustls_against_uvasync(
        acceptor(),
        pki.rustls_client(&[], true),
        |mut s| {
            s.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
        },
        |tls| async move {
            let mut tls = tls.unwrap();
            assert_eq!(tls.peer_certificate().unwrap(), Some(client_der));
            let mut b = [0u8; 1];
            tls.read_exact(&mut b).await.unwrap();
            tls.write_all(&b).await.unwrap();
            tls.flush().await.unwrap();
        },
    );
    // Without a client certificate the server refuses the handshake.
    rustls_against_uvasync(
        acceptor(),
        pki.rustls_client(&[], false),
        |mut s| {
            // TLS 1.3: the client's handshake ends first; the refusal comes
            // as an alert on its first read.
            let _ = s.write_all(b"x");
            assert!(s.read(&mut [0u8; 1]).is_err());
        },
        |tls| async move { assert_eq!(tls_kind(&tls.unwrap_err()), TlsErrorKind::NoCertificate) },
    );
}

#[test]
fn close_notify_is_the_end_and_an_abrupt_close_is_an_error() {
    let pki = Pki::new();
    rustls_against_uvasync(
        pki.acceptor("server"),
        pki.rustls_client(&[], false),
        |mut s| {
            s.write_all(b"data").unwrap();
            s.conn.send_close_notify();
            s.flush().unwrap();
            // Read on until the server's close: a socket closed with unread
            // bytes (the session tickets) would reset the connection.
            s.read_to_end(&mut Vec::new()).unwrap();
        },
        |tls| async move {
            let mut buf = Vec::new();
            assert_eq!(tls.unwrap().read_to_end(&mut buf).await.unwrap(), 4);
            assert_eq!(buf, b"data");
        },
    );
    rustls_against_uvasync(
        pki.acceptor("server"),
        pki.rustls_client(&[], false),
        |mut s| {
            s.write_all(b"data").unwrap();
            s.flush().unwrap();
            s.sock.shutdown(Shutdown::Write).unwrap(); // TCP FIN, no close_notify
            let _ = s.sock.read_to_end(&mut Vec::new());
        },
        |tls| async move {
            let mut tls = tls.unwrap();
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"data");
            let e = tls.read(&mut [0u8; 8]).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
            assert_eq!(tls_kind(&e), TlsErrorKind::Eof);
        },
    );
}

#[test]
fn verification_failures_each_have_their_own_error() {
    let pki = Pki::new();
    let connector = pki.connector();
    uvasync::run(async {
        // The system's trust store does not know the test CA.
        let (c, _) = tls_pair(pki.acceptor("server"), &TlsConnector::new().unwrap(), "localhost").await;
        let e = c.unwrap_err();
        assert_eq!((e.kind(), tls_kind(&e)), (io::ErrorKind::InvalidData, TlsErrorKind::Untrusted));
        assert!(e.to_string().contains("certificate verify failed"), "{e}");

        let (c, _) = tls_pair(pki.acceptor("expired"), &connector, "localhost").await;
        let e = c.unwrap_err();
        assert_eq!(tls_kind(&e), TlsErrorKind::Expired);
        assert!(e.to_string().contains("expired"), "{e}");

        let (c, _) = tls_pair(pki.acceptor("wrong"), &connector, "localhost").await;
        let e = c.unwrap_err();
        assert_eq!(tls_kind(&e), TlsErrorKind::Hostname);

        // The same name check for an IP address literal.
        let (c, _) = tls_pair(pki.acceptor("server"), &connector, "127.0.0.2").await;
        assert_eq!(tls_kind(&c.unwrap_err()), TlsErrorKind::Hostname);

        let old = TlsAcceptor::builder(pki.identity("server")).max_version(TlsVersion::Tls12).build().unwrap();
        let new = TlsConnector::builder().ca_file(pki.path("ca.pem")).min_version(TlsVersion::Tls13).build().unwrap();
        let (c, s) = tls_pair(old, &new, "localhost").await;
        assert_eq!(tls_kind(&c.unwrap_err()), TlsErrorKind::Version);
        assert_eq!(tls_kind(&s.unwrap_err()), TlsErrorKind::Version);

        // The explicit switches let each one through.
        let any = TlsConnector::builder().danger_accept_invalid_certs(true).build().unwrap();
        let (c, _) = tls_pair(pki.acceptor("server"), &any, "localhost").await;
        c.unwrap();
        let no_name = pki_connector_builder(&pki).danger_accept_invalid_hostnames(true).build().unwrap();
        let (c, _) = tls_pair(pki.acceptor("wrong"), &no_name, "localhost").await;
        c.unwrap();
        let (c, _) = tls_pair(pki.acceptor("expired"), &no_name, "localhost").await;
        assert_eq!(tls_kind(&c.unwrap_err()), TlsErrorKind::Expired);

        // TLS 1.2 when both allow only it.
        let old = TlsAcceptor::builder(pki.identity("server")).max_version(TlsVersion::Tls12).build().unwrap();
        let (c, s) = tls_pair(old, &connector, "localhost").await;
        assert_eq!(c.unwrap().protocol_version().unwrap(), TlsVersion::Tls12);
        assert_eq!(s.unwrap().protocol_version().unwrap(), TlsVersion::Tls12);
    });
}

fn pki_connector_builder(pki: &Pki) -> uvasync::TlsConnectorBuilder {
    TlsConnector::builder().ca_file(pki.path("ca.pem"))
}

#[test]
fn configuration_errors() {
    let pki = Pki::new();
    let e = TlsConnector::builder().ca_file(pki.path("missing.pem")).build().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("missing.pem"), "{e}");
    // A key that is not the certificate's.
    let mismatched = Identity::from_files(pki.path("server.pem"), pki.path("client.key"));
    assert!(TlsAcceptor::new(mismatched).is_err());
    let pem = Identity::from_pem(&pki.read("server.pem"), &pki.read("server.key"));
    TlsAcceptor::new(pem).unwrap();
}

/// 10 MB each way between a uvasync client and server, every byte checked.
#[test]
fn ten_megabytes_both_ways() {
    const TOTAL: usize = 10 << 20;
    let pattern = |i: usize| (i * 7 + i / 4099) as u8;
    let pki = Pki::new();
    uvasync::run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let acceptor = pki.acceptor("server");
        let echo = uvasync::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0;
            loop {
                let n = tls.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                tls.write_all(&buf[..n]).await.unwrap();
                total += n;
            }
            tls.shutdown().await.unwrap();
            total
        });
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut tls = pki.connector().connect("localhost", tcp).await.unwrap();
        let (mut r, mut w) = tls.split();
        let send = async {
            let data: Vec<u8> = (0..TOTAL).map(pattern).collect();
            for chunk in data.chunks(100_000) {
                w.write_all(chunk).await.unwrap();
            }
            w.shutdown().await.unwrap();
        };
        let receive = async {
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0;
            loop {
                let n = r.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                for (k, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, pattern(got + k), "byte {}", got + k);
                }
                got += n;
            }
            got
        };
        let ((), got) = uvasync::join!(send, receive);
        assert_eq!(got, TOTAL);
        assert_eq!(echo.await.unwrap(), TOTAL);
    });
}

/// Dropping a handshake's future (here by a timeout) closes the stream.
#[test]
fn cancelled_handshakes_close_the_stream() {
    let pki = Pki::new();
    uvasync::run(async {
        // A client whose server never answers.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (mut silent, _) = l.accept().await.unwrap();
        let connector = pki.connector();
        let r = uvasync::timeout(Duration::from_millis(100), connector.connect("localhost", tcp)).await;
        assert!(r.is_err(), "the handshake did not stall");
        let mut hello = Vec::new();
        let n = uvasync::timeout(Duration::from_secs(5), silent.read_to_end(&mut hello)).await.unwrap().unwrap();
        assert!(n > 0 && hello[0] == 22, "expected a ClientHello record, then the end");

        // A server whose client never speaks.
        let tcp = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = l.accept().await.unwrap();
        let acceptor = pki.acceptor("server");
        let r = uvasync::timeout(Duration::from_millis(100), acceptor.accept(accepted)).await;
        assert!(r.is_err(), "the handshake did not stall");
        let mut mute = tcp;
        let n = uvasync::timeout(Duration::from_secs(5), mute.read_to_end(&mut Vec::new())).await.unwrap().unwrap();
        assert_eq!(n, 0);
    });
}

/// A child process killed on drop.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `openssl s_server -rev` (each line comes back reversed) on 127.0.0.1,
/// once it listens.
fn s_server(pki: &Pki, port: u16, extra: &[&str]) -> Peer {
    let accept = format!("127.0.0.1:{port}");
    let mut child = Command::new("openssl")
        .args(["s_server", "-accept", &accept, "-rev", "-cert", "server.pem", "-key", "server.key"])
        .args(extra)
        .current_dir(&pki.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let peer = Peer(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("ACCEPT") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("s_server did not start");
    peer
}

#[test]
fn uvasync_client_against_openssl_s_server() {
    let pki = Pki::new();
    let port = free_port();
    let _peer = s_server(&pki, port, &["-alpn", "h2,http/1.1"]);
    let server_der = pki.read("server.der");
    uvasync::run(async {
        let connector = pki_connector_builder(&pki).alpn(&["http/1.1"]).build().unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut tls =
            uvasync::timeout(Duration::from_secs(10), connector.connect("localhost", tcp)).await.unwrap().unwrap();
        assert_eq!(tls.alpn_protocol().unwrap().as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(tls.peer_certificate().unwrap(), Some(server_der));
        assert_eq!(tls.protocol_version().unwrap(), TlsVersion::Tls13);
        tls.write_all(b"hello tls\n").await.unwrap();
        let mut line = String::new();
        uvasync::timeout(Duration::from_secs(10), tls.read_line(&mut line)).await.unwrap().unwrap();
        assert_eq!(line.trim_end(), "slt olleh");
    });
    // The same server seen by a client that does not trust its CA.
    uvasync::run(async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let e = TlsConnector::new().unwrap().connect("localhost", tcp).await.unwrap_err();
        assert_eq!(tls_kind(&e), TlsErrorKind::Untrusted, "{e}");
    });
}

#[cfg(feature = "futures-io")]
#[test]
fn futures_io_traits_over_tls() {
    use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new();
    uvasync::run(async {
        let (c, s) = tls_pair(pki.acceptor("server"), &pki.connector(), "localhost").await;
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        AsyncWriteExt::write_all(&mut c, b"one\ntwo\n").await.unwrap();
        AsyncWriteExt::close(&mut c).await.unwrap();
        let mut line = String::new();
        AsyncBufReadExt::read_line(&mut s, &mut line).await.unwrap();
        assert_eq!(line, "one\n");
        let mut rest = String::new();
        AsyncReadExt::read_to_string(&mut s, &mut rest).await.unwrap();
        assert_eq!(rest, "two\n");
    });
}
