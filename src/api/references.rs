//! Tenancy: which other objects a Canary may name. A Canary's MetricTemplates and
//! AlertProviders carry Secrets (a metrics server's token, a Slack webhook URL); a Canary in
//! namespace A naming a template in namespace B borrows B's credentials (and a gloo Upstream of
//! B's its TLS settings). When the controller
//! runs with `--no-cross-namespace-refs`, such a reference is refused before anything is read.

use super::canary::CanarySpec;
use super::validation::FieldError;

/// Every templateRef and providerRef of `spec` naming a namespace other than the Canary's
/// own, each as an error naming its field. Pure: the controller decides whether to apply it.
pub fn cross_namespace(spec: &CanarySpec, namespace: &str) -> Vec<FieldError> {
    let analysis = &spec.analysis;
    let templates = analysis
        .metrics
        .iter()
        .enumerate()
        .filter_map(|(i, metric)| {
            let reference = metric.template_ref.as_ref()?;
            foreign(
                reference.namespace.as_deref(),
                namespace,
                format!("spec.analysis.metrics[{i}].templateRef.namespace"),
            )
        });
    let providers = analysis.alerts.iter().enumerate().filter_map(|(i, alert)| {
        foreign(
            alert.provider_ref.namespace.as_deref(),
            namespace,
            format!("spec.analysis.alerts[{i}].providerRef.namespace"),
        )
    });
    // The gloo provider copies this Upstream's settings (TLS among them) into its own.
    let upstream = spec.upstream_ref.as_ref().and_then(|reference| {
        foreign(
            reference.namespace.as_deref(),
            namespace,
            "spec.upstreamRef.namespace".to_string(),
        )
    });
    templates.chain(providers).chain(upstream).collect()
}

fn foreign(referenced: Option<&str>, own: &str, field: String) -> Option<FieldError> {
    let other = referenced.filter(|ns| !ns.is_empty() && *ns != own)?;
    Some(FieldError::new(
        field,
        format!(
            "{other:?} is another namespace than the Canary's ({own:?}): cross-namespace references are disabled (--no-cross-namespace-refs)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(analysis: serde_json::Value) -> CanarySpec {
        serde_json::from_value(serde_json::json!({
            "targetRef": {"name": "web"}, "service": {"port": 80}, "analysis": analysis,
        }))
        .unwrap()
    }

    #[test]
    fn a_template_or_provider_in_another_namespace_is_named_by_field() {
        let spec = spec(serde_json::json!({
            "metrics": [
                {"name": "own", "templateRef": {"name": "t"}},
                {"name": "same", "templateRef": {"name": "t", "namespace": "apps"}},
                {"name": "theirs", "templateRef": {"name": "t", "namespace": "billing"}},
            ],
            "alerts": [{"name": "a", "providerRef": {"name": "slack", "namespace": "ops"}}],
        }));
        let errors = cross_namespace(&spec, "apps");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.analysis.metrics[2].templateRef.namespace",
                "spec.analysis.alerts[0].providerRef.namespace"
            ]
        );
        assert!(
            errors[0]
                .reason
                .contains("cross-namespace references are disabled"),
            "{}",
            errors[0]
        );
        let mut gloo = spec.clone();
        gloo.upstream_ref = serde_json::from_value(
            serde_json::json!({"name": "config", "namespace": "gloo-system"}),
        )
        .unwrap();
        let errors = cross_namespace(&gloo, "apps");
        assert_eq!(
            errors.last().map(|e| e.field.as_str()),
            Some("spec.upstreamRef.namespace")
        );
    }

    #[test]
    fn references_within_the_namespace_are_fine() {
        let spec = spec(serde_json::json!({
            "metrics": [{"name": "m", "templateRef": {"name": "t", "namespace": "apps"}}],
        }));
        assert!(cross_namespace(&spec, "apps").is_empty());
    }
}
