//! Executes the engine's actions against the cluster: server-side apply of the primary, its
//! configs, services, autoscaler and routes; scaling the target; events. Every write is idempotent,
//! so a reconcile interrupted half-way (SIGKILL, API error) is simply redone by the next one.

use std::collections::BTreeMap;

use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::canary::{HookKind, Webhook};
use crate::engine::action::Event;
use crate::engine::{Action, Reason, Traffic};
use crate::hooks::{self, Payload};
use crate::routing::kuma::OWNER_ANNOTATION;
use crate::routing::{
    ORIGINAL_ANNOTATION, ORIGINAL_ANNOTATIONS, RouteError, RouteInputs, SourceRef,
};
use crate::workload::primary::{PrimaryInputs, primary_replicas};
use crate::workload::services::{ServiceRole, desired_service};
use crate::workload::target::{PrimaryPlace, Workload, desired_primary, template_of_revision};

use super::autoscalers::sync as sync_autoscaler;
use super::configs::copy_to_primary;
use super::context::{Context, Error, MANAGER, Result, Step};
use super::scene::Scene;
use super::warnings::Warnings;

/// The revision being applied and the one to fall back to, from the engine's decision.
pub struct Revisions<'a> {
    pub target: &'a str,
    pub promoted: Option<&'a str>,
    /// The phase the decision leads to, for hook payloads and alerts.
    pub phase: &'a str,
}

pub async fn apply<W: Workload>(
    ctx: &Context,
    scene: &Scene<W>,
    actions: &[Action],
    revisions: &Revisions<'_>,
) -> Result<()> {
    for action in actions {
        match action {
            Action::EnsurePrimary => ensure_primary(ctx, scene, revisions.target).await?,
            Action::ScaleCanary { replicas } => scale_target(ctx, scene, *replicas).await?,
            Action::SetTraffic(traffic) => route(ctx, scene, *traffic).await?,
            Action::PromoteTemplate => promote(ctx, scene, revisions.target).await?,
            Action::RevertPrimary => revert(ctx, scene, revisions.promoted).await?,
            Action::RunHooks(kind) => run_hooks(ctx, scene, *kind, revisions),
            Action::SyncAutoscaler => sync_autoscaler(ctx, scene).await?,
            Action::Alert(alert) => {
                super::alerts::dispatch(ctx, scene, alert, revisions.target, revisions.phase).await
            }
            Action::Event(event) => publish(ctx, &scene.canary, event).await,
        }
    }
    Ok(())
}

fn target_of<W: Workload>(scene: &Scene<W>) -> Result<&W> {
    scene.target.as_ref().ok_or_else(|| {
        Error::missing(
            Step::Apply,
            format!(
                "the target {} {}/{}",
                W::kind(&()),
                scene.namespace,
                scene.canary.spec.target_ref.name
            ),
        )
    })
}

fn primary_for<W: Workload>(scene: &Scene<W>, revision: &str) -> Result<W> {
    let target = target_of(scene)?;
    let tracked = scene.tracked();
    desired_primary(&PrimaryInputs {
        target,
        revision,
        tracked: &tracked,
        replicas: Some(primary_replicas(
            target.replicas(),
            scene.primary.as_ref().and_then(W::replicas),
            scene.canary.spec.autoscaler_ref.is_some(),
        )),
        owner: Some(scene.owner.clone()),
        live_selector: scene.primary.as_ref().and_then(W::selector),
    })
    .map_err(|e| {
        Error::unbuildable(
            Step::Apply,
            format!("building the primary {}", W::kind(&())),
            e,
        )
    })
}

async fn ensure_primary<W: Workload>(
    ctx: &Context,
    scene: &Scene<W>,
    revision: &str,
) -> Result<()> {
    let target = target_of(scene)?;
    if W::PRIMARY == PrimaryPlace::Revision {
        // No copy and no Services: the primary is the revision recorded on the target.
        if scene.primary.is_none() {
            record_promoted(ctx, scene, revision).await?;
        }
        return Ok(());
    }
    copy_to_primary(ctx, &scene.namespace, &scene.tracked(), &scene.owner).await?;
    if scene.primary.is_none() {
        let primary = primary_for(scene, revision)?;
        for companion in primary.companions() {
            ctx.apply(&companion).await?;
        }
        ctx.apply(&primary).await?;
    }
    let selector = target.selector().cloned().unwrap_or_default();
    for role in ServiceRole::ALL {
        let service = desired_service(
            &scene.canary.spec,
            role,
            &scene.canary.spec.target_ref.name,
            &selector,
            scene.primary.as_ref().and_then(W::selector),
            &scene.namespace,
            Some(scene.owner.clone()),
        )
        .map_err(|e| {
            Error::unbuildable(Step::Apply, format!("building the {role:?} Service"), e)
        })?;
        ctx.apply(&service).await?;
    }
    sync_autoscaler(ctx, scene).await
}

