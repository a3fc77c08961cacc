//! Apply conflicts and how kube-apiserver reports them: a 409 whose message names each
//! conflicting manager and field, and one `FieldManagerConflict` cause per field.

use serde_json::{Value, json};

use crate::managed_fields::{FieldSet, Manager, Path};

/// A field the applied configuration changes that another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager that owns it.
    pub manager: Manager,
    /// The field (`.spec.replicas`).
    pub path: Path,
}

impl Conflict {
    /// The field as upstream prints it (`.spec.replicas`).
    pub fn field(&self) -> String {
        self.path.to_string()
    }
}

/// The conflicts of the fields each manager would lose, by manager then field.
pub(super) fn from_lost(lost: Vec<(Manager, FieldSet)>) -> Vec<Conflict> {
    let mut out: Vec<Conflict> = lost
        .into_iter()
        .flat_map(|(manager, fields)| {
            fields.paths().into_iter().map(move |path| Conflict {
                manager: manager.clone(),
                path,
            })
        })
        .collect();
    out.sort_by(|a, b| order(&a.manager).cmp(&order(&b.manager)));
    out
}

fn order(m: &Manager) -> (&str, crate::managed_fields::Operation, &str, &str) {
    (&m.name, m.operation, &m.api_version, &m.subresource)
}

/// The Status message of a 409 (`Apply failed with 1 conflict: conflict with "kubectl-client-side-apply"
/// using apps/v1: .spec.replicas`); several conflicts are listed per manager.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager.describe(),
            only.path
        );
    }
    let mut lines = Vec::new();
    let mut current: Option<&Manager> = None;
    for c in conflicts {
        if current != Some(&c.manager) {
            lines.push(format!("conflicts with {}:", c.manager.describe()));
            current = Some(&c.manager);
        }
        lines.push(format!("- {}", c.path));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The `details.causes` of the 409: one `FieldManagerConflict` per field.
pub fn conflict_causes(conflicts: &[Conflict]) -> Vec<Value> {
    conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", c.manager.describe()),
                "field": c.field(),
            })
        })
        .collect()
}
