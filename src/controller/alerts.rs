//! Sends the engine's alerts: to the AlertProviders of the Canary's `analysis.alerts` whose
//! severity filter lets the alert through, or to the controller's default provider (the
//! `--alert-*` flags) when the Canary names none. Sending runs in the background, so a slow
//! chat service never delays a rollout; failures are logged without URLs or tokens.

use std::time::Instant;

use kube::ResourceExt;

use crate::api::AlertProvider;
use crate::api::alert_provider::AlertProviderKind;
use crate::api::canary::Alert as AlertEntry;
use crate::engine::action::Alert;
use crate::notify::{Destination, Notice, SLACK_POST_MESSAGE};

use super::clients::Setting;
use super::context::{Context, get_required_in, read_secret};
use super::scene::Scene;
use super::warnings::Warnings;
use crate::api::group::ApiGroup;
use crate::engine::Reason;

/// Resolves the destinations of `alert` and sends it to each in the background.
pub async fn dispatch<W>(
    ctx: &Context,
    scene: &Scene<W>,
    alert: &Alert,
    revision: &str,
    phase: &str,
) {
    let canary = &scene.canary;
    let notice = Notice {
        name: canary.name_any(),
        namespace: scene.namespace.clone(),
        cluster: ctx.options.cluster_name.clone(),
        revision: revision.to_string(),
        phase: phase.to_string(),
        severity: alert.severity,
        reason: alert.reason.as_str().to_string(),
        message: alert.message.clone(),
        time: chrono::Utc::now(),
    };
    let warnings = Warnings::of(ctx, canary);
    let entries = &canary.spec.analysis.alerts;
    let mut destinations = Vec::new();
    if entries.is_empty() {
        if let Some(default) = default_destination(ctx)
            && alert.severity >= ctx.options.alert_severity
        {
            destinations.push(default);
        }
    } else {
        for entry in entries.iter().filter(|e| alert.severity >= e.severity) {
            match destination(ctx, ctx.group_of(canary), &scene.namespace, entry).await {
                Ok(destination) => destinations.push(destination),
                Err(error) => {
                    tracing::warn!(canary = %notice.name, namespace = %notice.namespace, alert = %entry.name, %error, "alert not sent");
                    let note = format!("alert {} not sent: {error}", entry.name);
                    warnings.warn(Reason::AlertNotSent, &note).await;
                }
            }
        }
    }
    for destination in destinations {
        if !ctx
            .alert_repeats
            .first(&destination.id, &notice, Instant::now())
        {
            tracing::debug!(canary = %notice.name, destination = %destination.id, reason = %notice.reason, "alert already sent within the repeat window");
            continue;
        }
        let notice = notice.clone();
        let warnings = warnings.clone();
        tokio::spawn(async move {
            match destination.send(&notice).await {
                Ok(()) => {
                    tracing::info!(canary = %notice.name, namespace = %notice.namespace, destination = %destination.id, reason = %notice.reason, "alert sent")
                }
                Err(error) => {
                    tracing::warn!(canary = %notice.name, namespace = %notice.namespace, %error, "alert not sent");
                    let note = format!("alert to {} not sent: {error}", destination.id);
                    warnings.warn(Reason::AlertNotSent, &note).await;
                }
            }
        });
    }
}

/// The `--alert-*` default provider, when `--alert-url` is set.
fn default_destination(ctx: &Context) -> Option<Destination> {
    let options = &ctx.options;
    let url = options.alert_url.clone().filter(|u| !u.is_empty())?;
    Some(Destination {
        id: "--alert-url".into(),
        kind: options.alert_type,
        url,
        token: None,
        channel: options.alert_channel.clone(),
        username: Some(options.alert_username.clone()),
        template: None,
        client: ctx.http.clone(),
    })
}

/// An AlertProvider and its Secret, read now: a rotated webhook URL is used at once.
async fn destination(
    ctx: &Context,
    group: ApiGroup,
    namespace: &str,
    entry: &AlertEntry,
) -> Result<Destination, String> {
    let reference = &entry.provider_ref;
    let provider_namespace = reference.namespace.as_deref().unwrap_or(namespace);
    let provider: AlertProvider =
        get_required_in(&ctx.client, group, provider_namespace, &reference.name)
            .await
            .map_err(|e| e.to_string())?;
    let spec = &provider.spec;
    let secret = match &spec.secret_ref {
        Some(secret) => read_secret(&ctx.client, provider_namespace, &secret.name)
            .await
            .map_err(|e| e.to_string())?,
        None => Default::default(),
    };
    let pick = |key: &str, spec_value: &Option<String>| {
        secret
            .get(key)
            .cloned()
            .or_else(|| spec_value.clone())
            .filter(|v| !v.is_empty())
    };
    let token = secret.get("token").cloned().filter(|t| !t.is_empty());
    let url = match (pick("address", &spec.address), &token, spec.kind) {
        (Some(url), _, _) => url,
        (None, Some(_), AlertProviderKind::Slack) => SLACK_POST_MESSAGE.to_string(),
        _ => {
            return Err(format!(
                "AlertProvider {provider_namespace}/{} has no address (set spec.address or the Secret's address{})",
                reference.name,
                if spec.kind == AlertProviderKind::Slack {
                    ", or a bot token"
                } else {
                    ""
                }
            ));
        }
    };
    ctx.clients.egress().check_url(&url).map_err(|refusal| {
        format!(
            "AlertProvider {provider_namespace}/{}: {refusal}",
            reference.name
        )
    })?;
    let setting = Setting {
        proxy: pick("proxy", &spec.proxy),
        ..Setting::default()
    };
    Ok(Destination {
        id: format!("{provider_namespace}/{}", reference.name),
        kind: spec.kind,
        url,
        token,
        channel: pick("channel", &spec.channel),
        username: pick("username", &spec.username),
        template: spec.template.clone(),
        client: ctx.clients.get(&ctx.http, &setting)?,
    })
}
