//! TLS over TCP streams, run by the core (OpenSSL on memory buffers): a
//! [`TlsConnector`] turns a connected [`TcpStream`] into a client
//! [`TlsStream`], a [`TlsAcceptor`] an accepted one into a server stream.
//! A `TlsStream` has the same methods as `TcpStream` (the core's stream
//! calls carry plaintext over TLS), plus queries of the session.
//!
//! Errors of the handshake (and alerts that come later) are `io::Error`s of
//! kind `InvalidData` whose inner error is a [`TlsError`] saying which
//! failure it was ([`TlsErrorKind`]) in OpenSSL's words; a connection that
//! ends without the peer's close_notify reads as `UnexpectedEof`
//! ([`TlsErrorKind::Eof`]) after the bytes that came.
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::future::poll_fn;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;

use uvasync_sys as sys;

use crate::error::{check, to_io};
use crate::net::TcpStream;
use crate::stream::RawStream;
use crate::task::CoreWait;

/// A TLS protocol version (the core speaks TLS 1.2 and 1.3 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    fn wire(self) -> c_int {
        match self {
            TlsVersion::Tls12 => sys::UVA_TLS_VERSION_1_2,
            TlsVersion::Tls13 => sys::UVA_TLS_VERSION_1_3,
        }
    }
}

/// Which TLS failure an error is (the core's `UVA_ETLS*` codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The peer's certificate is not trusted (unknown issuer, self-signed).
    Untrusted,
    /// The peer's certificate expired or is not valid yet.
    Expired,
    /// The server's certificate is not for the name connected to.
    Hostname,
    /// The peer's certificate failed verification for another reason.
    Certificate,
    /// A server that requires a client certificate got none.
    NoCertificate,
    /// No protocol version in common.
    Version,
    /// The peer sent a fatal alert (e.g. it rejected our certificate).
    Alert,
    /// The connection ended during the handshake or without close_notify.
    Eof,
    /// Any other failure of the TLS protocol.
    Protocol,
}

impl TlsErrorKind {
    fn of_code(code: c_int) -> Option<TlsErrorKind> {
        Some(match code {
            sys::UVA_ETLSUNTRUSTED => TlsErrorKind::Untrusted,
            sys::UVA_ETLSEXPIRED => TlsErrorKind::Expired,
            sys::UVA_ETLSHOSTNAME => TlsErrorKind::Hostname,
            sys::UVA_ETLSCERT => TlsErrorKind::Certificate,
            sys::UVA_ETLSNOCERT => TlsErrorKind::NoCertificate,
            sys::UVA_ETLSVERSION => TlsErrorKind::Version,
            sys::UVA_ETLSALERT => TlsErrorKind::Alert,
            sys::UVA_ETLSEOF => TlsErrorKind::Eof,
            sys::UVA_ETLS => TlsErrorKind::Protocol,
            _ => return None,
        })
    }
}

/// A TLS failure: the inner error of the `io::Error`s TLS calls return.
///
/// ```
/// fn why(e: &std::io::Error) -> Option<uvasync::TlsErrorKind> {
///     uvasync::TlsError::of(e).map(|t| t.kind())
/// }
/// ```
#[derive(Debug)]
pub struct TlsError {
    kind: TlsErrorKind,
    message: String,
}

impl TlsError {
    /// Which failure it was.
    pub fn kind(&self) -> TlsErrorKind {
        self.kind
    }

    /// The `TlsError` inside `e`, if `e` is a TLS failure.
    pub fn of(e: &io::Error) -> Option<&TlsError> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<TlsError>())
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}

/// The `io::Error` for a core TLS code, with `detail` (OpenSSL's reason)
/// after the core's message; `None` if `code` is not a TLS code.
pub(crate) fn tls_error(code: c_int, detail: &str) -> Option<io::Error> {
    let kind = TlsErrorKind::of_code(code)?;
    // SAFETY: static, NUL-terminated strings.
    let (name, msg) = unsafe {
        (
            CStr::from_ptr(sys::uva_err_name(code)).to_string_lossy(),
            CStr::from_ptr(sys::uva_strerror(code)).to_string_lossy(),
        )
    };
    let message = if detail.is_empty() { format!("{msg} ({name})") } else { format!("{msg} ({name}): {detail}") };
    let io_kind = if kind == TlsErrorKind::Eof { io::ErrorKind::UnexpectedEof } else { io::ErrorKind::InvalidData };
    Some(io::Error::new(io_kind, TlsError { kind, message }))
}

