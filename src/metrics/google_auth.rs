//! Google OAuth 2.0 access tokens for Cloud Monitoring (the `stackdriver` provider and Google
//! Managed Prometheus): from a service-account key in the template's Secret
//! (`serviceAccountKey`, the JSON file Google hands out), exchanged at the key's `token_uri`
//! with a JWT bearer grant (RFC 7523) signed RS256; or, without a key, from the GKE metadata
//! server (workload identity), as Google's client libraries do. A token is kept until shortly
//! before it expires, so a tick does not ask Google for one per query.
//!
//! The private key never leaves this module: Debug prints the account's e-mail only, and
//! errors name the Secret key, never its value.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

use crate::outbound::redact;

use super::exchange::{self, Auth, Call, PREVIEW, Reach};
use super::provider::{Credentials, QueryError};

/// The Secret keys (Flagger's names).
pub const SERVICE_ACCOUNT_KEY: &str = "serviceAccountKey";
pub const PROJECT: &str = "project";
/// What the token may do: read Cloud Monitoring (queries need no more).
pub const SCOPE: &str = "https://www.googleapis.com/auth/monitoring.read";
/// The variable Google's client libraries read for the metadata server's `host[:port]`.
pub const METADATA_HOST_ENV: &str = "GCE_METADATA_HOST";
pub const METADATA_HOST: &str = "metadata.google.internal";
/// The token path of the pod's (node's, or workload identity's) default service account.
pub const METADATA_TOKEN_PATH: &str = "computeMetadata/v1/instance/service-accounts/default/token";
/// How long a signed assertion is valid (Google's maximum).
const ASSERTION_LIFETIME: i64 = 3600;
/// Tokens are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// The largest key, token answer and error read.
const MAX_KEY: usize = 64 * 1024;
const MAX_ANSWER: usize = 64 * 1024;

/// The fields of a service-account key file serin uses.
#[derive(Clone, Deserialize, PartialEq, Eq, Hash)]
pub struct ServiceAccountKey {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    pub client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
    #[serde(default)]
    pub project_id: Option<String>,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

/// Where access tokens come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenSource {
    /// A service-account key from the Secret.
    Key(ServiceAccountKey),
    /// The metadata server at this `host[:port]` (workload identity on GKE).
    Metadata(String),
}

impl TokenSource {
    /// The Secret's `serviceAccountKey`, else the metadata server at `metadata_host`; a key
    /// that is not a service-account key file is an error naming the Secret key.
    pub fn of(credentials: &Credentials, metadata_host: String) -> Result<Self, String> {
        match credentials.get(SERVICE_ACCOUNT_KEY) {
            Some(json) => ServiceAccountKey::parse(json).map(Self::Key),
            None => Ok(Self::Metadata(metadata_host)),
        }
    }

    /// The project of a key file, when the Secret names none.
    pub fn project(&self) -> Option<&str> {
        match self {
            Self::Key(key) => key.project_id.as_deref().filter(|p| !p.is_empty()),
            Self::Metadata(_) => None,
        }
    }
}

/// The metadata server's address: `GCE_METADATA_HOST` when set (tests, proxies), else GKE's.
pub fn metadata_host() -> String {
    std::env::var(METADATA_HOST_ENV)
        .ok()
        .map(|host| host.trim().to_string())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| METADATA_HOST.into())
}

impl ServiceAccountKey {
    /// A key file's JSON; the error says what is wrong without quoting it.
    pub fn parse(json: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("the Secret's {SERVICE_ACCOUNT_KEY} {why}");
        if json.len() > MAX_KEY {
            return Err(bad(&format!("is larger than {MAX_KEY} bytes")));
        }
        let key: Self = serde_json::from_str(json).map_err(|e| {
            bad(&format!(
                "is not a service-account key file (JSON with client_email and private_key): \
                 line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
        if key.kind.as_deref().is_some_and(|k| k != "service_account") {
            return Err(bad(&format!(
                "is of type {:?}, not a service_account key",
                key.kind.as_deref().unwrap_or_default()
            )));
        }
        signer(&key.private_key).map_err(|why| bad(&why))?;
        Ok(key)
    }
}

/// The key file's `private_key` (PEM PKCS#8, as Google writes it) as a signing key.
fn signer(pem: &str) -> Result<RsaKeyPair, String> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
        "private_key is not a PEM PKCS#8 private key (-----BEGIN PRIVATE KEY-----)".to_string()
    })?;
    RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| format!("private_key is not an RSA key Google accepts: {e}"))
}