async fn scale_target<W: Workload>(ctx: &Context, scene: &Scene<W>, replicas: i32) -> Result<()> {
    scale(ctx, &scene.namespace, target_of(scene)?, replicas).await?;
    let reference = scene.canary.spec.autoscaler_ref.as_ref();
    super::autoscalers::pause_target(ctx, &scene.namespace, reference, replicas == 0).await
}

/// Sets a workload's replica count, the only field of the target serin owns; no write when it
/// already has that count.
pub async fn scale<W: Workload>(
    ctx: &Context,
    namespace: &str,
    workload: &W,
    replicas: i32,
) -> Result<()> {
    if workload.replicas() == Some(replicas) {
        return Ok(());
    }
    let name = workload.name_any();
    let api: Api<W> = Api::namespaced(ctx.client.clone(), namespace);
    if let Some(patch) = workload.scale_patch(replicas) {
        merge_patch(&api, &name, &patch).await.map_err(Error::api(
            Step::Apply,
            format!("scaling {namespace}/{name} to {replicas}"),
        ))?;
        return Ok(());
    }
    let patch = W::scale_body(&name, namespace, replicas);
    let _timer = ctx.metrics.api_timer("apply");
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::api(
        Step::Apply,
        format!("scaling {namespace}/{name} to {replicas}"),
    ))?;
    if replicas > 0
        && let Some(unpark) = workload.unpark_patch()
    {
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&unpark))
            .await
            .map_err(Error::api(
                Step::Apply,
                format!("removing another controller's idle setting from {namespace}/{name}"),
            ))?;
    }
    Ok(())
}

/// A merge patch under serin's field manager, for fields serin records beside another
/// controller's (a Knative Service's annotations): a merge patch is an update, so serin's
/// server-side applies of other fields of the object (its `spec.traffic`) never remove them.
async fn merge_patch<K>(api: &Api<K>, name: &str, patch: &serde_json::Value) -> kube::Result<K>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &Patch::Merge(patch)).await
}

/// Records `revision` as the promoted one on a target whose primary is a revision.
async fn record_promoted<W: Workload>(
    ctx: &Context,
    scene: &Scene<W>,
    revision: &str,
) -> Result<()> {
    let Some(patch) = W::promote_patch(revision) else {
        return Ok(());
    };
    let name = &scene.canary.spec.target_ref.name;
    let api: Api<W> = Api::namespaced(ctx.client.clone(), &scene.namespace);
    let _timer = ctx.metrics.api_timer("patch");
    merge_patch(&api, name, &patch).await.map_err(Error::api(
        Step::Apply,
        format!(
            "recording revision {revision} as the primary of {} {}/{name}",
            W::kind(&()),
            scene.namespace
        ),
    ))?;
    Ok(())
}

async fn promote<W: Workload>(ctx: &Context, scene: &Scene<W>, revision: &str) -> Result<()> {
    if W::PRIMARY == PrimaryPlace::Revision {
        return record_promoted(ctx, scene, revision).await;
    }
    copy_to_primary(ctx, &scene.namespace, &scene.tracked(), &scene.owner).await?;
    ctx.apply(&primary_for(scene, revision)?).await?;
    sync_autoscaler(ctx, scene).await
}

