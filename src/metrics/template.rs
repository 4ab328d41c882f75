//! Query templating in two dialects. A query is first Flagger's: Go's `text/template` with
//! Flagger's functions (`{{ namespace }}`, `{{ variables.KEY }}`, `{{ index variables "KEY" }}`,
//! `printf`, pipelines, `{{- -}}`), rendered by [`super::go_template`] exactly as Flagger
//! renders it, plus serin's `{{ workload }}` (the Deployment whose values are wanted: the
//! canary's, or the primary's for the judge's baseline). A query with `{%` or `{#`, or one that
//! Go's syntax refuses but minijinja's takes (filters such as `| upper`, `~`), is serin's own
//! minijinja dialect, whose limits are [`super::bounded`]'s. A query Go parses is never handed
//! to minijinja, so what Flagger renders is rendered the same.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::Environment;
use serde::Serialize;

use super::bounded::{self, BoundError, Limits};
use super::go_template::{GoError, GoTemplate};

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
    /// The routeRef's name (the target's name without one), as Flagger's `{{ route }}`.
    pub route: &'a str,
    /// The metric's templateVariables.
    pub variables: &'a BTreeMap<String, String>,
}

const KNOWN: [&str; 9] = [
    "name",
    "namespace",
    "target",
    "service",
    "interval",
    "workload",
    "ingress",
    "route",
    "variables",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid query template: {0}")]
    Syntax(String),
    #[error(
        "unknown variable {0:?} in the query: known are name, namespace, target, service, interval, workload, ingress, route and variables.KEY"
    )]
    Unknown(String),
    #[error("unknown variable \"variables.{0}\" in the query: templateVariables has {1}")]
    UnknownTemplateVariable(String, String),
    /// A limit of [`Limits::QUERY`] was reached, or the template uses what they forbid.
    #[error("query template: {0}")]
    Bounded(BoundError),
    /// A Go construct serin does not run (refused rather than rendered differently).
    #[error("query template: {0}")]
    Unsupported(String),
    /// Go's template failed while rendering, as Flagger's would.
    #[error("query template: {0}")]
    Render(String),
}

impl From<GoError> for TemplateError {
    fn from(error: GoError) -> Self {
        match error {
            GoError::Syntax(text) => TemplateError::Syntax(text),
            GoError::Unknown(name) => TemplateError::Unknown(name),
            GoError::MissingKey(key, has) => TemplateError::UnknownTemplateVariable(key, has),
            GoError::TooLarge(cap) => TemplateError::Bounded(BoundError::TooLarge(cap)),
            GoError::Unsupported(..) => TemplateError::Unsupported(error.to_string()),
            GoError::Render(text) => TemplateError::Render(text),
        }
    }
}

/// Renders `query` with `vars`, within [`Limits::QUERY`]. Every variable the query names must
/// exist: a typo is an error naming it, never an empty string spliced into a query.
pub fn render(query: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    if query.len() > Limits::QUERY.source {
        return Err(TemplateError::Bounded(BoundError::SourceTooLong(
            query.len(),
            Limits::QUERY.source,
        )));
    }
    if query.contains("{%") || query.contains("{#") {
        return render_jinja(query, vars);
    }
    match GoTemplate::parse(query) {
        Ok(template) => Ok(template.render(vars, Limits::QUERY.output)?),
        // Go refuses it; serin's own dialect may take it (`{{ namespace | upper }}`), and if
        // neither does, Go's reason is the one a Flagger user can act on (minijinja would call
        // Go's keywords, `{{ end }}`, unknown variables).
        Err(go) => render_jinja(query, vars).map_err(|jinja| match jinja {
            TemplateError::Syntax(_) | TemplateError::Unknown(_) => go.into(),
            other => other,
        }),
    }
}

