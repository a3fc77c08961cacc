//! Where the API server is and who we are: built by hand or read from a kubeconfig file.
//!
//! Only what cairn's components and tests need is read from a kubeconfig: the current context's
//! cluster (`server`, `certificate-authority[-data]`) and user (`client-certificate[-data]` with
//! `client-key[-data]`, or `token`). Exec plugins, auth providers and proxies are not supported.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, Result};

/// How the client proves who it is.
#[derive(Clone)]
pub enum Credentials {
    /// A client certificate (chain PEM, leaf first) and its private key (PEM).
    ClientCert {
        /// The certificate chain, PEM.
        cert_pem: String,
        /// The private key, PEM.
        key_pem: String,
    },
    /// A bearer token.
    Token(String),
    /// No credential (anonymous requests).
    None,
}

impl std::fmt::Debug for Credentials {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ClientCert { .. } => f.write_str("ClientCert"),
            Credentials::Token(_) => f.write_str("Token"),
            Credentials::None => f.write_str("None"),
        }
    }
}

/// A client's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's base URL, such as `https://127.0.0.1:6443`.
    pub server: String,
    /// The CA certificates (PEM) the server's certificate must chain to.
    pub ca_pem: String,
    /// The credential sent with every request.
    pub credentials: Credentials,
    /// The `fieldManager` sent with writes, such as `cairn-scheduler`.
    pub field_manager: String,
    /// Timeout of a request that is not a watch (a watch is bounded by its `timeoutSeconds`).
    pub timeout: Duration,
    /// Timeout of establishing a TCP connection.
    pub connect_timeout: Duration,
}

impl Config {
    /// A configuration for `server` trusting `ca_pem`, with default field manager `cairn` and
    /// timeouts of 30 s per request and 5 s per connection attempt.
    pub fn new(
        server: impl Into<String>,
        ca_pem: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        Config {
            server: server.into().trim_end_matches('/').to_string(),
            ca_pem: ca_pem.into(),
            credentials,
            field_manager: "cairn".to_string(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Sets the `fieldManager` sent with writes.
    pub fn with_field_manager(mut self, field_manager: impl Into<String>) -> Self {
        self.field_manager = field_manager.into();
        self
    }

    /// Reads the current context of the kubeconfig at `path`.
    pub fn from_kubeconfig(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadKubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
        let kubeconfig: Kubeconfig =
            serde_yaml::from_str(&text).map_err(|source| Error::ParseKubeconfig {
                path: path.to_path_buf(),
                source,
            })?;
        kubeconfig.resolve(path.parent().unwrap_or(Path::new(".")))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
struct Context {
    cluster: String,
    user: Option<String>,
}

impl Kubeconfig {
    fn resolve(self, dir: &Path) -> Result<Config> {
        let context = match &self.current_context {
            Some(name) => find(&self.contexts, name, "context")?,
            None if self.contexts.len() == 1 => &self.contexts[0].value,
            None => return Err(Error::Config("kubeconfig has no current-context".into())),
        };
        let cluster = find(&self.clusters, &context.cluster, "cluster")?;
        let user = match &context.user {
            Some(name) => find(&self.users, name, "user")?,
            None => &User::default(),
        };
        let ca_pem = pem(
            dir,
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
        )?
        .ok_or_else(|| Error::Config("the cluster has no certificate-authority".into()))?;
        let cert = pem(dir, &user.client_certificate_data, &user.client_certificate)?;
        let key = pem(dir, &user.client_key_data, &user.client_key)?;
        let credentials = match (cert, key, &user.token) {
            (Some(cert_pem), Some(key_pem), _) => Credentials::ClientCert { cert_pem, key_pem },
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err(Error::Config(
                    "a client certificate needs both certificate and key".into(),
                ));
            }
            (None, None, Some(token)) => Credentials::Token(token.clone()),
            (None, None, None) => Credentials::None,
        };
        Ok(Config::new(&cluster.server, ca_pem, credentials))
    }
}

fn find<'a, T>(entries: &'a [Named<T>], name: &str, what: &str) -> Result<&'a T> {
    entries
        .iter()
        .find(|e| e.name == name)
        .map(|e| &e.value)
        .ok_or_else(|| Error::Config(format!("kubeconfig has no {what} named {name:?}")))
}

/// PEM text from inline base64 data or, failing that, a file (relative to the kubeconfig).
fn pem(dir: &Path, data: &Option<String>, file: &Option<PathBuf>) -> Result<Option<String>> {
    if let Some(data) = data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| Error::Config(format!("invalid base64 in kubeconfig: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Config("kubeconfig data is not PEM text".into()))?;
        return Ok(Some(text));
    }
    match file {
        None => Ok(None),
        Some(file) => {
            let path = dir.join(file);
            std::fs::read_to_string(&path)
                .map(Some)
                .map_err(|source| Error::ReadKubeconfig { path, source })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn reads_the_current_context_with_inline_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n\
             - name: one\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority-data: {}\n\
             - name: two\n  cluster:\n    server: https://127.0.0.1:6443/\n    certificate-authority-data: {}\n\
             users:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n\
             - name: bot\n  user:\n    token: s3cret\n\
             contexts:\n- name: a\n  context:\n    cluster: one\n    user: admin\n\
             - name: b\n  context:\n    cluster: two\n    user: admin\n",
            b64("CA1"),
            b64("CA2"),
            b64("CERT"),
            b64("KEY")
        );
        std::fs::write(&path, yaml).unwrap();
        let config = Config::from_kubeconfig(&path).unwrap();
        assert_eq!(config.server, "https://127.0.0.1:6443");
        assert_eq!(config.ca_pem, "CA2");
        match config.credentials {
            Credentials::ClientCert { cert_pem, key_pem } => {
                assert_eq!((cert_pem.as_str(), key_pem.as_str()), ("CERT", "KEY"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reads_tokens_and_files_relative_to_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "CAFILE").unwrap();
        let path = dir.path().join("config");
        let yaml = "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://h:1\n    certificate-authority: ca.pem\n\
                    users:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n";
        std::fs::write(&path, yaml).unwrap();
        let config = Config::from_kubeconfig(&path).unwrap();
        assert_eq!(config.ca_pem, "CAFILE");
        assert!(matches!(config.credentials, Credentials::Token(t) if t == "abc"));
    }

    #[test]
    fn a_missing_context_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "current-context: nope\nclusters: []\ncontexts: []\n").unwrap();
        let err = Config::from_kubeconfig(&path).unwrap_err();
        assert!(err.to_string().contains("no context named"), "{err}");
    }
}