/// Gives the primary back the template of `revision`, found in the kind's history of the
/// primary (its ReplicaSets for a Deployment, ControllerRevisions for a DaemonSet: what
/// `kubectl rollout undo` reads), so nothing extra has to be stored.
async fn revert<W: Workload>(
    ctx: &Context,
    scene: &Scene<W>,
    revision: Option<&str>,
) -> Result<()> {
    let Some(revision) = revision else {
        return Ok(());
    };
    if W::PRIMARY == PrimaryPlace::Revision {
        // The target keeps its revisions: the promoted one is simply recorded again.
        return record_promoted(ctx, scene, revision).await;
    }
    let mut desired = primary_for(scene, revision)?;
    let selector = desired
        .selector()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    let labels = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let api: Api<W::History> = Api::namespaced(ctx.client.clone(), &scene.namespace);
    let history = api
        .list(&ListParams::default().labels(&labels))
        .await
        .map_err(Error::api(
            Step::Apply,
            format!("listing the primary's {}s", W::History::kind(&())),
        ))?;
    let Some(template) = template_of_revision::<W>(&history.items, revision) else {
        return Err(Error::missing(
            Step::Apply,
            format!(
                "a {} of revision {revision} to revert the primary to (in {})",
                W::History::kind(&()),
                scene.namespace
            ),
        ));
    };
    desired.set_template(template);
    ctx.apply(&desired).await?;
    Ok(())
}

async fn route<W: Workload>(ctx: &Context, scene: &Scene<W>, traffic: Traffic) -> Result<()> {
    let Some(selector) = scene.target_selector() else {
        return Err(Error::unbuildable(
            Step::Apply,
            "routing traffic",
            format!("the target {} has no selector", W::kind(&())),
        ));
    };
    let router = crate::routing::router_for(scene.provider);
    let inputs = scene.route_inputs(selector);
    let source = match router.source(&inputs) {
        Some(source) => Some(read_source(ctx, &scene.namespace, &source).await?),
        None => None,
    };
    let inputs = RouteInputs {
        source: source.as_ref(),
        annotations_prefix: &ctx.options.ingress_annotations_prefix,
        ingress_class: ctx.options.ingress_class.as_deref(),
        ..inputs
    };
    let mut objects = router
        .objects(&inputs, traffic)
        .map_err(|e: RouteError| Error::unbuildable(Step::Apply, "building the routes", e))?;
    let keep_annotations = router.keeps_original_annotations();
    if let Some((resource, name)) = router.taken_over(&inputs)
        && take_over(
            ctx,
            &resource,
            &scene.namespace,
            &name,
            &scene.owner.uid,
            keep_annotations,
        )
        .await?
    {
        // A route that existed before serin stays its creator's: no owner reference, so
        // deleting the Canary never deletes it.
        for object in objects.iter_mut().filter(|o| o.name_any() == name) {
            object.metadata.owner_references = None;
        }
    }
    let resources = router.resources_for(&inputs);
    for object in &mut objects {
        let kind = object
            .types
            .as_ref()
            .map(|t| t.kind.as_str())
            .unwrap_or_default();
        let Some(resource) = resources.iter().find(|r| r.kind == kind) else {
            continue;
        };
        if ctx.in_mesh_cluster(resource) {
            owned_across_clusters(object, &scene.owner.uid);
        }
        ctx.apply_route(resource, object).await?;
    }
    Ok(())
}

/// The label marking a route serin created in the service mesh's cluster for the Canary of
/// this uid. An owner reference cannot cross clusters (the other cluster's garbage collector
/// would delete an object whose owner it cannot find), so these routes carry the label instead
/// and the Canary's finalizer deletes them.
pub const MESH_OWNER_LABEL: &str = "serin.dev/canary-uid";

fn owned_across_clusters(object: &mut DynamicObject, canary_uid: &str) {
    if object.metadata.owner_references.take().is_some() {
        object
            .labels_mut()
            .insert(MESH_OWNER_LABEL.into(), canary_uid.into());
    }
}

/// The live object a router copies (nginx: the `spec.ingressRef` Ingress); read at each write
/// of the routes, so a change of the user's object is carried into the copy at the next step.
async fn read_source(ctx: &Context, namespace: &str, source: &SourceRef) -> Result<DynamicObject> {
    let namespace = source.namespace.as_deref().unwrap_or(namespace);
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &source.resource);
    let what = format!(
        "{} {namespace}/{} ({})",
        source.resource.kind, source.name, source.field
    );
    api.get_opt(&source.name)
        .await
        .map_err(Error::api(Step::Observe, format!("reading {what}")))?
        .ok_or_else(|| Error::missing(Step::Apply, what))
}

