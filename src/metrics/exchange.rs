//! One HTTP exchange with a metrics server, the same for every provider: credentials and
//! `provider.headers` attached, the whole call (body included) capped at the connection's
//! timeout, the answer read in bounded memory, a rate limit (429) waited out when the server's
//! Retry-After fits in what is left of the timeout, and any other non-2xx reported with the
//! service's own message (each provider says how to find it) or the start of the page.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use tokio::time::Instant;

use crate::outbound::body::{self, BodyError};
use crate::outbound::redact;

use super::provider::{Connection, Credentials, QueryError};

/// How much of an error answer is read (services' JSON errors are short).
const ERROR_READ: usize = 64 * 1024;
/// How long a throttling answer without Retry-After (AWS's) is waited out, once, when it fits
/// in the query's timeout: AWS's SDKs back off about this long before their first retry.
pub const THROTTLE_WAIT: Duration = Duration::from_secs(1);
/// How much of an answer's text an error shows.
pub const PREVIEW: usize = 200;

/// Credentials from the provider's secretRef. Never logged: Debug prints the kind only.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    /// `Authorization: Bearer <token>` (Prometheus-compatible servers).
    Bearer(String),
    /// `Authorization: Token <token>` (InfluxDB).
    Token(String),
    /// Keys in headers of the service's own names (Datadog's `DD-API-KEY`).
    Keys(Vec<(&'static str, String)>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Basic { .. } => "basic",
            Self::Bearer(_) => "bearer",
            Self::Token(_) => "token",
            Self::Keys(_) => "keys",
        })
    }
}

impl Auth {
    /// `username` and `password` from the Secret as basic auth, when both are there.
    pub fn basic(credentials: &Credentials) -> Option<Self> {
        match (credentials.get("username"), credentials.get("password")) {
            (Some(username), Some(password)) => Some(Self::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }),
            _ => None,
        }
    }
}

/// What every HTTP provider keeps of its [`Connection`] besides the credentials (which each
/// turns into its own [`Auth`]): where its requests go, the client, the headers, the timeout.
#[derive(Clone, Debug)]
pub struct Reach {
    pub client: reqwest::Client,
    /// Base URL; a path prefix is kept.
    pub address: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

impl Reach {
    pub fn of(connection: &Connection) -> Self {
        Self {
            client: connection.client.clone(),
            address: connection.address.clone(),
            headers: connection.headers.clone(),
            timeout: connection.timeout,
        }
    }

    /// The exchange with this server, authenticated with `auth`.
    pub fn server<'a>(&'a self, auth: &'a Auth) -> Server<'a> {
        Server {
            client: &self.client,
            address: &self.address,
            auth,
            headers: &self.headers,
            timeout: self.timeout,
        }
    }
}

/// Where and how to send: borrowed from a provider's endpoint.
#[derive(Clone, Copy)]
pub struct Server<'a> {
    pub client: &'a reqwest::Client,
    /// Base URL; a path prefix is kept.
    pub address: &'a str,
    pub auth: &'a Auth,
    pub headers: &'a [(String, String)],
    pub timeout: Duration,
}

/// One request: a path under the address, its query parameters, and a body for POST.
pub struct Call<'a> {
    pub path: &'a str,
    pub params: &'a [(&'a str, &'a str)],
    /// `(content type, body)`: sent as POST; GET without.
    pub body: Option<(&'static str, String)>,
    /// How big an answer may be.
    pub limit: usize,
}

/// Finds the service's own message in an error answer (`status`, body start), if it has one.
pub type Refusal = fn(u16, &str) -> Option<QueryError>;

