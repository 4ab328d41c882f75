//! Alerts against local receivers that imitate Slack, Microsoft Teams, Discord and Google Chat:
//! each receiver checks the payload against the service's documented format and answers as the
//! service does (Slack "ok", Teams 202, Discord 204, Google Chat a message JSON, Slack's Web API
//! `{"ok": ...}`), so a payload the real service would refuse fails here too.

use chrono::Utc;
use serde_json::{Value, json};
use serin::api::alert_provider::AlertProviderKind;
use serin::api::canary::Severity;
use serin::notify::{Destination, Notice};

mod mock;

use mock::Reply;

/// A receiver answering with `answer(body) -> (status, response body)`, at a URL whose path
/// stands for the secret part of a webhook URL.
async fn receiver(answer: fn(&Value) -> (u16, String)) -> (String, mock::Server) {
    let server = mock::serve(move |request| {
        let (status, body) = answer(&request.json());
        Reply::status(status, &body)
    })
    .await;
    (format!("{}/hook/T000/SECRET-PATH", server.url), server)
}

fn is_text(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// Slack incoming webhooks: `text` or `attachments`/`blocks` required ("no_text"); attachment
/// colours are `good`, `warning`, `danger` or a hex code; fields have title, value, short.
fn slack(body: &Value) -> (u16, String) {
    let attachments = body["attachments"].as_array();
    if !is_text(&body["text"]) && attachments.is_none() {
        return (400, "no_text".into());
    }
    for a in attachments.into_iter().flatten() {
        let color = a["color"].as_str().unwrap_or("");
        let named = ["good", "warning", "danger"].contains(&color);
        let hex = color.starts_with('#') && color.len() == 7;
        let fields_ok = a["fields"].as_array().is_none_or(|fs| {
            fs.iter()
                .all(|f| is_text(&f["title"]) && f["value"].is_string() && f["short"].is_boolean())
        });
        if !(named || hex) || !fields_ok || !is_text(&a["fallback"]) {
            return (400, "invalid_attachments".into());
        }
    }
    (200, "ok".into())
}

/// Slack's `chat.postMessage`: a channel is required; the answer is always JSON with `ok`.
fn slack_api(body: &Value) -> (u16, String) {
    if !is_text(&body["channel"]) {
        return (200, r#"{"ok":false,"error":"channel_not_found"}"#.into());
    }
    match slack(body) {
        (200, _) => (200, r#"{"ok":true,"ts":"1.2"}"#.into()),
        (_, error) => (200, format!(r#"{{"ok":false,"error":"{error}"}}"#)),
    }
}

/// Teams Workflows: a `message` with an Adaptive Card attachment; TextBlocks need text; colours
/// are the Adaptive Card names.
fn teams(body: &Value) -> (u16, String) {
    let card = &body["attachments"][0];
    let content = &card["content"];
    let colors = [
        "Default",
        "Dark",
        "Light",
        "Accent",
        "Good",
        "Warning",
        "Attention",
    ];
    let blocks_ok = content["body"].as_array().is_some_and(|blocks| {
        blocks.iter().all(|b| match b["type"].as_str() {
            Some("TextBlock") => {
                is_text(&b["text"])
                    && b.get("color")
                        .is_none_or(|c| colors.contains(&c.as_str().unwrap_or("")))
            }
            Some("FactSet") => b["facts"].as_array().is_some_and(|fs| {
                fs.iter()
                    .all(|f| is_text(&f["title"]) && f["value"].is_string())
            }),
            _ => false,
        })
    });
    if body["type"] != "message"
        || card["contentType"] != "application/vnd.microsoft.card.adaptive"
        || content["type"] != "AdaptiveCard"
        || !is_text(&content["version"])
        || !blocks_ok
    {
        return (400, "Bad payload".into());
    }
    (202, String::new())
}

/// Discord: `content` or `embeds`; an embed colour is an integer; fields have name and value.
fn discord(body: &Value) -> (u16, String) {
    let embeds = body["embeds"].as_array();
    let ok = embeds.is_some_and(|es| {
        es.len() <= 10
            && es.iter().all(|e| {
                e["color"].is_u64()
                    && e["description"].as_str().is_some_and(|d| d.len() <= 4096)
                    && e["title"].as_str().is_some_and(|t| t.len() <= 256)
                    && e["fields"].as_array().is_none_or(|fs| {
                        fs.iter()
                            .all(|f| is_text(&f["name"]) && is_text(&f["value"]))
                    })
            })
    });
    if !ok && !is_text(&body["content"]) {
        return (
            400,
            r#"{"message": "Cannot send an empty message", "code": 50006}"#.into(),
        );
    }
    (204, String::new())
}

/// Google Chat: a `text` (or `cardsV2`) message; the answer is the created message.
fn gchat(body: &Value) -> (u16, String) {
    if !is_text(&body["text"]) && body["cardsV2"].is_null() {
        return (
            400,
            r#"{"error": {"code": 400, "message": "Message cannot be empty."}}"#.into(),
        );
    }
    (200, r#"{"name": "spaces/AAA/messages/BBB"}"#.into())
}

fn generic(body: &Value) -> (u16, String) {
    if body["name"].is_string() && body["message"].is_string() {
        (200, String::new())
    } else {
        (400, String::new())
    }
}

fn notice(severity: Severity, reason: &str, message: &str) -> Notice {
    Notice {
        name: "podinfo".into(),
        namespace: "shop".into(),
        cluster: "prod-eu".into(),
        revision: "6.1.0".into(),
        phase: "Progressing".into(),
        severity,
        reason: reason.into(),
        message: message.into(),
        time: Utc::now(),
    }
}

/// The message kinds of the alerts docs: reason, severity, text.
fn kinds() -> Vec<Notice> {
    vec![
        notice(
            Severity::Info,
            "Initialized",
            "primary ready: it serves all traffic",
        ),
        notice(
            Severity::Info,
            "NewRevision",
            "new revision 6.1.0: starting the canary rollout",
        ),
        notice(
            Severity::Info,
            "WaitingForPromotion",
            "analysis passed; waiting for confirm-promotion",
        ),
        notice(
            Severity::Info,
            "Succeeded",
            "promotion completed: the primary runs revision 6.1.0",
        ),
        notice(
            Severity::Error,
            "ThresholdReached",
            "rolling back: failed checks reached the threshold (2/2): request-success-rate: 91.2 < 99 (min)",
        ),
        notice(
            Severity::Error,
            "ProgressDeadlineExceeded",
            "canary pods not ready within 10m",
        ),
        notice(
            Severity::Error,
            "PreRolloutFailed",
            "pre-rollout hook smoke failed: HTTP 500: boom",
        ),
        notice(
            Severity::Warn,
            "JudgeMarginal",
            "judge score 75 (pass 95, marginal 75)",
        ),
    ]
}

fn destination(kind: AlertProviderKind, url: &str) -> Destination {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Destination {
        id: "shop/alerts".into(),
        kind,
        url: url.to_string(),
        token: None,
        channel: Some("#deploys".into()),
        username: Some("serin".into()),
        template: None,
        client: reqwest::Client::new(),
    }
}

async fn deliver_all(kind: AlertProviderKind, answer: fn(&Value) -> (u16, String)) -> Vec<Value> {
    let (url, inbox) = receiver(answer).await;
    let destination = destination(kind, &url);
    for notice in kinds() {
        destination
            .send(&notice)
            .await
            .unwrap_or_else(|e| panic!("{kind:?} {}: {e}", notice.reason));
    }
    let bodies: Vec<Value> = inbox.received().iter().map(mock::Request::json).collect();
    assert_eq!(bodies.len(), kinds().len());
    bodies
}

#[tokio::test]
async fn slack_gets_attachments_coloured_by_severity_with_the_facts() {
    let bodies = deliver_all(AlertProviderKind::Slack, slack).await;
    let colors: Vec<&str> = bodies
        .iter()
        .map(|b| b["attachments"][0]["color"].as_str().unwrap())
        .collect();
    assert_eq!(
        colors,
        [
            "good", "good", "good", "good", "danger", "danger", "danger", "warning"
        ]
    );
    let rollback = &bodies[4];
    assert_eq!(rollback["channel"], "#deploys");
    assert_eq!(rollback["username"], "serin");
    let attachment = &rollback["attachments"][0];
    assert_eq!(attachment["title"], "podinfo.shop (prod-eu)");
    assert!(
        attachment["text"]
            .as_str()
            .unwrap()
            .contains("request-success-rate: 91.2 < 99 (min)")
    );
    let fields: Vec<(String, String)> = attachment["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["title"].as_str().unwrap().into(),
                f["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (title, value) in [
        ("Phase", "Progressing"),
        ("Revision", "6.1.0"),
        ("Reason", "ThresholdReached"),
        ("Cluster", "prod-eu"),
    ] {
        assert!(fields.contains(&(title.into(), value.into())), "{fields:?}");
    }
}

#[tokio::test]
async fn slack_with_a_bot_token_uses_chat_post_message_and_reports_its_errors() {
    let (url, inbox) = receiver(slack_api).await;
    let mut bot = destination(AlertProviderKind::Slack, &url);
    bot.token = Some("xoxb-test-token".into());
    bot.send(&kinds()[0]).await.unwrap();
    let head = inbox.received()[0].head.clone();
    assert!(
        head.contains("authorization: Bearer xoxb-test-token"),
        "{head}"
    );
    bot.channel = None;
    let error = bot.send(&kinds()[0]).await.unwrap_err();
    assert_eq!(
        error,
        "alert to shop/alerts (Slack chat.postMessage) refused: channel_not_found"
    );
    assert!(!error.contains("xoxb"));
}

#[tokio::test]
async fn teams_gets_an_adaptive_card() {
    let bodies = deliver_all(AlertProviderKind::Msteams, teams).await;
    let title = &bodies[4]["attachments"][0]["content"]["body"][0];
    assert_eq!(title["text"], "podinfo.shop (prod-eu)");
    assert_eq!(title["color"], "Attention");
    assert_eq!(
        bodies[7]["attachments"][0]["content"]["body"][0]["color"],
        "Warning"
    );
    let facts = &bodies[1]["attachments"][0]["content"]["body"][2]["facts"];
    assert!(
        facts
            .as_array()
            .unwrap()
            .contains(&json!({"title": "Revision", "value": "6.1.0"}))
    );
}

#[tokio::test]
async fn discord_gets_embeds_with_integer_colours() {
    let bodies = deliver_all(AlertProviderKind::Discord, discord).await;
    assert_eq!(bodies[0]["embeds"][0]["color"], 0x2E_B8_86);
    assert_eq!(bodies[4]["embeds"][0]["color"], 0xA3_00_00);
    assert_eq!(bodies[7]["embeds"][0]["color"], 0xDA_A0_38);
    assert_eq!(bodies[4]["username"], "serin");
    assert!(
        bodies[6]["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("pre-rollout hook smoke failed")
    );
}

#[tokio::test]
async fn google_chat_gets_a_text_message() {
    let bodies = deliver_all(AlertProviderKind::Gchat, gchat).await;
    let text = bodies[3]["text"].as_str().unwrap();
    assert!(
        text.starts_with("*podinfo.shop (prod-eu)*\npromotion completed"),
        "{text}"
    );
    assert!(
        text.contains("Phase: Progressing · Revision: 6.1.0"),
        "{text}"
    );
}

#[tokio::test]
async fn generic_endpoints_get_flat_json_and_a_bearer_token() {
    let (url, inbox) = receiver(generic).await;
    let mut endpoint = destination(AlertProviderKind::Generic, &url);
    endpoint.token = Some("t0ken".into());
    endpoint.send(&kinds()[4]).await.unwrap();
    let received = inbox.received()[0].clone();
    assert!(received.head.contains("authorization: Bearer t0ken"));
    let body = received.json();
    assert_eq!(body["severity"], "error");
    assert_eq!(body["reason"], "ThresholdReached");
    assert_eq!(body["cluster"], "prod-eu");
    assert_eq!(body["revision"], "6.1.0");
}

#[tokio::test]
async fn a_template_rewrites_the_text_and_a_broken_one_falls_back_to_the_plain_message() {
    let (url, inbox) = receiver(slack).await;
    let mut templated = destination(AlertProviderKind::Slack, &url);
    templated.template =
        Some("{{ severity | upper }} {{ name }} {{ phase }}: {{ message }}".into());
    templated.send(&kinds()[4]).await.unwrap();
    templated.template = Some("{{ nme }}".into());
    templated.send(&kinds()[4]).await.unwrap();
    let inbox = inbox.received();
    let text = |i: usize| {
        inbox[i].json()["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        text(0).starts_with("ERROR podinfo Progressing: rolling back"),
        "{}",
        text(0)
    );
    assert!(text(1).starts_with("rolling back"), "{}", text(1));
}

#[tokio::test]
async fn a_failing_service_is_retried_and_reported_without_the_url() {
    let (url, inbox) = receiver(|_| (503, "upstream busy".into())).await;
    let error = destination(AlertProviderKind::Slack, &url)
        .send(&kinds()[0])
        .await
        .unwrap_err();
    assert_eq!(
        error,
        "alert to shop/alerts (Slack) failed: HTTP 503: upstream busy"
    );
    assert_eq!(inbox.received().len(), 3, "three attempts");
    let (url, inbox) = receiver(|_| (400, "invalid_payload".into())).await;
    let error = destination(AlertProviderKind::Slack, &url)
        .send(&kinds()[0])
        .await
        .unwrap_err();
    assert!(error.ends_with("HTTP 400: invalid_payload"));
    assert_eq!(inbox.received().len(), 1, "a 4xx is not retried");
    // Nothing listening: a transport error, without the secret path of the URL.
    let closed = format!("{}/hook/T000/SECRET-PATH", mock::closed_url());
    let error = destination(AlertProviderKind::Discord, &closed)
        .send(&kinds()[0])
        .await
        .unwrap_err();
    assert!(!error.contains("SECRET-PATH"), "{error}");
}

#[tokio::test]
async fn a_huge_answer_is_not_buffered_and_echoed_credentials_are_masked() {
    let server = mock::serve(|_| {
        Reply::status(400, "bad request; token=xoxb-0123456789-secret ")
            .filler(200 * 1024 * 1024)
            .unannounced()
    })
    .await;
    let error = destination(AlertProviderKind::Slack, &server.url)
        .send(&kinds()[0])
        .await
        .unwrap_err();
    assert!(
        error.starts_with("alert to shop/alerts (Slack) failed: HTTP 400: bad request; token=***"),
        "{error}"
    );
    assert!(!error.contains("xoxb"), "{error}");
    assert!(error.chars().count() < 300, "{error}");
    let peak = mock::peak_memory("self");
    assert!(
        peak < mock::MEMORY_BOUND,
        "the answer was buffered: peak memory {} MiB",
        peak >> 20
    );
}