/// A configured core context; any thread may use it once built.
struct Ctx(*mut sys::uva_tls_ctx_t);

// SAFETY: the core allows a configured context to be used by streams of any
// loops on any threads at once, and freed from any thread.
unsafe impl Send for Ctx {}
unsafe impl Sync for Ctx {}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: our reference; streams keep their own.
        unsafe { sys::uva_tls_ctx_free(self.0) };
    }
}

fn cstring(s: &str, what: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("NUL byte in {what}")))
}

fn path_cstring(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a path"))
}

/// A configuration call's result, with what was being done in the message.
fn setup(rc: c_int, what: impl FnOnce() -> String) -> io::Result<()> {
    check(rc).map(drop).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", what())))
}

/// This side's certificate chain and private key (PEM), for a server or for
/// a client of mutual TLS.
///
/// ```no_run
/// let id = uvasync::Identity::from_files("server.pem", "server.key");
/// ```
#[derive(Clone, Debug)]
pub struct Identity(IdentitySource);

#[derive(Clone)]
enum IdentitySource {
    Pem { chain: Vec<u8>, key: Vec<u8> },
    Files { chain: PathBuf, key: PathBuf },
}

impl fmt::Debug for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitySource::Pem { .. } => f.write_str("Pem"),
            IdentitySource::Files { chain, .. } => f.debug_struct("Files").field("chain", chain).finish(),
        }
    }
}

impl Identity {
    /// From PEM in memory: the chain (leaf first, then intermediates) and
    /// an unencrypted private key.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Identity {
        Identity(IdentitySource::Pem { chain: chain.to_vec(), key: key.to_vec() })
    }

    /// From PEM files: the chain (leaf first) and an unencrypted key.
    pub fn from_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Identity {
        Identity(IdentitySource::Files { chain: chain.as_ref().to_path_buf(), key: key.as_ref().to_path_buf() })
    }
}

/// The settings both roles share; `build` applies them to a new context.
#[derive(Clone, Debug, Default)]
struct Settings {
    ca_files: Vec<PathBuf>,
    ca_pems: Vec<Vec<u8>>,
    identity: Option<Identity>,
    alpn: Vec<String>,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
    ciphers12: Option<String>,
    ciphers13: Option<String>,
    session_cache: Option<usize>,
}

impl Settings {
    fn build(&self, role: sys::uva_tls_role, verify: c_int) -> io::Result<Ctx> {
        let mut raw = ptr::null_mut();
        setup(unsafe { sys::uva_tls_ctx_new(&mut raw, role) }, || "creating a TLS context".into())?;
        let ctx = Ctx(raw);
        setup(unsafe { sys::uva_tls_ctx_set_verify(raw, verify) }, || "setting verification".into())?;
        for file in &self.ca_files {
            let c = path_cstring(file)?;
            setup(unsafe { sys::uva_tls_ctx_load_ca(raw, c.as_ptr(), ptr::null()) }, || {
                format!("loading CA certificates from {}", file.display())
            })?;
        }
        for pem in &self.ca_pems {
            setup(unsafe { sys::uva_tls_ctx_load_ca_pem(raw, pem.as_ptr().cast(), pem.len()) }, || {
                "loading CA certificates from PEM".into()
            })?;
        }
        match &self.identity {
            Some(Identity(IdentitySource::Pem { chain, key })) => setup(
                unsafe {
                    sys::uva_tls_ctx_use_cert_pem(
                        raw,
                        chain.as_ptr().cast(),
                        chain.len(),
                        key.as_ptr().cast(),
                        key.len(),
                        ptr::null(),
                    )
                },
                || "loading the certificate and key from PEM".into(),
            )?,
            Some(Identity(IdentitySource::Files { chain, key })) => {
                let (c, k) = (path_cstring(chain)?, path_cstring(key)?);
                setup(unsafe { sys::uva_tls_ctx_use_cert_file(raw, c.as_ptr(), k.as_ptr(), ptr::null()) }, || {
                    format!("loading the certificate {} and key {}", chain.display(), key.display())
                })?
            }
            None => {}
        }
        let (min, max) = (self.min_version.map_or(0, TlsVersion::wire), self.max_version.map_or(0, TlsVersion::wire));
        if min != 0 || max != 0 {
            setup(unsafe { sys::uva_tls_ctx_set_versions(raw, min, max) }, || "setting the versions".into())?;
        }
        if self.ciphers12.is_some() || self.ciphers13.is_some() {
            let c12 = self.ciphers12.as_deref().map(|s| cstring(s, "a cipher list")).transpose()?;
            let c13 = self.ciphers13.as_deref().map(|s| cstring(s, "a cipher list")).transpose()?;
            let p = |c: &Option<CString>| c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
            setup(unsafe { sys::uva_tls_ctx_set_ciphers(raw, p(&c12), p(&c13)) }, || "setting the ciphers".into())?;
        }
        if !self.alpn.is_empty() {
            let names = self.alpn.iter().map(|s| cstring(s, "an ALPN name")).collect::<io::Result<Vec<_>>>()?;
            let ptrs: Vec<*const c_char> = names.iter().map(|c| c.as_ptr()).collect();
            setup(unsafe { sys::uva_tls_ctx_set_alpn(raw, ptrs.as_ptr(), ptrs.len()) }, || "setting ALPN".into())?;
        }
        if let Some(n) = self.session_cache {
            setup(unsafe { sys::uva_tls_ctx_set_session_cache(raw, n) }, || "setting the session cache".into())?;
        }
        Ok(ctx)
    }
}

