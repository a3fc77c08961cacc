//! Storing and checking join secrets without keeping the secrets themselves.
//!
//! Servers keep only [`secret_hash`] of a token's secret and check what a joining node
//! presents with [`check_secret`]. The hash is salted SHA-256, not a slow password hash: it is
//! checked on every authenticated join request, and generated secrets carry 128 random bits, so
//! a slow hash would cost every request while adding nothing for them. An operator-chosen weak
//! secret is the case it does not cover; the format starts with its scheme (`sha256$`) so a
//! slower one can be added beside it.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The scheme tag at the start of a stored hash.
const SCHEME: &str = "sha256";

/// Salt length in bytes.
const SALT_LEN: usize = 16;

/// Hashes a secret for storage: `sha256$<salt hex>$<hex sha256(salt || secret)>`, with a fresh
/// random salt each call.
pub fn secret_hash(secret: &str) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    format!(
        "{SCHEME}${}${}",
        hex::encode(salt),
        hex::encode(digest(&salt, secret))
    )
}

/// Whether `presented` is the secret `stored` (from [`secret_hash`]) was made from, compared in
/// constant time.
///
/// Fails only when `stored` is not a hash [`secret_hash`] produces: that is a configuration or
/// storage fault, not a wrong secret, and the caller should say so rather than deny quietly.
pub fn check_secret(stored: &str, presented: &str) -> Result<bool> {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::InvalidSecretHash);
    };
    let salt = hex::decode(salt).map_err(|_| Error::InvalidSecretHash)?;
    let expected = hex::decode(expected).map_err(|_| Error::InvalidSecretHash)?;
    if salt.len() != SALT_LEN || expected.len() != Sha256::output_size() {
        return Err(Error::InvalidSecretHash);
    }
    Ok(constant_time_eq(&digest(&salt, presented), &expected))
}

fn digest(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

/// Compares two byte strings in time that depends only on their lengths.
///
/// Callers compare fixed-length digests, so the early return on a length difference reveals
/// nothing secret.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_checks_the_right_secret_only() {
        let stored = secret_hash("0123456789abcdef");
        assert!(stored.starts_with("sha256$"));
        assert!(!stored.contains("0123456789abcdef"));
        assert!(check_secret(&stored, "0123456789abcdef").unwrap());
        assert!(!check_secret(&stored, "0123456789abcdeg").unwrap());
        assert!(!check_secret(&stored, "").unwrap());
    }

    #[test]
    fn hashes_are_salted() {
        assert_ne!(secret_hash("same"), secret_hash("same"));
    }

    #[test]
    fn malformed_stored_hash_is_an_error() {
        let good = secret_hash("x");
        for bad in [
            "",
            "plaintext",
            "md5$00$00",
            "sha256$zz$00",
            "sha256$00$00",
            &format!("{good}$extra"),
        ] {
            assert!(
                matches!(check_secret(bad, "x"), Err(Error::InvalidSecretHash)),
                "{bad}"
            );
        }
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
