//! What every reconcile shares: the client, the caches fed by the watches, the event recorder,
//! serin's own metrics, and the helpers that write with server-side apply.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::Canary;
use crate::api::group::{ApiGroup, FlaggerCanary, Twin};
use crate::api::provider::TrafficProvider;

use super::configs::ConfigCache;
pub use super::error::{Error, Result, Step};
use super::options::Options;
use super::packed::Packed;
use super::telemetry::Metrics;

/// The field manager of every write serin makes.
pub const MANAGER: &str = "serin";

pub struct Context {
    pub client: Client,
    /// The cluster of `--kubeconfig-service-mesh`, where the mesh's routes live; None when
    /// they live beside the workloads.
    pub mesh: Option<Client>,
    pub options: Options,
    pub default_provider: TrafficProvider,
    pub canaries: Store<Canary>,
    /// `flagger.app` Canaries, with `--flagger-api`.
    pub flagger_canaries: Option<Store<FlaggerCanary>>,
    pub deployments: Store<Packed<Deployment>>,
    /// Turns true once the Deployment store holds its first full list.
    pub deployments_ready: tokio::sync::watch::Receiver<bool>,
    pub daemon_sets: Store<Packed<DaemonSet>>,
    /// The same for DaemonSets: a Canary waits only for the store of its own target's kind, so
    /// a watch that cannot start (a ClusterRole without daemonsets) holds up no other kind.
    pub daemon_sets_ready: tokio::sync::watch::Receiver<bool>,
    pub stateful_sets: Store<Packed<StatefulSet>>,
    pub stateful_sets_ready: tokio::sync::watch::Receiver<bool>,
    /// Knative Services, when the cluster serves them (empty otherwise).
    pub knative_services: Store<Packed<crate::workload::knative::KnativeService>>,
    pub knative_services_ready: tokio::sync::watch::Receiver<bool>,
    /// Whether discovery found the serving.knative.dev/v1 Service API at start.
    pub knative_served: bool,
    /// HPAs, when the cluster serves an autoscaling version serin reads.
    pub autoscalers: Option<(ApiResource, Store<DynamicObject>)>,
    pub configs: ConfigCache,
    pub recorder: super::events::Recorder,
    pub metrics: std::sync::Arc<Metrics>,
    pub http: reqwest::Client,
    /// Clients for metrics servers and alert services with their own TLS or proxy settings.
    pub clients: super::clients::Clients,
    /// Alerts sent recently, so a flapping canary does not flood a channel.
    pub alert_repeats: crate::notify::Repeats,
    /// The Canaries whose last status write the cache has not shown yet (`reconcile::status`):
    /// a reconcile decides from what serin wrote, never from an older cached status.
    pub written: std::sync::Arc<super::pending::Pending>,
    /// Lasting failures in a row per Canary, for when to retry (`super::retry`).
    pub retries: super::retry::Retries,
}

impl Context {
    /// The group `canary` was read from: `flagger.app` when the `flagger.app` cache holds an
    /// object of its uid (uids are unique across the cluster), else `serin.dev`. Looked up
    /// rather than passed along: every write naming the Canary asks here, so none can forget.
    pub fn group_of(&self, canary: &Canary) -> ApiGroup {
        let Some(store) = &self.flagger_canaries else {
            return ApiGroup::Serin;
        };
        let key =
            ObjectRef::new(&canary.name_any()).within(&canary.namespace().unwrap_or_default());
        match store.get(&key) {
            Some(cached) if cached.uid().is_some() && cached.uid() == canary.uid() => {
                ApiGroup::Flagger
            }
            _ => ApiGroup::Serin,
        }
    }

