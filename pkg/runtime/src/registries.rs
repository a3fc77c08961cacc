//! `/etc/cairn/registries.yaml` in k3s's format: per-registry mirrors (endpoints tried in order,
//! then the registry itself) and per-registry auth and TLS settings.
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//! configs:
//!   "127.0.0.1:5001":
//!     auth: {username: u, password: p}     # or auth: <base64 u:p>, or identity_token
//!     tls: {insecure_skip_verify: true}
//! ```
//!
//! An endpoint written `http://…` is spoken to in plain HTTP; everything else uses HTTPS.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::io;
use crate::{Error, Result};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    /// Mirrors by registry host (`docker.io`, `*` for every registry).
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    /// Settings by registry host (of a mirror endpoint or the registry itself).
    #[serde(default)]
    pub configs: BTreeMap<String, RegistryConfig>,
}

/// A registry's mirrors.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Mirror {
    /// Endpoint URLs, tried in order.
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// Repository rewrites (regex → replacement); not supported yet, refused when present.
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

/// A registry's auth and TLS settings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistryConfig {
    /// Credentials.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<Tls>,
}

/// Credentials.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Auth {
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// base64 of `user:password`.
    #[serde(default)]
    pub auth: Option<String>,
    /// A bearer token.
    #[serde(default)]
    pub identity_token: Option<String>,
}

/// TLS settings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tls {
    /// Accept any certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Extra CA (PEM).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Client certificate (not supported yet).
    #[serde(default)]
    pub cert_file: Option<String>,
    /// Client key (not supported yet).
    #[serde(default)]
    pub key_file: Option<String>,
}

/// Where to fetch a registry's content from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]`.
    pub host: String,
    /// Plain HTTP.
    pub plain_http: bool,
}

impl Registries {
    /// Reads the file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io("reading", path)(e)),
        };
        let parsed: Option<Registries> = serde_yaml::from_str(&text)
            .map_err(|e| Error::InvalidSetting(format!("{}: {e}", path.display())))?;
        let parsed = parsed.unwrap_or_default();
        if parsed.mirrors.values().any(|m| !m.rewrite.is_empty()) {
            return Err(Error::InvalidSetting(format!(
                "{}: mirror rewrites are not supported yet",
                path.display()
            )));
        }
        Ok(parsed)
    }

    /// The endpoints to try for `registry`, in order: its mirrors, then itself over HTTPS.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let mirror = self.mirrors.get(registry).or_else(|| self.mirrors.get("*"));
        let mut out: Vec<Endpoint> = mirror
            .map(|m| {
                m.endpoint
                    .iter()
                    .filter_map(|e| parse_endpoint(e))
                    .collect()
            })
            .unwrap_or_default();
        let own = Endpoint {
            host: if registry == "docker.io" {
                "registry-1.docker.io".into()
            } else {
                registry.into()
            },
            plain_http: false,
        };
        if !out.iter().any(|e| e.host == own.host) {
            out.push(own);
        }
        out
    }

    /// The settings for `host`.
    pub fn config(&self, host: &str) -> Option<&RegistryConfig> {
        self.configs.get(host)
    }
}

fn parse_endpoint(url: &str) -> Option<Endpoint> {
    let (plain_http, rest) = if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else {
        (false, url.strip_prefix("https://").unwrap_or(url))
    };
    let host = rest.split('/').next()?.to_string();
    (!host.is_empty()).then_some(Endpoint { host, plain_http })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_come_first_and_http_is_explicit() {
        let r: Registries = serde_yaml::from_str(
            "mirrors:\n  docker.io:\n    endpoint: [\"http://127.0.0.1:5000\", \"https://m.example/v2\"]\nconfigs:\n  \"127.0.0.1:5001\":\n    auth: {username: u, password: p}\n",
        )
        .unwrap();
        assert_eq!(
            r.endpoints("docker.io"),
            vec![
                Endpoint {
                    host: "127.0.0.1:5000".into(),
                    plain_http: true
                },
                Endpoint {
                    host: "m.example".into(),
                    plain_http: false
                },
                Endpoint {
                    host: "registry-1.docker.io".into(),
                    plain_http: false
                },
            ]
        );
        assert_eq!(
            r.endpoints("quay.io"),
            vec![Endpoint {
                host: "quay.io".into(),
                plain_http: false
            }]
        );
        assert!(r.config("127.0.0.1:5001").unwrap().auth.is_some());
    }
}
