//! Route templates (`provider: template`) end to end on the real control plane: the three
//! worked examples of examples/route-templates/ (an AWS Load Balancer Controller Ingress, a
//! Consul ServiceSplitter, Emissary Mappings, their CRDs minimal under tests/fixtures/crds)
//! roll out, promote, roll back, take over and restore, with `serin controller` as its
//! ServiceAccount granted the templates' kinds the way the chart's `rbac.routeTemplateRules`
//! does; without that grant, and with a broken template, the Canary says why.

mod cluster;
mod mock;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use serin::api::{Canary, Phase};

use cluster::eventually;
use cluster::rollout::{Setup, WAIT, setup_as};
use cluster::workloads::Readiness;

/// The ClusterRole of config/rbac.yaml plus the templates' kinds (Ingresses are granted
/// already, for the nginx provider).
const ROLE: &str = "serin-route-templates";

#[derive(Clone, Copy, PartialEq)]
enum Example {
    Aws,
    Consul,
    Emissary,
}

use Example::{Aws, Consul, Emissary};

impl Example {
    /// The Canary's and Deployment's name for this example.
    fn name(self) -> &'static str {
        match self {
            Aws => "aws",
            Consul => "consul",
            Emissary => "emissary",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Aws => "aws-load-balancer-controller.yaml",
            Consul => "consul.yaml",
            Emissary => "emissary.yaml",
        }
    }

    /// The example's `spec.service.routeTemplate`, as documented.
    fn template(self) -> Value {
        let path = format!(
            "{}/examples/route-templates/{}",
            env!("CARGO_MANIFEST_DIR"),
            self.file()
        );
        let canary: Canary = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", self.file()));
        serde_json::to_value(canary.spec.service.route_template).unwrap()
    }

    fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Aws => ("networking.k8s.io", "v1", "Ingress", "ingresses"),
            Consul => (
                "consul.hashicorp.com",
                "v1alpha1",
                "ServiceSplitter",
                "servicesplitters",
            ),
            Emissary => ("getambassador.io", "v3alpha1", "Mapping", "mappings"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    fn api(self, s: &Setup) -> Api<DynamicObject> {
        Api::namespaced_with(s.client.clone(), &s.ns, &self.resource())
    }

    async fn get(self, s: &Setup, name: &str) -> Option<DynamicObject> {
        self.api(s).get_opt(name).await.ok()?
    }

    /// (primary, canary) weights as the router reading the example's objects sees them.
    async fn weights(self, s: &Setup) -> Option<(i64, i64)> {
        let name = self.name();
        let route = self.get(s, name).await?;
        let of = |list: &[Value], key: &str, role: &str| {
            let service = format!("{name}-{role}");
            list.iter()
                .find(|t| t[key] == service.as_str())
                .and_then(|t| t["weight"].as_i64())
        };
        match self {
            Aws => {
                let key = format!("alb.ingress.kubernetes.io/actions.{name}-split");
                let action: Value = serde_json::from_str(route.annotations().get(&key)?).ok()?;
                let groups = action["forwardConfig"]["targetGroups"].as_array()?;
                Some((
                    of(groups, "serviceName", "primary")?,
                    of(groups, "serviceName", "canary")?,
                ))
            }
            Consul => {
                let splits = route.data["spec"]["splits"].as_array()?;
                Some((
                    of(splits, "service", "primary")?,
                    of(splits, "service", "canary")?,
                ))
            }
            // The Mapping without a weight gets what the canary's leaves.
            Emissary => {
                let primary = format!("{name}-primary.{}:80", s.ns);
                if route.data["spec"]["service"] != primary.as_str() {
                    return None;
                }
                let canary = self.get(s, &format!("{name}-canary")).await?;
                let weight = canary.data["spec"]["weight"].as_i64()?;
                Some((100 - weight, weight))
            }
        }
    }

    /// The route as its owner wrote it before serin: spec and annotations.
    fn existing(self) -> (Value, Value) {
        let name = self.name();
        match self {
            Aws => (
                json!({"ingressClassName": "alb", "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}),
                json!({"alb.ingress.kubernetes.io/scheme": "internal", "team": "web"}),
            ),
            Consul => (
                json!({"splits": [{"weight": 100, "service": name}]}),
                json!({"team": "web"}),
            ),
            Emissary => (
                json!({"hostname": "*", "prefix": "/emissary/", "service": format!("{name}:80")}),
                json!({"team": "web"}),
            ),
        }
    }

    async fn create_existing(self, s: &Setup) {
        let resource = self.resource();
        let (spec, annotations) = self.existing();
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": resource.api_version, "kind": resource.kind,
            "metadata": {"name": self.name(), "annotations": annotations}, "spec": spec,
        }))
        .unwrap();
        self.api(s)
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
}

