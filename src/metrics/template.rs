//! Query templating, compatible with Flagger's MetricTemplates: `{{ name }}`, `{{ namespace }}`,
//! `{{ target }}`, `{{ service }}`, `{{ interval }}` and `{{ variables.KEY }}`, plus serin's
//! `{{ workload }}` (the Deployment whose values are wanted: the canary's, or the primary's for
//! the judge's baseline). minijinja's syntax is the same for these; what else a template may
//! use, and the limits it renders within, are [`super::bounded`]'s.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::Environment;
use serde::Serialize;

use super::bounded::{self, BoundError, Limits};

/// The values a query can use.
#[derive(Debug, Clone, Serialize)]
pub struct Vars<'a> {
    /// The Canary's name.
    pub name: &'a str,
    pub namespace: &'a str,
    /// The target Deployment's name.
    pub target: &'a str,
    /// The apex Service's name.
    pub service: &'a str,
    /// The metric's window as a Prometheus duration (`1m`, `1m30s`).
    pub interval: String,
    /// The Deployment whose values are asked for: the target (canary) or `<target>-primary`.
    pub workload: &'a str,
    /// The Ingress's name, for the nginx built-ins (the target's name without an ingressRef).
    pub ingress: &'a str,
    /// The metric's templateVariables.
    pub variables: &'a BTreeMap<String, String>,
}

const KNOWN: [&str; 8] = [
    "name",
    "namespace",
    "target",
    "service",
    "interval",
    "workload",
    "ingress",
    "variables",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid query template: {0}")]
    Syntax(String),
    #[error(
        "unknown variable {0:?} in the query: known are name, namespace, target, service, interval, workload, ingress and variables.KEY"
    )]
    Unknown(String),
    #[error("unknown variable \"variables.{0}\" in the query: templateVariables has {1}")]
    UnknownTemplateVariable(String, String),
    /// A limit of [`Limits::QUERY`] was reached, or the template uses what they forbid.
    #[error("query template: {0}")]
    Bounded(BoundError),
}

/// Renders `query` with `vars`, within [`Limits::QUERY`]. Every variable the query names must
/// exist: a typo is an error naming it, never an empty string spliced into a query.
pub fn render(query: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    // The narrowed language first: names are looked up only in a template that may run.
    bounded::screen(query, &Limits::QUERY).map_err(TemplateError::Bounded)?;
    let env = Environment::new();
    let template = env
        .template_from_str(query)
        .map_err(|e| TemplateError::Syntax(bounded::detail(&e)))?;
    let used: BTreeSet<String> = template.undeclared_variables(true).into_iter().collect();
    for variable in &used {
        let (root, key) = variable
            .split_once('.')
            .map_or((variable.as_str(), None), |(r, k)| (r, Some(k)));
        if !KNOWN.contains(&root) {
            return Err(TemplateError::Unknown(variable.clone()));
        }
        if let (Some(key), "variables") = (key, root)
            && !vars.variables.contains_key(key)
        {
            let known: Vec<&str> = vars.variables.keys().map(String::as_str).collect();
            let has = if known.is_empty() {
                "no keys".to_string()
            } else {
                known.join(", ")
            };
            return Err(TemplateError::UnknownTemplateVariable(key.to_string(), has));
        }
    }
    bounded::render(query, vars, &Limits::QUERY).map_err(|e| match e {
        BoundError::Syntax(text) => TemplateError::Syntax(text),
        other => TemplateError::Bounded(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(variables: &BTreeMap<String, String>) -> Vars<'_> {
        Vars {
            name: "podinfo",
            namespace: "test",
            target: "podinfo",
            service: "podinfo-svc",
            interval: "1m".into(),
            workload: "podinfo-primary",
            ingress: "podinfo",
            variables,
        }
    }

    #[test]
    fn flagger_variables_render() {
        let variables = BTreeMap::from([("quantile".to_string(), "0.99".to_string())]);
        let query = r#"histogram_quantile({{ variables.quantile }}, sum(rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}", pod=~"{{ target }}-.*", service="{{ service }}"}[{{ interval }}])) by (le)) # {{ name }} {{workload}}"#;
        assert_eq!(
            render(query, &vars(&variables)).unwrap(),
            r#"histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{namespace="test", pod=~"podinfo-.*", service="podinfo-svc"}[1m])) by (le)) # podinfo podinfo-primary"#
        );
    }

    #[test]
    fn unknown_variables_are_named() {
        let none = BTreeMap::new();
        assert_eq!(
            render("up{job=\"{{ nmespace }}\"}", &vars(&none)),
            Err(TemplateError::Unknown("nmespace".into()))
        );
        let error = render("{{ variables.window }}", &vars(&none)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown variable \"variables.window\" in the query: templateVariables has no keys"
        );
    }

    #[test]
    fn a_broken_template_is_a_syntax_error() {
        let none = BTreeMap::new();
        let error = render("sum(x{a=\"{{ namespace \"})", &vars(&none)).unwrap_err();
        assert!(matches!(error, TemplateError::Syntax(_)), "{error}");
    }

    #[test]
    fn queries_without_variables_are_kept_byte_for_byte() {
        let none = BTreeMap::new();
        let query = "sum(rate(x{a!~\"5.*\"}[1m])) > 0\n";
        assert_eq!(render(query, &vars(&none)).unwrap(), query);
    }
}
