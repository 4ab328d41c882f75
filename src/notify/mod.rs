//! Alerts to people: Slack, Microsoft Teams, Discord, Google Chat and generic JSON endpoints.
//! The engine decides what is worth an alert (`Action::Alert`); this module formats it for each
//! service ([`payload`]), sends it, and keeps a flapping canary from flooding a channel
//! ([`Repeats`]). Reading AlertProviders and Secrets is the controller's job.

pub mod payload;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::api::alert_provider::AlertProviderKind;
use crate::api::canary::Severity;
use crate::metrics::bounded::{self, Limits};
use crate::outbound::body::{self, Prefix};
use crate::outbound::{self, redact};

use payload::Sender;

/// Where Slack's Web API takes messages sent with a bot token.
pub const SLACK_POST_MESSAGE: &str = "https://slack.com/api/chat.postMessage";
/// Attempts per alert: a chat service's hiccup should not lose a rollback alert.
const ATTEMPTS: u32 = 3;
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer read: chat services answer a few bytes (Slack's API a small JSON).
const ANSWER_LIMIT: usize = 64 * 1024;
/// How much of a failing answer the error shows.
const ANSWER_PREVIEW: usize = 200;

/// What happened, as every alert tells it.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub name: String,
    pub namespace: String,
    /// The controller's `--cluster-name` (may be empty).
    pub cluster: String,
    pub revision: String,
    pub phase: String,
    pub severity: Severity,
    pub reason: String,
    pub message: String,
    pub time: DateTime<Utc>,
}

/// One resolved alert destination.
#[derive(Clone)]
pub struct Destination {
    /// For logs: `namespace/name` of the AlertProvider, or `--alert-*` for the default.
    pub id: String,
    pub kind: AlertProviderKind,
    /// Webhook URL (secret: never logged), or Slack's `chat.postMessage` with a token.
    pub url: String,
    /// Slack bot token: the message goes through `chat.postMessage`.
    pub token: Option<String>,
    pub channel: Option<String>,
    pub username: Option<String>,
    /// minijinja template of the message text (see docs/alerts.md).
    pub template: Option<String>,
    pub client: reqwest::Client,
}

impl Destination {
    /// The message text: the provider's template rendered with the notice, or the notice's.
    pub fn text(&self, notice: &Notice) -> Result<String, String> {
        let Some(template) = &self.template else {
            return Ok(notice.message.clone());
        };
        bounded::render(template, notice, &Limits::ALERT)
            .map_err(|e| format!("alert template of {} (spec.template): {e}", self.id))
    }

    /// Formats and sends the notice, retrying transport errors, 429 and 5xx. The error names
    /// the destination and the answer, never the URL or the token.
    pub async fn send(&self, notice: &Notice) -> Result<(), String> {
        // A broken template must not swallow a rollback alert: send the plain text instead.
        let text = self.text(notice).unwrap_or_else(|error| {
            tracing::warn!(%error, "alert template failed; sending the plain message");
            notice.message.clone()
        });
        let sender = Sender {
            channel: self.channel.as_deref(),
            username: self.username.as_deref(),
        };
        let body = payload::payload(self.kind, notice, &text, &sender);
        let mut pause = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let mut request = self.client.post(&self.url).json(&body).timeout(TIMEOUT);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let answer =
                        body::read_prefix(response, ANSWER_LIMIT)
                            .await
                            .unwrap_or(Prefix {
                                bytes: Vec::new(),
                                complete: false,
                            });
                    if status.is_success() {
                        return self.slack_api_ok(&answer);
                    }
                    last = format!(
                        "HTTP {}: {}",
                        status.as_u16(),
                        redact::excerpt(&answer.text(), ANSWER_PREVIEW)
                    );
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        break;
                    }
                }
                Err(error) => last = transport_error(error),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        Err(format!(
            "alert to {} ({:?}) failed: {last}",
            self.id, self.kind
        ))
    }

    /// Slack's Web API answers 200 with `{"ok": false, "error": ...}` on failure.
    fn slack_api_ok(&self, answer: &Prefix) -> Result<(), String> {
        if self.kind != AlertProviderKind::Slack || self.token.is_none() {
            return Ok(());
        }
        if !answer.complete {
            return Err(format!(
                "alert to {} (Slack chat.postMessage): the answer is larger than {} or was cut off",
                self.id,
                body::Size(ANSWER_LIMIT)
            ));
        }
        let reply: serde_json::Value = serde_json::from_slice(&answer.bytes).unwrap_or_default();
        match reply["error"].as_str() {
            _ if reply["ok"].as_bool() == Some(true) => Ok(()),
            error => Err(format!(
                "alert to {} (Slack chat.postMessage) refused: {}",
                self.id,
                redact::excerpt(error.unwrap_or("no \"ok\" in the answer"), ANSWER_PREVIEW)
            )),
        }
    }
}

