//! Who is asking: a client certificate signed by the cluster CA (user = subject CN, groups =
//! subject O, as upstream's x509 authenticator reads them), or a bearer token from a static
//! token file (`token,user,uid,"group1,group2"`, upstream's `--token-auth-file` format).
//! Everyone authenticated is also in `system:authenticated`.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group that may do anything.
pub const MASTERS: &str = "system:masters";
/// The group of node identities.
pub const NODES: &str = "system:nodes";

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name (`admin`, `system:node:edge-1`).
    pub name: String,
    /// The groups, including `system:authenticated`.
    pub groups: Vec<String>,
}

impl User {
    /// A user with groups; `system:authenticated` is added.
    pub fn new(name: impl Into<String>, groups: impl IntoIterator<Item = String>) -> User {
        let mut groups: Vec<String> = groups.into_iter().collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_string());
        }
        User {
            name: name.into(),
            groups,
        }
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The node this user is, if it is a node identity.
    pub fn node_name(&self) -> Option<&str> {
        self.name
            .strip_prefix("system:node:")
            .filter(|_| self.in_group(NODES))
    }
}

/// Reads the user from a verified client certificate (DER).
pub fn from_certificate(der: &[u8]) -> Option<User> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string));
    Some(User::new(name, groups))
}

/// Bearer tokens and their users. Only hashes of the tokens are kept.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], User>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A line of a token file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token file line {line}: {problem}")]
pub struct TokenFileError {
    /// The line number (1-based).
    pub line: usize,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl Tokens {
    /// Reads a token file: one `token,user,uid[,"group1,group2"]` per line; `#` comments.
    pub fn parse(text: &str) -> Result<Tokens, TokenFileError> {
        let mut tokens = Tokens::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            let err = |problem| TokenFileError {
                line: i + 1,
                problem,
            };
            let [token, user, _uid, rest @ ..] = fields.as_slice() else {
                return Err(err("expected token,user,uid[,groups]"));
            };
            if token.is_empty() || user.is_empty() {
                return Err(err("the token and the user must not be empty"));
            }
            let groups = rest
                .first()
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            tokens.insert(token, User::new(user.clone(), groups));
        }
        Ok(tokens)
    }

    /// Adds a token.
    pub fn insert(&mut self, token: &str, user: User) {
        self.by_hash.insert(hash(token), user);
    }

    /// The user a bearer token belongs to.
    pub fn user(&self, token: &str) -> Option<&User> {
        self.by_hash.get(&hash(token))
    }
}

/// Splits one CSV line; double quotes group a field that holds commas.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one field").push(c),
        }
    }
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_in_upstreams_format() {
        let t = Tokens::parse(
            "# comment\nsecret1,alice,1,\"dev,ops\"\nsecret2,system:node:n1,2,system:nodes\n",
        )
        .unwrap();
        let alice = t.user("secret1").unwrap();
        assert_eq!(alice.name, "alice");
        assert!(alice.in_group("dev") && alice.in_group("ops") && alice.in_group(AUTHENTICATED));
        assert_eq!(t.user("secret2").unwrap().node_name(), Some("n1"));
        assert!(t.user("nope").is_none());
        assert_eq!(Tokens::parse("onlytoken").unwrap_err().line, 1);
    }
}
