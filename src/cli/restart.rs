//! `serin restart NAME`: restarts the primary's pods the way `kubectl rollout restart` does,
//! by stamping the primary's pod template with `kubectl.kubernetes.io/restartedAt`. The stamp
//! is written under its own field manager, so the controller's server-side apply of the
//! primary (which never names that annotation) leaves it in place, and it is not a new
//! revision: revisions are computed from the target's template, not the primary's.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::json;

use crate::workload::primary::PRIMARY_SUFFIX;

/// The annotation `kubectl rollout restart` writes; tools that know kubectl read it.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The field manager of the stamp: not the controller's, whose applies would own it.
const MANAGER: &str = "serin-restart";

/// Stamps the primary's pod template; the workload controller then replaces its pods.
pub async fn run(client: kube::Client, namespace: &str, name: &str) -> anyhow::Result<()> {
    let canary = super::canaries::get(&client, namespace, name).await?.canary;
    let kind = canary.spec.target_ref.kind.as_str();
    if !matches!(kind, "Deployment" | "DaemonSet" | "StatefulSet") {
        anyhow::bail!(
            "canary {namespace}/{name}: spec.targetRef.kind {kind:?} has no primary pods to restart"
        );
    }
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", kind));
    let primaries: Api<DynamicObject> = Api::namespaced_with(client, namespace, &resource);
    let primary = format!("{}{PRIMARY_SUFFIX}", canary.spec.target_ref.name);
    if primaries.get_opt(&primary).await?.is_none() {
        anyhow::bail!(
            "canary {namespace}/{name}: its primary {kind} {primary} does not exist yet (the controller creates it when it initializes the Canary)"
        );
    }
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}});
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    };
    primaries
        .patch(&primary, &params, &Patch::Merge(&patch))
        .await
        .map_err(|e| anyhow::anyhow!("restarting {kind} {namespace}/{primary}: {e}"))?;
    crate::outln!(
        "restart requested: canary {namespace}/{name}, {kind} {primary} restarted at {at}"
    );
    Ok(())
}
