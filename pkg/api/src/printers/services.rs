//! Services and their endpoints: service type, cluster IP, external IPs and ports
//! (`80/TCP`, `80:30080/TCP`); endpoints as `ip:port` lists; endpoint slices with their
//! address type, ports and addresses.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{age, labels, list_with_more};
use super::{AGE, Cells, Column, NAME, Result, decode};

/// The service columns.
pub const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Type",
        "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.",
    ),
    Column::string(
        "Cluster-IP",
        "The IP address of the service inside the cluster.",
    ),
    Column::string(
        "External-IP",
        "The addresses the service is reachable at from outside the cluster.",
    ),
    Column::string("Port(s)", "The ports the service exposes."),
    AGE,
    Column::string("Selector", "The labels of the pods the service routes to.").wide(),
];

/// How many characters of load-balancer addresses the narrow view shows.
const LOAD_BALANCER_WIDTH: usize = 16;

/// The cells of one service. The `External-IP` is shown in full (upstream's wide form): the
/// server prints every column once for both views.
pub fn service_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let svc: Service = decode("Service", object)?;
    let spec = svc.spec.clone().unwrap_or_default();
    let type_ = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    let cluster_ip = spec
        .cluster_ips
        .as_ref()
        .and_then(|ips| ips.first().cloned())
        .or_else(|| spec.cluster_ip.clone())
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| "<none>".into());
    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            match p.node_port.filter(|n| *n > 0) {
                Some(node_port) => format!("{}:{node_port}/{protocol}", p.port),
                None => format!("{}/{protocol}", p.port),
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    Ok(vec![
        json!(svc.metadata.name.clone().unwrap_or_default()),
        json!(type_),
        json!(cluster_ip),
        json!(external_ip(&svc, &type_, true)),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports
        }),
        age(&svc.metadata, now),
        json!(labels(spec.selector.as_ref())),
    ])
}

/// The `External-IP` cell, by service type.
fn external_ip(svc: &Service, type_: &str, wide: bool) -> String {
    let spec = svc.spec.clone().unwrap_or_default();
    let external = spec.external_ips.unwrap_or_default();
    match type_ {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".into(),
        "LoadBalancer" => {
            let lb = load_balancer_ips(svc, wide);
            let all: Vec<String> = lb
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .chain(external)
                .collect();
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => spec.external_name.unwrap_or_default(),
        _ => "<unknown>".into(),
    }
}

/// The load balancer's ingress IPs (or host names), sorted; cut to 16 characters unless wide.
fn load_balancer_ips(svc: &Service, wide: bool) -> String {
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    let set: BTreeSet<String> = ingress
        .into_iter()
        .filter_map(|i| {
            i.ip.filter(|s| !s.is_empty())
                .or(i.hostname.filter(|s| !s.is_empty()))
        })
        .collect();
    let text = set.into_iter().collect::<Vec<_>>().join(",");
    if !wide && text.len() > LOAD_BALANCER_WIDTH {
        format!("{}...", &text[..LOAD_BALANCER_WIDTH - 3])
    } else {
        text
    }
}

/// The endpoints columns.
pub const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Endpoints",
        "The addresses and ports of the service's ready endpoints.",
    ),
    AGE,
];

/// The cells of one Endpoints object.
pub fn endpoints_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let ep: Endpoints = decode("Endpoints", object)?;
    Ok(vec![
        json!(ep.metadata.name.clone().unwrap_or_default()),
        json!(format_endpoints(&ep)),
        age(&ep.metadata, now),
    ])
}

/// `ip:port` for every address and port (the bare IP for a subset without ports), at most
/// three then ` + N more...`; `<none>` without subsets.
fn format_endpoints(ep: &Endpoints) -> String {
    let subsets = ep.subsets.as_deref().unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    for subset in subsets {
        let addresses = subset.addresses.as_deref().unwrap_or_default();
        match subset.ports.as_deref() {
            None | Some([]) => list.extend(addresses.iter().map(|a| a.ip.clone())),
            Some(ports) => {
                for port in ports {
                    list.extend(addresses.iter().map(|a| join_host_port(&a.ip, port.port)));
                }
            }
        }
    }
    if list.len() > 3 {
        format!("{} + {} more...", list[..3].join(","), list.len() - 3)
    } else {
        list.join(",")
    }
}