    /// Server-side apply of a typed object, taking ownership of the fields it sets.
    pub async fn apply<K>(&self, object: &K) -> Result<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + Serialize
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let namespace = object.namespace().unwrap_or_default();
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        let kind = K::kind(&K::DynamicType::default()).to_string();
        self.server_side_apply(&api, object, &kind).await
    }

    /// Server-side apply of an object of a kind known at run time (routes, HPAs).
    pub async fn apply_dynamic(
        &self,
        resource: &ApiResource,
        object: &DynamicObject,
    ) -> Result<DynamicObject> {
        let namespace = object.namespace().unwrap_or_default();
        let api = crate::routing::api(self.client.clone(), resource, &namespace);
        self.server_side_apply(&api, object, &resource.kind).await
    }

    /// Whether objects of `resource` live in the service mesh's own cluster: the mesh's
    /// custom resources do, Ingresses and core objects stay beside the workloads (as in
    /// Flagger, whose nginx and skipper routers use the workloads' cluster).
    pub fn in_mesh_cluster(&self, resource: &ApiResource) -> bool {
        // A Knative Service is the target itself, beside the workloads.
        self.mesh.is_some()
            && !matches!(
                resource.group.as_str(),
                "" | "networking.k8s.io" | crate::workload::knative::GROUP
            )
    }

    /// The client of the cluster where objects of `resource` (a route kind) live.
    pub fn route_client(&self, resource: &ApiResource) -> Client {
        match &self.mesh {
            Some(mesh) if self.in_mesh_cluster(resource) => mesh.clone(),
            _ => self.client.clone(),
        }
    }

    /// Server-side applies a route in the cluster where its kind lives.
    pub async fn apply_route(
        &self,
        resource: &ApiResource,
        object: &DynamicObject,
    ) -> Result<DynamicObject> {
        let namespace = object.namespace().unwrap_or_default();
        let api = crate::routing::api(self.route_client(resource), resource, &namespace);
        self.server_side_apply(&api, object, &resource.kind).await
    }

    async fn server_side_apply<K>(&self, api: &Api<K>, object: &K, kind: &str) -> Result<K>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    {
        let name = object.name_any();
        let _timer = self.metrics.api_timer("apply");
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(Error::api(
            Step::Apply,
            format!(
                "applying {kind} {}/{name}",
                object.namespace().unwrap_or_default()
            ),
        ))
    }

    /// Reads one object; a missing object is None, not an error.
    pub async fn get_opt<K>(&self, namespace: &str, name: &str) -> Result<Option<K>>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let _timer = self.metrics.api_timer("get");
        api.get_opt(name).await.map_err(Error::api(
            Step::Observe,
            format!(
                "reading {} {namespace}/{name}",
                K::kind(&K::DynamicType::default())
            ),
        ))
    }
}

/// Reads one object that must exist (a MetricTemplate, an AlertProvider, a Secret); the error
/// names it. A free function: background tasks hold a client, not the Context.
pub async fn get_required<K>(client: &Client, namespace: &str, name: &str) -> Result<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(Error::api(
            Step::Observe,
            format!("reading {kind} {namespace}/{name}"),
        ))?
        .ok_or_else(|| Error::missing(Step::Observe, format!("{kind} {namespace}/{name}")))
}

/// Reads one object that must exist from `group`: a `flagger.app` Canary's MetricTemplates and
/// AlertProviders are Flagger's kinds, in Flagger's group.
pub async fn get_required_in<K>(
    client: &Client,
    group: ApiGroup,
    namespace: &str,
    name: &str,
) -> Result<K>
where
    K: Twin + Clone + DeserializeOwned + std::fmt::Debug,
{
    match group {
        ApiGroup::Serin => get_required::<K>(client, namespace, name).await,
        ApiGroup::Flagger => get_required::<K::Flagger>(client, namespace, name)
            .await
            .map(Into::into),
    }
}

/// A Secret's values as text (trimmed: values are often written with a trailing newline).
/// Errors name the Secret, never its content.
pub async fn read_secret(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, String>> {
    let secret: Secret = get_required(client, namespace, name).await?;
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| {
            String::from_utf8(v.0)
                .ok()
                .map(|v| (k, v.trim().to_string()))
        })
        .collect())
}
