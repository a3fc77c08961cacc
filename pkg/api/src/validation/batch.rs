//! Jobs and CronJobs, as upstream's `pkg/apis/batch/validation` checks them: a Job's pods
//! restart `OnFailure` or `Never`, its counts are not negative, and its selector, template,
//! completions and completion mode never change; a CronJob has a valid schedule, a known
//! concurrency policy, a Job template that is a valid Job, and a name short enough for the
//! Jobs named after it.

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec, PodFailurePolicy, PodFailurePolicyRule};

use super::cron::{parse_schedule, time_zone};
use super::pods::{restart_policy, validate_pod_template};
use super::workloads::{non_negative, selector_unchanged, validate_label_selector};
use super::{Cause, render};
use crate::labels::Selector;

/// The longest CronJob name: a DNS-1035 label less the 11 characters of a Job's suffix.
pub const CRON_JOB_NAME_MAX: usize = 52;

const CONCURRENCY_POLICIES: &[&str] = &["Allow", "Forbid", "Replace"];
const COMPLETION_MODES: &[&str] = &["NonIndexed", "Indexed"];
/// The most pods an Indexed Job runs at once.
const MAX_INDEXED_PARALLELISM: i32 = 100_000;
const POLICY_ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];
const EXIT_CODE_OPERATORS: &[&str] = &["In", "NotIn"];

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
    causes.extend(validate_completion_mode(spec, path));
    if let Some(failure_policy) = &spec.pod_failure_policy {
        causes.extend(validate_pod_failure_policy(
            spec,
            failure_policy,
            &format!("{path}.podFailurePolicy"),
        ));
        if policy == "OnFailure" {
            causes.push(Cause::invalid(
                format!("{path}.template.spec.restartPolicy"),
                policy,
                "only \"Never\" is supported when podFailurePolicy is specified",
            ));
        }
    }
    causes
}

/// A known completion mode; an Indexed Job says how many completions it needs.
fn validate_completion_mode(spec: &JobSpec, path: &str) -> Vec<Cause> {
    let Some(mode) = spec.completion_mode.as_deref() else {
        return Vec::new();
    };
    if !COMPLETION_MODES.contains(&mode) {
        return vec![Cause::not_supported(
            format!("{path}.completionMode"),
            mode,
            COMPLETION_MODES,
        )];
    }
    let mut causes = Vec::new();
    if mode == "Indexed" {
        if spec.completions.is_none() {
            causes.push(Cause::required(
                format!("{path}.completions"),
                "when completion mode is Indexed",
            ));
        }
        if let Some(p) = spec.parallelism
            && p > MAX_INDEXED_PARALLELISM
        {
            causes.push(Cause::invalid_int(
                format!("{path}.parallelism"),
                i64::from(p),
                &format!(
                    "must be less than or equal to {MAX_INDEXED_PARALLELISM} when completion mode is Indexed"
                ),
            ));
        }
    }
    causes
}

/// Each rule: a known action, and exactly one of exit codes (a known operator, known
/// container, sorted unique codes, no 0 with `In`) or pod conditions.
fn validate_pod_failure_policy(
    spec: &JobSpec,
    policy: &PodFailurePolicy,
    path: &str,
) -> Vec<Cause> {
    let pod_spec = spec.template.spec.as_ref();
    let names: Vec<&str> = pod_spec
        .into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .map(|c| c.name.as_str())
        .collect();
    let mut causes = Vec::new();
    for (i, rule) in policy.rules.iter().enumerate() {
        causes.extend(validate_rule(
            spec,
            rule,
            &format!("{path}.rules[{i}]"),
            &names,
        ));
    }
    causes
}

fn validate_rule(
    spec: &JobSpec,
    rule: &PodFailurePolicyRule,
    path: &str,
    names: &[&str],
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let action = format!("{path}.action");
    match rule.action.as_str() {
        "" => causes.push(Cause::required(
            action,
            &format!("valid values: {}", go_quoted(POLICY_ACTIONS)),
        )),
        "FailIndex" if spec.backoff_limit_per_index.is_none() => causes.push(Cause::invalid(
            action,
            "FailIndex",
            "requires the backoffLimitPerIndex to be set",
        )),
        a if !POLICY_ACTIONS.contains(&a) => {
            causes.push(Cause::not_supported(action, a, POLICY_ACTIONS));
        }
        _ => {}
    }
    let conditions = rule.on_pod_conditions.as_deref().unwrap_or_default();
    if let Some(codes) = &rule.on_exit_codes {
        let at = format!("{path}.onExitCodes");
        match codes.operator.as_str() {
            "" => causes.push(Cause::required(
                format!("{at}.operator"),
                &format!("valid values: {}", go_quoted(EXIT_CODE_OPERATORS)),
            )),
            op if !EXIT_CODE_OPERATORS.contains(&op) => causes.push(Cause::not_supported(
                format!("{at}.operator"),
                op,
                EXIT_CODE_OPERATORS,
            )),
            _ => {}
        }
        if let Some(name) = &codes.container_name
            && !names.contains(&name.as_str())
        {
            causes.push(Cause::invalid(
                format!("{at}.containerName"),
                name,
                "must be one of the container or initContainer names in the pod template",
            ));
        }
        let values = &codes.values;
        let rendered = format!(
            "[]int32{{{}}}",
            values
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        if values.is_empty() {
            causes.push(Cause::invalid_rendered(
                format!("{at}.values"),
                &rendered,
                "at least one value is required",
            ));
        }
        for (j, &v) in values.iter().enumerate() {
            let at_j = format!("{at}.values[{j}]");
            if codes.operator == "In" && v == 0 {
                causes.push(Cause::invalid_int(
                    &at_j,
                    0,
                    "must not be 0 for the In operator",
                ));
            }
            if values[..j].contains(&v) {
                causes.push(Cause::duplicate(&at_j, &v.to_string()));
            }
        }
        if values.windows(2).any(|w| w[0] > w[1]) {
            causes.push(Cause::invalid_rendered(
                format!("{at}.values"),
                &rendered,
                "must be ordered",
            ));
        }
    }
    for (j, c) in conditions.iter().enumerate() {
        let status = c.status.as_str();
        if !status.is_empty() && !["True", "False", "Unknown"].contains(&status) {
            causes.push(Cause::not_supported(
                format!("{path}.onPodConditions[{j}].status"),
                status,
                &["True", "False", "Unknown"],
            ));
        }
    }
    match (rule.on_exit_codes.is_some(), !conditions.is_empty()) {
        (true, true) => causes.push(Cause::invalid_omitted(
            path,
            "specifying both OnExitCodes and OnPodConditions is not supported",
        )),
        (false, false) => causes.push(Cause::invalid_omitted(
            path,
            "specifying one of OnExitCodes and OnPodConditions is required",
        )),
        _ => {}
    }
    causes
}

/// A list as Go's `%q` prints a `[]string`: `["a" "b"]`.
fn go_quoted(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(" "))
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