/// `host:port`, with brackets around an IPv6 host.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The endpoint slice columns.
pub const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "AddressType",
        "The type of the slice's addresses: IPv4, IPv6 or FQDN.",
    ),
    Column::string("Ports", "The ports of the slice."),
    Column::string("Endpoints", "The addresses of the slice's endpoints."),
    AGE,
];

/// The cells of one endpoint slice.
pub fn endpoint_slice_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let slice: EndpointSlice = decode("EndpointSlice", object)?;
    let ports = slice
        .ports
        .iter()
        .flatten()
        .map(|p| match (p.port, &p.name) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => "*".into(),
        });
    let addresses = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.iter().cloned());
    Ok(vec![
        json!(slice.metadata.name.clone().unwrap_or_default()),
        json!(slice.address_type),
        json!(list_with_more(ports, 3)),
        json!(list_with_more(addresses, 3)),
        age(&slice.metadata, now),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, cells, headers};
    use serde_json::{Value, json};

    fn svc(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": "default", "creationTimestamp": at(-600)},
               "spec": spec, "status": status})
    }

    #[test]
    fn headers_match_upstream() {
        let names: Vec<_> = headers("v1", "Service");
        assert_eq!(
            names,
            [
                ("Name", 0),
                ("Type", 0),
                ("Cluster-IP", 0),
                ("External-IP", 0),
                ("Port(s)", 0),
                ("Age", 0),
                ("Selector", 1)
            ]
        );
    }

    #[test]
    fn cluster_ip_and_node_port_services() {
        let row = cells(svc(
            json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], "selector": {"app": "web"}}),
            json!({}),
        ));
        assert_eq!(
            row,
            [
                "web",
                "ClusterIP",
                "10.43.0.10",
                "<none>",
                "80/TCP,53/UDP",
                "10m",
                "app=web"
            ]
            .map(Value::from)
        );
        let row = cells(svc(
            json!({"type": "NodePort", "clusterIPs": ["10.43.0.11"], "ports": [{"port": 80, "nodePort": 30080}]}),
            json!({}),
        ));
        assert_eq!(row[4], "80:30080/TCP");
        assert_eq!(row[6], "<none>");
    }

    #[test]
    fn load_balancer_and_external_name() {
        let row = cells(svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.12"], "ports": [{"port": 443}]}),
            json!({}),
        ));
        assert_eq!(row[3], "<pending>");
        let row = cells(svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.12"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}}),
        ));
        assert_eq!(row[3], "192.0.2.7");
        assert_eq!(row[4], "<none>");
        let row = cells(svc(
            json!({"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "None"}),
            json!({}),
        ));
        assert_eq!(row[2], "None");
        assert_eq!(row[3], "db.example.com");
    }

    #[test]
    fn endpoints_list_addresses_and_ports() {
        let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "creationTimestamp": at(-5)},
            "subsets": [{"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}], "ports": [{"port": 8080}, {"port": 9090}]}]});
        assert_eq!(
            cells(ep)[1],
            "10.42.0.5:8080,10.42.0.6:8080,10.42.0.5:9090 + 1 more..."
        );
        let empty = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"}});
        assert_eq!(
            cells(empty),
            ["web", "<none>", "<unknown>"].map(Value::from)
        );
    }

    #[test]
    fn endpoint_slices() {
        let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "creationTimestamp": at(-5)}, "addressType": "IPv4",
            "ports": [{"port": 8080, "name": "http"}], "endpoints": [{"addresses": ["10.42.0.5"]}, {"addresses": ["10.42.0.6"]}]});
        assert_eq!(
            cells(slice),
            ["web-abc", "IPv4", "8080", "10.42.0.5,10.42.0.6", "5s"].map(Value::from)
        );
    }
}
