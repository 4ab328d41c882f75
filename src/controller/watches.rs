//! The watches besides the Canaries' own, and how their events reach a Canary. Each is
//! bounded: Deployments, DaemonSets, StatefulSets and Knative Services (when served) packed
//! as their JSON without managedFields and kubectl's last-applied copy (`super::packed`, a
//! stamped primary without its pods), ConfigMaps and Secrets as metadata only, HPAs; never
//! Pods. An event is mapped to its Canaries through each group's index of them by target
//! name (`super::target_index`), not by scanning the Canary cache: a scan per event was a
//! quarter of the controller's CPU at 10,000 Canaries.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::Discovery;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::Canary;
use crate::api::group::FlaggerCanary;
use crate::workload::autoscaler::scaled_workload;
use crate::workload::configs::{ConfigKind, ConfigRef};
use crate::workload::knative::KnativeService;
use crate::workload::primary::PRIMARY_SUFFIX;
use crate::workload::target::Workload;
use futures::channel::mpsc::UnboundedSender;

use super::configs::ConfigCache;
use super::freshness;
use super::options::{Options, SecretsAccess};
use super::packed::{self, Packed, strip};
use super::scoped;
use super::target_index::TargetIndex;
use super::telemetry::Metrics;

type Events<K> = std::pin::Pin<Box<dyn Stream<Item = Result<K, watcher::Error>> + Send>>;

pub struct Streams {
    deployments: Events<Packed<Deployment>>,
    daemon_sets: Events<Packed<DaemonSet>>,
    stateful_sets: Events<Packed<StatefulSet>>,
    /// None when the cluster does not serve Knative Services.
    knative_services: Option<Events<Packed<KnativeService>>>,
    configmaps: Events<PartialObjectMeta<ConfigMap>>,
    /// None with `--secrets-access=by-name`: Secrets are then read by name at each reconcile.
    secrets: Option<Events<PartialObjectMeta<Secret>>>,
    autoscalers: Option<(ApiResource, Events<DynamicObject>)>,
}

pub struct Stores {
    pub deployments: Store<Packed<Deployment>>,
    pub daemon_sets: Store<Packed<DaemonSet>>,
    pub stateful_sets: Store<Packed<StatefulSet>>,
    pub knative_services: Store<Packed<KnativeService>>,
    pub knative_served: bool,
    pub configs: ConfigCache,
    pub autoscalers: Option<(ApiResource, Store<DynamicObject>)>,
}

/// How a broken watch is retried: from 100 ms, doubling up to 3 s, with jitter, and back to
/// 100 ms after 30 s without an error. kube-runtime's default (800 ms up to 30 s, reset after
/// 120 s) compounds across an API server restart: the connection errors while it is down and
/// the "too old resourceVersion" answers of its fresh watch cache pushed each retry further
/// out, and the controller saw no Deployment event for minutes. A relist costs the API server
/// one list per watch; a few seconds of delay are plenty to spare it.
pub struct WatchBackoff(ResetTimerBackoff<Exponential>);

pub struct Exponential {
    builder: backon::ExponentialBuilder,
    delays: backon::ExponentialBackoff,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        use backon::BackoffBuilder;
        let builder = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(3))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        let exponential = Exponential {
            delays: builder.build(),
            builder,
        };
        Self(ResetTimerBackoff::new(exponential, Duration::from_secs(30)))
    }
}

impl Iterator for Exponential {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.delays.next()
    }
}

impl Backoff for Exponential {
    fn reset(&mut self) {
        use backon::BackoffBuilder;
        self.delays = self.builder.build();
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.0.next()
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.0.reset();
    }
}

