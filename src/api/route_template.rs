//! `spec.service.routeTemplate`: the objects the `template` provider writes, for routers serin
//! has no module for (an AWS Load Balancer Controller Ingress, a Consul ServiceSplitter, an
//! Emissary Mapping...). Each object is declared (apiVersion, kind, name) and written as YAML
//! text with placeholders (`routing::placeholders`); serin renders it at every step. Refusals
//! are found here, by rendering with sample traffic, so `serin check` and the controller refuse
//! the same templates with the same words (the provider table's `admit` calls [`refused`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::canary::CanarySpec;
use super::validation::FieldError;

/// The most objects one template writes.
pub const MAX_OBJECTS: usize = 8;

/// The objects a route template writes; the first is the route serin takes over when it
/// exists before the Canary (and puts back when the Canary is deleted with revertOnDeletion).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTemplate {
    #[schemars(length(min = 1, max = 8))]
    pub objects: Vec<TemplateObject>,
}

/// One object of a route template.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateObject {
    /// The object's apiVersion, e.g. `consul.hashicorp.com/v1alpha1`; the rendered text must
    /// say the same.
    pub api_version: String,
    /// The object's kind, e.g. `ServiceSplitter`; the rendered text must say the same.
    pub kind: String,
    /// The object's name (placeholders allowed); the rendered metadata.name must be the same.
    pub name: String,
    /// The kind's plural resource name when it is not the usual lowercase plural of `kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plural: Option<String>,
    /// The whole object as YAML with `${...}` placeholders (docs/routing.md lists them). It
    /// must name where the weights go (`${canary.weight}` or `${primary.weight}`) in at least
    /// one object of the template.
    #[schemars(length(max = 32768))]
    pub template: String,
}

/// What the `template` provider refuses in `spec`: a missing or empty template, one that does
/// not render, names an unknown placeholder, renders another kind or name than declared, or
/// leaves out the weights (or the A/B match or mirror the analysis asks for). Each error names
/// the object's field and the template's line.
pub fn refused(spec: &CanarySpec) -> Vec<FieldError> {
    let field = "spec.service.routeTemplate";
    let Some(template) = &spec.service.route_template else {
        return vec![FieldError::new(
            field,
            "the template provider writes the objects of spec.service.routeTemplate: set it (docs/routing.md, Route templates)",
        )];
    };
    let mut refused = Vec::new();
    if !spec.service.matches.is_empty() {
        refused.push(FieldError::new(
            "spec.service.match",
            "a route template says itself which requests it serves: write them into the template",
        ));
    }
    if template.objects.is_empty() || template.objects.len() > MAX_OBJECTS {
        refused.push(FieldError::new(
            format!("{field}.objects"),
            format!("a route template writes 1 to {MAX_OBJECTS} objects"),
        ));
        return refused;
    }
    refused.extend(crate::routing::template::refused(spec, template));
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Canary;

    fn spec(service: &str) -> CanarySpec {
        let canary: Canary = serde_yaml_ng::from_str(&format!(
            "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: podinfo}}\nspec:\n  provider: template\n  targetRef: {{name: podinfo}}\n  service: {service}\n  analysis: {{stepWeight: 10}}\n"
        ))
        .unwrap();
        canary.spec
    }

    #[test]
    fn the_template_provider_needs_a_template_with_objects() {
        let missing = refused(&spec("{port: 80}"));
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].field, "spec.service.routeTemplate");
        let empty = refused(&spec("{port: 80, routeTemplate: {objects: []}}"));
        assert_eq!(empty[0].field, "spec.service.routeTemplate.objects");
    }
}
