//! AWS credentials from the pod's web identity (EKS IAM roles for service accounts): the token
//! file Kubernetes projects (`AWS_WEB_IDENTITY_TOKEN_FILE`) exchanged for temporary keys of
//! `AWS_ROLE_ARN` with STS's AssumeRoleWithWebIdentity (query API, unsigned: the token is the
//! proof), the keys kept until shortly before they expire.
//!
//! STS answers XML; serin reads the four flat elements it needs (`AccessKeyId`,
//! `SecretAccessKey`, `SessionToken`, `Expiration`) and an error's `Code` and `Message`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::outbound::redact;

use super::exchange::{Auth, Call, PREVIEW, Reach};
use super::provider::QueryError;
use super::sigv4::Key;

/// The environment variables the AWS SDKs read, as EKS sets them.
pub const ROLE_ARN: &str = "AWS_ROLE_ARN";
pub const TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
/// The SDKs' override of STS's address (a VPC endpoint, a FIPS endpoint).
pub const STS_ENDPOINT: &str = "AWS_ENDPOINT_URL_STS";
/// Keys are renewed this long before they expire, so a signed request never carries stale ones.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// The largest token file and STS answer read.
const MAX_TOKEN: u64 = 64 * 1024;
const MAX_ANSWER: usize = 64 * 1024;

/// Where the pod's web identity is and which STS to ask.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebIdentity {
    pub role_arn: String,
    pub token_file: String,
    pub session_name: String,
    /// STS's base URL: `https://sts.<region>.amazonaws.com` unless overridden.
    pub sts: String,
}

impl WebIdentity {
    /// The pod's web identity from its environment, when both variables are set.
    pub fn from_env(region: &str) -> Option<Self> {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        Some(Self {
            role_arn: var(ROLE_ARN)?,
            token_file: var(TOKEN_FILE)?,
            session_name: var(SESSION_NAME).unwrap_or_else(|| "serin".into()),
            sts: var(STS_ENDPOINT).unwrap_or_else(|| sts_address(region)),
        })
    }
}

/// STS's regional endpoint (AWS's China regions are under `amazonaws.com.cn`).
pub fn sts_address(region: &str) -> String {
    let address = format!("https://sts.{region}.amazonaws.com");
    if region.starts_with("cn-") {
        format!("{address}.cn")
    } else {
        address
    }
}

/// Temporary keys and when they expire, per identity.
type Held = HashMap<WebIdentity, (Key, DateTime<Utc>)>;

/// Keys handed out per identity, until [`RENEW_BEFORE`] their expiry.
static CACHE: LazyLock<Mutex<Held>> = LazyLock::new(Mutex::default);

/// The identity's temporary keys: the cached ones while fresh, else new ones from STS, asked
/// through `reach`'s client and timeout (its address is replaced by STS's).
pub async fn credentials(identity: &WebIdentity, reach: &Reach) -> Result<Key, QueryError> {
    let renew_at = Utc::now() + chrono::Duration::from_std(RENEW_BEFORE).unwrap_or_default();
    if let Some((key, expiry)) = cache().get(identity)
        && *expiry > renew_at
    {
        return Ok(key.clone());
    }
    let (key, expiry) = assume_role(identity, reach).await?;
    cache().insert(identity.clone(), (key.clone(), expiry));
    Ok(key)
}

fn cache() -> std::sync::MutexGuard<'static, Held> {
    // A poisoned cache only held keys: keep using it.
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn assume_role(
    identity: &WebIdentity,
    reach: &Reach,
) -> Result<(Key, DateTime<Utc>), QueryError> {
    let token = read_token(&identity.token_file).await?;
    let body = reqwest::Url::parse_with_params(
        "http://form/",
        [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", identity.role_arn.as_str()),
            ("RoleSessionName", identity.session_name.as_str()),
            ("WebIdentityToken", token.trim()),
        ],
    )
    .map_err(|e| QueryError::Transport(format!("STS request: {e}")))?
    .query()
    .unwrap_or_default()
    .to_string();
    let sts = Reach {
        address: identity.sts.clone(),
        // The template's headers are for CloudWatch, not for STS.
        headers: Vec::new(),
        ..reach.clone()
    };
    let call = Call {
        path: "",
        params: &[],
        body: Some(("application/x-www-form-urlencoded", body)),
        limit: MAX_ANSWER,
    };
    let answer = sts.server(&Auth::None).send(&call, refusal).await?;
    parse(&answer)
}

