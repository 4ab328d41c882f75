//! `serin check FILE|DIR...`: the controller's validation, offline, for a git repository in
//! CI. Every Canary, MetricTemplate and AlertProvider found is decoded and validated as the
//! controller would; references between them (templateRef, providerRef) must resolve among
//! the files given; query templates must render with the variables the Canary gives them.
//! Other kinds (Deployments, Services...) are skipped. Every problem names file, line, object
//! and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::api::canary::Metric;
use crate::api::known_fields::unknown_fields;
use crate::api::load::{expect_type, from_value};
use crate::api::locate::Positions;
use crate::api::metric_provider::judge_refusal;
use crate::api::provider::TrafficProvider;
use crate::api::validation::FieldError;
use crate::api::yaml;
use crate::api::{AlertProvider, Canary, MetricTemplate};
use crate::engine::Plan;
use crate::metrics::bounded::{self, Limits};
use crate::metrics::template::{self, TemplateError, Vars};
use crate::notify::Notice;

pub const API_VERSION: &str = "serin.dev/v1beta1";

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: PathBuf,
    /// 1-based line where the document starts.
    pub line: usize,
    pub value: Value,
    /// Where each field is written, for problems pointing at their field.
    pub positions: Positions,
    /// Where the document is in its file's text (`serin migrate` rewrites it there).
    pub range: std::ops::Range<usize>,
}

/// One file read: its text and its documents.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub documents: Vec<Document>,
}

impl Document {
    /// The 1-based line and column of `field` in the file (its nearest written parent when it
    /// is missing; the document's first line when nothing of it is written).
    pub fn position(&self, field: &str) -> (usize, Option<usize>) {
        match self.positions.find(field) {
            Some(p) => (self.line + p.line - 1, Some(p.column)),
            None => (self.line, None),
        }
    }

    /// A string field by JSON pointer (`/metadata/name`), empty when absent.
    pub fn text(&self, pointer: &str) -> &str {
        self.value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// A Canary, MetricTemplate or AlertProvider (by kind; any API group).
    pub fn is_serin_kind(&self) -> bool {
        matches!(
            self.text("/kind"),
            "Canary" | "MetricTemplate" | "AlertProvider"
        )
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    /// 1-based column of the field, when it is written in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// `Canary podinfo`, or empty for a document that could not be read.
    pub object: String,
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        if !self.object.is_empty() {
            write!(f, " {}", self.object)?;
        }
        write!(f, ": {}: {}", self.field, self.reason)
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// What the controller runs differently from what a manifest says (read as Flagger reads
    /// it): reported, never failing the check.
    pub warnings: Vec<Problem>,
    /// serin objects checked.
    pub checked: usize,
    /// Documents of other kinds.
    pub skipped: usize,
    /// Files of a directory left out, and why (Helm templates, YAML that is not a manifest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A file to read: named on the command line (every problem in it counts), or found in a
/// directory (a Helm template or YAML that is not a Kubernetes manifest is left out with a
/// note: a repository holds more than manifests).
struct Found {
    path: PathBuf,
    in_directory: bool,
}

/// The path that means standard input.
pub const STDIN: &str = "-";

/// The files to read: files as given, directories searched for `*.yaml`, `*.yml`, `*.json`.
fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<Found>> {
    let mut found = Vec::new();
    for path in paths {
        if path.as_os_str() == STDIN {
            found.push(Found {
                path: path.clone(),
                in_directory: false,
            });
            continue;
        }
        collect(path, false, &mut found)?;
    }
    Ok(found)
}

fn collect(path: &Path, in_directory: bool, found: &mut Vec<Found>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !meta.is_dir() {
        found.push(Found {
            path: path.to_path_buf(),
            in_directory,
        });
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        let manifest = entry
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
        if hidden {
            continue;
        }
        if entry.is_dir() || manifest {
            collect(&entry, true, found)?;
        }
    }
    Ok(())
}

/// A file of a Helm chart's `templates/` directory (a `Chart.yaml` beside that directory):
/// Go templates, not YAML until Helm renders them.
fn is_helm_template(path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .find(|dir| dir.file_name().is_some_and(|n| n == "templates"))
        .and_then(Path::parent)
        .is_some_and(|chart| chart.join("Chart.yaml").is_file())
}

/// Go template actions of the kinds charts use (`{{ .Values.x }}`, `{{- include ... }}`),
/// which a metric query's `{{ namespace }}` is not.
fn has_template_actions(text: &str) -> bool {
    [
        "{{ .",
        "{{.",
        "{{-",
        "{{ include",
        "{{ template",
        "{{ if",
        "{{ range",
    ]
    .iter()
    .any(|action| text.contains(action))
}

/// Text with no `apiVersion:` or `kind:` key anywhere: not a Kubernetes manifest.
fn is_not_a_manifest(text: &str) -> bool {
    !text.lines().any(|line| {
        let line = line.trim_start().trim_start_matches("- ");
        line.starts_with("apiVersion:") || line.starts_with("kind:")
    })
}

/// Splits a file into its YAML documents, each with its first line. A document that is not
/// YAML (or not one that JSON can hold) becomes a problem naming its line and field.
fn documents(file: &Path, text: &str, problems: &mut Vec<Problem>) -> Vec<Document> {
    let mut docs = Vec::new();
    for (line, range) in yaml::document_ranges(text) {
        let chunk = &text[range.clone()];
        if chunk.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        }) {
            continue;
        }
        match yaml::parse_json(chunk) {
            Ok(Value::Null) => {}
            Ok(value) => docs.push(Document {
                file: file.to_path_buf(),
                line,
                value,
                positions: Positions::of(chunk),
                range,
            }),
            Err(error) => problems.push(Problem {
                file: file.display().to_string(),
                // A syntax error has its line; a value JSON cannot hold (`.nan`) its field's.
                line: match error.line {
                    Some(l) => line + l - 1,
                    None => Positions::of(chunk)
                        .find(&error.field)
                        .map_or(line, |p| line + p.line - 1),
                },
                column: None,
                object: String::new(),
                field: error.field,
                reason: error.reason,
            }),
        }
    }
    docs
}

/// The controller's settings that decide whether it accepts a Canary, so `check` judges as
/// the controller it speaks for.
#[derive(Debug, Clone, Copy)]
pub struct Controller {
    /// For Canaries without `spec.provider` (`--mesh-provider`).
    pub default_provider: TrafficProvider,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            default_provider: crate::api::provider::DEFAULT,
            no_cross_namespace_refs: false,
        }
    }
}

