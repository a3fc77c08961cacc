//! Pulls from registries with oci-client: the manifest (or index, then this machine's platform
//! from it) fetched raw and checked against its digest, the config and each layer downloaded
//! into the ingest area and committed only when their digests match, layers unpacked with their
//! diff ids checked, the image record written last. Blobs already present are not fetched
//! again; pulls hold the image store's lock, so concurrent pulls of one image download it once.
//! Endpoints come from `registries.yaml` (mirrors first, with their repository rewrites, then
//! the registry itself).

use std::path::PathBuf;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::digest::Digest;
use crate::error::io;
use crate::image::{
    DOCKER_LIST, DOCKER_MANIFEST, ImageConfig, ImageRecord, ImageStore, Index, Manifest, OCI_INDEX,
    OCI_MANIFEST, Platform,
};
use crate::registries::{Endpoint, Registries};
use crate::snapshot::{SnapshotStore, chain_ids};
use crate::{Error, Paths, Result};

const MANIFEST_TYPES: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Pulls `name` (any spelling) for this machine's platform; returns its record.
pub async fn pull(paths: &Paths, registries: &Registries, name: &str) -> Result<ImageRecord> {
    pull_for(paths, registries, name, &Platform::host()).await
}

/// Pulls `name` for `platform`.
pub async fn pull_for(
    paths: &Paths,
    registries: &Registries,
    name: &str,
    platform: &Platform,
) -> Result<ImageRecord> {
    let name = crate::reference::normalize(name)?;
    let reference: Reference = name
        .parse()
        .map_err(|_| Error::InvalidReference(name.clone()))?;
    let registry = reference.registry().to_string();
    let images = ImageStore::new(paths);
    let _lock = crate::image::lock(paths)?;
    let mut last = None;
    for endpoint in registries.endpoints(&registry) {
        match pull_from(
            paths, &images, registries, &name, &reference, &endpoint, platform,
        )
        .await
        {
            Ok(record) => return Ok(record),
            // Content that is wrong, or missing for this platform, is wrong on every mirror.
            Err(e @ (Error::DigestMismatch { .. } | Error::NoPlatform { .. })) => {
                let _ = images.collect_garbage(&[]);
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(endpoint = %endpoint.host, "pull failed: {e}");
                last = Some(e);
            }
        }
    }
    let _ = images.collect_garbage(&[]);
    Err(last.unwrap_or(Error::ImageNotFound(name)))
}

fn registry_error(endpoint: &Endpoint, e: oci_client::errors::OciDistributionError) -> Error {
    Error::Registry {
        registry: endpoint.host.clone(),
        message: e.to_string(),
    }
}

