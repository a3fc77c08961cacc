//! cairn-controllers: the control loops of the controller manager, each a client of the
//! Kubernetes API (cairn-client) that watches objects and drives them toward their spec. They
//! never touch the store; `cairn server` runs them while it holds the controller manager's
//! Lease (ADR 011). So far: namespace lifecycle.

pub mod namespace;

use cairn_client::Client;
use tokio_util::sync::CancellationToken;

/// The Lease the active controller manager holds.
pub const LEASE: &str = "kube-controller-manager";

/// Runs every controller until `shutdown`.
pub async fn run(client: Client, shutdown: CancellationToken) {
    namespace::run(client, shutdown).await;
}