/// Checks every document together (references resolve across files), as `controller` would.
pub fn check(documents: &[Document], controller: Controller) -> Report {
    let mut checker = Checker {
        controller,
        report: Report::default(),
        canaries: Vec::new(),
        templates: BTreeMap::new(),
        providers: BTreeMap::new(),
    };
    for doc in documents {
        checker.document(doc);
    }
    let canaries = std::mem::take(&mut checker.canaries);
    for (doc, canary) in canaries {
        checker.references(doc, &canary);
    }
    checker.report
}

type ByName<T> = BTreeMap<(Option<String>, String), T>;

/// One pass over the documents: each object on its own first, then what Canaries reference
/// once every template and provider is known.
struct Checker<'a> {
    controller: Controller,
    report: Report,
    canaries: Vec<(&'a Document, Canary)>,
    templates: ByName<MetricTemplate>,
    providers: ByName<()>,
}

impl<'a> Checker<'a> {
    fn fail(&mut self, doc: &Document, object: String, field: &str, reason: String) {
        let (line, column) = doc.position(field);
        self.report.problems.push(Problem {
            file: doc.file.display().to_string(),
            line,
            column,
            object,
            field: field.to_string(),
            reason,
        });
    }

    /// A document on its own: its kind, version and name, then the object's own rules.
    fn document(&mut self, doc: &'a Document) {
        let (kind, version) = (doc.text("/kind"), doc.text("/apiVersion"));
        let ours = version.starts_with("serin.dev/") || version.starts_with("flagger.app/");
        if !ours || !doc.is_serin_kind() {
            self.report.skipped += 1;
            return;
        }
        self.report.checked += 1;
        let name = doc.text("/metadata/name").to_string();
        let object = format!("{kind} {name}").trim().to_string();
        if let Err(e) = expect_type(&doc.value, API_VERSION, kind) {
            self.fail(doc, object, &e.field, e.reason);
            return;
        }
        if name.is_empty() {
            self.fail(doc, object.clone(), "metadata.name", "missing".into());
        }
        let key = (
            Some(doc.text("/metadata/namespace"))
                .filter(|ns| !ns.is_empty())
                .map(str::to_string),
            name,
        );
        let mut problems = match kind {
            "Canary" => self.canary(doc, &key.0),
            "MetricTemplate" => self.metric_template(doc, key),
            _ => self.alert_provider(doc, key),
        };
        // Every unknown field, also where decoding stopped at another error: a misspelt field
        // is dropped by the API server, and the object runs without it.
        for field in unknown_fields(kind, &doc.value) {
            if !problems.iter().any(|p| p.field == field) {
                problems.push(FieldError::new(
                    field,
                    "unknown field: serin (and Flagger) has no such field, and the API server would drop it; remove it or correct its name",
                ));
            }
        }
        for e in problems {
            self.fail(doc, object.clone(), &e.field, e.reason);
        }
    }

