//! A namespace with `serin controller` running as its ServiceAccount, and the moves of a
//! rollout test: a Deployment with a config, a Canary, GitOps applies, manual requests, and
//! reading phases, weights and versions back.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use serin::api::{Canary, Phase};

use super::controller::{ControllerProcess, install, service_account_kubeconfig_as};
use super::workloads::{Readiness, daemon_set, deployment};
use super::{client, eventually, namespace};

pub const WAIT: Duration = Duration::from_secs(90);

pub struct Setup {
    pub client: Client,
    pub ns: String,
    pub controller: ControllerProcess,
}

pub async fn setup(name: &str, extra: &[&str]) -> Setup {
    setup_as(name, extra, "serin").await
}

/// `setup` with the controller bound to the ClusterRole `cluster_role` (a variant of
/// config/rbac.yaml applied by the test).
pub async fn setup_as(name: &str, extra: &[&str], cluster_role: &str) -> Setup {
    let client = client().await;
    install(&client).await;
    let ns = namespace(&client, name).await;
    let kubeconfig = service_account_kubeconfig_as(&client, &ns, cluster_role).await;
    let controller = ControllerProcess::start(&kubeconfig, &ns, extra);
    Setup {
        client,
        ns,
        controller,
    }
}

impl Setup {
    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn daemon_sets(&self) -> Api<DaemonSet> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn canaries(&self) -> Api<Canary> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn routes(&self) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
            "httproutes",
        );
        Api::namespaced_with(self.client.clone(), &self.ns, &resource)
    }

    pub fn ingresses(&self) -> Api<Ingress> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// The user's Ingress `name` of class nginx, sending `/` to the Service `service` (the
    /// nginx provider's `ingressRef`).
    pub async fn create_ingress(&self, name: &str, service: &str) {
        let ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": format!("{name}.example.com"), "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]},
        }))
        .unwrap();
        self.ingresses()
            .create(&PostParams::default(), &ingress)
            .await
            .unwrap();
    }

    pub async fn create_deployment(&self, name: &str, readiness: Readiness) {
        let target = with_config(deployment(name, "v1", 2, readiness));
        self.create_config(name).await;
        self.deployments()
            .create(&PostParams::default(), &target)
            .await
            .unwrap();
    }

    /// A DaemonSet `name` at v1 reading the ConfigMap `<name>-config`, like
    /// `create_deployment`'s.
    pub async fn create_daemon_set(&self, name: &str, readiness: Readiness) {
        self.create_config(name).await;
        self.daemon_sets()
            .create(
                &PostParams::default(),
                &daemon_set_with_config(name, "v1", readiness),
            )
            .await
            .unwrap();
    }

    async fn create_config(&self, name: &str) {
        let config: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("{name}-config")}, "data": {"LEVEL": "info"}}),
        )
        .unwrap();
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &config)
            .await
            .unwrap();
    }

    pub async fn create_canary(&self, name: &str, analysis: Value, extra: Value) {
        self.create_canary_of("Deployment", name, analysis, extra)
            .await;
    }

    /// A Canary of the target `kind` `name`, routed through the Gateway API.
    pub async fn create_canary_of(&self, kind: &str, name: &str, analysis: Value, extra: Value) {
        let mut spec = json!({
            "provider": "gatewayapi",
            "targetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name},
            "progressDeadlineSeconds": 60,
            "service": {"port": 80, "targetPort": 8080, "gatewayRefs": [{"name": "public", "namespace": "gateways"}]},
            "analysis": analysis,
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        let canary: Canary = serde_json::from_value(json!({
            "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        self.canaries()
            .create(&PostParams::default(), &canary)
            .await
            .unwrap();
    }

    /// A manual request, the way `serin promote|abort|...` and users send it.
    pub async fn request(&self, name: &str, action: &str, id: &str) {
        let annotations = json!({"serin.dev/request": action, "serin.dev/request-id": id});
        self.canaries()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
            )
            .await
            .unwrap();
    }

    pub async fn phase(&self, name: &str) -> Option<Phase> {
        self.canaries().get(name).await.ok()?.status?.phase
    }

    pub async fn wait_phase(&self, name: &str, phase: Phase) {
        eventually(&format!("Canary {name} {phase:?}"), WAIT, || async move {
            (self.phase(name).await == Some(phase)).then_some(())
        })
        .await;
    }

    /// (primary, canary) weights of the HTTPRoute's main rule.
    pub async fn weights(&self, route: &str) -> Option<(i64, i64)> {
        let route = self.routes().get(route).await.ok()?;
        let rules = route.data["spec"]["rules"].as_array()?;
        let backends = rules.last()?["backendRefs"].as_array()?;
        Some((
            backends[0]["weight"].as_i64()?,
            backends[1]["weight"].as_i64()?,
        ))
    }

    pub async fn replicas(&self, name: &str) -> Option<i32> {
        self.deployments().get(name).await.ok()?.spec?.replicas
    }

    pub async fn primary_version(&self, name: &str) -> Option<String> {
        let primary = self
            .deployments()
            .get(&format!("{name}-primary"))
            .await
            .ok()?;
        let env = primary.spec?.template.spec?.containers[0].env.clone()?;
        env.iter()
            .find(|e| e.name == "VERSION")
            .and_then(|e| e.value.clone())
    }

    /// The VERSION the `-primary` DaemonSet's pods run.
    pub async fn primary_daemon_set_version(&self, name: &str) -> Option<String> {
        let primary = self
            .daemon_sets()
            .get(&format!("{name}-primary"))
            .await
            .ok()?;
        let env = primary.spec?.template.spec?.containers[0].env.clone()?;
        env.iter()
            .find(|e| e.name == "VERSION")
            .and_then(|e| e.value.clone())
    }

    /// (desired, ready) pods of a DaemonSet as its status counts them, once the status
    /// describes the latest spec (None before).
    pub async fn daemon_set_pods(&self, name: &str) -> Option<(i32, i32)> {
        let daemon_set = self.daemon_sets().get(name).await.ok()?;
        let status = daemon_set.status?;
        (status.observed_generation? >= daemon_set.metadata.generation?)
            .then_some((status.desired_number_scheduled, status.number_ready))
    }

    /// The node selector of a DaemonSet's pod template.
    pub async fn node_selector(&self, name: &str) -> BTreeMap<String, String> {
        let daemon_set = self.daemon_sets().get(name).await.unwrap();
        daemon_set
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|pod| pod.node_selector)
            .unwrap_or_default()
    }

    /// Flux's server-side apply of the DaemonSet manifest at `version`.
    pub async fn gitops_apply_daemon_set(&self, name: &str, version: &str) {
        self.gitops_apply_daemon_set_with(name, version, Readiness::Ready)
            .await;
    }

    pub async fn gitops_apply_daemon_set_with(
        &self,
        name: &str,
        version: &str,
        readiness: Readiness,
    ) {
        let mut manifest = daemon_set_with_config(name, version, readiness);
        manifest.metadata.namespace = Some(self.ns.clone());
        let mut value = serde_json::to_value(&manifest).unwrap();
        value["apiVersion"] = json!("apps/v1");
        value["kind"] = json!("DaemonSet");
        self.daemon_sets()
            .patch(
                name,
                &PatchParams::apply("flux").force(),
                &Patch::Apply(&value),
            )
            .await
            .unwrap();
    }

    /// What Flux does: server-side apply of the whole manifest under its own field manager.
    pub async fn gitops_apply(&self, name: &str, version: &str) {
        let mut manifest = with_config(deployment(name, version, 2, Readiness::Ready));
        manifest.metadata.namespace = Some(self.ns.clone());
        // Replicas stay out of git, as docs/controller.md advises.
        manifest.spec.as_mut().unwrap().replicas = None;
        let mut value = serde_json::to_value(&manifest).unwrap();
        value["apiVersion"] = json!("apps/v1");
        value["kind"] = json!("Deployment");
        self.deployments()
            .patch(
                name,
                &PatchParams::apply("flux").force(),
                &Patch::Apply(&value),
            )
            .await
            .unwrap();
    }
}

/// The Deployment reading its settings from the ConfigMap `<name>-config` (envFrom).
pub fn with_config(mut target: Deployment) -> Deployment {
    let name = target.name_any();
    let pod = target
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap();
    pod.containers[0].env_from = Some(vec![
        serde_json::from_value(json!({"configMapRef": {"name": format!("{name}-config")}}))
            .unwrap(),
    ]);
    target
}

/// The DaemonSet reading its settings from the ConfigMap `<name>-config` (envFrom).
pub fn daemon_set_with_config(name: &str, version: &str, readiness: Readiness) -> DaemonSet {
    let mut target = daemon_set(name, version, readiness);
    let pod = target
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap();
    pod.containers[0].env_from = Some(vec![
        serde_json::from_value(json!({"configMapRef": {"name": format!("{name}-config")}}))
            .unwrap(),
    ]);
    target
}

pub fn steps() -> Value {
    json!({"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50})
}
