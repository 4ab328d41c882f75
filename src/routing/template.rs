//! The `template` provider: routes through any router serin has no module for, by rendering
//! the objects of `spec.service.routeTemplate` (an AWS Load Balancer Controller Ingress, a
//! Consul ServiceSplitter, Emissary Mappings...) at every step. Each rendered object must be
//! the kind and name it declares, in the Canary's namespace; the first one is the route taken
//! over (spec and annotations kept, put back with revertOnDeletion) when it pre-exists.

use std::collections::{BTreeMap, HashSet};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, TypeMeta};
use serde_json::Value;

use crate::api::CanarySpec;
use crate::api::route_template::{RouteTemplate, TemplateObject};
use crate::api::validation::FieldError;
use crate::engine::Traffic;
use crate::workload::services::ServiceRole;

use super::placeholders::{Parsed, PlaceholderError};
use super::{RouteError, RouteInputs, Router, weights};

pub struct Template;

/// Placeholders a name may use: the ones that stay the same for the whole rollout (a name
/// following the weights would leave a new object at every step).
const NAME_PLACEHOLDERS: &[&str] = &[
    "service.name",
    "primary.service",
    "canary.service",
    "namespace",
    "target.name",
];
const WEIGHTS: &[&str] = &["canary.weight", "primary.weight"];
const MATCH: &[&str] = &["match.enabled", "match.weight"];
const MIRROR: &[&str] = &["mirror.enabled", "mirror.weight"];

impl Router for Template {
    /// None known without the Canary's template: see `resources_for`.
    fn resources(&self) -> Vec<ApiResource> {
        Vec::new()
    }

    fn resources_for(&self, inputs: &RouteInputs<'_>) -> Vec<ApiResource> {
        objects_of(inputs.spec)
            .iter()
            .map(declared_resource)
            .collect()
    }

    fn objects(
        &self,
        inputs: &RouteInputs<'_>,
        traffic: Traffic,
    ) -> Result<Vec<DynamicObject>, RouteError> {
        let values = values(inputs.spec, inputs.namespace, traffic);
        let mut objects = Vec::new();
        for (index, declared) in objects_of(inputs.spec).iter().enumerate() {
            let mut object = render(index, declared, &values)
                .map_err(|error| RouteError::Spec(error.to_string()))?;
            object.metadata.namespace = Some(inputs.namespace.to_string());
            object.metadata.owner_references = inputs.owner.clone().map(|o| vec![o]);
            objects.push(object);
        }
        Ok(objects)
    }

    fn taken_over(&self, inputs: &RouteInputs<'_>) -> Option<(ApiResource, String)> {
        let first = objects_of(inputs.spec).first()?;
        let values = values(inputs.spec, inputs.namespace, Traffic::PRIMARY);
        let name = Parsed::new(&first.name).ok()?.render(&values).ok()?;
        Some((declared_resource(first), name))
    }

    fn keeps_original_annotations(&self) -> bool {
        // An AWS Load Balancer Controller Ingress holds its weights in an annotation.
        true
    }
}

fn objects_of(spec: &CanarySpec) -> &[TemplateObject] {
    spec.service
        .route_template
        .as_ref()
        .map_or(&[], |t| t.objects.as_slice())
}

/// The kind an object declares, as the API serves it.
pub fn declared_resource(declared: &TemplateObject) -> ApiResource {
    let (group, version) = declared
        .api_version
        .split_once('/')
        .unwrap_or(("", declared.api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &declared.kind);
    match &declared.plural {
        Some(plural) => ApiResource::from_gvk_with_plural(&gvk, plural),
        None => ApiResource::from_gvk(&gvk),
    }
}

/// The value of every placeholder for `traffic`.
pub fn values(
    spec: &CanarySpec,
    namespace: &str,
    traffic: Traffic,
) -> BTreeMap<&'static str, String> {
    let (primary, canary) = weights(traffic);
    let matched = traffic.matched_to_canary && !spec.analysis.matches.is_empty();
    let matches = serde_json::to_string(&spec.analysis.matches).unwrap_or_else(|_| "[]".into());
    [
        ("primary.weight", primary.to_string()),
        ("canary.weight", canary.to_string()),
        ("primary.service", ServiceRole::Primary.name(spec)),
        ("canary.service", ServiceRole::Canary.name(spec)),
        ("service.name", spec.service_name().to_string()),
        ("service.port", spec.service.port.to_string()),
        ("namespace", namespace.to_string()),
        ("target.name", spec.target_ref.name.clone()),
        ("mirror.enabled", traffic.mirror.is_some().to_string()),
        (
            "mirror.weight",
            traffic.mirror.map_or(0, |p| p.clamp(0, 100)).to_string(),
        ),
        ("match.enabled", matched.to_string()),
        (
            "match.weight",
            if matched { "100" } else { "0" }.to_string(),
        ),
        ("match.json", matches),
    ]
    .into()
}