    /// A Canary's own problems: the controller's validation, its provider, its references'
    /// namespaces when the controller refuses cross-namespace ones.
    fn canary(&mut self, doc: &'a Document, namespace: &Option<String>) -> Vec<FieldError> {
        let canary = match from_value::<Canary>(&doc.value, "") {
            Ok(canary) => canary,
            Err(e) => return vec![e],
        };
        let mut problems = match Plan::from_spec(&canary.spec, self.controller.default_provider) {
            Ok(plan) => {
                let object = format!("Canary {}", doc.text("/metadata/name"));
                for warning in plan.warnings {
                    let (line, column) = doc.position(&warning.field);
                    self.report.warnings.push(Problem {
                        file: doc.file.display().to_string(),
                        line,
                        column,
                        object: object.trim().to_string(),
                        field: warning.field,
                        reason: warning.reason,
                    });
                }
                Vec::new()
            }
            Err(errors) => errors.0,
        };
        if self.controller.no_cross_namespace_refs {
            // A document without a namespace lands in the context's namespace: any reference
            // naming one is then a cross-namespace candidate.
            let own = namespace.as_deref().unwrap_or_default();
            problems.extend(crate::api::references::cross_namespace(&canary.spec, own));
        }
        self.canaries.push((doc, canary));
        problems
    }

    fn metric_template(
        &mut self,
        doc: &Document,
        key: (Option<String>, String),
    ) -> Vec<FieldError> {
        let template = match from_value::<MetricTemplate>(&doc.value, "") {
            Ok(template) => template,
            Err(e) => return vec![e],
        };
        let mut problems = Vec::new();
        // The query alone: syntax and variable names (templateVariables are checked per
        // Canary, with the keys that Canary gives).
        match template::render(&template.spec.query, &sample_vars(&BTreeMap::new())) {
            Ok(_) | Err(TemplateError::UnknownTemplateVariable(..)) => {}
            Err(e) => problems.push(FieldError::new("spec.query", e.to_string())),
        }
        if let Err(errors) = crate::api::validation::validate_template(&template.spec) {
            problems.extend(errors.0);
        }
        self.templates.insert(key, template);
        problems
    }

    fn alert_provider(&mut self, doc: &Document, key: (Option<String>, String)) -> Vec<FieldError> {
        let provider = match from_value::<AlertProvider>(&doc.value, "") {
            Ok(provider) => provider,
            Err(e) => return vec![e],
        };
        let mut problems = Vec::new();
        if let Some(text) = &provider.spec.template
            && let Err(e) = bounded::render(text, sample_notice(), &Limits::ALERT)
        {
            problems.push(FieldError::new(
                "spec.template",
                format!("alert template: {e}"),
            ));
        }
        self.providers.insert(key, ());
        problems
    }

    /// What a Canary names: its metrics' templates (and the variables it gives them), its
    /// inline queries, its alert providers.
    fn references(&mut self, doc: &Document, canary: &Canary) {
        let own_ns = canary.metadata.namespace.clone();
        let object = format!(
            "Canary {}",
            canary.metadata.name.clone().unwrap_or_default()
        );
        let analysis = &canary.spec.analysis;
        let mut problems = Vec::new();
        for (i, metric) in analysis.metrics.iter().enumerate() {
            problems.extend(self.metric_reference(i, metric, &own_ns));
        }
        for (i, alert) in analysis.alerts.iter().enumerate() {
            let reference = &alert.provider_ref;
            let ns = reference.namespace.clone().or_else(|| own_ns.clone());
            if lookup(&self.providers, &ns, &reference.name).is_none() {
                problems.push(FieldError::new(
                    format!("spec.analysis.alerts[{i}].providerRef"),
                    format!(
                        "AlertProvider {:?} is not among the files checked (pass the file that defines it)",
                        reference.name
                    ),
                ));
            }
        }
        for e in problems {
            self.fail(doc, object.clone(), &e.field, e.reason);
        }
    }