const EXAMPLES: [Example; 3] = [Aws, Consul, Emissary];

fn extra(template: Value, more: Value) -> Value {
    let mut extra = json!({"provider": "template",
        "service": {"port": 80, "targetPort": 8080, "routeTemplate": template}});
    if let (Some(extra), Some(more)) = (extra.as_object_mut(), more.as_object()) {
        extra.extend(more.clone());
    }
    extra
}

/// A controller bound to config/rbac.yaml plus the rules an operator lists in the chart's
/// `rbac.routeTemplateRules` for these templates.
async fn controller(test: &str) -> Setup {
    let client = cluster::client().await;
    cluster::controller::install_role_variant(&client, ROLE, |rules| {
        for (group, resource) in [
            ("consul.hashicorp.com", "servicesplitters"),
            ("getambassador.io", "mappings"),
        ] {
            rules.push(PolicyRule {
                api_groups: Some(vec![group.into()]),
                resources: Some(vec![resource.into()]),
                verbs: ["get", "create", "patch", "update"]
                    .map(String::from)
                    .into(),
                ..PolicyRule::default()
            });
        }
    })
    .await;
    setup_as(test, &[], ROLE).await
}

/// Initialization writes the objects at 100% primary; a new revision steps the weights to
/// maxWeight; promotion ends at 100% primary on the new revision; an aborted revision rolls
/// back to 100% primary; deleting the Canary deletes the objects it owns.
#[tokio::test]
async fn the_worked_templates_roll_out_promote_and_roll_back() {
    let s = controller("route-templates").await;
    // A confirm-promotion gate saying no holds each rollout at its last step until promoted.
    let gate = mock::serve(|_| mock::Reply::status(403, "held")).await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": gate.url}]});
    for example in EXAMPLES {
        s.create_deployment(example.name(), Readiness::Ready).await;
        s.create_canary(
            example.name(),
            analysis.clone(),
            extra(example.template(), json!({})),
        )
        .await;
    }
    for example in EXAMPLES {
        let name = example.name();
        s.wait_phase(name, Phase::Initialized).await;
        let object = example.get(&s, name).await.unwrap();
        assert_eq!(object.owner_references()[0].kind, "Canary", "{name}");
        assert_eq!(example.weights(&s).await, Some((100, 0)), "{name}");
        s.gitops_apply(name, "v2").await;
    }
    for example in EXAMPLES {
        let name = example.name();
        s.wait_phase(name, Phase::WaitingPromotion).await;
        assert_eq!(example.weights(&s).await, Some((50, 50)), "{name}");
        s.request(name, "promote", "1").await;
    }
    for example in EXAMPLES {
        let name = example.name();
        s.wait_phase(name, Phase::Succeeded).await;
        assert_eq!(example.weights(&s).await, Some((100, 0)), "{name}");
        assert_eq!(s.primary_version(name).await.as_deref(), Some("v2"));
        s.gitops_apply(name, "v3").await;
    }
    for example in EXAMPLES {
        let name = example.name();
        s.wait_phase(name, Phase::WaitingPromotion).await;
        s.request(name, "abort", "2").await;
    }
    for example in EXAMPLES {
        let name = example.name();
        s.wait_phase(name, Phase::Failed).await;
        assert_eq!(example.weights(&s).await, Some((100, 0)), "{name}");
        assert_eq!(s.primary_version(name).await.as_deref(), Some("v2"));
        s.canaries()
            .delete(name, &Default::default())
            .await
            .unwrap();
    }
    for example in EXAMPLES {
        let name = example.name();
        eventually(&format!("{name} deleted with its Canary"), WAIT, || async {
            example.get(&s, name).await.is_none().then_some(())
        })
        .await;
    }
}

