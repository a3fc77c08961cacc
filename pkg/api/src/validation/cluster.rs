//! The cluster's own objects: Namespaces (their spec finalizers), Nodes (taints, pod CIDRs,
//! provider ID) and Leases (durations and transitions), as upstream checks them.

use std::collections::HashSet;
use std::net::IpAddr;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Taint};

use super::{Cause, render};
use crate::names::{check_label_value, check_qualified_name};

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A Namespace: its spec finalizers are `kubernetes` or fully qualified (`example.com/x`).
pub fn validate_namespace(ns: &Namespace) -> Vec<Cause> {
    let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.as_ref());
    let mut causes = Vec::new();
    for (i, name) in finalizers.into_iter().flatten().enumerate() {
        let at = format!("spec.finalizers[{i}]");
        let problems = check_qualified_name(name);
        if !problems.is_empty() {
            causes.extend(problems.iter().map(|p| Cause::invalid(&at, name, p)));
        } else if name != "kubernetes" && !name.contains('/') {
            causes.push(Cause::invalid(
                &at,
                name,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    causes
}

/// A Node: valid taints, unique by key and effect, and valid pod CIDRs.
pub fn validate_node(node: &Node) -> Vec<Cause> {
    let Some(spec) = &node.spec else {
        return Vec::new();
    };
    let mut causes = validate_taints(spec.taints.as_deref().unwrap_or_default(), "spec.taints");
    for (i, cidr) in spec.pod_cidrs.iter().flatten().enumerate() {
        if !is_cidr(cidr) {
            causes.push(Cause::invalid(
                format!("spec.podCIDRs[{i}]"),
                cidr,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    causes
}

fn is_cidr(text: &str) -> bool {
    let Some((ip, bits)) = text.split_once('/') else {
        return false;
    };
    let max = match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => 32,
        Ok(IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    bits.parse::<u8>().is_ok_and(|b| b <= max)
}

/// Taint keys are qualified names, values label values, effects known, and no key and
/// effect pair twice.
pub fn validate_taints(taints: &[Taint], path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut seen = HashSet::new();
    for (i, taint) in taints.iter().enumerate() {
        let at = format!("{path}[{i}]");
        causes.extend(
            check_qualified_name(&taint.key)
                .iter()
                .map(|p| Cause::invalid(format!("{at}.key"), &taint.key, p)),
        );
        let value = taint.value.as_deref().unwrap_or_default();
        let problems = check_label_value(value);
        if !problems.is_empty() {
            causes.push(Cause::invalid(
                format!("{at}.value"),
                value,
                &problems.join(";"),
            ));
        }
        match taint.effect.as_str() {
            "" => causes.push(Cause::required(format!("{at}.effect"), "")),
            e if !TAINT_EFFECTS.contains(&e) => {
                causes.push(Cause::not_supported(
                    format!("{at}.effect"),
                    e,
                    TAINT_EFFECTS,
                ));
            }
            _ => {}
        }
        if !seen.insert((taint.key.as_str(), taint.effect.as_str())) {
            causes.push(
                Cause::duplicate(&at, &render::taint(taint))
                    .with_detail("taints must be unique by key and effect pair"),
            );
        }
    }
    causes
}

/// A Node update: pod CIDRs and the provider ID may be set once, never changed.
pub fn validate_node_update(new: &Node, old: &Node) -> Vec<Cause> {
    let (Some(new_spec), Some(old_spec)) = (&new.spec, &old.spec) else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    let old_cidrs = old_spec.pod_cidrs.as_deref().unwrap_or_default();
    if !old_cidrs.is_empty() && new_spec.pod_cidrs.as_deref().unwrap_or_default() != old_cidrs {
        causes.push(Cause::forbidden(
            "spec.podCIDRs",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_provider = old_spec.provider_id.as_deref().unwrap_or_default();
    if !old_provider.is_empty() && new_spec.provider_id.as_deref() != Some(old_provider) {
        causes.push(Cause::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    causes
}

/// A Lease: a positive duration, transitions not negative.
pub fn validate_lease(lease: &Lease) -> Vec<Cause> {
    let Some(spec) = &lease.spec else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        causes.push(Cause::invalid_int(
            "spec.leaseDurationSeconds",
            i64::from(d),
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
        causes.push(Cause::invalid_int(
            "spec.leaseTransitions",
            i64::from(t),
            "must be greater than or equal to 0",
        ));
    }
    causes
}