/// The projected token, read anew for each exchange (the kubelet rotates it). A small local
/// file: read in place rather than on a blocking thread.
async fn read_token(path: &str) -> Result<String, QueryError> {
    use std::io::Read;
    let unreadable = |why: String| QueryError::Refused {
        kind: "web identity".into(),
        message: format!("{TOKEN_FILE} {path:?}: {why}"),
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut token = String::new();
    file.take(MAX_TOKEN + 1)
        .read_to_string(&mut token)
        .map_err(|e| unreadable(e.to_string()))?;
    if token.len() as u64 > MAX_TOKEN {
        return Err(unreadable(format!("larger than {MAX_TOKEN} bytes")));
    }
    Ok(token)
}

/// The temporary keys and their expiry in an AssumeRoleWithWebIdentity answer.
fn parse(xml: &str) -> Result<(Key, DateTime<Utc>), QueryError> {
    let field = |name: &str| {
        element(xml, name).ok_or_else(|| QueryError::Malformed {
            service: "an STS AssumeRoleWithWebIdentity answer",
            detail: format!(
                "no {name} (body starts {:?})",
                redact::excerpt(xml, PREVIEW)
            ),
        })
    };
    let expiration = field("Expiration")?;
    let expiry = DateTime::parse_from_rfc3339(expiration.trim())
        .map_err(|e| QueryError::Malformed {
            service: "an STS AssumeRoleWithWebIdentity answer",
            detail: format!("Expiration {expiration:?}: {e}"),
        })?
        .with_timezone(&Utc);
    let key = Key {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: Some(field("SessionToken")?),
    };
    Ok((key, expiry))
}

/// STS's error answer (`<ErrorResponse><Error><Code>..</Code><Message>..</Message>`).
fn refusal(status: u16, body: &str) -> Option<QueryError> {
    let code = element(body, "Code")?;
    let message = element(body, "Message").unwrap_or_default();
    Some(QueryError::Refused {
        kind: format!("STS {code}, HTTP {status}"),
        message: format!(
            "{} (assuming {ROLE_ARN} with the pod's {TOKEN_FILE})",
            redact::excerpt(&message, 4 * PREVIEW)
        ),
    })
}

/// The text of the first `<name>...</name>` element, its five XML entities decoded.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_gives_keys_and_expiry_and_an_error_its_code() {
        let xml = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><SessionToken>Fwo&amp;x</SessionToken><SecretAccessKey>s3cr3t</SecretAccessKey><Expiration>2026-12-02T01:00:00Z</Expiration><AccessKeyId>ASIAEXAMPLE</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        let (key, expiry) = parse(xml).unwrap();
        assert_eq!(key.access_key_id, "ASIAEXAMPLE");
        assert_eq!(key.session_token.as_deref(), Some("Fwo&x"));
        assert_eq!(expiry.to_rfc3339(), "2026-12-02T01:00:00+00:00");
        let error = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>";
        assert_eq!(
            refusal(400, error).unwrap().to_string(),
            "query refused by the metrics server (STS InvalidIdentityToken, HTTP 400): Not authorized to perform sts:AssumeRoleWithWebIdentity (assuming AWS_ROLE_ARN with the pod's AWS_WEB_IDENTITY_TOKEN_FILE)"
        );
        assert!(parse("<html>").is_err());
        assert_eq!(
            sts_address("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
    }
}
