//! The JSON each alert service expects, built from one [`Notice`]. Pure: the format of every
//! service is tested without a network. Formats, as each service documents them:
//! - Slack: incoming webhooks and `chat.postMessage` take `text` plus `attachments` with a
//!   `color` (`good`, `warning`, `danger`) and `fields` of `title`/`value`/`short`;
//! - Microsoft Teams (Workflows webhooks): a `message` whose attachment is an Adaptive Card
//!   (`application/vnd.microsoft.card.adaptive`) with TextBlocks and a FactSet;
//! - Discord: `embeds` with `title`, `description`, an integer `color` and `fields` of
//!   `name`/`value`/`inline`;
//! - Google Chat: a `text` message (`*bold*` markup);
//! - Rocket.Chat: incoming webhooks take Slack's payload; colours as CSS hex values, which
//!   Rocket.Chat draws (Slack's `good`/`warning`/`danger` are Slack's own names);
//! - generic: every field of the notice as flat JSON.

use serde_json::{Value, json};

use crate::api::alert_provider::AlertProviderKind;
use crate::api::canary::Severity;

use super::Notice;

/// Sender details an AlertProvider may set.
#[derive(Debug, Clone, Default)]
pub struct Sender<'a> {
    pub channel: Option<&'a str>,
    pub username: Option<&'a str>,
}

/// The request body for `kind`. `text` is the message (the notice's, or the provider's
/// template rendered).
pub fn payload(kind: AlertProviderKind, notice: &Notice, text: &str, sender: &Sender<'_>) -> Value {
    match kind {
        AlertProviderKind::Slack => slack(notice, text, sender),
        AlertProviderKind::Msteams => teams(notice, text),
        AlertProviderKind::Discord => discord(notice, text, sender),
        AlertProviderKind::Gchat => gchat(notice, text),
        AlertProviderKind::Rocket => rocket(notice, text, sender),
        AlertProviderKind::Generic => generic(notice, text),
    }
}

/// `podinfo.test` (and the cluster, when named): what every title starts with.
fn title(notice: &Notice) -> String {
    match notice.cluster.as_str() {
        "" => format!("{}.{}", notice.name, notice.namespace),
        cluster => format!("{}.{} ({cluster})", notice.name, notice.namespace),
    }
}

/// The facts every message carries besides its text.
fn facts(notice: &Notice) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Phase", notice.phase.clone()),
        ("Revision", notice.revision.clone()),
        ("Reason", notice.reason.clone()),
    ];
    if !notice.cluster.is_empty() {
        facts.push(("Cluster", notice.cluster.clone()));
    }
    facts
}

fn slack(notice: &Notice, text: &str, sender: &Sender<'_>) -> Value {
    let color = match notice.severity {
        Severity::Info => "good",
        Severity::Warn => "warning",
        Severity::Error => "danger",
    };
    let fields: Vec<Value> = facts(notice)
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value, "short": true}))
        .collect();
    let mut body = json!({
        "text": format!("{}: {text}", title(notice)),
        "attachments": [{
            "color": color,
            "fallback": format!("{}: {text}", title(notice)),
            "title": title(notice),
            "text": text,
            "fields": fields,
            "footer": "serin",
            "ts": notice.time.timestamp(),
        }],
    });
    if let Some(channel) = sender.channel {
        body["channel"] = json!(channel);
    }
    if let Some(username) = sender.username {
        body["username"] = json!(username);
    }
    body
}

fn rocket(notice: &Notice, text: &str, sender: &Sender<'_>) -> Value {
    let mut body = slack(notice, text, sender);
    body["attachments"][0]["color"] = json!(match notice.severity {
        Severity::Info => "#0076D7",
        Severity::Warn => "#FFA500",
        Severity::Error => "#FF0000",
    });
    body["icon_emoji"] = json!(":rocket:");
    body
}

fn teams(notice: &Notice, text: &str) -> Value {
    let color = match notice.severity {
        Severity::Info => "Good",
        Severity::Warn => "Warning",
        Severity::Error => "Attention",
    };
    let facts: Vec<Value> = facts(notice)
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": title(notice), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true},
                    {"type": "TextBlock", "text": text, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
            },
        }],
    })
}

fn discord(notice: &Notice, text: &str, sender: &Sender<'_>) -> Value {
    // Discord colours are integers (0xRRGGBB): green, amber, red.
    let color = match notice.severity {
        Severity::Info => 0x2E_B8_86,
        Severity::Warn => 0xDA_A0_38,
        Severity::Error => 0xA3_00_00,
    };
    let fields: Vec<Value> = facts(notice)
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value, "inline": true}))
        .collect();
    let mut body = json!({
        "embeds": [{
            "title": title(notice),
            "description": text,
            "color": color,
            "fields": fields,
            "timestamp": notice.time.to_rfc3339(),
            "footer": {"text": "serin"},
        }],
    });
    if let Some(username) = sender.username {
        body["username"] = json!(username);
    }
    body
}

fn gchat(notice: &Notice, text: &str) -> Value {
    let facts: Vec<String> = facts(notice)
        .into_iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    json!({"text": format!("*{}*\n{text}\n{}", title(notice), facts.join(" · "))})
}

fn generic(notice: &Notice, text: &str) -> Value {
    json!({
        "name": notice.name,
        "namespace": notice.namespace,
        "cluster": notice.cluster,
        "revision": notice.revision,
        "phase": notice.phase,
        "severity": notice.severity,
        "reason": notice.reason,
        "message": text,
        "timestamp": notice.time.to_rfc3339(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rocket_chat_gets_slacks_payload_with_hex_colours() {
        let mut notice = crate::notify::tests::notice();
        notice.severity = Severity::Error;
        let sender = Sender {
            channel: Some("deploys"),
            username: Some("serin"),
        };
        let body = payload(AlertProviderKind::Rocket, &notice, "rolling back", &sender);
        let slack = payload(AlertProviderKind::Slack, &notice, "rolling back", &sender);
        assert_eq!(body["text"], slack["text"]);
        assert_eq!(body["channel"], "deploys");
        assert_eq!(body["username"], "serin");
        assert_eq!(body["attachments"][0]["color"], "#FF0000");
        assert_eq!(
            body["attachments"][0]["fields"],
            slack["attachments"][0]["fields"]
        );
    }
}