/// The setters both builders share.
macro_rules! common_setters {
    () => {
        /// Trust the CA certificates of this PEM file (for a client: instead
        /// of the system's trust store; for a server: to verify client
        /// certificates). May be called more than once.
        pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
            self.settings.ca_files.push(path.as_ref().to_path_buf());
            self
        }

        /// As [`ca_file`](Self::ca_file), from PEM in memory.
        pub fn ca_pem(mut self, pem: &[u8]) -> Self {
            self.settings.ca_pems.push(pem.to_vec());
            self
        }

        /// Application protocols (ALPN), most preferred first.
        pub fn alpn<S: AsRef<str>>(mut self, protocols: &[S]) -> Self {
            self.settings.alpn = protocols.iter().map(|s| s.as_ref().to_string()).collect();
            self
        }

        /// The oldest protocol version allowed (default TLS 1.2).
        pub fn min_version(mut self, version: TlsVersion) -> Self {
            self.settings.min_version = Some(version);
            self
        }

        /// The newest protocol version allowed (default TLS 1.3).
        pub fn max_version(mut self, version: TlsVersion) -> Self {
            self.settings.max_version = Some(version);
            self
        }

        /// Cipher suites in OpenSSL's syntax: `tls12` for TLS 1.2
        /// (`"ECDHE+AESGCM"`), `tls13` for TLS 1.3
        /// (`"TLS_AES_128_GCM_SHA256"`); `None` keeps that list.
        pub fn ciphers(mut self, tls12: Option<&str>, tls13: Option<&str>) -> Self {
            self.settings.ciphers12 = tls12.map(str::to_string);
            self.settings.ciphers13 = tls13.map(str::to_string);
            self
        }

        /// How many sessions to keep for resumption (default 256; 0: none).
        pub fn session_cache(mut self, size: usize) -> Self {
            self.settings.session_cache = Some(size);
            self
        }
    };
}

/// Builds a [`TlsConnector`]. Verification is on: the server's chain
/// against the system's trust store (or [`ca_file`](Self::ca_file) /
/// [`ca_pem`](Self::ca_pem)) and its name against the one connected to.
#[derive(Clone, Debug, Default)]
pub struct TlsConnectorBuilder {
    settings: Settings,
    accept_invalid_certs: bool,
    accept_invalid_hostnames: bool,
}

impl TlsConnectorBuilder {
    common_setters!();

    /// A client certificate, for servers that ask for one (mutual TLS).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.settings.identity = Some(identity);
        self
    }

    /// Accept any server certificate, without verifying it. Dangerous: an
    /// attacker in the middle sees and changes everything.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Verify the server's chain but not its name. Dangerous.
    pub fn danger_accept_invalid_hostnames(mut self, accept: bool) -> Self {
        self.accept_invalid_hostnames = accept;
        self
    }

    /// The connector. Errors: a CA or certificate file missing (`NotFound`)
    /// or not PEM, a key that does not match its certificate, a cipher list
    /// that selects nothing, a build of the core without TLS (`Unsupported`).
    pub fn build(&self) -> io::Result<TlsConnector> {
        let verify = if self.accept_invalid_certs {
            sys::UVA_TLS_VERIFY_NONE
        } else if self.accept_invalid_hostnames {
            sys::UVA_TLS_VERIFY_PEER | sys::UVA_TLS_VERIFY_NO_HOSTNAME
        } else {
            sys::UVA_TLS_VERIFY_PEER
        };
        Ok(TlsConnector { ctx: Arc::new(self.settings.build(sys::UVA_TLS_CLIENT, verify)?) })
    }
}

