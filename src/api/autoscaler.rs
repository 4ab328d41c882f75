//! The autoscalers serin gives a primary a copy of: `spec.autoscalerRef` parsed once into an
//! [`AutoscalerKind`], with the API versions each is accepted under. Validation (so `serin
//! check`, `simulate`, `migrate` and the controller) and the controller's sync read the same
//! table, so an autoscaler is either copied or refused, never accepted and ignored.

use std::fmt;

use super::canary::AutoscalerRef;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AutoscalerKind {
    HorizontalPodAutoscaler,
    /// KEDA's `ScaledObject`, which drives an HPA of its own from its triggers.
    ScaledObject,
}

/// One row of the autoscaler table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub kind: AutoscalerKind,
    /// The name in `autoscalerRef.kind`.
    pub name: &'static str,
    /// The `autoscalerRef.apiVersion`s accepted. An HPA is read in whichever version the
    /// cluster serves (autoscaling/v2 from Kubernetes 1.23, v2beta2 before): the object and
    /// its spec are the same in both.
    pub api_versions: &'static [&'static str],
    /// Whether its triggers carry queries `primaryScalerQueries` can replace.
    pub queries: bool,
}

pub const TABLE: &[Row] = &[
    Row {
        kind: AutoscalerKind::HorizontalPodAutoscaler,
        name: "HorizontalPodAutoscaler",
        api_versions: &["autoscaling/v2", "autoscaling/v2beta2"],
        queries: false,
    },
    Row {
        kind: AutoscalerKind::ScaledObject,
        name: "ScaledObject",
        api_versions: &["keda.sh/v1alpha1"],
        queries: true,
    },
];

impl AutoscalerKind {
    pub fn row(self) -> &'static Row {
        TABLE
            .iter()
            .find(|row| row.kind == self)
            .expect("every autoscaler kind has a row")
    }

    /// The kind an `autoscalerRef` names, or why serin cannot copy it (the field named).
    pub fn of(reference: &AutoscalerRef) -> Result<Self, (&'static str, String)> {
        let Some(row) = TABLE.iter().find(|row| row.name == reference.kind) else {
            let names: Vec<&str> = TABLE.iter().map(|r| r.name).collect();
            return Err((
                "spec.autoscalerRef.kind",
                format!(
                    "only {} are supported, got {:?}",
                    names.join(" and "),
                    reference.kind
                ),
            ));
        };
        if !row.api_versions.contains(&reference.api_version.as_str()) {
            return Err((
                "spec.autoscalerRef.apiVersion",
                format!(
                    "a {} is read as {}, got {:?}",
                    row.name,
                    row.api_versions.join(" or "),
                    reference.api_version
                ),
            ));
        }
        Ok(row.kind)
    }
}

impl fmt::Display for AutoscalerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.row().name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(api_version: &str, kind: &str) -> AutoscalerRef {
        serde_json::from_value(serde_json::json!({
            "apiVersion": api_version, "kind": kind, "name": "podinfo",
        }))
        .unwrap()
    }

    #[test]
    fn every_row_and_version_parses_back_to_its_kind() {
        for row in TABLE {
            for version in row.api_versions {
                assert_eq!(
                    AutoscalerKind::of(&reference(version, row.name)),
                    Ok(row.kind)
                );
            }
        }
    }

    #[test]
    fn an_unknown_kind_or_version_names_its_field() {
        let (field, reason) =
            AutoscalerKind::of(&reference("autoscaling/v1", "HorizontalPodAutoscaler"))
                .unwrap_err();
        assert_eq!(field, "spec.autoscalerRef.apiVersion");
        assert!(
            reason.contains("autoscaling/v2 or autoscaling/v2beta2"),
            "{reason}"
        );
        let (field, reason) =
            AutoscalerKind::of(&reference("keda.sh/v1alpha1", "ScaledJob")).unwrap_err();
        assert_eq!(field, "spec.autoscalerRef.kind");
        assert!(reason.contains("\"ScaledJob\""), "{reason}");
    }
}
