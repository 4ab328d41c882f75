//! `AlertProvider`: where a Canary's alerts go (Slack, Microsoft Teams, Discord...).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::canary::SecretRef;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "serin.dev",
    version = "v1beta1",
    kind = "AlertProvider",
    namespaced,
    category = "serin",
    derive = "PartialEq",
    doc = "An alert destination referenced by Canary alerts through providerRef.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type")
)]
#[serde(rename_all = "camelCase")]
pub struct AlertProviderSpec {
    #[serde(rename = "type")]
    pub kind: AlertProviderKind,
    /// Channel (Slack) the message goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Name shown as the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Webhook URL. Prefer secretRef: an address here is visible to anyone who can read the
    /// AlertProvider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// A Secret with `address` (webhook URL) and/or `token` (Slack bot token, or a bearer
    /// token for generic endpoints); `proxy`, `channel` and `username` may be there too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// serin: a minijinja template replacing the message text, over name, namespace, cluster,
    /// revision, phase, severity, reason, message and time. See docs/alerts.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertProviderKind {
    Slack,
    Msteams,
    Discord,
    Gchat,
    /// Rocket.Chat incoming webhooks, which take Slack's payload.
    Rocket,
    Generic,
}
