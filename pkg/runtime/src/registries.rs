//! `/etc/cairn/registries.yaml` in k3s's format: per-registry mirrors (endpoints tried in order,
//! then the registry itself) and per-registry auth and TLS settings.
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//!     rewrite:                             # on the mirror endpoints only, first match wins
//!       "^rancher/(.*)": "mirrorproject/rancher-images/$1"
//! configs:
//!   "127.0.0.1:5001":
//!     auth: {username: u, password: p}     # or auth: <base64 u:p>, or identity_token
//!     tls: {insecure_skip_verify: true}
//! ```
//!
//! An endpoint written `http://…` is spoken to in plain HTTP; everything else uses HTTPS. As in
//! k3s, a rewrite changes the repository asked of a mirror's endpoints, never of the registry
//! itself (the default endpoint), and the image keeps the name it was pulled by.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
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
    /// Repository rewrites for these endpoints, in the file's order.
    #[serde(default)]
    pub rewrite: Rewrites,
}

/// A mirror's repository rewrites: regular expression → replacement (`$1` for a group).
#[derive(Debug, Clone, Default)]
pub struct Rewrites(Vec<(Regex, String)>);

impl Rewrites {
    /// The repository to ask for instead of `repository`: the replacement of the first rule
    /// that matches, else `repository` itself.
    pub fn apply(&self, repository: &str) -> String {
        self.0
            .iter()
            .find(|(pattern, _)| pattern.is_match(repository))
            .map(|(pattern, replacement)| {
                pattern
                    .replace(repository, replacement.as_str())
                    .into_owned()
            })
            .unwrap_or_else(|| repository.to_string())
    }
}

impl<'de> Deserialize<'de> for Rewrites {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        // A mapping keeps the file's order (the first matching rule wins).
        let rules = serde_yaml::Mapping::deserialize(d)?;
        let mut out = Vec::with_capacity(rules.len());
        for (pattern, replacement) in rules {
            let (Some(pattern), Some(replacement)) = (pattern.as_str(), replacement.as_str())
            else {
                return Err(D::Error::custom(
                    "a rewrite maps a regular expression to a replacement, both strings",
                ));
            };
            let compiled = Regex::new(pattern)
                .map_err(|e| D::Error::custom(format!("rewrite {pattern:?}: {e}")))?;
            out.push((compiled, replacement.to_string()));
        }
        Ok(Rewrites(out))
    }
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
    /// Client certificate: refused (oci-client 0.18 cannot present one).
    #[serde(default)]
    pub cert_file: Option<String>,
    /// Client key: refused with `cert_file`.
    #[serde(default)]
    pub key_file: Option<String>,
}

/// Where to fetch a registry's content from.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host[:port]`.
    pub host: String,
    /// Plain HTTP.
    pub plain_http: bool,
    /// Rewrites of the repository asked for (a mirror's; none for the registry itself).
    pub rewrites: Rewrites,
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
        for (host, config) in &parsed.configs {
            if let Some(tls) = &config.tls
                && (tls.cert_file.is_some() || tls.key_file.is_some())
            {
                return Err(Error::InvalidSetting(format!(
                    "{}: configs.{host}.tls: client certificates (cert_file, key_file) are not \
                     supported: the registry client cannot present one",
                    path.display()
                )));
            }
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
                    .filter_map(|e| parse_endpoint(e, &m.rewrite))
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
            rewrites: Rewrites::default(),
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

fn parse_endpoint(url: &str, rewrites: &Rewrites) -> Option<Endpoint> {
    let (plain_http, rest) = if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else {
        (false, url.strip_prefix("https://").unwrap_or(url))
    };
    let host = rest.split('/').next()?.to_string();
    (!host.is_empty()).then(|| Endpoint {
        host,
        plain_http,
        rewrites: rewrites.clone(),
    })
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
        let hosts = |registry: &str| -> Vec<(String, bool)> {
            r.endpoints(registry)
                .into_iter()
                .map(|e| (e.host, e.plain_http))
                .collect()
        };
        assert_eq!(
            hosts("docker.io"),
            vec![
                ("127.0.0.1:5000".to_string(), true),
                ("m.example".to_string(), false),
                ("registry-1.docker.io".to_string(), false),
            ]
        );
        assert_eq!(hosts("quay.io"), vec![("quay.io".to_string(), false)]);
        assert!(r.config("127.0.0.1:5001").unwrap().auth.is_some());
    }

    #[test]
    fn rewrites_apply_to_mirror_endpoints_first_match_in_file_order() {
        let r: Registries = serde_yaml::from_str(
            "mirrors:\n  docker.io:\n    endpoint: [\"http://127.0.0.1:5000\"]\n    rewrite:\n      \"^rancher/(.*)\": \"mirrorproject/rancher-images/$1\"\n      \"^(.*)$\": \"all/$1\"\n",
        )
        .unwrap();
        let endpoints = r.endpoints("docker.io");
        let mirror = &endpoints[0].rewrites;
        assert_eq!(
            mirror.apply("rancher/coredns-coredns"),
            "mirrorproject/rancher-images/coredns-coredns"
        );
        assert_eq!(mirror.apply("library/busybox"), "all/library/busybox");
        // The registry itself is asked for the repository as named.
        assert_eq!(endpoints[1].host, "registry-1.docker.io");
        assert_eq!(endpoints[1].rewrites.apply("rancher/x"), "rancher/x");
    }

    #[test]
    fn a_bad_rewrite_or_a_client_certificate_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registries.yaml");
        std::fs::write(
            &path,
            "mirrors:\n  docker.io:\n    endpoint: [\"http://h\"]\n    rewrite:\n      \"^(unclosed\": \"x\"\n",
        )
        .unwrap();
        let e = Registries::load(&path).unwrap_err().to_string();
        assert!(e.contains("rewrite \"^(unclosed\""), "{e}");
        std::fs::write(
            &path,
            "configs:\n  reg.example:\n    tls: {cert_file: /c.pem, key_file: /k.pem}\n",
        )
        .unwrap();
        let e = Registries::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("configs.reg.example.tls: client certificates"),
            "{e}"
        );
    }
}
