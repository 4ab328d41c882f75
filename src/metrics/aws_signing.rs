//! Signing a provider's requests for AWS (CloudWatch, Amazon Managed Prometheus): the key from
//! the template's Secret (`aws_access_key_id`, `aws_secret_access_key`, optional
//! `aws_session_token`, the names of AWS's credentials file) or else the pod's web identity
//! (`super::web_identity`), the region from `provider.region`, and the `Authorization`
//! headers [`super::sigv4`] computes for the request as it goes on the wire.

use chrono::Utc;

use super::exchange::{self, Reach};
use super::provider::{Connection, QueryError};
use super::sigv4::{self, Key, Scope};
use super::web_identity::{self, WebIdentity};

/// The Secret keys.
pub const ACCESS_KEY_ID: &str = "aws_access_key_id";
pub const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
pub const SESSION_TOKEN: &str = "aws_session_token";

/// Where the signing key comes from.
#[derive(Clone)]
pub enum Signer {
    /// The Secret's keys.
    Secret(Key),
    /// The pod's web identity, exchanged for temporary keys when needed.
    WebIdentity(WebIdentity),
}

/// How one provider signs: its key and region, or why it has none (said at query time, as a
/// failed check, so that a template is never silently sent unsigned).
#[derive(Clone)]
pub struct AwsSigning {
    pub signer: Result<(Signer, String), String>,
    /// The service's signing name (`monitoring`, `aps`).
    pub service: &'static str,
}

/// One request to sign: what [`sigv4::Request`] needs besides the host, taken from its URL.
pub struct Outgoing<'a> {
    pub method: &'a str,
    /// The full URL as sent, query included.
    pub url: &'a str,
    /// Headers sent and signed besides `host` and `x-amz-*`.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl AwsSigning {
    /// The key and region of `connection` for `service`; `what` names the service in errors
    /// (`CloudWatch`). Without keys in the Secret, `identity` signs, if the pod has one.
    pub fn of(
        connection: &Connection,
        identity: Option<WebIdentity>,
        service: &'static str,
        what: &str,
    ) -> Self {
        let credentials = &connection.credentials;
        let get = |key: &str| credentials.get(key).map(|v| v.trim().to_string());
        let key = match (get(ACCESS_KEY_ID), get(SECRET_ACCESS_KEY)) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Signer::Secret(Key {
                access_key_id,
                secret_access_key,
                session_token: get(SESSION_TOKEN).filter(|t| !t.is_empty()),
            })),
            (None, None) => identity.map(Signer::WebIdentity).ok_or_else(|| {
                format!(
                    "the Secret (secretRef) has no {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY}, \
                     which sign {what} requests, and the pod has no web identity ({} and {})",
                    web_identity::ROLE_ARN,
                    web_identity::TOKEN_FILE
                )
            }),
            (None, Some(_)) => Err(format!("the Secret has no {ACCESS_KEY_ID}")),
            (Some(_), None) => Err(format!("the Secret has no {SECRET_ACCESS_KEY}")),
        };
        // Trimmed as validation reads it: the scope must name the region exactly.
        let region = region(connection).ok_or_else(|| {
            format!("provider.region is not set: {what} requests are signed for a region")
        });
        Self {
            signer: key.and_then(|key| Ok((key, region?))),
            service,
        }
    }

    /// The headers that authenticate `request` (`X-Amz-Date`, the session token when there is
    /// one, `Authorization`), signed now: AWS refuses a signature 15 minutes off its clock.
    /// Web identity keys are asked of STS through `reach`'s client when none are cached.
    pub async fn headers(
        &self,
        request: &Outgoing<'_>,
        reach: &Reach,
    ) -> Result<Vec<(&'static str, String)>, QueryError> {
        let (signer, region) = self
            .signer
            .as_ref()
            .map_err(|message| QueryError::Refused {
                kind: "secretRef".into(),
                message: message.clone(),
            })?;
        let key = &match signer {
            Signer::Secret(key) => key.clone(),
            Signer::WebIdentity(identity) => web_identity::credentials(identity, reach).await?,
        };
        let url = reqwest::Url::parse(request.url)
            .map_err(|e| QueryError::Transport(format!("provider.address is not a URL: {e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => return Err(QueryError::Transport("provider.address has no host".into())),
        };
        let to_sign = sigv4::Request {
            method: request.method,
            path: url.path(),
            query: url.query().unwrap_or_default(),
            headers: request.headers,
            body: request.body,
        };
        let scope = Scope {
            region,
            service: self.service,
        };
        Ok(sigv4::sign(&to_sign, &host, key, scope, Utc::now()))
    }
}

/// The connection's `provider.region`, trimmed, when set.
pub fn region(connection: &Connection) -> Option<String> {
    connection
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// The pod's web identity, asking STS in the connection's region.
pub fn pod_identity(connection: &Connection) -> Option<WebIdentity> {
    region(connection).and_then(|region| WebIdentity::from_env(&region))
}

/// The URL of `path` under `reach`'s address with `query` (already encoded) appended.
pub fn url(reach: &Reach, path: &str, query: &str) -> String {
    let url = exchange::url(&reach.address, path);
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}
