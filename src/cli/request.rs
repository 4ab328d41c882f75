//! `serin promote [--full] | abort | retry | pause | resume NAME`: a manual request is a pair of
//! annotations (`serin.dev/request`, `serin.dev/request-id`) the controller acts on once per
//! id; the command waits briefly for the controller to acknowledge it in the status. A request
//! the controller would ignore in the Canary's phase is refused up front, with the reason, by
//! the rule the engine itself follows (`RequestAction::acts_in`).

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::canaries;
use crate::api::Canary;
use crate::engine::input::RequestAction;
use crate::workload::observe::{REQUEST_ANNOTATION, REQUEST_ID_ANNOTATION};

/// How long to wait for `status.lastHandledRequest` to show the request.
const ACKNOWLEDGE: Duration = Duration::from_secs(15);

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Acknowledged,
    /// Not sent: the controller would ignore it, for this reason.
    Refused(String),
    NotAcknowledged,
}

/// The command a person typed for the request (`promote` asks for one step).
fn command(action: RequestAction) -> &'static str {
    match action {
        RequestAction::Step => "promote",
        RequestAction::Promote => "promote --full",
        other => other.as_str(),
    }
}

/// Sends the request unless the controller would ignore it.
pub async fn run(
    client: kube::Client,
    namespace: &str,
    name: &str,
    action: RequestAction,
) -> anyhow::Result<Answer> {
    let found = canaries::get(&client, namespace, name).await?;
    let api = canaries::api(&client, Some(namespace), found.group);
    let canary = found.canary;
    let phase = canary.status.and_then(|s| s.phase);
    if let Err(why) = action.acts_in(phase) {
        eprintln!(
            "{} refused: canary {namespace}/{name}: {why}",
            command(action)
        );
        return Ok(Answer::Refused(why));
    }
    // A fresh id per request: the same action asked twice is two requests.
    let id = format!(
        "{}-{}",
        action.as_str(),
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    );
    let patch = json!({"metadata": {"annotations": {
        REQUEST_ANNOTATION: action.as_str(),
        REQUEST_ID_ANNOTATION: id,
    }}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| anyhow::anyhow!("annotating canary {namespace}/{name}: {e}"))?;
    let deadline = tokio::time::Instant::now() + ACKNOWLEDGE;
    while tokio::time::Instant::now() < deadline {
        let canary: Canary = serde_json::from_value(serde_json::to_value(api.get(name).await?)?)?;
        let handled = canary
            .status
            .and_then(|s| s.last_handled_request)
            .is_some_and(|h| h == id);
        if handled {
            crate::outln!(
                "{} requested: canary {namespace}/{name} (request {id}), acknowledged",
                command(action)
            );
            return Ok(Answer::Acknowledged);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    crate::outln!(
        "{} requested: canary {namespace}/{name} (request {id}); not acknowledged within {}s — is serin controller running for this namespace?",
        command(action),
        ACKNOWLEDGE.as_secs()
    );
    Ok(Answer::NotAcknowledged)
}
