//! Runs the checks the engine asked for (`engine::due_checks`): webhooks of the due kinds, in
//! parallel, and the analysis metrics (see `super::metrics`).

use futures::future::join_all;
use kube::ResourceExt;

use crate::engine::{CheckResults, DueChecks};
use crate::hooks::{self, Payload};

use super::act::secret_headers;
use super::context::Context;
use super::scene::Scene;

pub async fn run<W>(
    ctx: &Context,
    scene: &Scene<W>,
    due: &DueChecks,
    revision: &str,
) -> CheckResults {
    if due.is_empty() {
        return CheckResults::default();
    }
    let canary = &scene.canary;
    let name = canary.name_any();
    let phase = canary
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .map_or("", |p| p.as_str());
    let calls = canary
        .spec
        .analysis
        .webhooks
        .iter()
        .filter(|hook| due.hooks.contains(&hook.kind))
        .map(|hook| {
            let name = &name;
            async move {
                let headers = secret_headers(&ctx.client, &scene.namespace, hook).await;
                let payload = Payload {
                    name,
                    namespace: &scene.namespace,
                    phase,
                    checksum: revision,
                    metadata: &hook.metadata,
                };
                if let Some(refused) = hooks::refused(hook, ctx.clients.egress()) {
                    return refused;
                }
                match ctx.clients.for_hook(&ctx.http, hook) {
                    Ok(http) => hooks::call(&http, hook, &payload, &headers).await,
                    Err(error) => hooks::not_called(hook, &error),
                }
            }
        });
    let hooks = join_all(calls).await;
    let metrics = if due.metrics {
        super::metrics::sample_all(ctx, canary, scene.provider).await
    } else {
        Vec::new()
    };
    CheckResults { hooks, metrics }
}
