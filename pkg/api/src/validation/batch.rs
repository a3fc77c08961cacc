//! Jobs and CronJobs, as upstream's `pkg/apis/batch/validation` checks them: a Job's pods
//! restart `OnFailure` or `Never`, its counts are not negative, and its selector, template,
//! completions and completion mode never change; a CronJob has a valid schedule, a known
//! concurrency policy, a Job template that is a valid Job, and a name short enough for the
//! Jobs named after it.

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};

use super::cron::{parse_schedule, time_zone};
use super::pods::{restart_policy, validate_pod_template};
use super::workloads::{non_negative, selector_unchanged, validate_label_selector};
use super::{Cause, render};
use crate::labels::Selector;

/// The longest CronJob name: a DNS-1035 label less the 11 characters of a Job's suffix.
pub const CRON_JOB_NAME_MAX: usize = 52;

const CONCURRENCY_POLICIES: &[&str] = &["Allow", "Forbid", "Replace"];

/// A Job.
pub fn validate_job(job: &Job) -> Vec<Cause> {
    match &job.spec {
        Some(spec) => validate_job_spec(spec, "spec"),
        None => vec![Cause::required("spec.template", "")],
    }
}

/// A Job spec at `path` (`spec`, or `spec.jobTemplate.spec` in a CronJob).
fn validate_job_spec(spec: &JobSpec, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let counts = [
        ("parallelism", spec.parallelism.map(i64::from)),
        ("completions", spec.completions.map(i64::from)),
        ("activeDeadlineSeconds", spec.active_deadline_seconds),
        ("backoffLimit", spec.backoff_limit.map(i64::from)),
        (
            "ttlSecondsAfterFinished",
            spec.ttl_seconds_after_finished.map(i64::from),
        ),
    ];
    for (field, value) in counts {
        causes.extend(non_negative(value, &format!("{path}.{field}")));
    }
    causes.extend(validate_job_selector(spec, path));
    causes.extend(validate_pod_template(
        &spec.template,
        &format!("{path}.template"),
    ));
    let policy = restart_policy(&spec.template);
    if policy != "OnFailure" && policy != "Never" {
        causes.push(Cause::not_supported(
            format!("{path}.template.spec.restartPolicy"),
            policy,
            &["OnFailure", "Never"],
        ));
    }
    causes
}

/// A selector, when given (the API server generates one unless `manualSelector` is set),
/// must be valid and match the template's labels.
fn validate_job_selector(spec: &JobSpec, path: &str) -> Vec<Cause> {
    let at = format!("{path}.selector");
    let Some(selector) = &spec.selector else {
        if spec.manual_selector == Some(true) {
            return vec![Cause::required(at, "")];
        }
        return Vec::new();
    };
    let mut causes = validate_label_selector(selector, &at);
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    let matches = Selector::try_from(selector)
        .map(|s| s.is_empty() || s.matches(labels.unwrap_or(&Default::default())));
    if matches == Ok(false) {
        causes.push(Cause::invalid_rendered(
            format!("{path}.template.metadata.labels"),
            &render::string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    causes
}

/// What a Job update may not change.
pub fn validate_job_update(new: &Job, old: &Job) -> Vec<Cause> {
    let (Some(new_spec), Some(old_spec)) = (&new.spec, &old.spec) else {
        return Vec::new();
    };
    let mut causes = selector_unchanged(new_spec.selector.as_ref(), old_spec.selector.as_ref());
    if new_spec.template != old_spec.template {
        causes.push(Cause::invalid_rendered(
            "spec.template",
            "core.PodTemplateSpec{…}",
            "field is immutable",
        ));
    }
    if new_spec.completions != old_spec.completions && !is_elastic_indexed(new_spec, old_spec) {
        let rendered = new_spec
            .completions
            .map_or_else(|| "null".to_string(), |c| c.to_string());
        causes.push(Cause::invalid_rendered(
            "spec.completions",
            &rendered,
            "field is immutable",
        ));
    }
    if new_spec.completion_mode != old_spec.completion_mode {
        causes.push(Cause::invalid(
            "spec.completionMode",
            new_spec.completion_mode.as_deref().unwrap_or_default(),
            "field is immutable",
        ));
    }
    causes
}

/// An Indexed Job may scale by changing completions and parallelism together.
fn is_elastic_indexed(new: &JobSpec, old: &JobSpec) -> bool {
    new.completion_mode.as_deref() == Some("Indexed")
        && new.completions.is_some()
        && new.completions == new.parallelism
        && old.completions == old.parallelism
}

/// A CronJob.
pub fn validate_cron_job(cj: &CronJob) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(name) = cj.metadata.name.as_deref()
        && name.len() > CRON_JOB_NAME_MAX
    {
        causes.push(Cause::invalid(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        ));
    }
    let Some(spec) = &cj.spec else {
        causes.push(Cause::required("spec.schedule", ""));
        return causes;
    };
    causes.extend(validate_schedule(&spec.schedule, spec.time_zone.is_some()));
    if let Some(tz) = &spec.time_zone
        && let Err(e) = time_zone(tz)
    {
        causes.push(Cause::invalid("spec.timeZone", tz, &e.0));
    }
    match spec.concurrency_policy.as_deref() {
        None => {}
        Some("") => causes.push(Cause::required("spec.concurrencyPolicy", "")),
        Some(p) if CONCURRENCY_POLICIES.contains(&p) => {}
        Some(p) => causes.push(Cause::not_supported(
            "spec.concurrencyPolicy",
            p,
            CONCURRENCY_POLICIES,
        )),
    }
    let counts = [
        ("startingDeadlineSeconds", spec.starting_deadline_seconds),
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit.map(i64::from),
        ),
        (
            "failedJobsHistoryLimit",
            spec.failed_jobs_history_limit.map(i64::from),
        ),
    ];
    for (field, value) in counts {
        causes.extend(non_negative(value, &format!("spec.{field}")));
    }
    if let Some(job_spec) = spec.job_template.spec.as_ref() {
        causes.extend(validate_job_spec(job_spec, "spec.jobTemplate.spec"));
    }
    causes
}

fn validate_schedule(schedule: &str, has_time_zone: bool) -> Vec<Cause> {
    let path = "spec.schedule";
    if schedule.is_empty() {
        return vec![Cause::required(path, "")];
    }
    let mut causes = Vec::new();
    if let Err(e) = parse_schedule(schedule) {
        causes.push(Cause::invalid(path, schedule, &e.0));
    }
    if schedule.contains("TZ") {
        causes.push(Cause::invalid(
            path,
            schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
        if has_time_zone {
            causes.push(Cause::invalid(
                path,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        }
    }
    causes
}
