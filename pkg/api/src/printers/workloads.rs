//! Workload controllers: deployments, replica sets, stateful sets, daemon sets, jobs and
//! cron jobs — replica counts, job status and duration, schedules, and with `-o wide` the
//! template's containers, images and the selector.

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobCondition};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::duration::human_duration;
use super::format::{age, bool_ptr, containers, label_selector, labels, selector, time_since};
use super::{AGE, Cells, Column, NAME, Result, decode};

const CONTAINERS: Column =
    Column::string("Containers", "Names of each container in the template.").wide();
const IMAGES: Column = Column::string(
    "Images",
    "Images referenced by each container in the template.",
)
.wide();
const SELECTOR: Column =
    Column::string("Selector", "The label selector of the pods it manages.").wide();

/// The containers and images cells of a pod template.
fn template_cells(template: Option<&PodTemplateSpec>) -> [Value; 2] {
    let list = template
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let (names, images) = containers(list);
    [json!(names), json!(images)]
}

/// The deployment columns.
pub const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Ready", "Number of the pod with ready state"),
    Column::string(
        "Up-to-date",
        "Total number of pods targeted by the deployment that have the desired template.",
    ),
    Column::string(
        "Available",
        "Total number of available pods (ready for at least minReadySeconds).",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// The cells of one deployment.
pub fn deployment_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let d: Deployment = decode("Deployment", object)?;
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let [names, images] = template_cells(Some(&spec.template));
    Ok(vec![
        json!(d.metadata.name.clone().unwrap_or_default()),
        json!(format!(
            "{}/{}",
            status.ready_replicas.unwrap_or(0),
            spec.replicas.unwrap_or(1)
        )),
        json!(status.updated_replicas.unwrap_or(0)),
        json!(status.available_replicas.unwrap_or(0)),
        age(&d.metadata, now),
        names,
        images,
        json!(selector(Some(&spec.selector))),
    ])
}

/// The replica set columns.
pub const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::integer("Desired", "The number of pods the replica set should run."),
    Column::integer("Current", "The number of pods the replica set runs."),
    Column::integer("Ready", "The number of ready pods."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// The cells of one replica set.
pub fn replica_set_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let rs: ReplicaSet = decode("ReplicaSet", object)?;
    let spec = rs.spec.clone().unwrap_or_default();
    let status = rs.status.clone().unwrap_or_default();
    let [names, images] = template_cells(spec.template.as_ref());
    Ok(vec![
        json!(rs.metadata.name.clone().unwrap_or_default()),
        json!(spec.replicas.unwrap_or(1)),
        json!(status.replicas),
        json!(status.ready_replicas.unwrap_or(0)),
        age(&rs.metadata, now),
        names,
        images,
        json!(label_selector(Some(&spec.selector))),
    ])
}

/// The stateful set columns.
pub const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Ready", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

/// The cells of one stateful set.
pub fn stateful_set_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let sts: StatefulSet = decode("StatefulSet", object)?;
    let spec = sts.spec.clone().unwrap_or_default();
    let ready = sts
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let [names, images] = template_cells(Some(&spec.template));
    Ok(vec![
        json!(sts.metadata.name.clone().unwrap_or_default()),
        json!(format!("{ready}/{}", spec.replicas.unwrap_or(1))),
        age(&sts.metadata, now),
        names,
        images,
    ])
}

/// The daemon set columns.
pub const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::integer(
        "Desired",
        "The number of nodes that should run the daemon pod.",
    ),
    Column::integer(
        "Current",
        "The number of nodes that run at least one daemon pod.",
    ),
    Column::integer("Ready", "The number of nodes whose daemon pod is ready."),
    Column::integer(
        "Up-to-date",
        "The number of nodes running the updated daemon pod.",
    ),
    Column::integer(
        "Available",
        "The number of nodes whose daemon pod is available.",
    ),
    Column::string("Node Selector", "The node selector of the daemon pods."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// The cells of one daemon set.
pub fn daemon_set_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let ds: DaemonSet = decode("DaemonSet", object)?;
    let spec = ds.spec.clone().unwrap_or_default();
    let status = ds.status.clone().unwrap_or_default();
    let node_selector = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.as_ref());
    let [names, images] = template_cells(Some(&spec.template));
    Ok(vec![
        json!(ds.metadata.name.clone().unwrap_or_default()),
        json!(status.desired_number_scheduled),
        json!(status.current_number_scheduled),
        json!(status.number_ready),
        json!(status.updated_number_scheduled.unwrap_or(0)),
        json!(status.number_available.unwrap_or(0)),
        json!(labels(node_selector)),
        age(&ds.metadata, now),
        names,
        images,
        json!(label_selector(Some(&spec.selector))),
    ])
}

