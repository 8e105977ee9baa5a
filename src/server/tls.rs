//! TLS for both listeners from one certificate chain and key (`--tls-cert`,
//! `--tls-key`), checked at startup so a bad file stops the server before it
//! listens rather than failing every handshake later.
//!
//! Flight SQL uses tonic's own TLS; HTTP gets a [`TlsListener`] for
//! `axum::serve` built on the same rustls (ring) that tonic pulls in.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tonic::transport::{Identity, ServerTlsConfig};
use tracing::debug;

use crate::config::TlsFiles;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("--tls-key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("--tls-cert {cert} with --tls-key {key}: {reason}")]
    Pair {
        cert: String,
        key: String,
        reason: String,
    },
}

/// Both listeners' TLS settings, from the same files.
pub struct ServerTls {
    pub grpc: ServerTlsConfig,
    pub http: TlsAcceptor,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))
}

/// Reads and checks the certificate chain and key: both PEM, and the key
/// must belong to the first certificate.
pub fn load(files: &TlsFiles) -> Result<ServerTls, TlsError> {
    let cert_err = |reason: String| TlsError::Cert {
        path: files.cert.display().to_string(),
        reason,
    };
    let key_err = |reason: String| TlsError::Key {
        path: files.key.display().to_string(),
        reason,
    };
    let cert_pem = read(&files.cert).map_err(cert_err)?;
    let key_pem = read(&files.key).map_err(key_err)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(cert_err("no PEM CERTIFICATE block in it".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| key_err(format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut http = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| TlsError::Pair {
            cert: files.cert.display().to_string(),
            key: files.key.display().to_string(),
            reason: match e {
                rustls::Error::InconsistentKeys(_) => {
                    "the key is not the private key of the (first) certificate".into()
                }
                other => other.to_string(),
            },
        })?;
    // The HTTP listener speaks HTTP/1.1 only.
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    let grpc = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert_pem, key_pem))
        .timeout(HANDSHAKE_TIMEOUT);
    Ok(ServerTls {
        grpc,
        http: TlsAcceptor::from(Arc::new(http)),
    })
}

/// A TCP listener whose connections come out TLS-terminated, for
/// `axum::serve`. Handshakes run in their own tasks so that one slow client
/// does not hold up the others.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    // axum dropped the listener: the server is stopping.
                    _ = tx.closed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // Out of file descriptors and the like: wait, don't spin.
                            debug!("HTTPS accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => debug!("TLS handshake from {peer} failed: {e}"),
                        Err(_) => debug!("TLS handshake from {peer} timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        TlsFiles { cert: c, key: k }
    }

    #[test]
    fn unreadable_and_invalid_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope.key"),
        };
        let err = load(&missing).err().unwrap().to_string();
        assert!(
            err.starts_with("--tls-cert") && err.contains("nope.pem"),
            "{err}"
        );
        let err = load(&files(dir.path(), "hello", "x"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no PEM CERTIFICATE"), "{err}");
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let err = load(&files(dir.path(), cert, "x"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("--tls-key") && err.contains("private key"),
            "{err}"
        );
    }
}
