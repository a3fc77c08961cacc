//! Services, as upstream's `ValidateService` and `ValidateServiceUpdate` check the parts users
//! meet: the type, ports (required unless headless or ExternalName; named and unique when
//! there are several), target ports, node ports, cluster IPs, session affinity, and a cluster
//! IP that never changes once allocated.

use std::collections::HashSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pods::{check_port, check_port_name, validate_protocol};
use super::{Cause, render, validate_labels};
use crate::names::{check_dns1123_label, check_dns1123_subdomain};

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];

/// A Service.
pub fn validate_service(service: &Service) -> Vec<Cause> {
    let Some(spec) = &service.spec else {
        return vec![Cause::required("spec.ports", "")];
    };
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    let mut causes = Vec::new();
    if !TYPES.contains(&type_) {
        causes.push(Cause::not_supported("spec.type", type_, TYPES));
    }
    if type_ == "ExternalName" {
        causes.extend(validate_external_name(spec));
    }
    let ports = spec.ports.as_deref().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    if ports.is_empty() && !headless && type_ != "ExternalName" {
        causes.push(Cause::required("spec.ports", ""));
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        causes.extend(validate_service_port(
            port,
            ports.len() > 1,
            &mut names,
            &at,
        ));
        if port.node_port.is_some() && type_ == "ClusterIP" {
            causes.push(Cause::forbidden(
                format!("{at}.nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
    }
    causes.extend(validate_cluster_ips(spec));
    if let Some(affinity) = spec.session_affinity.as_deref()
        && !AFFINITIES.contains(&affinity)
    {
        causes.push(Cause::not_supported(
            "spec.sessionAffinity",
            affinity,
            AFFINITIES,
        ));
    }
    if let Some(selector) = &spec.selector {
        causes.extend(validate_labels(selector, "spec.selector"));
    }
    causes
}

fn validate_external_name(spec: &ServiceSpec) -> Vec<Cause> {
    let path = "spec.externalName";
    match spec.external_name.as_deref() {
        None | Some("") => vec![Cause::required(path, "")],
        Some(name) => {
            let name = name.strip_suffix('.').unwrap_or(name);
            check_dns1123_subdomain(name)
                .iter()
                .map(|p| Cause::invalid(path, name, p))
                .collect()
        }
    }
}

fn validate_service_port(
    port: &ServicePort,
    name_required: bool,
    names: &mut HashSet<String>,
    path: &str,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = port.name.as_deref().unwrap_or_default();
    if name.is_empty() && name_required {
        causes.push(Cause::required(format!("{path}.name"), ""));
    } else if !name.is_empty() {
        causes.extend(
            check_dns1123_label(name)
                .iter()
                .map(|p| Cause::invalid(format!("{path}.name"), name, p)),
        );
        if !names.insert(name.to_string()) {
            causes.push(Cause::duplicate(
                format!("{path}.name"),
                &super::quote(name),
            ));
        }
    }
    causes.extend(check_port(port.port, &format!("{path}.port")));
    causes.extend(validate_protocol(
        port.protocol.as_deref(),
        &format!("{path}.protocol"),
    ));
    let target = format!("{path}.targetPort");
    match &port.target_port {
        Some(IntOrString::Int(n)) => causes.extend(check_port(*n, &target)),
        Some(IntOrString::String(s)) => causes.extend(
            check_port_name(s)
                .iter()
                .map(|p| Cause::invalid(&target, s, p)),
        ),
        None => {}
    }
    if let Some(node_port) = port.node_port {
        causes.extend(check_port(node_port, &format!("{path}.nodePort")));
    }
    causes
}

/// The service's cluster IPs: `clusterIPs`, or `clusterIP` alone.
fn cluster_ips(spec: &ServiceSpec) -> Vec<String> {
    match (&spec.cluster_ips, spec.cluster_ip.as_deref()) {
        (Some(ips), _) if !ips.is_empty() => ips.clone(),
        (_, Some(ip)) if !ip.is_empty() => vec![ip.to_string()],
        _ => Vec::new(),
    }
}

fn validate_cluster_ips(spec: &ServiceSpec) -> Vec<Cause> {
    let ips = cluster_ips(spec);
    let mut causes = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" && i == 0 {
            continue;
        }
        if ip.parse::<IpAddr>().is_err() {
            causes.push(Cause::invalid(
                format!("spec.clusterIPs[{i}]"),
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    if let (Some(ip), Some(first)) = (spec.cluster_ip.as_deref(), ips.first())
        && !ip.is_empty()
        && ip != first
    {
        causes.push(Cause::invalid_rendered(
            "spec.clusterIPs",
            &render::strings(Some(&ips)),
            "element [0] must match clusterIP",
        ));
    }
    causes
}

/// A cluster IP, once set, stays (an update that leaves it out keeps it: the API server
/// carries the allocated value over, as upstream does); ExternalName services, before or
/// after, have none to keep.
pub fn validate_service_update(new: &Service, old: &Service) -> Vec<Cause> {
    let (Some(new_spec), Some(old_spec)) = (&new.spec, &old.spec) else {
        return Vec::new();
    };
    let external = |s: &ServiceSpec| s.type_.as_deref() == Some("ExternalName");
    if external(new_spec) || external(old_spec) {
        return Vec::new();
    }
    let (new_ips, old_ips) = (cluster_ips(new_spec), cluster_ips(old_spec));
    match (new_ips.first(), old_ips.first()) {
        (Some(n), Some(o)) if n != o => vec![Cause::invalid_rendered(
            "spec.clusterIPs[0]",
            &render::strings(Some(&new_ips)),
            "may not change once set",
        )],
        _ => Vec::new(),
    }
}