/// The client side: wraps connected TCP streams in TLS. Cheap to clone,
/// `Send + Sync` (one connector may serve runtimes on several threads).
///
/// ```no_run
/// # uvasync::run(async {
/// let connector = uvasync::TlsConnector::new()?;
/// let tcp = uvasync::TcpStream::connect(("example.com", 443)).await?;
/// let mut tls = connector.connect("example.com", tcp).await?;
/// tls.write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    ctx: Arc<Ctx>,
}

impl TlsConnector {
    /// A connector with the defaults: the system's trust store, TLS 1.2
    /// and 1.3, verification on.
    pub fn new() -> io::Result<TlsConnector> {
        TlsConnectorBuilder::default().build()
    }

    /// A builder with the defaults.
    pub fn builder() -> TlsConnectorBuilder {
        TlsConnectorBuilder::default()
    }

    /// Runs the client handshake over `stream`: `server_name` is sent as
    /// SNI and the certificate is verified against it (an IP address is
    /// checked against the certificate's addresses and sent as no SNI).
    /// Dropping the future mid-handshake closes the stream.
    pub async fn connect(&self, server_name: &str, stream: TcpStream) -> io::Result<TlsStream> {
        let name = cstring(server_name, "the server name")?;
        handshake(stream.inner, &self.ctx, name.as_ptr()).await
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish_non_exhaustive()
    }
}

/// Whether a server asks clients for a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ClientAuth {
    #[default]
    None,
    Optional,
    Required,
}

/// Builds a [`TlsAcceptor`] (see [`TlsAcceptor::builder`]).
#[derive(Clone, Debug)]
pub struct TlsAcceptorBuilder {
    settings: Settings,
    client_auth: ClientAuth,
}

impl TlsAcceptorBuilder {
    common_setters!();

    /// Ask clients for a certificate and verify it (against
    /// [`ca_file`](Self::ca_file) / [`ca_pem`](Self::ca_pem)) when one
    /// comes; a client without one is let in.
    pub fn request_client_cert(mut self) -> Self {
        self.client_auth = ClientAuth::Optional;
        self
    }

    /// As [`request_client_cert`](Self::request_client_cert), and fail the
    /// handshake of a client without one ([`TlsErrorKind::NoCertificate`]).
    pub fn require_client_cert(mut self) -> Self {
        self.client_auth = ClientAuth::Required;
        self
    }

    /// The acceptor. Errors as [`TlsConnectorBuilder::build`].
    pub fn build(&self) -> io::Result<TlsAcceptor> {
        let verify = match self.client_auth {
            ClientAuth::None => sys::UVA_TLS_VERIFY_NONE,
            ClientAuth::Optional => sys::UVA_TLS_VERIFY_PEER,
            ClientAuth::Required => sys::UVA_TLS_VERIFY_REQUIRE,
        };
        Ok(TlsAcceptor { ctx: Arc::new(self.settings.build(sys::UVA_TLS_SERVER, verify)?) })
    }
}

/// The server side: runs the server handshake over accepted TCP streams.
/// Cheap to clone, `Send + Sync`.
///
/// ```no_run
/// # uvasync::run(async {
/// let acceptor = uvasync::TlsAcceptor::new(uvasync::Identity::from_files("cert.pem", "key.pem"))?;
/// let listener = uvasync::TcpListener::bind("127.0.0.1:8443").await?;
/// let (tcp, _) = listener.accept().await?;
/// let mut tls = acceptor.accept(tcp).await?;
/// tls.write_all(b"hello\n").await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    ctx: Arc<Ctx>,
}

impl TlsAcceptor {
    /// An acceptor with `identity` and the defaults (TLS 1.2 and 1.3, no
    /// client certificate asked for).
    pub fn new(identity: Identity) -> io::Result<TlsAcceptor> {
        TlsAcceptor::builder(identity).build()
    }

    /// A builder for a server with `identity`.
    pub fn builder(identity: Identity) -> TlsAcceptorBuilder {
        let settings = Settings { identity: Some(identity), ..Settings::default() };
        TlsAcceptorBuilder { settings, client_auth: ClientAuth::None }
    }

    /// Runs the server handshake over `stream`. Put a timeout on it
    /// ([`timeout`](crate::timeout)): a client that stalls is waited for.
    /// Dropping the future mid-handshake closes the stream.
    pub async fn accept(&self, stream: TcpStream) -> io::Result<TlsStream> {
        handshake(stream.inner, &self.ctx, ptr::null()).await
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor").finish_non_exhaustive()
    }
}