/// Why one object of a template cannot be rendered: its field and the reason, with the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.service.routeTemplate.objects[{index}].{field}: {reason}")]
pub struct TemplateError {
    pub index: usize,
    pub field: &'static str,
    pub reason: String,
}

impl TemplateError {
    fn new(index: usize, field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            index,
            field,
            reason: reason.into(),
        }
    }

    fn field_error(self) -> FieldError {
        FieldError::new(
            format!(
                "spec.service.routeTemplate.objects[{}].{}",
                self.index, self.field
            ),
            self.reason,
        )
    }
}

/// The object `declared` renders to with `values`: its kind and name checked against what it
/// declares, its metadata reduced to name, labels and annotations.
pub fn render(
    index: usize,
    declared: &TemplateObject,
    values: &BTreeMap<&'static str, String>,
) -> Result<DynamicObject, TemplateError> {
    declared_kind(index, declared)?;
    let name = rendered_name(index, declared, values)?;
    let placeholder = |e: PlaceholderError| TemplateError::new(index, "template", e.to_string());
    let text = Parsed::new(&declared.template)
        .and_then(|parsed| parsed.render(values))
        .map_err(placeholder)?;
    let mut value: Value = serde_yaml_ng::from_str(&text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        TemplateError::new(index, "template", format!("line {line}: not YAML: {e}"))
    })?;
    let Some(object) = value.as_object_mut() else {
        return Err(TemplateError::new(
            index,
            "template",
            "line 1: the template is not a YAML mapping (an object with apiVersion, kind, metadata)",
        ));
    };
    let said = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
    for (key, expected) in [
        ("apiVersion", &declared.api_version),
        ("kind", &declared.kind),
    ] {
        let found = said(key);
        if found.as_ref() != Some(expected) {
            let line = line_of(&text, key);
            return Err(TemplateError::new(
                index,
                "template",
                format!(
                    "line {line}: renders {key} {}, but the object declares {expected:?}",
                    found.map_or_else(|| "nothing".to_string(), |f| format!("{f:?}"))
                ),
            ));
        }
    }
    let metadata = object.remove("metadata").unwrap_or(Value::Null);
    let metadata = metadata_of(index, &text, &metadata, &name)?;
    for key in ["apiVersion", "kind", "status"] {
        object.remove(key);
    }
    Ok(DynamicObject {
        types: Some(TypeMeta {
            api_version: declared.api_version.clone(),
            kind: declared.kind.clone(),
        }),
        metadata,
        data: value,
    })
}

/// The declared apiVersion (`group/version`, or `version` for the core group) and kind,
/// which name the API served: each a plain word, nothing a URL path could misread.
fn declared_kind(index: usize, declared: &TemplateObject) -> Result<(), TemplateError> {
    let word = |text: &str| !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric());
    // A DNS name: dots between words, never `..`.
    let group = |text: &str| text.split('.').all(|part| word(&part.replace('-', "")));
    let parts: Vec<&str> = declared.api_version.split('/').collect();
    if parts.len() > 2 || !parts.iter().all(|p| group(p)) {
        return Err(TemplateError::new(
            index,
            "apiVersion",
            format!(
                "{:?} is not group/version (e.g. consul.hashicorp.com/v1alpha1)",
                declared.api_version
            ),
        ));
    }
    let plural_ok = declared.plural.as_deref().is_none_or(word);
    if !word(&declared.kind) || !plural_ok {
        let field = if plural_ok { "kind" } else { "plural" };
        return Err(TemplateError::new(
            index,
            field,
            "a kind and its plural are one word",
        ));
    }
    Ok(())
}