/// Before serin first writes a route that someone else created, it keeps the route's spec in
/// an annotation (under its own field manager, so serin's applies never drop it), and its
/// annotations too when `keep_annotations` (a route template's object). Returns whether the
/// route pre-existed serin.
async fn take_over(
    ctx: &Context,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
    canary_uid: &str,
    keep_annotations: bool,
) -> Result<bool> {
    let api = crate::routing::api(ctx.route_client(resource), resource, namespace);
    let live = api.get_opt(name).await.map_err(Error::api(
        Step::Observe,
        format!("reading {} {namespace}/{name}", resource.kind),
    ))?;
    let Some(live) = live else {
        return Ok(false);
    };
    if live.annotations().contains_key(ORIGINAL_ANNOTATION) {
        return Ok(true);
    }
    let owned = live.owner_references().iter().any(|o| o.uid == canary_uid)
        || live.labels().get(MESH_OWNER_LABEL).map(String::as_str) == Some(canary_uid)
        || live.annotations().get(OWNER_ANNOTATION).map(String::as_str) == Some(canary_uid);
    if owned {
        return Ok(false);
    }
    let original = serde_json::to_string(&live.data.get("spec")).unwrap_or_default();
    let mut patch = json!({"metadata": {"annotations": {ORIGINAL_ANNOTATION: original}}});
    if keep_annotations {
        let annotations = serde_json::to_string(live.annotations()).unwrap_or_default();
        patch["metadata"]["annotations"][ORIGINAL_ANNOTATIONS] = json!(annotations);
    }
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(format!("{MANAGER}-takeover")),
            ..PatchParams::default()
        },
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::api(
        Step::Apply,
        format!("taking over {} {namespace}/{name}", resource.kind),
    ))?;
    Ok(true)
}

/// Post-rollout hooks report and never decide: they run in the background.
fn run_hooks<W>(ctx: &Context, scene: &Scene<W>, kind: HookKind, revisions: &Revisions<'_>) {
    let hooks: Vec<Webhook> = scene
        .canary
        .spec
        .analysis
        .webhooks
        .iter()
        .filter(|h| h.kind == kind)
        .cloned()
        .collect();
    spawn_hooks(ctx, &scene.canary, revisions.phase, revisions.target, hooks);
}

/// Calls `hooks` one after the other in the background and logs their answers: for hooks that
/// report (post-rollout, event) rather than decide.
fn spawn_hooks(
    ctx: &Context,
    canary: &crate::api::Canary,
    phase: &str,
    checksum: &str,
    hooks: Vec<Webhook>,
) {
    if hooks.is_empty() {
        return;
    }
    let client = ctx.client.clone();
    let egress = ctx.clients.egress().clone();
    // Each hook's HTTP client is chosen now (disableTLS), the calls run in the background.
    let hooks: Vec<(Webhook, Result<reqwest::Client, String>)> = hooks
        .into_iter()
        .map(|hook| {
            let http = ctx.clients.for_hook(&ctx.http, &hook);
            (hook, http)
        })
        .collect();
    let (name, namespace) = (canary.name_any(), canary.namespace().unwrap_or_default());
    let (phase, checksum) = (phase.to_string(), checksum.to_string());
    let warnings = Warnings::of(ctx, canary);
    tokio::spawn(async move {
        for (hook, http) in hooks {
            let headers = secret_headers(&client, &namespace, &hook).await;
            let payload = Payload {
                name: &name,
                namespace: &namespace,
                phase: &phase,
                checksum: &checksum,
                metadata: &hook.metadata,
            };
            let outcome = match (hooks::refused(&hook, &egress), http) {
                (Some(refused), _) => refused,
                (None, Ok(http)) => hooks::call(&http, &hook, &payload, &headers).await,
                (None, Err(error)) => hooks::not_called(&hook, &error),
            };
            if outcome.passed {
                tracing::info!(canary = %name, namespace = %namespace, hook = %hook.name, "{}", outcome.message);
            } else {
                tracing::warn!(canary = %name, namespace = %namespace, hook = %hook.name, "{}", outcome.message);
                let note = format!(
                    "{} hook {}: {}",
                    hook.kind.as_str(),
                    hook.name,
                    outcome.message
                );
                warnings.warn(Reason::HookFailed, &note).await;
            }
        }
    });
}