/// A transport error without the URL (it is a secret for most chat services), with its cause
/// chain: an egress refusal or a TLS reason lives deep in it.
fn transport_error(error: reqwest::Error) -> String {
    outbound::error_text(&error.without_url(), ANSWER_PREVIEW)
}

/// Remembers what was sent so the same alert (destination, canary, reason, revision and
/// severity — measured values in the text may differ) goes out once per window.
pub struct Repeats {
    window: Duration,
    sent: Mutex<HashMap<String, Instant>>,
}

impl Repeats {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// True when this alert was not sent within the window (and records it as sent now).
    pub fn first(&self, destination: &str, notice: &Notice, now: Instant) -> bool {
        let key = format!(
            "{destination}\u{0}{}/{}\u{0}{}\u{0}{}\u{0}{:?}",
            notice.namespace, notice.name, notice.reason, notice.revision, notice.severity
        );
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.retain(|_, at| now.duration_since(*at) < self.window);
        if sent.contains_key(&key) {
            return false;
        }
        sent.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn notice() -> Notice {
        Notice {
            name: "podinfo".into(),
            namespace: "test".into(),
            cluster: "prod-eu".into(),
            revision: "6.1.0".into(),
            phase: "Failed".into(),
            severity: Severity::Error,
            reason: "ThresholdReached".into(),
            message: "rolling back: request-success-rate 91.2 < 99 (min)".into(),
            time: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                .unwrap()
                .to_utc(),
        }
    }

    fn destination(template: Option<&str>) -> Destination {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Destination {
            id: "test/slack".into(),
            kind: AlertProviderKind::Slack,
            url: "http://127.0.0.1:9/".into(),
            token: None,
            channel: None,
            username: None,
            template: template.map(str::to_string),
            client: reqwest::Client::new(),
        }
    }

    #[test]
    fn a_template_rewrites_the_text_and_a_bad_one_is_an_error() {
        let text = destination(Some(
            "{{ severity }} {{ name }}@{{ cluster }}: {{ message }}",
        ))
        .text(&notice())
        .unwrap();
        assert_eq!(
            text,
            "error podinfo@prod-eu: rolling back: request-success-rate 91.2 < 99 (min)"
        );
        let error = destination(Some("{{ nme }}")).text(&notice()).unwrap_err();
        assert!(error.starts_with("alert template of test/slack"), "{error}");
    }

    #[test]
    fn the_same_alert_is_sent_once_per_window() {
        let repeats = Repeats::new(Duration::from_secs(600));
        let start = Instant::now();
        let mut n = notice();
        assert!(repeats.first("a", &n, start));
        n.message = "rolling back: request-success-rate 90.8 < 99 (min)".into();
        assert!(
            !repeats.first("a", &n, start + Duration::from_secs(60)),
            "same reason and revision, other values: a repeat"
        );
        assert!(repeats.first("b", &n, start), "another destination");
        n.revision = "6.1.1".into();
        assert!(repeats.first("a", &n, start), "another revision");
        n.revision = "6.1.0".into();
        assert!(repeats.first("a", &n, start + Duration::from_secs(601)));
    }
}
