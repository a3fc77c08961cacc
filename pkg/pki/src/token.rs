//! Join tokens in k3s's format, and pinning the cluster CA with them.
//!
//! A full token is `K10<sha256 hex of the CA bundle PEM>::<user>:<secret>`. A joining node
//! fetches `/cacerts` without trusting the server, checks the bundle against the hash with
//! [`verify_ca`], and only then trusts that CA and sends `<user>:<secret>`. A bare secret is
//! accepted too, as k3s does, but then there is nothing to pin the CA with.
//!
//! This module owns the token's text form and the CA hash; how a server stores secrets is in
//! [`crate::secret`], and fetching `/cacerts` is the caller's (see
//! [`crate::insecure_capture_client_config`]).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::secret::constant_time_eq;

/// The fixed prefix of a full token.
pub const TOKEN_PREFIX: &str = "K10";

/// The user servers put in their tokens.
pub const SERVER_USER: &str = "server";

/// The user agents put in their tokens.
pub const NODE_USER: &str = "node";

/// Length of a CA hash in hex characters (SHA-256).
const CA_HASH_LEN: usize = 64;

/// Hex SHA-256 of a CA bundle's PEM bytes, exactly as served at `/cacerts`.
///
/// k3s hashes the DER of the root instead when `/cacerts` holds a chain; cairn's bundle is a
/// single self-signed certificate, for which both are the same rule.
pub fn ca_hash(ca_bundle_pem: &[u8]) -> String {
    hex::encode(Sha256::digest(ca_bundle_pem))
}

/// A parsed join token.
///
/// `Display` prints the whole token, secret included: that is the text to hand to a joining
/// node. `Debug` redacts the secret.
#[derive(Clone)]
pub struct Token {
    ca_hash: Option<String>,
    user: Option<String>,
    secret: String,
}

impl Token {
    /// A new server token pinning `ca_bundle_pem`, with a random 128-bit secret (32 hex
    /// characters).
    pub fn generate_server(ca_bundle_pem: &[u8]) -> Self {
        let secret: [u8; 16] = rand::random();
        Self {
            ca_hash: Some(ca_hash(ca_bundle_pem)),
            user: Some(SERVER_USER.to_owned()),
            secret: hex::encode(secret),
        }
    }

    /// A full token pinning `ca_bundle_pem` around a secret the operator chose (k3s's
    /// `--token SECRET` on the first server).
    ///
    /// The secret must be non-empty and free of whitespace and control characters.
    pub fn pinned(ca_bundle_pem: &[u8], user: &str, secret: &str) -> Result<Self> {
        if user.contains(':') || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::InvalidToken {
                reason: "user contains `:`, whitespace or control characters",
            });
        }
        check_secret_text(secret)?;
        Ok(Self {
            ca_hash: Some(ca_hash(ca_bundle_pem)),
            user: (!user.is_empty()).then(|| user.to_owned()),
            secret: secret.to_owned(),
        })
    }

    /// Parses a token, full (`K10<hash>::<user>:<secret>`) or a bare secret.
    ///
    /// Surrounding whitespace is ignored (token files end in a newline). An empty hash
    /// (`K10::<user>:<secret>`) and an empty user are allowed, as in k3s, and read as absent.
    /// A hash is 64 hex characters, either case; it is kept lower case.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::InvalidToken { reason: "empty" });
        }
        let Some(rest) = text.strip_prefix(TOKEN_PREFIX) else {
            check_secret_text(text)?;
            return Ok(Self {
                ca_hash: None,
                user: None,
                secret: text.to_owned(),
            });
        };
        let (hash, credentials) = rest.split_once("::").ok_or(Error::InvalidToken {
            reason: "missing `::` between the CA hash and the credentials",
        })?;
        let ca_hash = match hash.len() {
            0 => None,
            CA_HASH_LEN if hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(hash.to_ascii_lowercase())
            }
            _ => {
                return Err(Error::InvalidToken {
                    reason: "CA hash must be 64 hex characters",
                });
            }
        };
        let (user, secret) = credentials.split_once(':').ok_or(Error::InvalidToken {
            reason: "credentials must be `<user>:<secret>`",
        })?;
        check_secret_text(secret)?;
        Ok(Self {
            ca_hash,
            user: (!user.is_empty()).then(|| user.to_owned()),
            secret: secret.to_owned(),
        })
    }

    /// The pinned CA hash (lower-case hex), or `None` for a bare secret.
    pub fn ca_hash(&self) -> Option<&str> {
        self.ca_hash.as_deref()
    }

    /// The user, or `None` for a bare secret; the caller then picks [`SERVER_USER`] or
    /// [`NODE_USER`] by its role, as k3s does.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether `presented` is this token's secret, compared in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        // Comparing digests keeps the secret's length out of the timing too.
        constant_time_eq(
            &Sha256::digest(self.secret.as_bytes()),
            &Sha256::digest(presented.as_bytes()),
        )
    }
}

/// Checks a fetched CA bundle against the hash pinned in `token`.
///
/// Call this on the exact bytes of `/cacerts` before trusting them or sending any credential.
/// A bare-secret token has no hash and gives [`Error::TokenNotPinned`] rather than a silent
/// success: a caller that wants k3s's unpinned trust-on-first-use must choose it explicitly
/// (check [`Token::ca_hash`] first).
pub fn verify_ca(token: &Token, ca_bundle_pem: &[u8]) -> Result<()> {
    let expected = token.ca_hash().ok_or(Error::TokenNotPinned)?;
    let actual = ca_hash(ca_bundle_pem);
    if constant_time_eq(expected.as_bytes(), actual.as_bytes()) {
        Ok(())
    } else {
        Err(Error::CaHashMismatch {
            expected: expected.to_owned(),
            actual,
        })
    }
}

