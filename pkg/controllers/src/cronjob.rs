//! The CronJob controller: creates a Job from `jobTemplate` at each time the schedule names
//! (in `spec.timeZone`, UTC when unset), as upstream's does. The Job is named `<cronjob>-<minutes since the epoch>`, so a
//! time already run is not run twice; a time missed by more than `startingDeadlineSeconds`
//! is skipped; `concurrencyPolicy` Forbid skips a run while a Job is active and Replace
//! deletes the active ones first. Finished Jobs beyond `successfulJobsHistoryLimit` and
//! `failedJobsHistoryLimit` are deleted, oldest first. The status lists the active Jobs and
//! the last schedule and success times. A local time that a daylight-saving change skips
//! does not run; one it repeats runs once for each time it occurs.

use std::sync::Arc;
use std::time::Duration;

use cairn_api::validation::{Schedule, parse_schedule, time_zone};
use cairn_client::{Api, Client, DeleteParams, ObjectKey, Patch, PropagationPolicy, Store};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

use crate::error::{Error, Result};
use crate::informer::Change;
use crate::job::finished;
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::{Informers, meta};

/// How far back and ahead the schedule is searched, in minutes (a year).
const SEARCH_MINUTES: i64 = 366 * 24 * 60;

/// The CronJob controller.
pub struct CronJobController {
    client: Client,
    cron_jobs: Store<CronJob>,
    jobs: Store<Job>,
}

impl CronJobController {
    /// The controller, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<ObjectKey>) -> Arc<Self> {
        let q = queue.clone();
        informers
            .cron_jobs
            .on_change(move |change| q.add(meta::key(&change.object().metadata)));
        let q = queue.clone();
        informers.jobs.on_change(move |change: Change<'_, Job>| {
            if let Some(r) = meta::controller_of(&change.object().metadata)
                && r.kind == "CronJob"
            {
                q.add(ObjectKey {
                    namespace: change.object().metadata.namespace.clone(),
                    name: r.name.clone(),
                });
            }
        });
        Arc::new(CronJobController {
            client,
            cron_jobs: informers.cron_jobs.store().clone(),
            jobs: informers.jobs.store().clone(),
        })
    }
}

/// Whether `schedule` names the minute starting at `at`, read as a time in `tz`.
fn matches_minute(schedule: &Schedule, tz: &TimeZone, at: Timestamp) -> bool {
    let Schedule::Fields {
        minutes,
        hours,
        days_of_month,
        months,
        days_of_week,
        day_stars,
    } = schedule
    else {
        return false;
    };
    let t = at.to_zoned(tz.clone());
    let bit = |set: &u64, v: i8| set & (1u64 << v) != 0;
    let dom = bit(days_of_month, t.day());
    let dow = bit(days_of_week, t.weekday().to_sunday_zero_offset());
    let day = if day_stars.0 || day_stars.1 {
        dom && dow
    } else {
        dom || dow
    };
    bit(minutes, t.minute()) && bit(hours, t.hour()) && bit(months, t.month()) && day
}

/// The latest scheduled time in (`after`, `now`], if any.
pub fn most_recent(
    schedule: &Schedule,
    tz: &TimeZone,
    after: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    match schedule {
        Schedule::Every { seconds } => {
            let period = (*seconds).max(1) as i64;
            let n = (now.as_second() - after.as_second()) / period;
            (n >= 1).then(|| Timestamp::from_second(after.as_second() + n * period).ok())?
        }
        Schedule::Fields { .. } => {
            let mut minute = now.as_second() - now.as_second().rem_euclid(60);
            let floor = after.as_second().max(now.as_second() - SEARCH_MINUTES * 60);
            while minute > floor {
                let at = Timestamp::from_second(minute).ok()?;
                if matches_minute(schedule, tz, at) {
                    return Some(at);
                }
                minute -= 60;
            }
            None
        }
    }
}

