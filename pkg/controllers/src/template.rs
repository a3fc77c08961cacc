//! Pod templates as revisions: the hash that names a Deployment's ReplicaSet (its
//! `pod-template-hash` label) or a DaemonSet's pods (`controller-revision-hash`), and template
//! equality ignoring that label.

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The label carrying a template's hash on a Deployment's ReplicaSets and their pods.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The alphabet upstream's `rand.SafeEncodeString` maps characters to (no vowels, no
/// look-alikes, so a hash never spells a word).
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The template without `label`, with an empty label map treated as none.
fn without_label(template: &PodTemplateSpec, label: &str) -> PodTemplateSpec {
    let mut t = template.clone();
    if let Some(m) = &mut t.metadata {
        if let Some(labels) = &mut m.labels {
            labels.remove(label);
            if labels.is_empty() {
                m.labels = None;
            }
        }
        if m.annotations.as_ref().is_some_and(|a| a.is_empty()) {
            m.annotations = None;
        }
    }
    t
}

/// FNV-1a, 32 bits: the hash upstream's `ComputeHash` uses.
fn fnv32a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The hash of `template` (without `label`) and the collision count, encoded as upstream
/// encodes it: the decimal digits of the 32-bit hash mapped onto the safe alphabet. The
/// bytes hashed are the template's JSON, not upstream's Go dump, so the values differ from
/// upstream's for the same template; they are stable across cairn versions as long as the
/// JSON form is.
pub fn hash(template: &PodTemplateSpec, label: &str, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(&without_label(template, label)).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    fnv32a(&bytes)
        .to_string()
        .bytes()
        .map(|b| SAFE[usize::from(b) % SAFE.len()] as char)
        .collect()
}

/// Upstream's `EqualIgnoreHash`: whether two templates are the same apart from `label`.
pub fn equal_ignoring(a: &PodTemplateSpec, b: &PodTemplateSpec, label: &str) -> bool {
    serde_json::to_value(without_label(a, label)).ok()
        == serde_json::to_value(without_label(b, label)).ok()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn template(labels: &[(&str, &str)]) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            }),
            spec: None,
        }
    }

    #[test]
    fn the_hash_ignores_its_own_label_and_changes_with_the_template() {
        let a = template(&[("app", "web")]);
        let b = template(&[("app", "web"), (POD_TEMPLATE_HASH, "x")]);
        let c = template(&[("app", "db")]);
        assert_eq!(
            hash(&a, POD_TEMPLATE_HASH, None),
            hash(&b, POD_TEMPLATE_HASH, None)
        );
        assert_ne!(
            hash(&a, POD_TEMPLATE_HASH, None),
            hash(&c, POD_TEMPLATE_HASH, None)
        );
        assert_ne!(
            hash(&a, POD_TEMPLATE_HASH, None),
            hash(&a, POD_TEMPLATE_HASH, Some(1))
        );
        let h = hash(&a, POD_TEMPLATE_HASH, None);
        assert!(h.bytes().all(|b| SAFE.contains(&b)) && !h.is_empty(), "{h}");
        assert!(equal_ignoring(&a, &b, POD_TEMPLATE_HASH));
        assert!(!equal_ignoring(&a, &c, POD_TEMPLATE_HASH));
        assert!(equal_ignoring(
            &template(&[]),
            &template(&[(POD_TEMPLATE_HASH, "y")]),
            POD_TEMPLATE_HASH
        ));
    }
}
