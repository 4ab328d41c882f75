//! Webhooks: a POST of `{name, namespace, phase, checksum, metadata}` to the hook's URL; any
//! 2xx answer is a yes. Transport errors and other statuses are a no, reported with the status
//! code and the start of the body (read up to a limit, credentials masked) so the event says
//! why. Headers may come from a Secret (`secretRef`): their values are sent, never logged or
//! reported.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::api::canary::Webhook;
use crate::engine::input::HookOutcome;
use crate::outbound::{self, egress, redact};

/// How long a hook may take when its `timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a failing hook's body goes into the message.
const BODY_PREVIEW: usize = 200;
/// How much of a failing hook's body is read to find that preview; the rest is never read.
const BODY_READ: usize = 4 * 1024;

/// The JSON body every hook receives.
#[derive(Debug, Clone, Serialize)]
pub struct Payload<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub phase: &'a str,
    /// Changes with each revision of the target, so a hook can tell rollouts apart.
    pub checksum: &'a str,
    pub metadata: &'a BTreeMap<String, String>,
}

/// The HTTP client for serin's outgoing calls (webhooks, alerts, metrics servers). Redirects
/// are not followed: a hook's secret headers must not travel to a host the user did not name,
/// and a redirect usually means a wrong URL, better reported than silently chased.
pub fn client() -> reqwest::Result<reqwest::Client> {
    client_builder().build()
}

/// The settings every client of serin shares, for clients that add their own (a CA, a proxy).
pub fn client_builder() -> reqwest::ClientBuilder {
    outbound::client_builder()
}

/// Calls one hook, retrying transport errors and 5xx answers `retries` times with a doubling
/// pause. `headers` are the hook's secret headers, already resolved.
pub async fn call(
    http: &reqwest::Client,
    hook: &Webhook,
    payload: &Payload<'_>,
    headers: &BTreeMap<String, String>,
) -> HookOutcome {
    let attempts = 1 + hook.retries.unwrap_or(0).clamp(0, 10) as u32;
    let timeout = outbound::timeout(hook.timeout.map(|t| t.as_std()), DEFAULT_TIMEOUT);
    let mut pause = Duration::from_millis(250);
    let mut last = (false, String::new());
    for attempt in 1..=attempts {
        let (passed, message, retryable) =
            attempt_once(http, hook, payload, headers, timeout).await;
        last = (passed, message);
        if passed || !retryable || attempt == attempts {
            break;
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    HookOutcome {
        name: hook.name.clone(),
        kind: hook.kind,
        passed: last.0,
        message: last.1,
    }
}

/// A failed outcome for a hook that could not be called at all (its client could not be
/// built).
pub fn not_called(hook: &Webhook, why: &str) -> HookOutcome {
    HookOutcome {
        name: hook.name.clone(),
        kind: hook.kind,
        passed: false,
        message: format!("{} not called: {why}", hook.name),
    }
}

/// A failed outcome when the egress policy refuses the hook's URL outright (an IP address
/// the client would connect to without a lookup); names are checked by the client's resolver.
pub fn refused(hook: &Webhook, egress: &egress::Policy) -> Option<HookOutcome> {
    let refusal = egress.check_url(&hook.url).err()?;
    Some(HookOutcome {
        name: hook.name.clone(),
        kind: hook.kind,
        passed: false,
        message: format!("{} not called: {refusal}", hook.name),
    })
}

/// (passed, message, worth retrying)
async fn attempt_once(
    http: &reqwest::Client,
    hook: &Webhook,
    payload: &Payload<'_>,
    headers: &BTreeMap<String, String>,
    timeout: Duration,
) -> (bool, String, bool) {
    let mut request = http.post(&hook.url).timeout(timeout).json(payload);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                return (
                    true,
                    format!("{} answered {}", hook.name, status.as_u16()),
                    false,
                );
            }
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("nowhere")
                    .to_string();
                let message = format!(
                    "{} answered {} (a redirect to {}): redirects are not followed; use the final URL",
                    hook.name,
                    status.as_u16(),
                    redact::excerpt(&location, BODY_PREVIEW)
                );
                return (false, message, false);
            }
            let body = outbound::body::read_prefix(response, BODY_READ)
                .await
                .map(|prefix| prefix.text())
                .unwrap_or_default();
            let message = format!(
                "{} answered {}: {}",
                hook.name,
                status.as_u16(),
                redact::excerpt(&body, BODY_PREVIEW)
            );
            (false, message, status.is_server_error())
        }
        Err(error) => {
            let what = if error.is_timeout() {
                format!("timed out after {}s", timeout.as_secs_f64())
            } else if error.is_connect() {
                "could not connect".to_string()
            } else {
                "request failed".to_string()
            };
            // The hook's name says which URL; the causes say why (a TLS reason, a refusal).
            // A refusal by the egress policy will not change on a retry.
            let cause = outbound::error_text(&error.without_url(), BODY_PREVIEW);
            let retryable = !cause.contains("egress policy refuses");
            (false, format!("{} {what}: {cause}", hook.name), retryable)
        }
    }
}
