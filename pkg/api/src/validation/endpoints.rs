//! EndpointSlices: a known address type that never changes, and endpoints whose addresses
//! fit it, as upstream's `pkg/apis/discovery/validation` checks them.

use std::net::{Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::Cause;
use super::pods::{check_port, validate_protocol};
use crate::names::{check_dns1123_label, check_dns1123_subdomain};

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const MAX_ADDRESSES: usize = 100;

/// An EndpointSlice.
pub fn validate_endpoint_slice(slice: &EndpointSlice) -> Vec<Cause> {
    let address_type = slice.address_type.as_str();
    let mut causes = Vec::new();
    if address_type.is_empty() {
        causes.push(Cause::required("addressType", ""));
    } else if !ADDRESS_TYPES.contains(&address_type) {
        causes.push(Cause::not_supported(
            "addressType",
            address_type,
            ADDRESS_TYPES,
        ));
    }
    for (i, endpoint) in slice.endpoints.iter().enumerate() {
        let at = format!("endpoints[{i}].addresses");
        match endpoint.addresses.len() {
            0 => causes.push(Cause::required(&at, "must contain at least 1 address")),
            n if n > MAX_ADDRESSES => causes.push(Cause {
                reason: super::CauseReason::FieldValueTooMany,
                message: format!("Too many: {n}: must have at most {MAX_ADDRESSES} items"),
                field: at.clone(),
            }),
            _ => {}
        }
        for (j, address) in endpoint.addresses.iter().enumerate() {
            let problem = address_problem(address_type, address);
            if let Some(p) = problem {
                causes.push(Cause::invalid(format!("{at}[{j}]"), address, &p));
            }
        }
    }
    for (i, port) in slice.ports.iter().flatten().enumerate() {
        let at = format!("ports[{i}]");
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            causes.extend(
                check_dns1123_label(name)
                    .iter()
                    .map(|p| Cause::invalid(format!("{at}.name"), name, p)),
            );
        }
        if let Some(n) = port.port {
            causes.extend(check_port(n, &format!("{at}.port")));
        }
        causes.extend(validate_protocol(
            port.protocol.as_deref(),
            &format!("{at}.protocol"),
        ));
    }
    causes
}

fn address_problem(address_type: &str, address: &str) -> Option<String> {
    match address_type {
        "IPv4" if address.parse::<Ipv4Addr>().is_err() => {
            Some("must be a valid IPv4 address".to_string())
        }
        "IPv6" if address.parse::<Ipv6Addr>().is_err() => {
            Some("must be a valid IPv6 address".to_string())
        }
        "FQDN" => check_dns1123_subdomain(address).into_iter().next(),
        _ => None,
    }
}

/// The address type never changes.
pub fn validate_endpoint_slice_update(new: &EndpointSlice, old: &EndpointSlice) -> Vec<Cause> {
    if new.address_type == old.address_type {
        return Vec::new();
    }
    vec![Cause::invalid(
        "addressType",
        &new.address_type,
        "field is immutable",
    )]
}