/// The declared name rendered; only placeholders constant over a rollout are allowed in it.
fn rendered_name(
    index: usize,
    declared: &TemplateObject,
    values: &BTreeMap<&'static str, String>,
) -> Result<String, TemplateError> {
    let error = |reason: String| TemplateError::new(index, "name", reason);
    let parsed = Parsed::new(&declared.name).map_err(|e| error(e.to_string()))?;
    if let Some(used) = parsed.uses().find(|u| !NAME_PLACEHOLDERS.contains(&u.name)) {
        return Err(error(format!(
            "${{{}}} changes during a rollout; a name may use {}",
            used.name,
            NAME_PLACEHOLDERS.join(", ")
        )));
    }
    let name = parsed.render(values).map_err(|e| error(e.to_string()))?;
    if name.is_empty() {
        return Err(error("the object needs a name".into()));
    }
    Ok(name)
}

/// The rendered metadata: its name the declared one, no namespace of its own (serin writes
/// into the Canary's), labels and annotations kept.
fn metadata_of(
    index: usize,
    text: &str,
    metadata: &Value,
    name: &str,
) -> Result<ObjectMeta, TemplateError> {
    let refuse = |line: usize, reason: String| {
        TemplateError::new(index, "template", format!("line {line}: {reason}"))
    };
    let found = metadata.get("name").and_then(Value::as_str);
    if found != Some(name) {
        return Err(refuse(
            line_of_name(text),
            format!(
                "renders metadata.name {}, but the object declares {name:?}",
                found.map_or_else(|| "nothing".to_string(), |f| format!("{f:?}"))
            ),
        ));
    }
    if metadata.get("namespace").is_some() {
        return Err(refuse(
            line_of_name(text),
            "metadata.namespace: serin writes into the Canary's namespace; remove it".into(),
        ));
    }
    let strings = |key: &str| -> Result<Option<BTreeMap<String, String>>, TemplateError> {
        match metadata.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(map) => serde_json::from_value(map.clone()).map(Some).map_err(|_| {
                refuse(
                    line_of(text, "metadata"),
                    format!(
                        "metadata.{key} must map names to strings (quote numbers and booleans)"
                    ),
                )
            }),
        }
    };
    Ok(ObjectMeta {
        name: Some(name.to_string()),
        labels: strings("labels")?,
        annotations: strings("annotations")?,
        ..ObjectMeta::default()
    })
}

/// The line (from 1) where a top-level `key` is written, for errors; 1 when not found.
fn line_of(text: &str, key: &str) -> usize {
    let prefix = format!("{key}:");
    text.lines()
        .position(|line| line.starts_with(&prefix))
        .map_or(1, |at| at + 1)
}

/// The line of metadata's `name`, or of `metadata` itself.
fn line_of_name(text: &str) -> usize {
    let start = line_of(text, "metadata");
    let lines = text.lines().enumerate().skip(start);
    let found = lines
        .take_while(|(_, line)| line.starts_with(' ') || line.is_empty())
        .find(|(_, line)| line.trim_start().starts_with("name:"));
    found.map_or(start, |(at, _)| at + 1)
}