/// serin's minijinja dialect, within [`Limits::QUERY`].
fn render_jinja(query: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
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
            route: "podinfo-route",
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

    /// Queries as Flagger users write them, and what Flagger's Go template gives for each (each
    /// expected text was checked against Go's text/template run as Flagger's RenderQuery runs it).
    #[test]
    fn flagger_go_queries_render_as_flagger_renders_them() {
        let variables = BTreeMap::from([
            ("direction".to_string(), "inbound".to_string()),
            ("code".to_string(), "404".to_string()),
        ]);
        let table: &[(&str, &str)] = &[
            // The function forms, with and without spaces.
            (
                r#"sum(rate(requests{ns="{{namespace}}", deploy=~"{{ target }}", dir="{{ variables.direction }}"}[{{ interval }}]))"#,
                r#"sum(rate(requests{ns="test", deploy=~"podinfo", dir="inbound"}[1m]))"#,
            ),
            (
                r#"apisix_http_status{route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"}"#,
                r#"apisix_http_status{route=~"test_podinfo-route-podinfo-canary_.+"}"#,
            ),
            (
                "{{ name }}/{{ service }}/{{ ingress }}/{{ workload }}",
                "podinfo/podinfo-svc/podinfo/podinfo-primary",
            ),
            // index, printf, pipelines and parentheses.
            (r#"code="{{ index variables "code" }}""#, r#"code="404""#),
            (r#"[{{ interval | printf "%s" }}]"#, "[1m]"),
            (
                r#"{{ printf "%s-%s" target "primary" }}"#,
                "podinfo-primary",
            ),
            (r#"{{ "x" | printf "%s-%s" target }}"#, "podinfo-x"),
            (r#"{{ printf "%q" namespace }}"#, r#""test""#),
            (r#"{{ printf "%d%%" 5 }}"#, "5%"),
            (r#"{{ (variables).direction }}"#, "inbound"),
            (r#"{{ len (index variables "code") }}"#, "3"),
            (r#"{{ urlquery "a b/c" }}"#, "a+b%2Fc"),
            (r#"{{ print 1 2 "x" 3 }}"#, "1 2x3"),
            // A missing key through index is Go's zero value, as in Flagger.
            (r#"[{{ index variables "absent" }}]"#, "[]"),
            // Trim markers and comments.
            ("a  {{- namespace -}}  \n b", "atestb"),
            ("a {{/* who */}}b{{- /* trimmed */ -}} c", "a bc"),
            // Conditionals and with.
            (
                r#"{{ if eq (index variables "direction") "inbound" }}in{{ else if true }}x{{ else }}out{{ end }}"#,
                "in",
            ),
            (
                r#"{{ if not (index variables "absent") }}none{{ end }}"#,
                "none",
            ),
            (
                r#"{{ with variables }}{{ .direction }}{{ end }}"#,
                "inbound",
            ),
            (
                r#"{{ with index variables "absent" }}x{{ else }}y{{ end }}"#,
                "y",
            ),
            (r#"{{ and namespace "" }}|{{ or "" target }}"#, "|podinfo"),
            ("{{ `raw \\n` }}", "raw \\n"),
            ("{{ \"tab\\tq\\\"\" }}", "tab\tq\""),
            ("{{ variables }}", "map[code:404 direction:inbound]"),
            ("{{ 1.5 }} {{ -3 }} {{ true }}", "1.5 -3 true"),
        ];
        for (query, want) in table {
            assert_eq!(
                render(query, &vars(&variables)).as_deref(),
                Ok(*want),
                "{query}"
            );
        }
    }

    /// What serin does not run is refused with the construct and why, never rendered otherwise.
    #[test]
    fn go_constructs_serin_does_not_run_are_refused_with_the_reason() {
        let variables = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let refused: &[(&str, &str)] = &[
            (
                "{{ range variables }}x{{ end }}",
                "`range` is not supported",
            ),
            ("{{ $x := namespace }}{{ $x }}", "`$` is not supported"),
            (r#"{{ define "a" }}x{{ end }}"#, "`define` is not supported"),
            (r#"{{ template "a" }}"#, "`template` is not supported"),
            ("{{ .Namespace }}", "`.Namespace` is not supported"),
            (r#"{{ html "<" }}"#, "`html` is not supported"),
            (r#"{{ printf "%5s" target }}"#, "`%5` is not supported"),
            (r#"{{ printf "%d" target }}"#, "the verb does not fit"),
            (
                r#"{{ printf "%s %s" target }}"#,
                "fewer arguments than verbs",
            ),
            (
                r#"{{ printf "%s" target name }}"#,
                "more arguments than verbs",
            ),
        ];
        for (query, why) in refused {
            let error = render(query, &vars(&variables)).unwrap_err();
            assert!(error.to_string().contains(why), "{query}: {error}");
        }
        // Go's missingkey=error, as Flagger sets it: the key and the keys there are.
        assert_eq!(
            render("{{ variables.window }}", &vars(&variables)),
            Err(TemplateError::UnknownTemplateVariable(
                "window".into(),
                "k".into()
            ))
        );
        for broken in [
            "{{ if namespace }}x",
            "{{ end }}",
            "{{ namespace",
            "{{ (namespace }}",
            "{{ interval | \"x\" }}",
        ] {
            let error = render(broken, &vars(&variables)).unwrap_err();
            assert!(
                matches!(error, TemplateError::Syntax(_)),
                "{broken}: {error}"
            );
        }
        // Deep nesting is refused, not a stack overflow.
        let deep = format!("{{{{ {}namespace{} }}}}", "(".repeat(500), ")".repeat(500));
        assert!(render(&deep, &vars(&variables)).is_err());
    }

    /// serin's own minijinja dialect keeps working beside Go's.
    #[test]
    fn jinja_queries_still_render() {
        let none = BTreeMap::new();
        assert_eq!(
            render(
                "{{ namespace | upper }}-{% if workload == target %}c{% else %}p{% endif %}",
                &vars(&none)
            )
            .unwrap(),
            "TEST-p"
        );
        assert_eq!(
            render(r#"{{ target ~ "-x" }}"#, &vars(&none)).unwrap(),
            "podinfo-x"
        );
        assert_eq!(
            render("{{ namespace | upper }}", &vars(&none)).unwrap(),
            "TEST"
        );
    }
}
