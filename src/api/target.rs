//! The target kinds serin rolls out: `spec.targetRef.kind` parsed once into a [`TargetKind`],
//! and the table saying which API version each is served under. The controller picks the
//! kind's implementation of the workload seam (`crate::workload::target::Workload`) from it;
//! `serin check` and `simulate` refuse the same kinds with the same words.
//!
//! A new kind is one [`TargetKind`] variant, its row in [`TABLE`], its module in
//! `crate::workload`, and its arm in the controller's dispatch (`controller::targets`).

use std::fmt;

use super::canary::TargetRef;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Deployment,
    DaemonSet,
    StatefulSet,
    /// A Knative Service (`serving.knative.dev/v1`): its promoted revision is the primary.
    KnativeService,
}

/// One row of the target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub kind: TargetKind,
    /// The name in `targetRef.kind`.
    pub name: &'static str,
    /// The `targetRef.apiVersion` it is served under.
    pub api_version: &'static str,
    /// Whether it has a replica count an autoscaler can own (a DaemonSet runs one pod per
    /// node, Knative scales each revision itself: an `autoscalerRef` on either is refused
    /// rather than ignored).
    pub scales: bool,
    /// The one traffic provider that can route it, when only one can (a Knative Service's
    /// revisions are split by its own `spec.traffic`).
    pub provider: Option<&'static str>,
}

pub const TABLE: &[Row] = &[
    Row {
        kind: TargetKind::Deployment,
        name: "Deployment",
        api_version: "apps/v1",
        scales: true,
        provider: None,
    },
    Row {
        kind: TargetKind::DaemonSet,
        name: "DaemonSet",
        api_version: "apps/v1",
        scales: false,
        provider: None,
    },
    Row {
        kind: TargetKind::StatefulSet,
        name: "StatefulSet",
        api_version: "apps/v1",
        scales: true,
        provider: None,
    },
    Row {
        kind: TargetKind::KnativeService,
        name: "Service",
        api_version: "serving.knative.dev/v1",
        scales: false,
        provider: Some("knative"),
    },
];

impl TargetKind {
    pub fn row(self) -> &'static Row {
        TABLE
            .iter()
            .find(|row| row.kind == self)
            .expect("every target kind has a row")
    }

    /// The kind a `targetRef` names, or why serin cannot roll it out.
    pub fn of(target: &TargetRef) -> Result<Self, String> {
        if let Some(row) = TABLE.iter().find(|row| row.name == target.kind) {
            return Ok(row.kind);
        }
        // A kind of another API than apps/v1 is named with it: a core Service is no target.
        let names: Vec<String> = TABLE
            .iter()
            .map(|r| match r.api_version {
                "apps/v1" => r.name.to_string(),
                other => format!("{} ({other})", r.name),
            })
            .collect();
        let supported = match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        };
        Err(format!(
            "only {supported} are supported, got {:?}: an unknown kind",
            target.kind
        ))
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.row().name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(kind: &str) -> TargetRef {
        TargetRef {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: "podinfo".into(),
        }
    }

    #[test]
    fn every_row_parses_back_to_its_kind() {
        for row in TABLE {
            assert_eq!(TargetKind::of(&reference(row.name)), Ok(row.kind));
        }
    }

    #[test]
    fn an_unknown_kind_is_named_as_such() {
        let error = TargetKind::of(&reference("Deploymnet")).unwrap_err();
        assert!(error.contains("an unknown kind"), "{error}");
    }
}