/// The first scheduled time after `now`, within a year.
pub fn next_after(
    schedule: &Schedule,
    tz: &TimeZone,
    since: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    match schedule {
        Schedule::Every { seconds } => {
            let period = (*seconds).max(1) as i64;
            let n = (now.as_second() - since.as_second()) / period + 1;
            Timestamp::from_second(since.as_second() + n * period).ok()
        }
        Schedule::Fields { .. } => {
            let mut minute = now.as_second() - now.as_second().rem_euclid(60) + 60;
            for _ in 0..SEARCH_MINUTES {
                let at = Timestamp::from_second(minute).ok()?;
                if matches_minute(schedule, tz, at) {
                    return Some(at);
                }
                minute += 60;
            }
            None
        }
    }
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

impl Reconcile for CronJobController {
    type Key = ObjectKey;
    const NAME: &'static str = "cronjob";

    async fn reconcile(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let Some(cj) = self.cron_jobs.get(Some(ns), &key.name) else {
            return Ok(None);
        };
        if meta::is_deleting(&cj.metadata) {
            return Ok(None);
        }
        let spec = cj.spec.clone().unwrap_or_default();
        let jobs_api = Api::<Job>::namespaced(self.client.clone(), ns);
        let mut owned: Vec<Arc<Job>> = self
            .jobs
            .list()
            .into_iter()
            .filter(|j| {
                meta::namespace(&j.metadata) == ns
                    && meta::is_controlled_by(&j.metadata, &cj.metadata)
            })
            .collect();
        owned.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let mut active: Vec<Arc<Job>> = owned
            .iter()
            .filter(|j| finished(j).is_none() && !meta::is_deleting(&j.metadata))
            .cloned()
            .collect();
        let last_success = owned
            .iter()
            .filter_map(|j| match finished(j) {
                Some((at, true)) => at,
                _ => None,
            })
            .max();
        self.clean_history(
            &jobs_api,
            &owned,
            spec.successful_jobs_history_limit.unwrap_or(3),
            true,
        )
        .await?;
        self.clean_history(
            &jobs_api,
            &owned,
            spec.failed_jobs_history_limit.unwrap_or(1),
            false,
        )
        .await?;

        let schedule = parse_schedule(&spec.schedule).map_err(|e| {
            Error::Invalid(format!("unparseable schedule {:?}: {e}", spec.schedule))
        })?;
        let tz = match spec.time_zone.as_deref() {
            None => TimeZone::UTC,
            Some(name) => {
                time_zone(name).map_err(|e| Error::Invalid(format!("time zone {name:?}: {e}")))?
            }
        };
        let now = meta::now();
        let created = cj
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(now);
        let status = cj.status.clone().unwrap_or_default();
        let earliest = status
            .last_schedule_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(created);
        let next = next_after(&schedule, &tz, created, now);
        let again =
            next.map(|n| Duration::from_secs((n.as_second() - now.as_second()).max(1) as u64));
        let mut last_schedule = status.last_schedule_time.clone();
        if spec.suspend != Some(true)
            && let Some(at) = most_recent(&schedule, &tz, earliest, now)
        {
            let too_late = spec
                .starting_deadline_seconds
                .is_some_and(|d| at.as_second() + d < now.as_second());
            let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
            if too_late {
                tracing::info!(
                    namespace = ns,
                    cronjob = key.name,
                    "missed the starting deadline, skipping a run"
                );
            } else if policy == "Forbid" && !active.is_empty() {
                tracing::debug!(
                    namespace = ns,
                    cronjob = key.name,
                    "a job is still active, skipping a run"
                );
            } else {
                if policy == "Replace" {
                    for job in active.drain(..) {
                        let params = DeleteParams {
                            propagation_policy: Some(PropagationPolicy::Background),
                            ..DeleteParams::default()
                        };
                        match jobs_api.delete(meta::name(&job.metadata), &params).await {
                            Ok(_) => {}
                            Err(e) if e.is_not_found() => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                if let Some(job) = self.create_job(&jobs_api, &cj, at).await? {
                    active.push(Arc::new(job));
                }
                last_schedule = Some(meta::time(at));
            }
        }
        let refs: Vec<ObjectReference> = active.iter().map(|j| job_ref(j)).collect();
        let mut new_status = status.clone();
        new_status.active = (!refs.is_empty()).then_some(refs);
        new_status.last_schedule_time = last_schedule;
        if let Some(at) = last_success {
            new_status.last_successful_time = Some(meta::time(at));
        }
        if new_status != status {
            let api = Api::<CronJob>::namespaced(self.client.clone(), ns);
            let body = json!({"status": {
                "active": new_status.active.clone().unwrap_or_default(),
                "lastScheduleTime": new_status.last_schedule_time,
                "lastSuccessfulTime": new_status.last_successful_time,
            }});
            match api.patch_status(&key.name, &Patch::Merge(body)).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(again)
    }
}

impl CronJobController {
    /// Creates the Job of the run at `at`; `None` when it exists already (a run already made).
    async fn create_job(&self, api: &Api<Job>, cj: &CronJob, at: Timestamp) -> Result<Option<Job>> {
        let template = cj
            .spec
            .as_ref()
            .map(|s| s.job_template.clone())
            .unwrap_or_default();
        let source = template.metadata.unwrap_or_default();
        let name = format!("{}-{}", meta::name(&cj.metadata), at.as_second() / 60);
        let mut annotations = source.annotations.unwrap_or_default();
        annotations.insert(
            "batch.kubernetes.io/cronjob-scheduled-timestamp".into(),
            at.to_string(),
        );
        let job = Job {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: cj.metadata.namespace.clone(),
                labels: source.labels,
                annotations: Some(annotations),
                owner_references: Some(vec![meta::controller_ref::<CronJob>(&cj.metadata)]),
                ..Default::default()
            },
            spec: template.spec,
            status: None,
        };
        match api.create(&job).await {
            Ok(created) => {
                tracing::info!(
                    namespace = meta::namespace(&cj.metadata),
                    job = name,
                    "created a job for a scheduled run"
                );
                Ok(Some(created))
            }
            Err(e) if e.is_already_exists() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes finished Jobs (succeeded or failed ones) beyond `limit`, oldest first.
    async fn clean_history(
        &self,
        api: &Api<Job>,
        owned: &[Arc<Job>],
        limit: i32,
        succeeded: bool,
    ) -> Result<()> {
        let mut done: Vec<(Option<Timestamp>, &Arc<Job>)> = owned
            .iter()
            .filter(|j| !meta::is_deleting(&j.metadata))
            .filter_map(|j| match finished(j) {
                Some((at, ok)) if ok == succeeded => Some((at, j)),
                _ => None,
            })
            .collect();
        let limit = limit.max(0) as usize;
        if done.len() <= limit {
            return Ok(());
        }
        done.sort_by_key(|(at, _)| *at);
        let surplus = done.len() - limit;
        for (_, job) in &done[..surplus] {
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            };
            match api.delete(meta::name(&job.metadata), &params).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn schedules_find_their_last_and_next_times() {
        let utc = TimeZone::UTC;
        let every_5 = parse_schedule("*/5 * * * *").unwrap();
        let now = at("2026-12-02T06:33:20Z");
        assert_eq!(
            most_recent(&every_5, &utc, at("2026-12-02T06:00:00Z"), now),
            Some(at("2026-12-02T06:30:00Z"))
        );
        assert_eq!(
            most_recent(&every_5, &utc, at("2026-12-02T06:30:00Z"), now),
            None
        );
        assert_eq!(
            next_after(&every_5, &utc, now, now),
            Some(at("2026-12-02T06:35:00Z"))
        );
        // Day of month or day of week when both are given: the 1st, or any Monday.
        let either = parse_schedule("0 12 1 * mon").unwrap();
        assert_eq!(
            next_after(&either, &utc, now, now),
            Some(at("2026-12-07T12:00:00Z")),
            "2026-12-07 is a Monday"
        );
        let every = parse_schedule("@every 90s").unwrap();
        let since = at("2026-12-02T06:00:00Z");
        assert_eq!(
            most_recent(&every, &utc, since, at("2026-12-02T06:04:00Z")),
            Some(at("2026-12-02T06:03:00Z"))
        );
        assert_eq!(
            next_after(&every, &utc, since, at("2026-12-02T06:04:00Z")),
            Some(at("2026-12-02T06:04:30Z"))
        );
    }

    #[test]
    fn schedules_run_on_the_clock_of_their_time_zone() {
        let daily_3am = parse_schedule("0 3 * * *").unwrap();
        let now = at("2026-12-02T06:33:20Z");
        // 03:00 in Paris is 02:00 UTC in winter; in New York it is 08:00 UTC.
        let paris = time_zone("Europe/Paris").unwrap();
        assert_eq!(
            most_recent(&daily_3am, &paris, at("2026-12-01T06:00:00Z"), now),
            Some(at("2026-12-02T02:00:00Z"))
        );
        let new_york = time_zone("America/New_York").unwrap();
        assert_eq!(
            next_after(&daily_3am, &new_york, now, now),
            Some(at("2026-12-02T08:00:00Z"))
        );
        // Summer time: 03:00 in Paris is 01:00 UTC.
        let july = at("2026-07-01T12:00:00Z");
        assert_eq!(
            next_after(&daily_3am, &paris, july, july),
            Some(at("2026-07-02T01:00:00Z"))
        );
        // 02:30 does not exist in Paris on 29 March 2026 (clocks go from 02:00 to 03:00).
        let at_0230 = parse_schedule("30 2 * * *").unwrap();
        let before = at("2026-03-28T12:00:00Z");
        assert_eq!(
            next_after(&at_0230, &paris, before, before),
            Some(at("2026-03-30T00:30:00Z"))
        );
    }
}
