//! `serin controller`: the Kubernetes shell around the pure engine. Watches Canaries and
//! everything a rollout depends on (Deployments, DaemonSets and StatefulSets, the ConfigMaps/Secrets they
//! reference, HPAs), maps each change to its Canary so it is acted on at once, and runs
//! observe -> engine -> act per Canary (see `reconcile`).

pub mod act;
pub mod alerts;
pub mod autoscalers;
pub mod checks;
pub mod clients;
pub mod configs;
pub mod context;
pub mod error;
pub mod events;
pub mod finalize;
pub mod flagger_flags;
pub mod flagger_metrics;
pub mod freshness;
mod leader;
pub mod metrics;
pub mod options;
pub mod packed;
pub mod pending;
pub mod reconcile;
pub mod retry;
pub mod scene;
pub mod served;
pub mod target_index;
pub mod targets;
pub mod telemetry;
pub mod warnings;
mod watches;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use futures::{FutureExt, StreamExt};
use kube::Client;
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};

use crate::api::Canary;
use crate::api::group::{FlaggerCanary, Served};
use crate::api::provider::TrafficProvider;

pub use options::{LogFormat, Options};

use context::Context;
use telemetry::{Health, Metrics};

/// Runs the controller on the cluster of `kube` (the command line's kubeconfig and context)
/// until SIGTERM/SIGINT.
pub async fn run(options: Options, kube: anyhow::Result<kube::Config>) -> anyhow::Result<()> {
    let default_provider = TrafficProvider::parse(&options.mesh_provider)
        .map_err(|e| anyhow::anyhow!("--mesh-provider: {e}"))?;
    let config = kube.context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    let egress = egress_policy(&options, &config).await;
    let mut config = config;
    freshness::bound_requests(&mut config);
    let client = Client::try_from(config)
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    let mesh = match &options.kubeconfig_service_mesh {
        Some(path) => Some(mesh_client(path).await?),
        None => None,
    };
    let metrics = Arc::new(Metrics::new(
        options
            .flagger_metrics
            .then_some(options.mesh_provider.as_str()),
    ));
    let health = Arc::new(Health {
        metrics: metrics.clone(),
        ready: AtomicBool::new(false),
        live: AtomicBool::new(true),
    });
    serve_health(&options, health.clone()).await?;

    let shutdown = shutdown_signal().boxed().shared();
    let _lease = if options.leader_election {
        // A standby replica is ready (it can take over) but does not reconcile.
        health.ready.store(true, Ordering::Relaxed);
        tokio::select! {
            lease = leader::acquire(&client, &options) => Some(lease?),
            () = shutdown.clone() => return Ok(()),
        }
    } else {
        None
    };

    let watch_config = {
        let mut config = freshness::watch_config();
        if let Some(selector) = &options.label_selector {
            config = config.labels(selector);
        }
        config
    };
    let canaries: kube::Api<Canary> = scoped(&client, &options);
    let (streams, stores) = watches::start(&client, &options, &metrics).await?;
    let written = Arc::new(pending::Pending::default());
    let (controller, serin_targets) = canary_controller(
        canaries,
        watch_config.clone(),
        &options,
        (&metrics, &written),
    );
    // Drop-in mode: flagger.app Canaries get a controller of their own, fed by the same
    // watches (`watches::Targets`).
    let (flagger, flagger_targets) = if options.flagger_api {
        let canaries: kube::Api<FlaggerCanary> = scoped(&client, &options);
        let (controller, index) =
            canary_controller(canaries, watch_config, &options, (&metrics, &written));
        (Some(controller), Some(index))
    } else {
        (None, None)
    };
    let (flagger_queue, flagger_triggers) = futures::channel::mpsc::unbounded();
    let targets = watches::Targets {
        serin: serin_targets,
        flagger: flagger_targets.map(|index| (index, flagger_queue)),
    };
    let deployments_ready = broadcast_ready(stores.deployments.clone());
    let daemon_sets_ready = broadcast_ready(stores.daemon_sets.clone());
    let stateful_sets_ready = broadcast_ready(stores.stateful_sets.clone());
    // Without the API its store's writer is gone: ready at once, and empty.
    let knative_services_ready = broadcast_ready(stores.knative_services.clone());
    let ctx = Arc::new(Context {
        client: client.clone(),
        mesh,
        default_provider,
        canaries: controller.store(),
        flagger_canaries: flagger.as_ref().map(|c| c.store()),
        deployments: stores.deployments,
        deployments_ready,
        daemon_sets: stores.daemon_sets,
        daemon_sets_ready,
        stateful_sets: stores.stateful_sets,
        stateful_sets_ready,
        knative_services: stores.knative_services,
        knative_services_ready,
        knative_served: stores.knative_served,
        autoscalers: stores.autoscalers,
        configs: stores.configs,
        recorder: events::Recorder::new(client.clone(), "serin", options.identity.clone()),
        metrics: metrics.clone(),
        http: egress
            .client_builder()
            .build()
            .context("building the HTTP client")?,
        clients: clients::Clients::new(egress),
        alert_repeats: crate::notify::Repeats::new(options.alert_repeat_window.as_std()),
        written,
        retries: retry::Retries::default(),
        options,
    });
    let controller = watches::attach(controller, streams, &ctx, targets);
    health.ready.store(true, Ordering::Relaxed);
    tracing::info!(flagger_api = ctx.options.flagger_api, "controller started");
    count_canaries(ctx.clone());
    let native = drive(controller, shutdown.clone(), ctx.clone());
    match flagger {
        Some(flagger) => {
            let flagger = flagger.reconcile_on(flagger_triggers);
            futures::join!(native, drive(flagger, shutdown, ctx));
        }
        None => native.await,
    }
    tracing::info!("controller stopped");
    Ok(())
}