impl Server<'_> {
    /// Sends `call` and returns the answer's text, or why there is none.
    pub async fn send(&self, call: &Call<'_>, refusal: Refusal) -> Result<String, QueryError> {
        let timeout = self.timeout.min(crate::outbound::MAX_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let mut waited = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(QueryError::Timeout(self.timeout));
            }
            let response = self
                .request(call, left)?
                .send()
                .await
                .map_err(|e| self.transport(e))?;
            let status = response.status();
            if status.is_success() {
                return match body::read(response, call.limit).await {
                    Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                    Err(BodyError::TooLarge { limit }) => Err(QueryError::TooLarge(limit)),
                    Err(BodyError::Transport(error)) => Err(self.transport(error)),
                };
            }
            if status.as_u16() == 429 {
                let after = retry_after(response.headers());
                // One wait, and only one that ends before the deadline: the check belongs to
                // an analysis tick that must not stall.
                match after {
                    Some(after)
                        if !waited
                            && after < deadline.saturating_duration_since(Instant::now()) =>
                    {
                        waited = true;
                        tokio::time::sleep(after).await;
                        continue;
                    }
                    _ => return Err(QueryError::RateLimited(after)),
                }
            }
            let failure = self.failure(status.as_u16(), response, refusal).await;
            if matches!(failure, QueryError::Throttled { .. })
                && !waited
                && THROTTLE_WAIT < deadline.saturating_duration_since(Instant::now())
            {
                waited = true;
                tokio::time::sleep(THROTTLE_WAIT).await;
                continue;
            }
            return Err(failure);
        }
    }

    fn request(
        &self,
        call: &Call<'_>,
        left: Duration,
    ) -> Result<reqwest::RequestBuilder, QueryError> {
        let url = url(self.address, call.path);
        let request = match &call.body {
            None => self.client.get(url),
            Some((content_type, body)) => self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, *content_type)
                .body(body.clone()),
        };
        let request = request
            .query(call.params)
            .headers(self.header_map()?)
            .timeout(left);
        Ok(match self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
            Auth::Bearer(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            Auth::Token(token) => request.header(AUTHORIZATION, format!("Token {token}")),
            Auth::Keys(keys) => keys
                .iter()
                .fold(request, |request, (name, key)| request.header(*name, key)),
        })
    }

    /// A non-2xx answer: the service's message when `refusal` finds one, else the status with
    /// the start of the page (a proxy's 502 page is not worth more than its start).
    async fn failure(
        &self,
        status: u16,
        response: reqwest::Response,
        refusal: Refusal,
    ) -> QueryError {
        let body = match body::read_prefix(response, ERROR_READ).await {
            Ok(prefix) => prefix.text(),
            Err(error) => return self.transport(error),
        };
        refusal(status, &body).unwrap_or_else(|| QueryError::Status {
            status,
            body: redact::excerpt(&body, PREVIEW),
        })
    }

    fn header_map(&self) -> Result<HeaderMap, QueryError> {
        let mut map = HeaderMap::new();
        for (name, value) in self.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| QueryError::Header(name.clone(), e.to_string()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| QueryError::Header(name.clone(), e.to_string()))?;
            map.insert(header, value);
        }
        Ok(map)
    }

    /// A transport error with its cause chain (TLS reasons live deep in it), without the URL:
    /// an address may carry credentials.
    fn transport(&self, error: reqwest::Error) -> QueryError {
        if error.is_timeout() {
            return QueryError::Timeout(self.timeout);
        }
        QueryError::Transport(crate::outbound::error_text(
            &error.without_url(),
            4 * PREVIEW,
        ))
    }
}

/// The URL of `path` under `address` (a path prefix of the address is kept).
pub fn url(address: &str, path: &str) -> String {
    format!(
        "{}/{}",
        address.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Retry-After in seconds (the form metrics services send; an HTTP date is not waited for).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A service's JSON answer as `T`; one that is not names the service and shows the start of
/// the body (redacted).
pub fn decode<T: serde::de::DeserializeOwned>(
    body: &str,
    service: &'static str,
) -> Result<T, QueryError> {
    serde_json::from_str(body).map_err(|e| QueryError::Malformed {
        service,
        detail: format!("{e} (body starts {:?})", redact::excerpt(body, 120)),
    })
}

/// A service's JSON error message under `key` (`error`, `message`), cut and redacted.
pub fn json_message(body: &str, key: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = value.get(key)?.as_str()?;
    Some(redact::excerpt(message, 4 * PREVIEW))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_only() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            map
        };
        assert_eq!(retry_after(&headers(" 2 ")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn credentials_are_not_debug_printed() {
        let auth = Auth::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert_eq!(format!("{auth:?}"), "basic");
        assert_eq!(format!("{:?}", Auth::Token("t0ken".into())), "token");
        let keys = Auth::Keys(vec![("DD-API-KEY", "k3y".into())]);
        assert_eq!(format!("{keys:?}"), "keys");
    }

    #[test]
    fn a_service_message_is_found_cut_and_redacted() {
        assert_eq!(
            json_message(r#"{"error":"database not found: shop"}"#, "error").as_deref(),
            Some("database not found: shop")
        );
        assert_eq!(json_message("<html>", "error"), None);
        let echoed = json_message(r#"{"message":"bad token=abcdef123456"}"#, "message").unwrap();
        assert!(!echoed.contains("abcdef123456"), "{echoed}");
    }
}
