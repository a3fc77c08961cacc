//! The lease clock: when each lease expires. Like etcd, it lives in memory only: keep-alives
//! never touch the disk, every member follows grants and revocations from the log, and a member
//! that becomes leader restarts every lease's full TTL (a lease never expires early because its
//! leader changed). Only the leader acts on expiry, by proposing a revocation through the log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::mvcc::LeaseChange;

/// The smallest TTL granted, in seconds (etcd: 1.5 × election timeout, rounded up).
pub const MIN_TTL: i64 = 2;
/// The largest TTL granted, in seconds (etcd's `MaxLeaseTTL`).
pub const MAX_TTL: i64 = 9_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Lease {
    ttl: i64,
    expires: Instant,
}

/// Expiry times of the granted leases.
#[derive(Debug, Default)]
pub(crate) struct LeaseClock {
    leases: HashMap<i64, Lease>,
}

fn after(now: Instant, ttl: i64) -> Instant {
    now + Duration::from_secs(ttl.clamp(0, i64::from(u32::MAX)) as u64)
}

impl LeaseClock {
    /// A clock for leases that exist now, each with its full TTL to run.
    pub(crate) fn new(leases: impl IntoIterator<Item = (i64, i64)>, now: Instant) -> Self {
        let mut clock = LeaseClock::default();
        clock.reset(leases, now);
        clock
    }

    /// Replaces every lease, each with its full TTL to run.
    pub(crate) fn reset(&mut self, leases: impl IntoIterator<Item = (i64, i64)>, now: Instant) {
        self.leases = leases
            .into_iter()
            .map(|(id, ttl)| {
                (
                    id,
                    Lease {
                        ttl,
                        expires: after(now, ttl),
                    },
                )
            })
            .collect();
    }

    /// Follows a grant or revocation applied from the log.
    pub(crate) fn follow(&mut self, change: LeaseChange, now: Instant) {
        match change {
            LeaseChange::Granted { id, ttl } => {
                self.leases.insert(
                    id,
                    Lease {
                        ttl,
                        expires: after(now, ttl),
                    },
                );
            }
            LeaseChange::Revoked { id } => {
                self.leases.remove(&id);
            }
            LeaseChange::Reload => {}
        }
    }

    /// Restarts every lease's full TTL (on becoming leader).
    pub(crate) fn refresh_all(&mut self, now: Instant) {
        for l in self.leases.values_mut() {
            l.expires = after(now, l.ttl);
        }
    }

    /// Renews a lease; its TTL, or `None` if it does not exist.
    pub(crate) fn keep_alive(&mut self, id: i64, now: Instant) -> Option<i64> {
        let l = self.leases.get_mut(&id)?;
        l.expires = after(now, l.ttl);
        Some(l.ttl)
    }

    /// A lease's granted TTL and the seconds it has left.
    pub(crate) fn remaining(&self, id: i64, now: Instant) -> Option<(i64, i64)> {
        let l = self.leases.get(&id)?;
        let left = l.expires.saturating_duration_since(now);
        // Round up, as etcd does, so a fresh lease reports its whole TTL.
        Some((l.ttl, left.as_millis().div_ceil(1000) as i64))
    }

    /// The leases whose time is up.
    pub(crate) fn expired(&self, now: Instant) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires <= now)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_keep_alive_and_refresh() {
        let t0 = Instant::now();
        let mut c = LeaseClock::new([(1, 5), (2, 10)], t0);
        assert!(c.expired(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(c.expired(t0 + Duration::from_secs(5)), vec![1]);
        assert_eq!(c.keep_alive(1, t0 + Duration::from_secs(4)), Some(5));
        assert!(c.expired(t0 + Duration::from_secs(8)).is_empty());
        assert_eq!(
            c.remaining(2, t0 + Duration::from_millis(2500)),
            Some((10, 8))
        );
        c.follow(LeaseChange::Revoked { id: 2 }, t0);
        assert_eq!(c.keep_alive(2, t0), None);
        c.refresh_all(t0 + Duration::from_secs(100));
        assert!(c.expired(t0 + Duration::from_secs(104)).is_empty());
    }
}