/// The controller revision columns.
pub const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Controller", "Controller of the object."),
    Column::integer("Revision", "Revision of the ControllerRevision."),
    AGE,
];

/// The cells of one controller revision: its controller as `kind.group/name`.
pub fn controller_revision_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let r: ControllerRevision = decode("ControllerRevision", object)?;
    let controller = r
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map_or_else(
            || "<none>".to_string(),
            |o| {
                let group = o.api_version.split_once('/').map_or("", |(g, _)| g);
                let kind = if group.is_empty() {
                    o.kind.clone()
                } else {
                    format!("{}.{group}", o.kind)
                };
                format!("{}/{}", kind.to_lowercase(), o.name)
            },
        );
    Ok(vec![
        json!(r.metadata.name.clone().unwrap_or_default()),
        json!(controller),
        json!(r.revision),
        age(&r.metadata, now),
    ])
}

/// The job columns.
pub const JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Status", "Status of the job."),
    Column::string(
        "Completions",
        "The number of pods which reached phase Succeeded, of those wanted.",
    ),
    Column::string("Duration", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// The cells of one job.
pub fn job_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let job: Job = decode("Job", object)?;
    let spec = job.spec.clone().unwrap_or_default();
    let status = job.status.clone().unwrap_or_default();
    let succeeded = status.succeeded.unwrap_or(0);
    let completions = match (spec.completions, spec.parallelism.unwrap_or(0)) {
        (Some(completions), _) => format!("{succeeded}/{completions}"),
        (None, parallelism) if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        (None, _) => format!("{succeeded}/1"),
    };
    let duration = match (&status.start_time, &status.completion_time) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.duration_since(start.0)),
        (Some(start), Some(end)) => human_duration(end.0.duration_since(start.0)),
    };
    let [names, images] = template_cells(Some(&spec.template));
    Ok(vec![
        json!(job.metadata.name.clone().unwrap_or_default()),
        json!(job_status(
            &job,
            status.conditions.as_deref().unwrap_or_default()
        )),
        json!(completions),
        json!(duration),
        age(&job.metadata, now),
        names,
        images,
        json!(label_selector(spec.selector.as_ref())),
    ])
}

