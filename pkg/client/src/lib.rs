//! cairn-client: the small typed Kubernetes API client cairn's scheduler, controllers, agent
//! and load generators use to reach the API server over HTTPS, as upstream's components do.
//!
//! It owns: configuration from a kubeconfig or by hand ([`Config`]), one pooled HTTP/2
//! connection over rustls with a client certificate or a bearer token ([`Client`]), typed
//! calls on k8s-openapi types with JSON bodies ([`Api`]), watch event decoding
//! ([`WatchEvent`]), an informer-like list-and-watch with a shared cache ([`reflector`]) and
//! Lease-based leader election ([`leader`]). It does not own protobuf encoding, discovery,
//! dynamic (untyped) objects, exec/attach/port-forward or kubeconfig exec plugins.

pub mod api;
pub mod client;
pub mod config;
pub mod error;
pub mod leader;
pub mod params;
pub mod reflector;
pub mod watch;

pub use api::{Api, Deleted, Object};
pub use client::{Client, USER_AGENT_VALUE};
pub use config::{Config, Credentials};
pub use error::{Error, Result, Status};
pub use leader::{LeaderElectionConfig, LeaderElector};
pub use params::{DeleteParams, ListParams, Patch, Preconditions, PropagationPolicy, WatchParams};
pub use reflector::{Backoff, Event, ObjectKey, Store, reflector, watch_list};
pub use watch::{Bookmark, WatchEvent, WatchStream};
