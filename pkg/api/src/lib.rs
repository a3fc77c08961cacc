//! cairn-api: Kubernetes object helpers on the k8s-openapi types. It knows which resources cairn
//! serves and how their objects are selected, validated, defaulted, patched and printed. It is
//! pure: no tokio, no hyper, no IO; the API server (cairn-apiserver) and the controllers build on it.

pub mod apply;
pub mod defaults;
pub mod events;
pub mod fields;
pub mod labels;
pub mod managed_fields;
pub mod names;
pub mod node_selection;
pub mod openapi;
pub mod patch;
pub mod printers;
pub mod protobuf;
pub mod quantity;
pub mod resources;
pub(crate) mod schema;
pub mod typed;
pub mod validation;

pub use resources::{RESOURCES, Resource, Subresource};