fn check_secret_text(secret: &str) -> Result<()> {
    if secret.is_empty() {
        return Err(Error::InvalidToken {
            reason: "empty secret",
        });
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidToken {
            reason: "secret contains whitespace or control characters",
        });
    }
    Ok(())
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.ca_hash, &self.user) {
            (None, None) => f.write_str(&self.secret),
            (hash, user) => write!(
                f,
                "{TOKEN_PREFIX}{}::{}:{}",
                hash.as_deref().unwrap_or(""),
                user.as_deref().unwrap_or(""),
                self.secret
            ),
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("ca_hash", &self.ca_hash)
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl FromStr for Token {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n";

    #[test]
    fn generated_server_token_has_k3s_shape() {
        let token = Token::generate_server(PEM);
        let text = token.to_string();
        let rest = text.strip_prefix("K10").unwrap();
        let (hash, creds) = rest.split_once("::").unwrap();
        assert_eq!(hash, ca_hash(PEM));
        assert_eq!(hash.len(), 64);
        let (user, secret) = creds.split_once(':').unwrap();
        assert_eq!(user, "server");
        assert_eq!(secret.len(), 32);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(secret, Token::generate_server(PEM).secret());
    }

    #[test]
    fn full_token_round_trips() {
        let token = Token::generate_server(PEM);
        let parsed = Token::parse(&format!("{token}\n")).unwrap();
        assert_eq!(parsed.ca_hash(), token.ca_hash());
        assert_eq!(parsed.user(), Some("server"));
        assert_eq!(parsed.secret(), token.secret());
        assert_eq!(parsed.to_string(), token.to_string());
        let via_from_str: Token = token.to_string().parse().unwrap();
        assert_eq!(via_from_str.secret(), token.secret());
    }

    #[test]
    fn ca_hash_is_sha256_hex_of_pem_bytes() {
        // sha256("") is well known.
        assert_eq!(
            ca_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn bare_secret_has_no_pin() {
        let token = Token::parse("  s3cret:with:colons\n").unwrap();
        assert_eq!(token.ca_hash(), None);
        assert_eq!(token.user(), None);
        assert_eq!(token.secret(), "s3cret:with:colons");
        assert_eq!(token.to_string(), "s3cret:with:colons");
        assert!(matches!(verify_ca(&token, PEM), Err(Error::TokenNotPinned)));
    }

    #[test]
    fn empty_hash_and_user_parse_as_absent() {
        let token = Token::parse("K10::server:pw").unwrap();
        assert_eq!(token.ca_hash(), None);
        assert_eq!(token.user(), Some("server"));
        assert_eq!(token.to_string(), "K10::server:pw");
        let token = Token::parse("K10:::pw").unwrap();
        assert_eq!(token.user(), None);
        assert_eq!(token.secret(), "pw");
    }

    #[test]
    fn upper_case_hash_is_normalised() {
        let hash = ca_hash(PEM);
        let token = Token::parse(&format!("K10{}::node:pw", hash.to_uppercase())).unwrap();
        assert_eq!(token.ca_hash(), Some(hash.as_str()));
        verify_ca(&token, PEM).unwrap();
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let hash = ca_hash(PEM);
        for (text, reason) in [
            ("", "empty"),
            ("   ", "empty"),
            ("K10abc::server:pw", "CA hash must be 64 hex characters"),
            (
                &format!("K10{}::server:pw", "z".repeat(64)),
                "CA hash must be 64 hex characters",
            ),
            (
                &format!("K10{hash}server:pw"),
                "missing `::` between the CA hash and the credentials",
            ),
            (
                &format!("K10{hash}::pw"),
                "credentials must be `<user>:<secret>`",
            ),
            (&format!("K10{hash}::server:"), "empty secret"),
            (
                "two words",
                "secret contains whitespace or control characters",
            ),
        ] {
            match Token::parse(text) {
                Err(Error::InvalidToken { reason: got }) => assert_eq!(got, reason, "{text}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn mismatched_ca_is_reported_with_both_hashes() {
        let token = Token::generate_server(PEM);
        let other = b"another bundle";
        match verify_ca(&token, other) {
            Err(Error::CaHashMismatch { expected, actual }) => {
                assert_eq!(expected, ca_hash(PEM));
                assert_eq!(actual, ca_hash(other));
            }
            other => panic!("expected mismatch, got {other:?}"),
        }
        verify_ca(&token, PEM).unwrap();
    }

    #[test]
    fn pinned_wraps_an_operator_secret() {
        let token = Token::pinned(PEM, SERVER_USER, "my-secret").unwrap();
        assert_eq!(
            token.to_string(),
            format!("K10{}::server:my-secret", ca_hash(PEM))
        );
        assert!(Token::pinned(PEM, "a:b", "x").is_err());
        assert!(Token::pinned(PEM, "server", "").is_err());
    }

    #[test]
    fn secret_comparison() {
        let token = Token::parse("K10::server:abc").unwrap();
        assert!(token.secret_matches("abc"));
        assert!(!token.secret_matches("abd"));
        assert!(!token.secret_matches("ab"));
        assert!(!token.secret_matches(""));
    }

    #[test]
    fn debug_redacts_secret() {
        let token = Token::parse("K10::server:topsecret").unwrap();
        assert!(!format!("{token:?}").contains("topsecret"));
    }
}