/// The JWT bearer grant's assertion for `key`, issued at `now` (RFC 7523, RS256).
pub fn assertion(key: &ServiceAccountKey, now: DateTime<Utc>) -> Result<String, QueryError> {
    let refused = |why: String| QueryError::Refused {
        kind: "secretRef".into(),
        message: format!("the Secret's {SERVICE_ACCOUNT_KEY}: {why}"),
    };
    let pair = signer(&key.private_key).map_err(refused)?;
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(id) = &key.private_key_id {
        header["kid"] = id.as_str().into();
    }
    let claims = serde_json::json!({
        "iss": key.client_email,
        "scope": SCOPE,
        "aud": key.token_uri,
        "iat": now.timestamp(),
        "exp": now.timestamp() + ASSERTION_LIFETIME,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .map_err(|_| refused("signing the token request failed".into()))?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// A token endpoint's answer (the JWT grant's and the metadata server's are the same shape).
#[derive(Deserialize)]
struct Token {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// Tokens and when they expire, per source.
type Held = HashMap<TokenSource, (String, DateTime<Utc>)>;

static CACHE: LazyLock<Mutex<Held>> = LazyLock::new(Mutex::default);

fn cache() -> std::sync::MutexGuard<'static, Held> {
    // A poisoned cache only held tokens: keep using it.
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An access token of `source`: the cached one while fresh, else a new one, asked through
/// `reach`'s client and timeout (never with the template's headers, which are for the query).
pub async fn access_token(source: &TokenSource, reach: &Reach) -> Result<String, QueryError> {
    let now = Utc::now();
    let renew_at = now + chrono::Duration::from_std(RENEW_BEFORE).unwrap_or_default();
    if let Some((token, expiry)) = cache().get(source)
        && *expiry > renew_at
    {
        return Ok(token.clone());
    }
    let answer = match source {
        TokenSource::Key(key) => grant(key, reach, now).await?,
        TokenSource::Metadata(host) => metadata(host, reach).await?,
    };
    let token: Token = exchange::decode(&answer, "a Google OAuth 2.0 token answer")?;
    // Without expires_in (never seen), the token is used once.
    let expiry = now + chrono::Duration::seconds(token.expires_in.unwrap_or(0).clamp(0, 86_400));
    cache().insert(source.clone(), (token.access_token.clone(), expiry));
    Ok(token.access_token)
}

async fn grant(
    key: &ServiceAccountKey,
    reach: &Reach,
    now: DateTime<Utc>,
) -> Result<String, QueryError> {
    let assertion = assertion(key, now)?;
    let body = reqwest::Url::parse_with_params(
        "http://form/",
        [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ],
    )
    .map_err(|e| QueryError::Transport(format!("token request: {e}")))?
    .query()
    .unwrap_or_default()
    .to_string();
    // The exchange joins an address and a path with a slash; the token URI is both.
    let (address, path) = key
        .token_uri
        .rsplit_once('/')
        .unwrap_or((key.token_uri.as_str(), ""));
    let endpoint = Reach {
        address: address.to_string(),
        headers: Vec::new(),
        ..reach.clone()
    };
    let call = Call {
        path,
        params: &[],
        body: Some(("application/x-www-form-urlencoded", body)),
        limit: MAX_ANSWER,
    };
    endpoint
        .server(&Auth::None)
        .send(&call, grant_refusal)
        .await
}

async fn metadata(host: &str, reach: &Reach) -> Result<String, QueryError> {
    let server = Reach {
        address: format!("http://{host}"),
        headers: Vec::new(),
        ..reach.clone()
    };
    let auth = Auth::Keys(vec![("Metadata-Flavor", "Google".into())]);
    let call = Call {
        path: METADATA_TOKEN_PATH,
        params: &[("scopes", SCOPE)],
        body: None,
        limit: MAX_ANSWER,
    };
    server
        .server(&auth)
        .send(&call, metadata_refusal)
        .await
        .map_err(|error| match error {
            QueryError::Transport(why) => QueryError::Transport(format!(
                "{why} (without {SERVICE_ACCOUNT_KEY} in the Secret, serin asks the GKE \
                 metadata server at {host} for workload identity's token)"
            )),
            other => other,
        })
}

/// Google's token endpoint refuses with `{"error": ..., "error_description": ...}`.
fn grant_refusal(status: u16, body: &str) -> Option<QueryError> {
    let error = exchange::json_message(body, "error")?;
    let description = exchange::json_message(body, "error_description").unwrap_or_default();
    Some(QueryError::Refused {
        kind: format!("Google OAuth {error}, HTTP {status}"),
        message: format!(
            "{description} (exchanging the Secret's {SERVICE_ACCOUNT_KEY} for an access token)"
        ),
    })
}

/// The metadata server answers errors in plain text (a missing binding, an unknown account).
fn metadata_refusal(status: u16, body: &str) -> Option<QueryError> {
    Some(QueryError::Refused {
        kind: format!("GKE metadata server, HTTP {status}"),
        message: format!(
            "{} (workload identity: is the Kubernetes service account bound to a Google \
             service account with roles/monitoring.viewer?)",
            redact::excerpt(body.trim(), PREVIEW)
        ),
    })
}

/// Google APIs' error answer: `{"error": {"code", "message", "status"}}`.
pub fn api_refusal(status: u16, body: &str) -> Option<QueryError> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?;
    let message = error.get("message")?.as_str()?;
    let code = error.get("status").and_then(|s| s.as_str()).unwrap_or("");
    let hint = match status {
        401 => {
            " (Google refused the access token of the Secret's serviceAccountKey or of workload identity)"
        }
        403 => " (the Google service account needs roles/monitoring.viewer on the project)",
        _ => "",
    };
    Some(QueryError::Refused {
        kind: format!("Google {code}, HTTP {status}"),
        message: format!("{}{hint}", redact::excerpt(message, 4 * PREVIEW)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_a_key_file_is_refused_without_being_quoted() {
        let error =
            ServiceAccountKey::parse("{\"client_email\": \"a@b\", \"private_key\": \"hunter2\"}")
                .unwrap_err();
        assert_eq!(
            error,
            "the Secret's serviceAccountKey private_key is not a PEM PKCS#8 private key (-----BEGIN PRIVATE KEY-----)"
        );
        let error = ServiceAccountKey::parse("hunter2").unwrap_err();
        assert!(
            error.starts_with("the Secret's serviceAccountKey is not a service-account key file"),
            "{error}"
        );
        assert!(!error.contains("hunter2"));
        let error = ServiceAccountKey::parse(
            "{\"type\": \"authorized_user\", \"client_email\": \"a@b\", \"private_key\": \"x\"}",
        )
        .unwrap_err();
        assert!(
            error.contains("\"authorized_user\", not a service_account key"),
            "{error}"
        );
    }

    #[test]
    fn google_errors_give_their_status_and_message() {
        let body = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
        assert_eq!(
            api_refusal(401, body).unwrap().to_string(),
            "query refused by the metrics server (Google UNAUTHENTICATED, HTTP 401): Request had invalid authentication credentials. (Google refused the access token of the Secret's serviceAccountKey or of workload identity)"
        );
        assert_eq!(api_refusal(502, "<html>"), None);
        let grant = r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#;
        assert_eq!(
            grant_refusal(400, grant).unwrap().to_string(),
            "query refused by the metrics server (Google OAuth invalid_grant, HTTP 400): Invalid JWT Signature. (exchanging the Secret's serviceAccountKey for an access token)"
        );
    }
}
