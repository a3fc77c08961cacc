//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics.
//!
//! A candidate takes the Lease when it is free (no holder) or expired: its record has not
//! changed for `lease_duration` as measured on the candidate's own clock since it first saw
//! that record, so clock skew between machines does not matter. The leader renews every
//! `retry_period`; if it cannot renew for `renew_deadline` it stops leading and becomes a
//! candidate again. Writes are compare-and-swap on the Lease's resourceVersion, so two
//! candidates never both win. Whether this process leads is published on a
//! `watch::Receiver<bool>`; work that needs leadership stops when it turns `false`.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::params::Patch;

/// What to elect on and how fast.
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    /// The Lease's namespace, such as `kube-system`.
    pub namespace: String,
    /// The Lease's name, such as `cairn-scheduler`.
    pub lease_name: String,
    /// This candidate's identity, unique among candidates (host name and a random suffix).
    pub identity: String,
    /// How long a Lease that stopped changing stays taken (upstream default 15 s).
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up (upstream default 10 s).
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews (upstream default 2 s).
    pub retry_period: Duration,
    /// On shutdown, free the Lease so that another candidate takes over at once.
    pub release_on_cancel: bool,
}

impl LeaderElectionConfig {
    /// Upstream's defaults (15 s, 10 s, 2 s), releasing the Lease on shutdown.
    pub fn new(namespace: &str, lease_name: &str, identity: &str) -> Self {
        LeaderElectionConfig {
            namespace: namespace.to_string(),
            lease_name: lease_name.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            release_on_cancel: true,
        }
    }

    /// Checks upstream's constraints: `lease_duration > renew_deadline > 1.2 × retry_period`.
    pub fn validate(&self) -> Result<()> {
        if self.identity.is_empty() {
            return Err(Error::Config("leader election needs an identity".into()));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(Error::Config(
                "the lease duration must be longer than the renew deadline".into(),
            ));
        }
        if self.renew_deadline <= self.retry_period.mul_f64(1.2) {
            return Err(Error::Config(
                "the renew deadline must be longer than 1.2 retry periods".into(),
            ));
        }
        Ok(())
    }
}

/// One candidate. Run it with [`LeaderElector::run`]; watch [`LeaderElector::subscribe`].
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    leading: watch::Sender<bool>,
    /// The last Lease record seen and when it was first seen by this candidate.
    observed: Option<(LeaseSpec, Instant)>,
}

impl LeaderElector {
    /// A candidate for `config`'s Lease.
    pub fn new(client: Client, config: LeaderElectionConfig) -> Result<Self> {
        config.validate()?;
        Ok(LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            leading: watch::Sender::new(false),
            observed: None,
        })
    }

    /// Whether this candidate leads, now and as it changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Campaigns, leads and renews until `shutdown`; a leader that cannot renew in time stops
    /// leading and campaigns again.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            // Candidate: try every retry period.
            loop {
                if self.attempt(self.config.renew_deadline).await {
                    break;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.config.retry_period) => {}
                }
            }
            tracing::info!(lease = %self.config.lease_name, identity = %self.config.identity, "became leader");
            self.leading.send_replace(true);
            // Leader: renew every retry period; give up when the deadline passes.
            let mut renewed = Instant::now();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => {
                        self.leading.send_replace(false);
                        if self.config.release_on_cancel {
                            self.release().await;
                        }
                        return;
                    }
                    () = tokio::time::sleep(self.config.retry_period) => {}
                }
                let left = self.config.renew_deadline.saturating_sub(renewed.elapsed());
                if self.attempt(left).await {
                    renewed = Instant::now();
                } else if renewed.elapsed() >= self.config.renew_deadline {
                    tracing::warn!(lease = %self.config.lease_name, identity = %self.config.identity, "failed to renew the lease in time, stopped leading");
                    self.leading.send_replace(false);
                    break;
                }
            }
        }
    }

    /// One acquire-or-renew within `limit`; errors count as failures.
    async fn attempt(&mut self, limit: Duration) -> bool {
        match tokio::time::timeout(limit, self.try_acquire_or_renew()).await {
            Ok(Ok(won)) => won,
            Ok(Err(error)) => {
                tracing::debug!(lease = %self.config.lease_name, %error, "lease update failed");
                false
            }
            Err(_) => false,
        }
    }

    fn seconds(&self) -> i32 {
        self.config.lease_duration.as_secs().max(1) as i32
    }

    fn observe(&mut self, spec: Option<LeaseSpec>) {
        let spec = spec.unwrap_or_default();
        if self.observed.as_ref().map(|(seen, _)| seen) != Some(&spec) {
            self.observed = Some((spec, Instant::now()));
        }
    }

    /// Takes or renews the Lease; `Ok(false)` when another candidate holds it or won a race.
    async fn try_acquire_or_renew(&mut self) -> Result<bool> {
        let now = MicroTime(Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            let mut lease = Lease::default();
            lease.metadata.name = Some(self.config.lease_name.clone());
            lease.spec = Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            });
            return match self.api.create(&lease).await {
                Ok(created) => {
                    self.observe(created.spec);
                    Ok(true)
                }
                Err(e) if e.is_already_exists() || e.is_conflict() => Ok(false),
                Err(e) => Err(e),
            };
        };
        self.observe(lease.spec.clone());
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or_default();
        let mine = holder == self.config.identity;
        if !holder.is_empty() && !mine {
            let duration =
                Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
            let seen = self
                .observed
                .as_ref()
                .map(|(_, at)| *at)
                .unwrap_or_else(Instant::now);
            if seen + duration > Instant::now() {
                return Ok(false);
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.seconds()),
            acquire_time: if mine {
                spec.acquire_time.clone().or_else(|| Some(now.clone()))
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if mine { transitions } else { transitions + 1 }),
            ..spec
        });
        match self.api.replace(&self.config.lease_name, &lease).await {
            Ok(replaced) => {
                self.observe(replaced.spec);
                Ok(true)
            }
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Frees the Lease if this candidate still holds it, as upstream's `ReleaseOnCancel`.
    async fn release(&mut self) {
        let Some((spec, _)) = &self.observed else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = Timestamp::now().to_string();
        let patch = Patch::Merge(serde_json::json!({"spec": {
            "holderIdentity": null,
            "leaseDurationSeconds": 1,
            "acquireTime": now,
            "renewTime": now,
        }}));
        let release = self.api.patch(&self.config.lease_name, &patch);
        match tokio::time::timeout(self.config.renew_deadline, release).await {
            Ok(Ok(_)) => tracing::info!(lease = %self.config.lease_name, "released the lease"),
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.config.lease_name, %error, "failed to release the lease")
            }
            Err(_) => {
                tracing::warn!(lease = %self.config.lease_name, "releasing the lease timed out")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_defaults_are_valid_and_bad_timings_are_refused() {
        let config = LeaderElectionConfig::new("kube-system", "cairn-scheduler", "a");
        config.validate().unwrap();
        let bad = LeaderElectionConfig {
            renew_deadline: Duration::from_secs(15),
            ..config.clone()
        };
        assert!(bad.validate().is_err());
        let bad = LeaderElectionConfig {
            retry_period: Duration::from_secs(9),
            ..config
        };
        assert!(bad.validate().is_err());
    }
}