/// The headers a hook's `secretRef` names; a missing Secret sends none (the hook then
/// answers 401 or the like, which the event shows).
pub async fn secret_headers(
    client: &kube::Client,
    namespace: &str,
    hook: &crate::api::canary::Webhook,
) -> BTreeMap<String, String> {
    let Some(reference) = &hook.secret_ref else {
        return BTreeMap::new();
    };
    match super::context::read_secret(client, namespace, &reference.name).await {
        Ok(values) => values,
        Err(error) => {
            tracing::warn!(namespace, hook = %hook.name, %error, "webhook headers unavailable");
            BTreeMap::new()
        }
    }
}

/// Records an engine event on the Canary (events.k8s.io), posts it to the event webhooks, and
/// logs it.
pub async fn publish(ctx: &Context, canary: &crate::api::Canary, event: &Event) {
    let note = super::events::Note {
        warning: event.warning,
        reason: event.reason.as_str(),
        action: "Reconcile",
        note: &event.message,
    };
    post_to_event_hooks(ctx, canary, event);
    let reference = ctx.group_of(canary).object_reference(canary);
    if let Err(error) = ctx.recorder.publish(&note, &reference).await {
        tracing::warn!(canary = %canary.name_any(), %error, "recording an event");
    }
    tracing::info!(
        canary = %canary.name_any(),
        namespace = %canary.namespace().unwrap_or_default(),
        reason = %event.reason,
        "{}",
        event.message
    );
}

/// The event in an event hook's metadata, over the hook's own keys of the same names:
/// `eventMessage`, `eventType` (`Normal` or `Warning`), `reason`, and `timestamp` in Unix
/// milliseconds as a string (Flagger's keys and encoding, so receivers written for Flagger
/// read serin's events unchanged).
pub fn event_metadata(
    metadata: &mut std::collections::BTreeMap<String, String>,
    event: &Event,
    now: chrono::DateTime<chrono::Utc>,
) {
    let kind = if event.warning { "Warning" } else { "Normal" };
    metadata.insert("eventMessage".into(), event.message.clone());
    metadata.insert("eventType".into(), kind.into());
    metadata.insert("reason".into(), event.reason.as_str().into());
    metadata.insert("timestamp".into(), now.timestamp_millis().to_string());
}

/// Posts the event to the Canary's `event` webhooks and the controller's `--event-webhook`, in
/// the background. The payload is a webhook payload whose metadata carries the event.
fn post_to_event_hooks(ctx: &Context, canary: &crate::api::Canary, event: &Event) {
    let mut hooks: Vec<Webhook> = canary
        .spec
        .analysis
        .webhooks
        .iter()
        .filter(|h| h.kind == HookKind::Event)
        .cloned()
        .collect();
    if let Some(url) = ctx.options.event_webhook.clone().filter(|u| !u.is_empty()) {
        hooks.push(Webhook {
            name: "--event-webhook".into(),
            kind: HookKind::Event,
            url,
            ..Webhook::default()
        });
    }
    let now = chrono::Utc::now();
    for hook in &mut hooks {
        event_metadata(&mut hook.metadata, event, now);
    }
    let status = canary.status.clone().unwrap_or_default();
    let phase = status.phase.map_or("", |p| p.as_str());
    let checksum = status.last_applied_spec.as_deref().unwrap_or_default();
    spawn_hooks(ctx, canary, phase, checksum, hooks);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_hooks_get_flaggers_keys_with_the_timestamp_in_unix_milliseconds() {
        let mut metadata = std::collections::BTreeMap::from([
            ("timestamp".to_string(), "mine".to_string()),
            ("team".to_string(), "shop".to_string()),
        ]);
        let event = Event {
            warning: true,
            reason: crate::engine::Reason::ThresholdReached,
            message: "rolling back".into(),
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00.250Z")
            .unwrap()
            .to_utc();
        event_metadata(&mut metadata, &event, now);
        assert_eq!(metadata["timestamp"], "1795428000250");
        assert_eq!(metadata["eventType"], "Warning");
        assert_eq!(metadata["eventMessage"], "rolling back");
        assert_eq!(metadata["reason"], "ThresholdReached");
        assert_eq!(metadata["team"], "shop");
    }
}