/// `Complete`, `Failed`, `Terminating`, `Suspended`, `FailureTarget` or `Running`, in that
/// order of precedence.
fn job_status(job: &Job, conditions: &[JobCondition]) -> &'static str {
    let holds = |type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_)
            .is_some_and(|c| c.status == "True")
    };
    if holds("Complete") {
        "Complete"
    } else if holds("Failed") {
        "Failed"
    } else if job.metadata.deletion_timestamp.is_some() {
        "Terminating"
    } else if holds("Suspended") {
        "Suspended"
    } else if holds("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

/// The cron job columns.
pub const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Schedule", "The schedule in Cron format."),
    Column::string("Timezone", "The time zone the schedule is read in."),
    Column::boolean("Suspend", "Whether subsequent executions are suspended."),
    Column::integer("Active", "How many jobs are running."),
    Column::string("Last Schedule", "When a job was last scheduled."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// The cells of one cron job.
pub fn cron_job_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let cj: CronJob = decode("CronJob", object)?;
    let spec = cj.spec.clone().unwrap_or_default();
    let status = cj.status.clone().unwrap_or_default();
    let last = status
        .last_schedule_time
        .as_ref()
        .map_or_else(|| "<none>".to_string(), |t| time_since(Some(t), now));
    let job_spec = spec.job_template.spec.clone().unwrap_or_default();
    let [names, images] = template_cells(Some(&job_spec.template));
    Ok(vec![
        json!(cj.metadata.name.clone().unwrap_or_default()),
        json!(spec.schedule),
        json!(spec.time_zone.clone().unwrap_or_else(|| "<none>".into())),
        json!(bool_ptr(spec.suspend)),
        json!(status.active.as_ref().map_or(0, |a| a.len())),
        json!(last),
        age(&cj.metadata, now),
        names,
        images,
        json!(label_selector(job_spec.selector.as_ref())),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, cells, headers};
    use serde_json::{Value, json};

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}})
    }

    fn meta() -> Value {
        json!({"name": "web", "namespace": "default", "creationTimestamp": at(-7200)})
    }

    #[test]
    fn deployment_row() {
        assert_eq!(
            headers("apps/v1", "Deployment"),
            [
                ("Name", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ]
        );
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            Value::from(cells(d)),
            json!([
                "web",
                "2/3",
                3,
                2,
                "120m",
                "web,log",
                "nginx:1.27,busybox",
                "app=web"
            ])
        );
    }

    #[test]
    fn controller_revision_row() {
        assert_eq!(
            headers("apps/v1", "ControllerRevision"),
            [("Name", 0), ("Controller", 0), ("Revision", 0), ("Age", 0)]
        );
        let mut m = meta();
        m["name"] = json!("web-5d4f8");
        m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "DaemonSet",
            "name": "web", "uid": "u", "controller": true}]);
        let r = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": m,
            "revision": 3, "data": {}});
        assert_eq!(
            Value::from(cells(r)),
            json!(["web-5d4f8", "daemonset.apps/web", 3, "120m"])
        );
        let orphan = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": meta(), "revision": 1});
        assert_eq!(
            Value::from(cells(orphan)),
            json!(["web", "<none>", 1, "120m"])
        );
    }

    #[test]
    fn replica_stateful_and_daemon_sets() {
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta(),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1}});
        assert_eq!(
            Value::from(cells(rs)),
            json!([
                "web",
                2,
                2,
                1,
                "120m",
                "web,log",
                "nginx:1.27,busybox",
                "app=web"
            ])
        );
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(),
            "spec": {"replicas": 3, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 3}});
        assert_eq!(
            Value::from(cells(sts)),
            json!(["web", "3/3", "120m", "web,log", "nginx:1.27,busybox"])
        );
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta(),
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1, "numberMisscheduled": 0,
                       "updatedNumberScheduled": 2, "numberAvailable": 1}});
        assert_eq!(
            Value::from(cells(ds)),
            json!([
                "web",
                2,
                2,
                1,
                2,
                1,
                "<none>",
                "120m",
                "web,log",
                "nginx:1.27,busybox",
                "app=web"
            ])
        );
    }

    #[test]
    fn job_status_completions_and_duration() {
        let job = |status: Value, spec_extra: Value| {
            let mut spec = json!({"template": template(), "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}});
            spec.as_object_mut()
                .unwrap()
                .extend(spec_extra.as_object().unwrap().clone());
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(), "spec": spec, "status": status})
        };
        let done = cells(job(
            json!({"succeeded": 1, "startTime": at(-100), "completionTime": at(-40),
            "conditions": [{"type": "Complete", "status": "True"}]}),
            json!({"completions": 1}),
        ));
        assert_eq!(
            &done[1..4],
            &[json!("Complete"), json!("1/1"), json!("60s")]
        );
        assert_eq!(done[7], "batch.kubernetes.io/controller-uid=u1");
        let running = cells(job(
            json!({"startTime": at(-300), "active": 2}),
            json!({"parallelism": 2}),
        ));
        assert_eq!(
            &running[1..4],
            &[json!("Running"), json!("0/1 of 2"), json!("5m")]
        );
        let failed = cells(job(
            json!({"conditions": [{"type": "Failed", "status": "True"}]}),
            json!({}),
        ));
        assert_eq!(&failed[1..4], &[json!("Failed"), json!("0/1"), json!("")]);
    }

    #[test]
    fn cron_job_row() {
        let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(),
            "spec": {"schedule": "*/5 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": template()}}},
            "status": {"active": [{"name": "web-1"}], "lastScheduleTime": at(-65)}});
        assert_eq!(
            Value::from(cells(cj)),
            json!([
                "web",
                "*/5 * * * *",
                "<none>",
                "False",
                1,
                "65s",
                "120m",
                "web,log",
                "nginx:1.27,busybox",
                "<none>"
            ])
        );
    }
}
