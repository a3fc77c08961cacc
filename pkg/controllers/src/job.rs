//! The Job controller: runs a Job's pods to completion, as upstream's does. It keeps up to
//! `parallelism` pods active until `completions` pods have succeeded (or, without
//! `completions`, until one has and none is active), replaces failed pods after an
//! exponential back-off (10 s doubling to 6 min) and gives up once more than `backoffLimit`
//! pods failed or the Job was active longer than `activeDeadlineSeconds`. A finished Job gets
//! the `Complete` or `Failed` condition (with `SuccessCriteriaMet` / `FailureTarget` first,
//! as 1.31+ writes them), its remaining pods are deleted, and after
//! `ttlSecondsAfterFinished` the Job itself is deleted (upstream's TTL-after-finished
//! controller). An Indexed Job needs one succeeded pod per index ([`job_index`]); a
//! `podFailurePolicy` may fail the Job at a pod's first failure or not count it
//! ([`pod_failure_policy`]). Pods are counted from the cache: a finished pod deleted by hand
//! is forgotten (upstream tracks them with a finalizer).
//!
//! [`job_index`]: crate::job_index
//! [`pod_failure_policy`]: crate::pod_failure_policy

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cairn_client::{Api, Client, DeleteParams, ObjectKey, Patch, PropagationPolicy, Store};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::claim::claim;
use crate::error::{Error, Result};
use crate::expectations::Expectations;
use crate::informer::Change;
use crate::job_index::{self, index_of};
use crate::pod_failure_policy::{Verdict, judge};
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::replicaset::slow_start;
use crate::{Informers, meta, pods};

/// The first back-off after a failed pod.
const BACKOFF_INITIAL: i64 = 10;
/// The longest back-off.
const BACKOFF_MAX: i64 = 360;

/// The Job controller.
pub struct JobController {
    client: Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
    expectations: Expectations,
}

impl JobController {
    /// The controller, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<ObjectKey>) -> Arc<Self> {
        let q = queue.clone();
        informers
            .jobs
            .on_change(move |change| q.add(meta::key(&change.object().metadata)));
        let q = queue.clone();
        informers.pods.on_change(move |change: Change<'_, Pod>| {
            if let Some(r) = meta::controller_of(&change.object().metadata)
                && r.kind == "Job"
            {
                q.add(ObjectKey {
                    namespace: change.object().metadata.namespace.clone(),
                    name: r.name.clone(),
                });
            }
        });
        Arc::new(JobController {
            client,
            jobs: informers.jobs.store().clone(),
            pods: informers.pods.store().clone(),
            expectations: Expectations::default(),
        })
    }
}

/// The condition of `type_` when it is True.
pub fn condition_true<'a>(status: Option<&'a JobStatus>, type_: &str) -> Option<&'a JobCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// When the Job finished and whether it succeeded, once it has.
pub fn finished(job: &Job) -> Option<(Option<Timestamp>, bool)> {
    let status = job.status.as_ref();
    if let Some(c) = condition_true(status, "Complete") {
        let at = status
            .and_then(|s| s.completion_time.as_ref())
            .or(c.last_transition_time.as_ref())
            .map(|t| t.0);
        return Some((at, true));
    }
    condition_true(status, "Failed").map(|c| (c.last_transition_time.as_ref().map(|t| t.0), false))
}

fn condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
        last_probe_time: Some(meta::time(now)),
        last_transition_time: Some(meta::time(now)),
    }
}

/// When the last failed pod failed.
fn last_failure(failed: &[&Arc<Pod>]) -> Option<Timestamp> {
    failed
        .iter()
        .filter_map(|p| {
            let status = p.status.as_ref()?;
            let finished = status
                .container_statuses
                .iter()
                .flatten()
                .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
                .map(|t| t.0)
                .max();
            finished.or_else(|| {
                status
                    .conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_ == "Ready")
                    .and_then(|c| c.last_transition_time.as_ref())
                    .map(|t| t.0)
            })
        })
        .max()
}

impl Reconcile for JobController {
    type Key = ObjectKey;
    const NAME: &'static str = "job";

