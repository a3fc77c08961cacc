//! The admin kubeconfig: a client certificate for `system:admin` in `system:masters`, issued
//! by the cluster CA once and kept in the TLS directory, and a kubeconfig that trusts the CA and
//! points at this server, written where `--write-kubeconfig` says with the mode asked for.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use cairn_pki::{CertRequest, ServerPki, Usage};

/// The admin client certificate's files in the TLS directory.
const ADMIN_CERT: &str = "client-admin.crt";
const ADMIN_KEY: &str = "client-admin.key";

/// The admin client certificate and key (PEM), issued on first use.
pub fn admin_credentials(pki: &ServerPki) -> Result<(String, String)> {
    let cert_path = pki.dir().join(ADMIN_CERT);
    let key_path = pki.dir().join(ADMIN_KEY);
    if let (Ok(cert), Ok(key)) = (
        std::fs::read_to_string(&cert_path),
        std::fs::read_to_string(&key_path),
    ) {
        return Ok((cert, key));
    }
    let issued = pki
        .ca()
        .issue(&CertRequest::new("system:admin", Usage::Client).organization("system:masters"))?;
    cairn_pki::write_atomic(&key_path, issued.key_pem.as_bytes(), 0o600)?;
    cairn_pki::write_atomic(&cert_path, issued.cert_pem.as_bytes(), 0o644)?;
    Ok((issued.cert_pem, issued.key_pem))
}

/// The kubeconfig text for a client of `server` with these credentials.
pub fn render(server: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

/// Writes the admin kubeconfig to `path` with `mode`.
pub fn write(path: &Path, mode: u32, server: &str, pki: &ServerPki) -> Result<()> {
    let (cert, key) = admin_credentials(pki)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let text = render(server, pki.ca_bundle_pem(), &cert, &key);
    cairn_pki::write_atomic(path, text.as_bytes(), mode)
        .with_context(|| format!("write the kubeconfig {}", path.display()))?;
    Ok(())
}