/// A client of the service mesh's cluster, from its kubeconfig's current context.
async fn mesh_client(path: &std::path::Path) -> anyhow::Result<Client> {
    let what = || format!("--kubeconfig-service-mesh {}", path.display());
    let kubeconfig = kube::config::Kubeconfig::read_from(path).with_context(what)?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(what)?;
    freshness::bound_requests(&mut config);
    Client::try_from(config).with_context(what)
}

/// The controller of one group's Canaries, on a watch of them whose freshness is tracked and
/// whose deliveries end serin's pending status writes (`pending`), and the index of their
/// targets that watch keeps (`target_index`).
fn canary_controller<K>(
    canaries: kube::Api<K>,
    config: watcher::Config,
    options: &Options,
    (metrics, written): (&Arc<Metrics>, &Arc<pending::Pending>),
) -> (Controller<K>, target_index::TargetIndex)
where
    K: Served
        + kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = kube::runtime::reflector::store();
    let watch = if K::group(&()) == "flagger.app" {
        "flagger-canaries"
    } else {
        "canaries"
    };
    let written = written.clone();
    let index = target_index::TargetIndex::default();
    let indexed = index.clone();
    let events = watches::tracked(watch, canaries, config, writer, metrics).inspect(move |event| {
        let Ok(event) = event else { return };
        indexed.record(event);
        // After the reflector, which stores an `Apply` at once: the cache holds this version
        // before the write stops pending. Not `InitApply`: a re-list swaps the store in only at
        // `InitDone`, and an entry left then ends at the Canary's next reconcile.
        if let watcher::Event::Apply(canary) = event {
            written.seen(kube::Resource::meta(canary));
        }
    });
    let trigger = WatchStreamExt::predicate_filter(
        WatchStreamExt::applied_objects(events),
        worth_reconciling::<K>,
        Default::default(),
    );
    let controller = Controller::for_stream(trigger, store)
        .trigger_backoff(watches::WatchBackoff::default())
        .with_config(controller::Config::default().concurrency(options.concurrency));
    (controller, index)
}

