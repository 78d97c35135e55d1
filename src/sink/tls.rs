//! TLS client side of the sinks (syslog over TLS, RFC 5425, and `https://` webhooks): which
//! certificate authorities a server certificate must chain to.
//!
//! `tls_ca` in a sink's config names a PEM file of CA certificates; without it the system's
//! store is used (`rustls-native-certs`: `/etc/ssl/certs` and friends, honouring
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`), so a SOC's internal CA installed on the host just works.
//! The TLS server side (listeners) lives in `reader/tls.rs`.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The CA certificates a server must chain to: those in `tls_ca`, or the system's.
pub fn roots(tls_ca: Option<&Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    match tls_ca {
        Some(path) => {
            let err = |e: String| io::Error::other(format!("tls_ca {}: {e}", path.display()));
            let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                .map_err(|e| err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.to_string()))?;
            if certs.is_empty() {
                return Err(err("no CERTIFICATE section".into()));
            }
            Ok(certs)
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(io::Error::other(format!(
                    "no system CA certificates found{why}: set tls_ca"
                )));
            }
            Ok(found.certs)
        }
    }
}

/// A rustls client configuration that verifies servers against `roots`.
pub fn client_config(roots: &[CertificateDer<'static>]) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut store = RootCertStore::empty();
    // System stores carry the odd certificate webpki cannot parse; skipping it is what every
    // rustls client does. An explicit tls_ca with nothing usable is an error.
    let (added, _ignored) = store.add_parsable_certificates(roots.iter().cloned());
    if added == 0 {
        return Err(io::Error::other("no usable CA certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}