async fn pull_from(
    paths: &Paths,
    images: &ImageStore,
    registries: &Registries,
    name: &str,
    reference: &Reference,
    endpoint: &Endpoint,
    platform: &Platform,
) -> Result<ImageRecord> {
    let config = registries
        .config(&endpoint.host)
        .or_else(|| registries.config(reference.registry()));
    let tls = config.and_then(|c| c.tls.clone()).unwrap_or_default();
    let mut extra_root_certificates = Vec::new();
    if let Some(ca) = &tls.ca_file {
        let data = std::fs::read(ca).map_err(io("reading", ca))?;
        extra_root_certificates.push(oci_client::client::Certificate {
            encoding: oci_client::client::CertificateEncoding::Pem,
            data,
        });
    }
    let client = Client::new(ClientConfig {
        protocol: if endpoint.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: tls.insecure_skip_verify,
        extra_root_certificates,
        ..Default::default()
    });
    let auth = match config.and_then(|c| c.auth.clone()) {
        None => RegistryAuth::Anonymous,
        Some(a) => {
            if let Some(token) = a.identity_token {
                RegistryAuth::Bearer(token)
            } else if let (Some(u), Some(p)) = (a.username.clone(), a.password.clone()) {
                RegistryAuth::Basic(u, p)
            } else if let Some(encoded) = a.auth {
                use base64::Engine as _;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| {
                        s.split_once(':')
                            .map(|(u, p)| (u.to_string(), p.to_string()))
                    })
                    .ok_or_else(|| {
                        Error::InvalidSetting(format!(
                            "auth for {} is not base64 of user:password",
                            endpoint.host
                        ))
                    })?;
                RegistryAuth::Basic(decoded.0, decoded.1)
            } else {
                RegistryAuth::Anonymous
            }
        }
    };
    // A mirror may keep the repository under another path; the image keeps its name.
    let repository = endpoint.rewrites.apply(reference.repository());
    let target = match reference.digest() {
        Some(d) => Reference::with_digest(endpoint.host.clone(), repository.clone(), d.to_string()),
        None => Reference::with_tag(
            endpoint.host.clone(),
            repository.clone(),
            reference.tag().unwrap_or("latest").to_string(),
        ),
    };
    let (mut bytes, digest) = client
        .pull_manifest_raw(&target, &auth, MANIFEST_TYPES)
        .await
        .map_err(|e| registry_error(endpoint, e))?;
    check(&bytes, &digest, name)?;
    if let Some(wanted) = reference.digest()
        && Digest::of(&bytes).as_str() != wanted
    {
        return Err(Error::DigestMismatch {
            what: format!("manifest of {name}"),
            expected: wanted.to_string(),
            actual: Digest::of(&bytes).to_string(),
        });
    }
    if is_index(&bytes) {
        let index: Index = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: format!("image index of {name}"),
            source,
        })?;
        let entry = index
            .manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| platform.accepts(p)))
            .ok_or_else(|| Error::NoPlatform {
                platform: platform.to_string(),
                what: name.to_string(),
            })?;
        let by_digest =
            Reference::with_digest(endpoint.host.clone(), repository, entry.digest.to_string());
        let (b, d) = client
            .pull_manifest_raw(&by_digest, &auth, MANIFEST_TYPES)
            .await
            .map_err(|e| registry_error(endpoint, e))?;
        check(&b, &d, name)?;
        if Digest::of(&b) != entry.digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest of {name} for {platform}"),
                expected: entry.digest.to_string(),
                actual: Digest::of(&b).to_string(),
            });
        }
        bytes = b;
    }
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        what: format!("image manifest of {name}"),
        source,
    })?;
    let content = images.content();
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if content.has(&blob.digest) {
            continue;
        }
        let tmp: PathBuf = content.ingest_path()?;
        let result = async {
            let file = tokio::fs::File::create(&tmp)
                .await
                .map_err(io("creating", &tmp))?;
            client
                .pull_blob(&target, blob.digest.as_str(), file)
                .await
                .map_err(|e| registry_error(endpoint, e))?;
            let f = std::fs::File::open(&tmp).map_err(io("opening", &tmp))?;
            content.write_from(f, Some(&blob.digest)).map(|_| ())
        }
        .await;
        let _ = std::fs::remove_file(&tmp);
        result?;
    }
    let config_bytes = content.read(&manifest.config.digest)?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|source| Error::Json {
            what: format!("image config of {name}"),
            source,
        })?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(Error::Registry {
            registry: endpoint.host.clone(),
            message: format!(
                "{name}: the config lists {} layers, the manifest {}",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            ),
        });
    }
    let (manifest_digest, _) = content.write_bytes(&bytes)?;
    let chain = chain_ids(&config.rootfs.diff_ids);
    let snapshots = SnapshotStore::new(paths);
    for ((layer, diff_id), chain_id) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .zip(&chain)
    {
        snapshots.unpack(chain_id, diff_id, content.open(&layer.digest)?)?;
    }
    let record = ImageRecord {
        name: name.to_string(),
        manifest: manifest_digest,
        config: manifest.config.digest.clone(),
        layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
        chain,
        size: config_bytes.len() as u64 + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
    };
    images.put(&record)?;
    Ok(record)
}

fn check(bytes: &[u8], registry_digest: &str, name: &str) -> Result<()> {
    let actual = Digest::of(bytes);
    if !registry_digest.is_empty() && registry_digest != actual.as_str() {
        return Err(Error::DigestMismatch {
            what: format!("manifest of {name}"),
            expected: registry_digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

fn is_index(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| {
        matches!(p.media_type.as_deref(), Some(OCI_INDEX) | Some(DOCKER_LIST))
            || (p.manifests.is_some() && p.config.is_none())
    })
}