/// What makes a Canary's own change worth a reconcile: its spec (the generation), its metadata
/// (requests are annotations; labels, finalizers) and its deletion. Not its status: serin
/// writes that itself, and each write's echo cost a reconcile that found nothing to do, a
/// queue slot other Canaries waited for in a burst (docs/benchmarks.md). The engine's next
/// tick is scheduled by the reconcile that wrote it, and the targets' events bring the rest.
fn worth_reconciling<K: kube::Resource>(canary: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = canary.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// Runs one group's controller until shutdown.
async fn drive<K>(
    controller: Controller<K>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ctx: Arc<Context>,
) where
    K: Served
        + kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile::<K>, reconcile::error_policy::<K>, ctx)
        .for_each(|result| async move {
            match result {
                Ok(_) => {}
                Err(controller::Error::ObjectNotFound(_)) => {}
                Err(error) => tracing::debug!(%error, "controller"),
            }
        })
        .await;
}

/// Serves /metrics, /healthz and /readyz on `--listen` in the background.
async fn serve_health(options: &Options, health: Arc<Health>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("--listen {}", options.listen))?;
    tracing::info!(address = %options.listen, "serving /metrics, /healthz and /readyz");
    let server = axum::serve(listener, telemetry::router(health));
    tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "metrics server stopped");
        }
    });
    Ok(())
}

/// One waiter on a store's readiness, broadcast to every reconcile: kube-runtime's
/// `Store::wait_until_ready` wakes only the last of several concurrent waiters.
fn broadcast_ready<K>(
    store: kube::runtime::reflector::Store<K>,
) -> tokio::sync::watch::Receiver<bool>
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (ready_tx, ready) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = store.wait_until_ready().await;
        let _ = ready_tx.send(true);
    });
    ready
}

/// Keeps the per-namespace Canary totals of /metrics current (every 15 s).
fn count_canaries(ctx: Arc<Context>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(15)).await;
            let mut per_namespace: BTreeMap<String, i64> = BTreeMap::new();
            let flagger = ctx.flagger_canaries.iter().flat_map(|s| s.state());
            let namespaces = ctx
                .canaries
                .state()
                .into_iter()
                .map(|c| kube::ResourceExt::namespace(&*c))
                .chain(flagger.map(|c| kube::ResourceExt::namespace(&*c)));
            for namespace in namespaces {
                *per_namespace
                    .entry(namespace.unwrap_or_default())
                    .or_default() += 1;
            }
            ctx.metrics.set_totals(per_namespace);
        }
    });
}

/// The API of `K` in the controller's namespace, or in all namespaces.
pub(crate) fn scoped<K>(client: &Client, options: &Options) -> kube::Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match &options.namespace {
        Some(namespace) => kube::Api::namespaced(client.clone(), namespace),
        None => kube::Api::all(client.clone()),
    }
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// `--egress-policy` and `--egress-allow`, with the API server's addresses from the client's
/// configuration (looked up once when it is a name; in a cluster that is the `kubernetes`
/// Service's address, not the endpoints behind it). An enforcing policy that found none says
/// so: the API server is then refused only where another rule refuses its address.
async fn egress_policy(
    options: &Options,
    config: &kube::Config,
) -> crate::outbound::egress::Policy {
    let url = &config.cluster_url;
    let host = url
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let api_server = crate::outbound::egress::addresses(host, url.port_u16().unwrap_or(443)).await;
    if options.egress_policy != crate::outbound::egress::Mode::AllowAll {
        tracing::info!(policy = ?options.egress_policy, allow = ?options.egress_allow, ?api_server, "egress policy");
    }
    let policy = crate::outbound::egress::Policy {
        mode: options.egress_policy,
        allow: options.egress_allow.clone(),
        api_server,
    };
    if let Some(warning) = policy.warning(host) {
        tracing::warn!("{warning}");
    }
    policy
}
