//! Indexed Jobs (`completionMode: Indexed`), as upstream runs them: each of the `completions`
//! indexes needs one pod that succeeds. A pod's index is in its annotation and label
//! `batch.kubernetes.io/job-completion-index`, its hostname is `<job>-<index>`, and its
//! containers read it from `JOB_COMPLETION_INDEX`. The Job's status lists the succeeded
//! indexes as intervals (`completedIndexes: "0-2,5"`).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};

use crate::meta;

/// The annotation and label carrying a pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable a container reads its index from.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The completion index of `pod`, if it has a valid one below `completions`.
pub fn index_of(pod: &Pod, completions: i32) -> Option<i32> {
    meta::annotation(&pod.metadata, COMPLETION_INDEX)?
        .parse()
        .ok()
        .filter(|i| (0..completions).contains(i))
}

/// Indexes as upstream writes them: sorted intervals, `0-2,5,7-8`.
pub fn intervals(indexes: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(i32, i32)> = None;
    for &i in indexes {
        run = match run {
            Some((first, last)) if i == last + 1 => Some((first, i)),
            Some(done) => {
                out.push(interval(done));
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    out.extend(run.map(interval));
    out.join(",")
}

fn interval((first, last): (i32, i32)) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

/// The lowest `n` indexes below `completions` in none of `taken`.
pub fn next_indexes(completions: i32, taken: &BTreeSet<i32>, n: usize) -> Vec<i32> {
    (0..completions)
        .filter(|i| !taken.contains(i))
        .take(n)
        .collect()
}

/// Makes `pod` (from a Job's template) the pod of `index` of Job `job`.
pub fn assign(pod: &mut Pod, job: &str, index: i32) {
    let value = index.to_string();
    pod.metadata
        .annotations
        .get_or_insert_default()
        .insert(COMPLETION_INDEX.into(), value.clone());
    pod.metadata
        .labels
        .get_or_insert_default()
        .insert(COMPLETION_INDEX.into(), value);
    let spec = pod.spec.get_or_insert_default();
    if spec.hostname.is_none() {
        spec.hostname = Some(format!("{job}-{index}"));
    }
    let containers = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut());
    for c in containers {
        let env = c.env.get_or_insert_default();
        if env.iter().any(|e| e.name == INDEX_ENV) {
            continue;
        }
        env.push(EnvVar {
            name: INDEX_ENV.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: Some("v1".into()),
                    field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                }),
                ..Default::default()
            }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_written_as_intervals() {
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(intervals(&set(&[])), "");
        assert_eq!(intervals(&set(&[3])), "3");
        assert_eq!(intervals(&set(&[0, 1, 2, 5, 7, 8])), "0-2,5,7-8");
    }

    #[test]
    fn the_lowest_free_indexes_come_first() {
        let taken: BTreeSet<i32> = [0, 2].into();
        assert_eq!(next_indexes(5, &taken, 2), [1, 3]);
        assert_eq!(next_indexes(3, &taken, 5), [1]);
    }

    #[test]
    fn an_assigned_pod_knows_its_index() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"generateName": "work-2-"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap();
        assign(&mut pod, "work", 2);
        assert_eq!(index_of(&pod, 3), Some(2));
        assert_eq!(index_of(&pod, 2), None);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("work-2"));
        let env = &spec.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env.name, INDEX_ENV);
        assert_eq!(
            env.value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
    }
}