pub async fn start(
    client: &Client,
    options: &Options,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Streams, Stores)> {
    let (deployments, writer) = reflector::store();
    let deployment_events = cached(
        "deployments",
        scoped::<Packed<Deployment>>(client, options),
        writer,
        metrics,
    );
    let (daemon_sets, writer) = reflector::store();
    let daemon_set_events = cached(
        "daemonsets",
        scoped::<Packed<DaemonSet>>(client, options),
        writer,
        metrics,
    );
    let (stateful_sets, writer) = reflector::store();
    let stateful_set_events = cached(
        "statefulsets",
        scoped::<Packed<StatefulSet>>(client, options),
        writer,
        metrics,
    );
    // Without the API the writer is dropped: the store is ready at once, and stays empty.
    let (knative_services, writer) = reflector::store();
    let knative_served = knative_served(client).await;
    let knative_events = knative_served.then(|| {
        cached(
            "knative-services",
            scoped::<Packed<KnativeService>>(client, options),
            writer,
            metrics,
        )
    });
    let (configmaps, writer) = reflector::store();
    let configmap_events = cached(
        "configmaps",
        scoped::<PartialObjectMeta<ConfigMap>>(client, options),
        writer,
        metrics,
    );
    // By name: the store stays empty, so every checksum is read afresh (configs.rs).
    let (secrets, writer) = reflector::store();
    let secret_events = match options.secrets_access {
        SecretsAccess::Watch => Some(cached(
            "secrets",
            scoped::<PartialObjectMeta<Secret>>(client, options),
            writer,
            metrics,
        )),
        SecretsAccess::ByName => None,
    };
    let (autoscaler_store, autoscaler_events) = match autoscaler_resource(client).await {
        Some(resource) => {
            let api: Api<DynamicObject> = match &options.namespace {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            let writer = reflector::store::Writer::new(resource.clone());
            let store = writer.as_reader();
            let events = cached("autoscalers", api, writer, metrics);
            (Some((resource.clone(), store)), Some((resource, events)))
        }
        None => {
            tracing::warn!("no autoscaling/v2 or v2beta2 API: autoscalerRef is not kept in sync");
            (None, None)
        }
    };
    Ok((
        Streams {
            deployments: deployment_events,
            daemon_sets: daemon_set_events,
            stateful_sets: stateful_set_events,
            knative_services: knative_events,
            configmaps: configmap_events,
            secrets: secret_events,
            autoscalers: autoscaler_events,
        },
        Stores {
            deployments,
            daemon_sets,
            stateful_sets,
            knative_services,
            knative_served,
            configs: ConfigCache::new(configmaps, secrets),
            autoscalers: autoscaler_store,
        },
    ))
}

/// The watch of `api` feeding `writer`'s store (managedFields stripped), as a stream of the
/// objects touched.
fn cached<K>(
    watch: &'static str,
    api: Api<K>,
    writer: Writer<K>,
    metrics: &Arc<Metrics>,
) -> Events<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    tracked(watch, api, freshness::watch_config(), writer, metrics)
        .touched_objects()
        .boxed()
}

/// The watch `watch` of `api` feeding `writer`'s store (managedFields and kubectl's copy
/// stripped), retried with [`WatchBackoff`], each of its events and errors recorded in the
/// controller's freshness.
pub fn tracked<K>(
    watch: &'static str,
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
    metrics: &Arc<Metrics>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    metrics.freshness.track(watch);
    let metrics = metrics.clone();
    watcher(api, config)
        .backoff(WatchBackoff::default())
        .inspect(move |item| metrics.freshness.record(watch, item))
        .modify(strip)
        .reflect(writer)
}

/// Whether the cluster serves Knative Services (serving.knative.dev/v1): Knative Serving is an
/// add-on, and a watch of a kind the API server does not serve would fail forever.
async fn knative_served(client: &Client) -> bool {
    let discovery = Discovery::new(client.clone())
        .filter(&[crate::workload::knative::GROUP])
        .run()
        .await;
    let served = discovery.ok().is_some_and(|discovery| {
        discovery
            .get(crate::workload::knative::GROUP)
            .is_some_and(|group| {
                group
                    .versioned_resources(crate::workload::knative::VERSION)
                    .iter()
                    .any(|(resource, _)| resource.kind == "Service")
            })
    });
    if !served {
        tracing::info!("no serving.knative.dev/v1 Service API: Knative Canaries wait for it");
    }
    served
}

/// The HPA version the cluster serves: autoscaling/v2 (1.23+), else v2beta2.
async fn autoscaler_resource(client: &Client) -> Option<ApiResource> {
    let discovery = Discovery::new(client.clone())
        .filter(&["autoscaling"])
        .run()
        .await
        .ok()?;
    let group = discovery.get("autoscaling")?;
    for version in ["v2", "v2beta2"] {
        if let Some((resource, _)) = group
            .versioned_resources(version)
            .into_iter()
            .find(|(r, _)| r.kind == "HorizontalPodAutoscaler")
        {
            return Some(resource);
        }
    }
    None
}

/// Where a change of a watched object goes: to the Canaries of each served group that target
/// it. serin.dev Canaries are returned into the native controller's queue (whose streams
/// these are); flagger.app ones are sent to the drop-in controller's (`--flagger-api`).
#[derive(Clone)]
pub struct Targets {
    pub serin: TargetIndex,
    pub flagger: Option<(TargetIndex, UnboundedSender<ObjectRef<FlaggerCanary>>)>,
}