/// What `check` and the controller refuse in a template (`api::route_template::refused`):
/// each object rendered for a sample step of the analysis, and the placeholders the
/// analysis needs.
pub fn refused(spec: &CanarySpec, template: &RouteTemplate) -> Vec<FieldError> {
    let analysis = &spec.analysis;
    let sample = Traffic {
        primary: 90,
        canary: 10,
        matched_to_canary: !analysis.matches.is_empty(),
        mirror: analysis.mirror.then_some(50),
    };
    let values = values(spec, "default", sample);
    let mut refused = Vec::new();
    let mut parsed = Vec::new();
    let mut seen = HashSet::new();
    for (index, declared) in template.objects.iter().enumerate() {
        match render(index, declared, &values) {
            Ok(object) => {
                let key = (declared.kind.clone(), object.metadata.name.clone());
                if !seen.insert(key) {
                    refused.push(
                        TemplateError::new(index, "name", "another object has this kind and name")
                            .field_error(),
                    );
                }
            }
            Err(error) => refused.push(error.field_error()),
        }
        if let Ok(text) = Parsed::new(&declared.template) {
            parsed.push(text);
        }
    }
    if !refused.is_empty() {
        return refused;
    }
    let uses = |names: &[&str]| parsed.iter().any(|p| p.uses_any(names));
    if !uses(WEIGHTS) {
        refused.push(FieldError::new(
            "spec.service.routeTemplate.objects",
            "no object names where the weights go: write ${canary.weight} (or ${primary.weight}) where the router reads them",
        ));
    }
    if !analysis.matches.is_empty() && !uses(MATCH) {
        refused.push(FieldError::new(
            "spec.analysis.match",
            "the route template does not say where matching requests go: use ${match.enabled} or ${match.weight} (and ${match.json} or the matches written out)",
        ));
    }
    if analysis.mirror && !uses(MIRROR) {
        refused.push(FieldError::new(
            "spec.analysis.mirror",
            "the route template does not mirror: use ${mirror.enabled} or ${mirror.weight}",
        ));
    }
    refused
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;
    use serde_json::json;

    use super::*;
    use crate::api::Canary;
    use crate::api::provider::{TrafficProvider, admit};
    use crate::routing::tests::inputs_for;

    const AWS: &str =
        include_str!("../../examples/route-templates/aws-load-balancer-controller.yaml");
    const CONSUL: &str = include_str!("../../examples/route-templates/consul.yaml");
    const EMISSARY: &str = include_str!("../../examples/route-templates/emissary.yaml");

    fn example(text: &str) -> CanarySpec {
        serde_yaml_ng::from_str::<Canary>(text).unwrap().spec
    }

    fn rendered(spec: &CanarySpec, traffic: Traffic) -> Vec<DynamicObject> {
        Template.objects(&inputs_for(spec), traffic).unwrap()
    }

    /// `spec` with its one object's template replaced by `text`.
    fn with_template(text: &str) -> CanarySpec {
        let mut spec = example(CONSUL);
        let template = spec.service.route_template.as_mut().unwrap();
        template.objects[0].template = text.to_string();
        spec
    }

    fn refusals(spec: &CanarySpec) -> Vec<String> {
        let provider = TrafficProvider::parse("template").unwrap();
        admit(provider, spec)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_worked_examples_are_accepted() {
        for text in [AWS, CONSUL, EMISSARY] {
            assert_eq!(refusals(&example(text)), Vec::<String>::new());
        }
    }

    #[test]
    fn the_aws_ingress_carries_the_weights_in_its_forward_action() {
        let spec = example(AWS);
        let [ingress] = rendered(&spec, Traffic::weights(70, 30))
            .try_into()
            .unwrap();
        assert_eq!(ingress.name_any(), "podinfo");
        assert_eq!(ingress.namespace().as_deref(), Some("test"));
        let types = ingress.types.as_ref().unwrap();
        assert_eq!(
            (types.api_version.as_str(), types.kind.as_str()),
            ("networking.k8s.io/v1", "Ingress")
        );
        let action = &ingress.annotations()["alb.ingress.kubernetes.io/actions.podinfo-split"];
        let action: Value = serde_json::from_str(action).unwrap();
        assert_eq!(
            action["forwardConfig"]["targetGroups"],
            json!([{"serviceName": "podinfo-primary", "servicePort": "80", "weight": 70},
                {"serviceName": "podinfo-canary", "servicePort": "80", "weight": 30}])
        );
        let backend = &ingress.data["spec"]["rules"][0]["http"]["paths"][0]["backend"];
        assert_eq!(
            backend["service"],
            json!({"name": "podinfo-split", "port": {"name": "use-annotation"}})
        );
        assert!(ingress.data.get("metadata").is_none() && ingress.data.get("kind").is_none());
        let (resource, name) = Template.taken_over(&inputs_for(&spec)).unwrap();
        assert_eq!(
            (
                resource.plural.as_str(),
                resource.group.as_str(),
                name.as_str()
            ),
            ("ingresses", "networking.k8s.io", "podinfo")
        );
    }

    #[test]
    fn the_consul_splitter_and_emissary_mappings_follow_each_step() {
        let spec = example(CONSUL);
        for (primary, canary) in [(100, 0), (60, 40), (0, 100)] {
            let [splitter] = rendered(&spec, Traffic::weights(primary, canary))
                .try_into()
                .unwrap();
            assert_eq!(
                splitter.data["spec"]["splits"],
                json!([{"weight": primary, "service": "podinfo-primary"},
                    {"weight": canary, "service": "podinfo-canary"}])
            );
        }
        let resources = Template.resources_for(&inputs_for(&spec));
        assert_eq!(resources[0].plural, "servicesplitters");
        let spec = example(EMISSARY);
        let mappings = rendered(&spec, Traffic::weights(80, 20));
        let names: Vec<String> = mappings.iter().map(|m| m.name_any()).collect();
        assert_eq!(names, ["podinfo", "podinfo-canary"]);
        assert_eq!(
            mappings[0].data["spec"]["service"],
            "podinfo-primary.test:80"
        );
        assert!(mappings[0].data["spec"].get("weight").is_none());
        assert_eq!(
            mappings[1].data["spec"]["service"],
            "podinfo-canary.test:80"
        );
        assert_eq!(mappings[1].data["spec"]["weight"], 20);
        assert_eq!(
            Template.resources_for(&inputs_for(&spec))[0].plural,
            "mappings"
        );
    }

    #[test]
    fn the_match_and_mirror_placeholders_follow_the_traffic() {
        let mut spec = with_template(
            "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceSplitter\nmetadata:\n  name: ${service.name}\nspec:\n  ab: ${match.enabled}\n  abWeight: ${match.weight}\n  matches: ${match.json}\n  mirror: ${mirror.enabled}\n  mirrored: ${mirror.weight}\n  canary: ${canary.weight}\n",
        );
        spec.analysis = serde_yaml_ng::from_str(
            "{iterations: 5, match: [{headers: {x-canary: {exact: insider}}}]}",
        )
        .unwrap();
        let matched = Traffic {
            matched_to_canary: true,
            ..Traffic::PRIMARY
        };
        let [object] = rendered(&spec, matched).try_into().unwrap();
        assert_eq!(
            object.data["spec"],
            json!({"ab": true, "abWeight": 100, "matches": [{"headers": {"x-canary": {"exact": "insider"}}}],
                "mirror": false, "mirrored": 0, "canary": 0})
        );
        let mirrored = Traffic {
            mirror: Some(40),
            ..Traffic::PRIMARY
        };
        let [object] = rendered(&spec, mirrored).try_into().unwrap();
        assert_eq!(
            (
                &object.data["spec"]["ab"],
                &object.data["spec"]["mirror"],
                &object.data["spec"]["mirrored"]
            ),
            (&json!(false), &json!(true), &json!(40))
        );
    }

    #[test]
    fn a_template_that_does_not_render_is_refused_with_its_line() {
        let field = "spec.service.routeTemplate.objects[0].template";
        let unknown = with_template(
            "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceSplitter\nmetadata:\n  name: ${service.name}\nspec:\n  splits:\n  - weight: ${canary.wieght}\n",
        );
        let refused = refusals(&unknown);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with(&format!(
                "{field}: line 7: unknown placeholder ${{canary.wieght}}"
            )),
            "{refused:?}"
        );
        let unterminated =
            with_template("apiVersion: v1\nkind: ServiceSplitter\nspec: ${canary.weight\n");
        assert_eq!(
            refusals(&unterminated),
            [format!(
                "{field}: line 3: `${{` without a closing `}}` on the same line"
            )]
        );
        let not_yaml = with_template(
            "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceSplitter\nmetadata:\n  name: ${service.name}\nspec:\n  splits: [${canary.weight}\n  other: {\n",
        );
        let refused = refusals(&not_yaml);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with(&format!("{field}: line ")) && refused[0].contains("not YAML"),
            "{refused:?}"
        );
        let error = Template
            .objects(&inputs_for(&unknown), Traffic::PRIMARY)
            .unwrap_err();
        assert!(
            error.to_string().contains("line 7: unknown placeholder"),
            "{error}"
        );
    }

    #[test]
    fn a_template_expanding_aliases_without_end_is_refused_not_expanded() {
        // Nine levels of nine aliases: 387 million nodes if expanded.
        let mut text = String::from(
            "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceSplitter\nmetadata:\n  name: ${service.name}\nspec:\n  a0: &a0 [${canary.weight}]\n",
        );
        for level in 1..10 {
            let previous = format!("*a{}", level - 1);
            let list = [previous.as_str(); 9].join(", ");
            text.push_str(&format!("  a{level}: &a{level} [{list}]\n"));
        }
        let refused = refusals(&with_template(&text));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("not YAML"), "{refused:?}");
    }

    #[test]
    fn a_template_rendering_another_kind_or_name_is_refused_with_its_line() {
        let field = "spec.service.routeTemplate.objects[0].template";
        let kind = with_template(
            "# Consul\napiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceRouter\nmetadata:\n  name: ${service.name}\nspec: {weight: ${canary.weight}}\n",
        );
        assert_eq!(
            refusals(&kind),
            [format!(
                "{field}: line 3: renders kind \"ServiceRouter\", but the object declares \"ServiceSplitter\""
            )]
        );
        let version = with_template("apiVersion: consul.hashicorp.com/v1\nkind: ServiceSplitter\n");
        assert!(refusals(&version)[0].starts_with(&format!("{field}: line 1: renders apiVersion")));
        let name = with_template(
            "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceSplitter\nmetadata:\n  labels: {app: x}\n  name: ${primary.service}\nspec: {weight: ${canary.weight}}\n",
        );
        assert_eq!(
            refusals(&name),
            [format!(
                "{field}: line 5: renders metadata.name \"podinfo-primary\", but the object declares \"podinfo\""
            )]
        );
        let namespaced = with_template(
            "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceSplitter\nmetadata:\n  name: ${service.name}\n  namespace: prod\nspec: {weight: ${canary.weight}}\n",
        );
        assert!(
            refusals(&namespaced)[0]
                .contains("metadata.namespace: serin writes into the Canary's namespace")
        );
        let mut odd = example(CONSUL);
        odd.service.route_template.as_mut().unwrap().objects[0].api_version = "a/b/c".into();
        assert_eq!(
            refusals(&odd),
            [
                "spec.service.routeTemplate.objects[0].apiVersion: \"a/b/c\" is not group/version (e.g. consul.hashicorp.com/v1alpha1)"
            ]
        );
        let mut odd = example(CONSUL);
        odd.service.route_template.as_mut().unwrap().objects[0].plural = Some("../secrets".into());
        assert_eq!(
            refusals(&odd),
            ["spec.service.routeTemplate.objects[0].plural: a kind and its plural are one word"]
        );
        let mut twice = example(EMISSARY);
        let template = twice.service.route_template.as_mut().unwrap();
        template.objects[1] = template.objects[0].clone();
        assert_eq!(
            refusals(&twice),
            ["spec.service.routeTemplate.objects[1].name: another object has this kind and name"]
        );
        let mut moving = example(CONSUL);
        moving.service.route_template.as_mut().unwrap().objects[0].name =
            "x-${canary.weight}".into();
        assert_eq!(
            refusals(&moving),
            [
                "spec.service.routeTemplate.objects[0].name: ${canary.weight} changes during a rollout; a name may use service.name, primary.service, canary.service, namespace, target.name"
            ]
        );
    }

    #[test]
    fn a_template_must_say_where_the_weights_the_match_and_the_mirror_go() {
        let fixed = with_template(
            "apiVersion: consul.hashicorp.com/v1alpha1\nkind: ServiceSplitter\nmetadata:\n  name: ${service.name}\nspec:\n  splits: [{weight: 100, service: ${primary.service}}]\n",
        );
        let refused = refusals(&fixed);
        assert_eq!(refused.len(), 1);
        assert!(refused[0].starts_with(
            "spec.service.routeTemplate.objects: no object names where the weights go"
        ));
        let mut ab = example(CONSUL);
        ab.analysis = serde_yaml_ng::from_str(
            "{iterations: 5, mirror: true, match: [{headers: {x: {exact: y}}}]}",
        )
        .unwrap();
        let fields: Vec<String> = refusals(&ab)
            .iter()
            .map(|r| r.split(':').next().unwrap().to_string())
            .collect();
        assert_eq!(fields, ["spec.analysis.match", "spec.analysis.mirror"]);
        let mut plain = example(CONSUL);
        plain.provider = Some("contour".into());
        assert!(
            refusals(&plain).is_empty(),
            "admit asked for the template provider"
        );
        let provider = TrafficProvider::parse("contour").unwrap();
        let refused: Vec<String> = admit(provider, &plain)
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(refused, ["spec.service.routeTemplate"]);
    }
}