/// A route that existed before the Canary is taken over, not owned: serin writes its weights
/// and, with revertOnDeletion, puts its spec and annotations back (the AWS Ingress's weighted
/// action annotation goes with them).
#[tokio::test]
async fn a_pre_existing_route_is_taken_over_and_restored() {
    let s = controller("route-template-takeover").await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50});
    for example in EXAMPLES {
        example.create_existing(&s).await;
        s.create_deployment(example.name(), Readiness::Ready).await;
        let more = json!({"revertOnDeletion": true});
        s.create_canary(
            example.name(),
            analysis.clone(),
            extra(example.template(), more),
        )
        .await;
    }
    for example in EXAMPLES {
        let name = example.name();
        s.wait_phase(name, Phase::Initialized).await;
        assert_eq!(example.weights(&s).await, Some((100, 0)), "{name}");
        let taken = example.get(&s, name).await.unwrap();
        assert!(
            taken.owner_references().is_empty(),
            "{name}: not serin's to delete"
        );
        assert!(taken.annotations().contains_key("serin.dev/original-spec"));
        s.canaries()
            .delete(name, &Default::default())
            .await
            .unwrap();
    }
    for example in EXAMPLES {
        let name = example.name();
        eventually(&format!("Canary {name} gone"), WAIT, || async {
            s.canaries()
                .get_opt(name)
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await;
        let restored = example.get(&s, name).await.unwrap();
        let (spec, annotations) = example.existing();
        assert_eq!(restored.data["spec"], spec, "{name}");
        let kept: Value = serde_json::to_value(restored.annotations()).unwrap();
        assert_eq!(kept, annotations, "{name}: the annotations as they were");
    }
}

/// The Stalled condition's (reason, message) of Canary `name`.
async fn stalled(s: &Setup, name: &str) -> Option<(String, String)> {
    let canary: Canary = s.canaries().get(name).await.ok()?;
    let condition = canary
        .status?
        .conditions
        .into_iter()
        .find(|c| c.kind == "Stalled" && c.status == "True")?;
    Some((condition.reason, condition.message))
}

/// Without the grant of its kind the Canary is Stalled `Forbidden`, saying what to grant, and
/// the controller goes on; a template naming an unknown placeholder is Stalled `InvalidSpec`
/// with the line named, before anything is written.
#[tokio::test]
async fn a_kind_not_granted_or_a_broken_template_stalls_the_canary_with_the_reason() {
    let s = setup_as("route-template-refused", &[], "serin").await;
    let analysis = json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50});
    s.create_deployment("consul", Readiness::Ready).await;
    s.create_canary(
        "consul",
        analysis.clone(),
        extra(Consul.template(), json!({})),
    )
    .await;
    let mut broken = Consul.template();
    let text = broken["objects"][0]["template"]
        .as_str()
        .unwrap()
        .replace("${canary.weight}", "${canary.wieght}");
    broken["objects"][0]["template"] = json!(text);
    s.create_deployment("broken", Readiness::Ready).await;
    s.create_canary("broken", analysis, extra(broken, json!({})))
        .await;
    let (reason, message) = eventually("consul Stalled", WAIT, || async {
        stalled(&s, "consul").await
    })
    .await;
    assert_eq!(reason, "Forbidden", "{message}");
    assert!(message.contains("\"servicesplitters\""), "{message}");
    assert!(message.contains("rbac.routeTemplateRules"), "{message}");
    let (reason, message) = eventually("broken Stalled", WAIT, || async {
        stalled(&s, "broken").await
    })
    .await;
    assert_eq!(reason, "InvalidSpec", "{message}");
    assert!(
        message.contains("spec.service.routeTemplate.objects[0].template: line 9: unknown placeholder ${canary.wieght}"),
        "{message}"
    );
    assert!(Consul.get(&s, "broken").await.is_none(), "nothing written");
    // Granted the kind the way the chart's rbac.routeTemplateRules does, the stalled Canary
    // is retried and goes on: no restart, no crash loop.
    grant_splitters(&s).await;
    s.wait_phase("consul", Phase::Initialized).await;
    assert_eq!(Consul.weights(&s).await, Some((100, 0)));
}

/// A ClusterRole allowing ServiceSplitters, bound to the test's controller.
async fn grant_splitters(s: &Setup) {
    let name = format!("splitters-{}", s.ns);
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["consul.hashicorp.com"], "resources": ["servicesplitters"],
            "verbs": ["get", "create", "patch", "update"]}],
    }))
    .unwrap();
    Api::<ClusterRole>::all(s.client.clone())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "serin", "namespace": s.ns}],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(s.client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}