/// Starts TLS on `inner` and waits for the handshake; the stream is closed
/// if it fails or the future is dropped.
async fn handshake(inner: RawStream, ctx: &Ctx, server_name: *const c_char) -> io::Result<TlsStream> {
    check(unsafe { sys::uva_tls_start(inner.raw, ctx.0, server_name) })?;
    let stream = TlsStream { inner };
    let raw = stream.inner.raw;
    // Declared after `stream`: dropped (withdrawn from the core) before it.
    let mut wait = CoreWait::new();
    let rc = poll_fn(|cx| wait.poll(raw as *const c_void, cx, |t| unsafe { sys::uva_tls_handshake(raw, t) })).await;
    if rc < 0 {
        return Err(stream.error(rc));
    }
    Ok(stream)
}

/// A TLS connection over TCP, from [`TlsConnector::connect`] or
/// [`TlsAcceptor::accept`]. It has [`TcpStream`]'s methods (read,
/// read_line, read_with, write_all, split, ... and the futures-io traits
/// with feature `futures-io`), carrying plaintext; `send_file` fails with
/// `Unsupported` (the file would go out unencrypted). Dropping it closes it
/// gracefully and [`shutdown`](Self::shutdown) half-closes, both with the
/// TLS close_notify; [`abort`](Self::abort) sends none.
pub struct TlsStream {
    pub(crate) inner: RawStream,
}

/// A string query of the core into a 256-byte buffer.
fn query_string(op: impl FnOnce(*mut c_char, usize) -> c_int) -> io::Result<String> {
    let mut buf = [0 as c_char; 256];
    check(op(buf.as_mut_ptr(), buf.len()))?;
    // SAFETY: the core NUL-terminates.
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

impl TlsStream {
    /// The error for a failed handshake or read: the TLS code with
    /// OpenSSL's reason, or the plain error.
    fn error(&self, rc: c_int) -> io::Error {
        let raw = self.inner.raw;
        let detail = query_string(|b, n| unsafe { sys::uva_tls_error_text(raw, b, n) }).unwrap_or_default();
        tls_error(rc, &detail).unwrap_or_else(|| to_io(rc))
    }

    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> io::Result<TlsVersion> {
        let mut v = 0;
        check(unsafe { sys::uva_tls_version(&mut v, self.inner.raw) })?;
        Ok(if v == sys::UVA_TLS_VERSION_1_3 { TlsVersion::Tls13 } else { TlsVersion::Tls12 })
    }

    /// The negotiated application protocol (ALPN), if any.
    pub fn alpn_protocol(&self) -> io::Result<Option<Vec<u8>>> {
        let raw = self.inner.raw;
        let p = query_string(|b, n| unsafe { sys::uva_tls_alpn(raw, b, n) })?;
        Ok((!p.is_empty()).then(|| p.into_bytes()))
    }

    /// The cipher suite's name (OpenSSL's, e.g. `TLS_AES_256_GCM_SHA384`).
    pub fn cipher_suite(&self) -> io::Result<String> {
        let raw = self.inner.raw;
        query_string(|b, n| unsafe { sys::uva_tls_cipher(raw, b, n) })
    }

    /// The server name the client sent (SNI), on either side.
    pub fn server_name(&self) -> io::Result<Option<String>> {
        let raw = self.inner.raw;
        let s = query_string(|b, n| unsafe { sys::uva_tls_server_name(raw, b, n) })?;
        Ok((!s.is_empty()).then_some(s))
    }

    /// The peer's certificate (DER), if it sent one.
    pub fn peer_certificate(&self) -> io::Result<Option<Vec<u8>>> {
        let raw = self.inner.raw;
        let mut len = 0;
        let rc = unsafe { sys::uva_tls_peer_cert(&mut len, raw, ptr::null_mut(), 0) };
        if rc != sys::UVA_ENOBUFS {
            check(rc)?;
        }
        if len == 0 {
            return Ok(None);
        }
        let mut der = vec![0u8; len];
        check(unsafe { sys::uva_tls_peer_cert(&mut len, raw, der.as_mut_ptr().cast(), der.len()) })?;
        der.truncate(len);
        Ok(Some(der))
    }

    /// Whether the handshake resumed an earlier session.
    pub fn session_reused(&self) -> io::Result<bool> {
        let mut out = 0;
        check(unsafe { sys::uva_tls_session_reused(&mut out, self.inner.raw) })?;
        Ok(out != 0)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.address(false)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.address(true)
    }
}

crate::net::stream_methods!(TlsStream);