    fn metric_reference(
        &self,
        i: usize,
        metric: &Metric,
        own_ns: &Option<String>,
    ) -> Vec<FieldError> {
        let field = |name: &str| format!("spec.analysis.metrics[{i}].{name}");
        let Some(reference) = &metric.template_ref else {
            // An inline query runs in the controller as much as a template's does.
            return match &metric.query {
                Some(query) => template::render(query, &sample_vars(&metric.template_variables))
                    .err()
                    .map(|e| FieldError::new(field("query"), e.to_string()))
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            };
        };
        let ns = reference.namespace.clone().or_else(|| own_ns.clone());
        let Some(found) = lookup(&self.templates, &ns, &reference.name) else {
            return vec![FieldError::new(
                field("templateRef"),
                format!(
                    "MetricTemplate {:?} is not among the files checked (pass the file that defines it)",
                    reference.name
                ),
            )];
        };
        let mut problems = Vec::new();
        if metric.judge.is_some()
            && let Some(reason) = judge_refusal(found.spec.provider.kind.row())
        {
            problems.push(FieldError::new(
                field("judge"),
                format!("template {}: {reason}", reference.name),
            ));
        }
        // Syntax and unknown names are reported on the template itself; here only what depends
        // on this Canary: the templateVariables it gives.
        let vars = sample_vars(&metric.template_variables);
        if let Err(e @ TemplateError::UnknownTemplateVariable(..)) =
            template::render(&found.spec.query, &vars)
        {
            problems.push(FieldError::new(
                field("templateVariables"),
                format!("template {}: {e}", reference.name),
            ));
        }
        problems
    }
}

/// Finds an object by namespace and name; objects written without a namespace (applied with
/// `-n` or by kustomize) match any namespace.
fn lookup<'a, T>(
    objects: &'a BTreeMap<(Option<String>, String), T>,
    namespace: &Option<String>,
    name: &str,
) -> Option<&'a T> {
    objects
        .get(&(namespace.clone(), name.to_string()))
        .or_else(|| objects.get(&(None, name.to_string())))
        .or_else(|| {
            namespace
                .is_none()
                .then(|| objects.iter().find(|((_, n), _)| n == name).map(|(_, t)| t))
                .flatten()
        })
}

/// A notice with every field set, to render alert templates against.
fn sample_notice() -> Notice {
    Notice {
        name: "podinfo".into(),
        namespace: "test".into(),
        cluster: "prod".into(),
        revision: "podinfo-7d9f".into(),
        phase: "Failed".into(),
        severity: crate::api::canary::Severity::Error,
        reason: "MetricFailed".into(),
        message: "rolling back".into(),
        time: chrono::DateTime::UNIX_EPOCH,
    }
}

fn sample_vars(variables: &BTreeMap<String, String>) -> Vars<'_> {
    Vars {
        name: "podinfo",
        namespace: "test",
        target: "podinfo",
        service: "podinfo",
        interval: "1m".into(),
        workload: "podinfo",
        ingress: "podinfo",
        route: "podinfo",
        variables,
    }
}

/// The documents of every file under `paths` (`-`: standard input), the documents that are
/// not YAML, and the notes on files of directories left out; an error when a path cannot be
/// read.
pub fn read(paths: &[PathBuf]) -> anyhow::Result<(Vec<Document>, Vec<Problem>, Vec<String>)> {
    let (sources, problems, notes) = read_sources(paths)?;
    let docs = sources.into_iter().flat_map(|s| s.documents).collect();
    Ok((docs, problems, notes))
}

/// As [`read`], file by file with each file's text.
pub fn read_sources(paths: &[PathBuf]) -> anyhow::Result<(Vec<Source>, Vec<Problem>, Vec<String>)> {
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    let mut notes = Vec::new();
    for Found { path, in_directory } in files(paths)? {
        if in_directory && is_helm_template(&path) {
            notes.push(format!(
                "{}: skipped, a Helm template (check what `helm template` renders: `helm template ... | serin check -`)",
                path.display()
            ));
            continue;
        }
        let text = if path.as_os_str() == STDIN {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| anyhow::anyhow!("standard input: {e}"))?;
            text
        } else {
            std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        };
        let mut unreadable = Vec::new();
        let documents = documents(&path, &text, &mut unreadable);
        if in_directory && !unreadable.is_empty() && has_template_actions(&text) {
            notes.push(format!(
                "{}: skipped, a Go template (Helm, kustomize's helm charts), not YAML until rendered",
                path.display()
            ));
            continue;
        }
        if in_directory && !unreadable.is_empty() && is_not_a_manifest(&text) {
            notes.push(format!(
                "{}: skipped, not YAML serin can read and not a Kubernetes manifest (no apiVersion or kind)",
                path.display()
            ));
            continue;
        }
        problems.append(&mut unreadable);
        sources.push(Source {
            path,
            text,
            documents,
        });
    }
    Ok((sources, problems, notes))
}

/// Reads and checks `paths`; the report, or an error when a path cannot be read.
pub fn run(paths: &[PathBuf], controller: Controller) -> anyhow::Result<Report> {
    let (docs, mut problems, notes) = read(paths)?;
    let mut report = check(&docs, controller);
    problems.append(&mut report.problems);
    report.problems = problems;
    report.notes = notes;
    Ok(report)
}
