//! TLS for `httpGet` with scheme HTTPS, as kubelet does it: the server's
//! certificate is not verified (Go's `InsecureSkipVerify`), but handshake
//! signatures still are, with the ring provider. A server that answers in
//! plain HTTP is recognised, as Go does, from the first bytes it sent.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Go's text when a server answers a TLS hello in plain HTTP.
pub(crate) const HTTP_RESPONSE_TO_HTTPS: &str = "http: server gave HTTP response to HTTPS client";

/// Accepts any certificate; checks handshake signatures with the provider.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration, built once per process.
fn config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|err| err.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// Runs the TLS handshake over `stream`; the error is Go's text.
pub(crate) async fn handshake(stream: TcpStream, host: &str) -> Result<TlsStream<Sniff>, String> {
    let config = config()?;
    let name = ServerName::try_from(host.to_owned()).map_err(|err| err.to_string())?;
    let sniff = Sniff {
        inner: stream,
        first: Vec::with_capacity(5),
    };
    match TlsConnector::from(config)
        .connect(name, sniff)
        .into_fallible()
        .await
    {
        Ok(stream) => Ok(stream),
        Err((_, sniff)) if sniff.first.starts_with(b"HTTP/") => {
            Err(HTTP_RESPONSE_TO_HTTPS.to_owned())
        }
        Err((err, _)) => Err(tls_error_text(&err)),
    }
}

/// The text of a handshake error (rustls' own, marked `tls:` as Go does).
fn tls_error_text(err: &io::Error) -> String {
    match err.get_ref() {
        Some(inner) => format!("tls: {inner}"),
        None => format!("tls: {err}"),
    }
}

/// A TCP stream that keeps the first five bytes it read.
pub(crate) struct Sniff {
    inner: TcpStream,
    first: Vec<u8>,
}

impl AsyncRead for Sniff {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let wanted = 5 - self.first.len();
        if wanted > 0 {
            let fresh = &buf.filled()[before..];
            let taken = fresh[..fresh.len().min(wanted)].to_vec();
            self.first.extend_from_slice(&taken);
        }
        polled
    }
}

impl AsyncWrite for Sniff {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
