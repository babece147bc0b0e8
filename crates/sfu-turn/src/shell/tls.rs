//! The TLS listener's certificate: PEM files read once at start, rustls on ring.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ServerConfig, crypto};

use super::StartError;

pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, StartError> {
    let fail =
        |what: &str, path: &Path, e: &dyn std::fmt::Display| StartError::Tls(format!("{what} {}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| fail("reading certificates from", cert_file, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail("reading certificates from", cert_file, &e))?;
    if certs.is_empty() {
        return Err(fail("reading certificates from", cert_file, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| fail("reading the private key from", key_file, &e))?;
    let config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| fail("using the certificate in", cert_file, &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