    async fn reconcile(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let Some(job) = self.jobs.get(Some(ns), &key.name) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let now = meta::now();
        let api = Api::<Job>::namespaced(self.client.clone(), ns);
        if let Some((at, _)) = finished(&job) {
            return self.after_finish(&api, &job, at, now).await;
        }
        if meta::is_deleting(&job.metadata) {
            return Ok(None);
        }
        let spec = job.spec.clone().unwrap_or_default();
        let selector = meta::selector(spec.selector.as_ref())?;
        let pod_api = Api::<Pod>::namespaced(self.client.clone(), ns);
        let candidates: Vec<Arc<Pod>> = self
            .pods
            .list()
            .into_iter()
            .filter(|p| meta::namespace(&p.metadata) == ns)
            .collect();
        let controller_ref = meta::controller_ref::<Job>(&job.metadata);
        let owned = claim(
            &pod_api,
            &job.metadata,
            &controller_ref,
            selector.as_ref(),
            candidates,
        )
        .await?;
        let mut active: Vec<Arc<Pod>> = owned
            .iter()
            .filter(|p| pods::is_active(p))
            .cloned()
            .collect();
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        let completions = spec.completions.unwrap_or(0);
        let succeeded_pods = owned.iter().filter(|p| pods::phase(p) == "Succeeded");
        // An Indexed Job counts succeeded indexes, each once.
        let succeeded_indexes: BTreeSet<i32> = if indexed {
            succeeded_pods
                .clone()
                .filter_map(|p| index_of(p, completions))
                .collect()
        } else {
            BTreeSet::new()
        };
        let succeeded = if indexed {
            succeeded_indexes.len() as i32
        } else {
            succeeded_pods.count() as i32
        };
        // Failures the pod failure policy ignores do not count; one may fail the Job.
        let mut failed_pods: Vec<&Arc<Pod>> = Vec::new();
        let mut fail_job = None;
        for pod in owned.iter().filter(|p| pods::phase(p) == "Failed") {
            match judge(spec.pod_failure_policy.as_ref(), pod) {
                Verdict::Ignore => continue,
                Verdict::FailJob(message) => {
                    fail_job.get_or_insert(message);
                }
                Verdict::Count => {}
            }
            failed_pods.push(pod);
        }
        let failed = failed_pods.len() as i32;
        let old = job.status.clone().unwrap_or_default();
        let start = old.start_time.as_ref().map(|t| t.0).unwrap_or(now);
        let mut status = JobStatus {
            start_time: Some(meta::time(start)),
            succeeded: Some(succeeded),
            failed: Some(failed),
            conditions: old.conditions.clone(),
            completed_indexes: indexed.then(|| job_index::intervals(&succeeded_indexes)),
            ..old.clone()
        };
        let satisfied = self.expectations.satisfied(key, &self.pods);
        let mut again = None;
        let backoff_limit = spec.backoff_limit.unwrap_or(6);
        let deadline = spec.active_deadline_seconds;
        let failure = if let Some(message) = fail_job {
            Some(("PodFailurePolicy", message))
        } else if failed > backoff_limit {
            Some((
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".to_string(),
            ))
        } else if let Some(d) = deadline
            && now.as_second() - start.as_second() >= d
        {
            Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline".to_string(),
            ))
        } else {
            if let Some(d) = deadline {
                again = Some(Duration::from_secs(
                    (start.as_second() + d - now.as_second()).max(1) as u64,
                ));
            }
            None
        };
        let done = match spec.completions {
            Some(c) => succeeded >= c,
            None => succeeded >= 1 && active.is_empty(),
        };
        if let Some((reason, message)) = failure {
            self.delete_pods(key, &pod_api, &active).await?;
            active.clear();
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            conditions.push(condition("FailureTarget", reason, &message, now));
            conditions.push(condition("Failed", reason, &message, now));
            again = spec
                .ttl_seconds_after_finished
                .map(|t| Duration::from_secs(t.max(0) as u64));
        } else if done {
            self.delete_pods(key, &pod_api, &active).await?;
            active.clear();
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            conditions.push(condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
            conditions.push(condition(
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
            status.completion_time = Some(meta::time(now));
            again = spec
                .ttl_seconds_after_finished
                .map(|t| Duration::from_secs(t.max(0) as u64));
        } else if spec.suspend == Some(true) {
            self.delete_pods(key, &pod_api, &active).await?;
            active.clear();
        } else if satisfied {
            let parallelism = spec.parallelism.unwrap_or(1).max(0);
            let want = match spec.completions {
                Some(c) => parallelism.min(c - succeeded).max(0),
                None if succeeded > 0 => 0,
                None => parallelism,
            } as usize;
            // An Indexed Job's pods without a valid index, or for an index that succeeded
            // or that another active pod holds, go first.
            if indexed {
                let mut held = BTreeSet::new();
                let (keep, extra): (Vec<_>, Vec<_>) = active.drain(..).partition(|p| {
                    index_of(p, completions)
                        .is_some_and(|i| !succeeded_indexes.contains(&i) && held.insert(i))
                });
                active = keep;
                self.delete_pods(key, &pod_api, &extra).await?;
            }
            if active.len() > want {
                pods::sort_for_deletion(&mut active);
                let surplus: Vec<Arc<Pod>> = active.drain(..active.len() - want).collect();
                self.delete_pods(key, &pod_api, &surplus).await?;
            } else if active.len() < want {
                let wait = if failed > 0 {
                    let delay = (BACKOFF_INITIAL << (failed - 1).min(10)).min(BACKOFF_MAX);
                    let since = last_failure(&failed_pods).unwrap_or(now);
                    since.as_second() + delay - now.as_second()
                } else {
                    0
                };
                if wait > 0 {
                    let d = Duration::from_secs(wait as u64);
                    again = Some(again.map_or(d, |a: Duration| a.min(d)));
                } else {
                    let n = want - active.len();
                    let indexes = if indexed {
                        let mut taken = succeeded_indexes.clone();
                        taken.extend(active.iter().filter_map(|p| index_of(p, completions)));
                        job_index::next_indexes(completions, &taken, n)
                            .into_iter()
                            .map(Some)
                            .collect()
                    } else {
                        vec![None; n]
                    };
                    self.create_pods(key, &job, &pod_api, &indexes).await?;
                }
            }
        }
        status.active = Some(active.len() as i32);
        status.ready = Some(active.iter().filter(|p| pods::is_ready(p)).count() as i32);
        status.terminating = Some(
            owned
                .iter()
                .filter(|p| meta::is_deleting(&p.metadata) && !pods::is_terminal(p))
                .count() as i32,
        );
        if status != old {
            let body = serde_json::to_value(&status).map_err(|e| Error::Invalid(e.to_string()))?;
            match api
                .patch_status(&key.name, &Patch::Merge(json!({"status": body})))
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(again)
    }
}

impl JobController {
    /// Creates one pod per entry of `indexes`: of that completion index, or of none.
    async fn create_pods(
        &self,
        key: &ObjectKey,
        job: &Job,
        api: &Api<Pod>,
        indexes: &[Option<i32>],
    ) -> Result<()> {
        let Some(template) = job.spec.as_ref().map(|s| s.template.clone()) else {
            return Ok(());
        };
        let ns = meta::namespace(&job.metadata);
        let name = meta::name(&job.metadata);
        tracing::debug!(
            namespace = ns,
            job = name,
            n = indexes.len(),
            "creating job pods"
        );
        slow_start(indexes.len(), |i| {
            let index = indexes[i];
            let prefix = match index {
                Some(index) => format!("{name}-{index}"),
                None => name.to_string(),
            };
            let mut pod = pods::from_template(
                &template,
                ns,
                meta::controller_ref::<Job>(&job.metadata),
                &pods::generate_name_prefix(&prefix),
                &[],
            );
            if let Some(index) = index {
                job_index::assign(&mut pod, name, index);
            }
            async move {
                let created = api.create(&pod).await?;
                self.expectations.written(key, &created.metadata);
                Ok(())
            }
        })
        .await
    }

    async fn delete_pods(
        &self,
        key: &ObjectKey,
        api: &Api<Pod>,
        doomed: &[Arc<Pod>],
    ) -> Result<()> {
        for pod in doomed {
            match api
                .delete(meta::name(&pod.metadata), &DeleteParams::default())
                .await
            {
                Ok(_) => self.expectations.deleted(key, &pod.metadata),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A finished Job: deleted once its `ttlSecondsAfterFinished` has passed.
    async fn after_finish(
        &self,
        api: &Api<Job>,
        job: &Job,
        at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<Duration>> {
        let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
            return Ok(None);
        };
        if meta::is_deleting(&job.metadata) {
            return Ok(None);
        }
        let at = at.unwrap_or(now);
        let left = at.as_second() + i64::from(ttl) - now.as_second();
        if left > 0 {
            return Ok(Some(Duration::from_secs(left as u64)));
        }
        tracing::info!(
            namespace = meta::namespace(&job.metadata),
            job = meta::name(&job.metadata),
            "deleting a finished job after its ttl"
        );
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match api.delete(meta::name(&job.metadata), &params).await {
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