impl Targets {
    /// The Canaries in `namespace` that target one of the workloads named `names`.
    fn targeting<'a>(
        &self,
        namespace: &str,
        names: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Vec<ObjectRef<Canary>> {
        if let Some((index, queue)) = &self.flagger {
            for canary in index.targeting(namespace, names.clone()) {
                // Only fails once the drop-in controller has stopped, at shutdown.
                let _ = queue.unbounded_send(ObjectRef::new(&canary).within(namespace));
            }
        }
        self.serin
            .targeting(namespace, names)
            .iter()
            .map(|canary| ObjectRef::new(canary).within(namespace))
            .collect()
    }
}

pub fn attach(
    controller: Controller<Canary>,
    streams: Streams,
    ctx: &super::context::Context,
    targets: Targets,
) -> Controller<Canary> {
    // A target or its primary, of any kind: the Canaries targeting that name.
    let by_workload = {
        let targets = targets.clone();
        move |namespace: String, name: String| {
            let target = name.strip_suffix(PRIMARY_SUFFIX).unwrap_or(&name);
            targets.targeting(&namespace, [target, name.as_str()])
        }
    };
    let by_daemon_set = by_workload.clone();
    let by_stateful_set = by_workload.clone();
    let config_mapper = |kind: ConfigKind| {
        let targets = targets.clone();
        let deployments = ctx.deployments.clone();
        let daemon_sets = ctx.daemon_sets.clone();
        let stateful_sets = ctx.stateful_sets.clone();
        move |namespace: String, name: String| {
            let mut referencing = referencing_config(&deployments, &namespace, kind, &name);
            referencing.extend(referencing_config(&daemon_sets, &namespace, kind, &name));
            referencing.extend(referencing_config(&stateful_sets, &namespace, kind, &name));
            targets.targeting(&namespace, referencing.iter().map(String::as_str))
        }
    };
    let by_configmap = config_mapper(ConfigKind::ConfigMap);
    let by_secret = config_mapper(ConfigKind::Secret);
    let mut controller = controller
        .watches_stream(streams.deployments, move |d: Packed<Deployment>| {
            by_workload(d.namespace().unwrap_or_default(), d.name_any())
        })
        .watches_stream(streams.daemon_sets, move |d: Packed<DaemonSet>| {
            by_daemon_set(d.namespace().unwrap_or_default(), d.name_any())
        })
        .watches_stream(streams.stateful_sets, move |s: Packed<StatefulSet>| {
            by_stateful_set(s.namespace().unwrap_or_default(), s.name_any())
        })
        .watches_stream(
            streams.configmaps,
            move |c: PartialObjectMeta<ConfigMap>| {
                by_configmap(c.namespace().unwrap_or_default(), c.name_any())
            },
        );
    if let Some(services) = streams.knative_services {
        // A new revision of a Knative Service shows in its status: the Canary of that name.
        let targets = targets.clone();
        controller = controller.watches_stream(services, move |service: Packed<KnativeService>| {
            let name = service.name_any();
            targets.targeting(&service.namespace().unwrap_or_default(), [name.as_str()])
        });
    }
    if let Some(secrets) = streams.secrets {
        controller = controller.watches_stream(secrets, move |s: PartialObjectMeta<Secret>| {
            by_secret(s.namespace().unwrap_or_default(), s.name_any())
        });
    }
    if let Some((resource, events)) = streams.autoscalers {
        controller = controller.watches_stream_with(
            events,
            move |hpa: DynamicObject| {
                let scaled = scaled_workload(&hpa).unwrap_or_default().to_string();
                targets.targeting(&hpa.namespace().unwrap_or_default(), [scaled.as_str()])
            },
            resource,
        );
    }
    controller
}

/// The workloads of one kind in `namespace` whose pod template references the config.
fn referencing_config<W>(
    store: &Store<Packed<W>>,
    namespace: &str,
    kind: ConfigKind,
    name: &str,
) -> BTreeSet<String>
where
    W: Workload,
{
    let config = ConfigRef {
        kind,
        name: name.to_string(),
    };
    // Filtered under the store's read lock, borrowing (see `matching`).
    let in_namespace = store.state_filter(|w| w.meta().namespace.as_deref() == Some(namespace));
    packed::referencing(in_namespace.iter().map(|w| &**w), &config)
}
