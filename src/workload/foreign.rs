//! A `-primary` made by another controller (Flagger, before the switch to serin), compared
//! with the target. serin recognises its own primaries by the revision it stamps on them;
//! another controller's carries none, and its status names revisions by a hash serin cannot
//! reproduce. So the pod templates themselves are compared, once the primary's renames are
//! undone: every value Flagger suffixes with `-primary` (the selector label, the copied
//! ConfigMaps and Secrets, affinity selectors), the random `flagger-id` annotation it puts on
//! each copy, and the Flux `toolkit.fluxcd.io` labels and annotations it leaves out.
//!
//! The comparison errs towards "different": a false "same" would leave a release unrolled,
//! a false "different" only re-runs an analysis.

use serde_json::Value;

use crate::engine::ForeignPrimary;

use super::primary::{PRIMARY_SUFFIX, REVISION_ANNOTATION};
use super::target::{Workload, stamped_revision};

/// Annotation Flagger puts on every pod template it copies (a random id).
const FLAGGER_ID: &str = "flagger-id";
/// Flux's label and annotation keys, which Flagger does not copy to the primary.
const FLUX_MARKER: &str = "toolkit.fluxcd.io";

/// What a primary serin did not stamp runs; None for serin's own primaries.
pub fn compare<W: Workload>(primary: &W, target: &W) -> Option<ForeignPrimary> {
    if stamped_revision(primary).is_some() {
        return None;
    }
    // Release templates: a DaemonSet's idle node selector (serin's or Flagger's) is no release.
    let template = |w: &W| {
        w.release_template()
            .and_then(|t| serde_json::to_value(&*t).ok())
    };
    let same = match (template(primary), template(target)) {
        (Some(primary), Some(target)) => same(&primary, &target),
        _ => false,
    };
    Some(if same {
        ForeignPrimary::RunsTarget
    } else {
        ForeignPrimary::RunsOther
    })
}

/// Whether a primary's `copy` is `original` with the renames of a primary.
fn same(copy: &Value, original: &Value) -> bool {
    match (copy, original) {
        (Value::String(copy), Value::String(original)) => {
            copy == original || copy.strip_suffix(PRIMARY_SUFFIX) == Some(original.as_str())
        }
        (Value::Array(copy), Value::Array(original)) => {
            copy.len() == original.len() && copy.iter().zip(original).all(|(c, o)| same(c, o))
        }
        (Value::Object(copy), Value::Object(original)) => {
            // A map holding only what a copy adds or leaves out (`annotations: {flagger-id}`
            // beside no annotations at all) is the same as no map.
            let empty = Value::Object(serde_json::Map::new());
            let copied = copy.iter().all(|(key, value)| match original.get(key) {
                Some(original) => same(value, original),
                None => key == FLAGGER_ID || key == REVISION_ANNOTATION || same(value, &empty),
            });
            copied
                && original.iter().all(|(key, value)| {
                    copy.contains_key(key) || key.contains(FLUX_MARKER) || same(&empty, value)
                })
        }
        (copy, original) => copy == original,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    use super::*;

    fn target(image: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "web", "kustomize.toolkit.fluxcd.io/name": "apps"},
                        "annotations": {"prometheus.io/scrape": "true"},
                    },
                    "spec": {"containers": [{"name": "app", "image": image,
                        "envFrom": [{"configMapRef": {"name": "web-config"}}]}]},
                },
            },
        }))
        .unwrap()
    }

    /// The primary as Flagger writes it for `target("web:1")`.
    fn flaggers_primary(image: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web-primary"},
            "spec": {
                "selector": {"matchLabels": {"app": "web-primary"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "web-primary"},
                        "annotations": {"prometheus.io/scrape": "true", "flagger-id": "0b5c6a1e-3f0e-4c1b-9a43-d1e5f2a8c3b7"},
                    },
                    "spec": {"containers": [{"name": "app", "image": image,
                        "envFrom": [{"configMapRef": {"name": "web-config-primary"}}]}]},
                },
            },
        }))
        .unwrap()
    }

    fn template_meta(deployment: &mut Deployment) -> &mut ObjectMeta {
        let template = &mut deployment.spec.as_mut().unwrap().template;
        template.metadata.get_or_insert_with(ObjectMeta::default)
    }

    #[test]
    fn flaggers_primary_of_the_same_template_runs_the_target() {
        assert_eq!(
            compare(&flaggers_primary("web:1"), &target("web:1")),
            Some(ForeignPrimary::RunsTarget)
        );
    }

    #[test]
    fn another_image_or_a_changed_annotation_is_another_template() {
        assert_eq!(
            compare(&flaggers_primary("web:1"), &target("web:2")),
            Some(ForeignPrimary::RunsOther)
        );
        let mut restarted = target("web:1");
        let meta = template_meta(&mut restarted);
        meta.annotations.as_mut().unwrap().insert(
            "kubectl.kubernetes.io/restartedAt".into(),
            "2026-12-01T10:00:00Z".into(),
        );
        assert_eq!(
            compare(&flaggers_primary("web:1"), &restarted),
            Some(ForeignPrimary::RunsOther)
        );
    }

    #[test]
    fn a_copy_adding_the_only_annotation_of_a_template_without_any_is_the_same() {
        let mut target = target("web:1");
        template_meta(&mut target).annotations = None;
        let with = |annotations: &[(&str, &str)]| {
            let mut primary = flaggers_primary("web:1");
            template_meta(&mut primary).annotations = Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
            primary
        };
        let primary = with(&[(FLAGGER_ID, "id")]);
        assert_eq!(compare(&primary, &target), Some(ForeignPrimary::RunsTarget));
        let primary = with(&[(FLAGGER_ID, "id"), ("team", "a")]);
        assert_eq!(compare(&primary, &target), Some(ForeignPrimary::RunsOther));
    }

    #[test]
    fn serins_own_primaries_are_not_foreign() {
        let mut primary = flaggers_primary("web:1");
        primary
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(REVISION_ANNOTATION.into(), "0123456789abcdef".into());
        assert_eq!(compare(&primary, &target("web:1")), None);
    }
}
