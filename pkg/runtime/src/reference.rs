//! Image names as users type them, normalised the way Docker and containerd do:
//! `busybox` → `docker.io/library/busybox:latest`, `host:5000/a/b` → `host:5000/a/b:latest`.

use crate::{Error, Result};

/// Normalises an image name; a digest suffix (`@sha256:…`) is kept and no tag is added then.
pub fn normalize(name: &str) -> Result<String> {
    let invalid = || Error::InvalidReference(name.to_string());
    if name.is_empty()
        || name.len() > 255
        || name.chars().any(|c| {
            c.is_whitespace() || c.is_control() || c.is_ascii_uppercase() && !name.contains('@')
        })
    {
        return Err(invalid());
    }
    let (rest, digest) = match name.split_once('@') {
        Some((rest, digest)) => {
            crate::digest::Digest::parse(digest).map_err(|_| invalid())?;
            (rest, Some(digest))
        }
        None => (name, None),
    };
    // The first component is a registry host when it has a dot or a port, or is localhost.
    let (host, path) = match rest.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), path.to_string())
        }
        _ => ("docker.io".to_string(), rest.to_string()),
    };
    let (path, tag) = match path.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p.to_string(), Some(t.to_string())),
        _ => (path, None),
    };
    let path = if host == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes()[0].is_ascii_alphanumeric()
    };
    if !path.split('/').all(component_ok) {
        return Err(invalid());
    }
    if let Some(t) = &tag
        && (t.is_empty()
            || t.len() > 128
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    {
        return Err(invalid());
    }
    let mut out = format!("{host}/{path}");
    match (tag, digest) {
        (Some(t), _) => out = format!("{out}:{t}"),
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out = format!("{out}@{d}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalises_like_docker() {
        assert_eq!(
            normalize("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize("busybox:1.35").unwrap(),
            "docker.io/library/busybox:1.35"
        );
        assert_eq!(normalize("me/app").unwrap(), "docker.io/me/app:latest");
        assert_eq!(
            normalize("127.0.0.1:5000/busybox:multi").unwrap(),
            "127.0.0.1:5000/busybox:multi"
        );
        assert_eq!(
            normalize("docker.io/library/busybox:latest").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize("localhost/x").unwrap(), "localhost/x:latest");
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "",
            "Busybox",
            "a b",
            "busybox:",
            "/x",
            "x//y",
            "x@sha256:12",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} accepted");
        }
    }
}
