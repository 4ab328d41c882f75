//! Who may drive the load tester. Every endpoint but `/healthz` needs
//! `Authorization: Bearer <token>`, and a token grants namespaces, not the whole tester:
//!
//! - The content of `--token-file` (a Secret mounted as a file) is the *key*, an admin
//!   credential: it is accepted for every request, and it alone may call what spans every
//!   namespace (`GET /gates`, `GET /loads`).
//! - Each namespace has its own token, derived from the key ([`namespace_token`]): it is
//!   accepted only for requests whose JSON payload names that namespace (hooks, gates,
//!   `/stop`). Its Secret sits in that namespace, so a tenant reading it there can open its
//!   own gates and nobody else's.
//!
//! Derived rather than listed: the tester keeps one Secret whatever the number of tenants, and
//! an operator mints a namespace's token offline (`serin loadtester token`).
//!
//! A token rather than a TokenReview of the caller's ServiceAccount: the tester then needs no
//! Kubernetes access to generate load, and serin never has to send its own ServiceAccount
//! token (a credential to the API server) to a webhook URL.
//!
//! Every refusal is 401, never 403: on this API 403 already means "the gate is closed".
//! The key file is read again for every request, so a rotated Secret applies without a
//! restart (and rotating the key changes every namespace's token).

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token longer than this is not a token: the file is refused rather than read whole.
const MAX_TOKEN_BYTES: u64 = 4096;
/// Below this a token can be guessed.
const MIN_TOKEN_BYTES: usize = 16;
/// The body is read before the handler to learn its namespace; hook payloads are small.
const MAX_BODY_BYTES: usize = 1 << 20;
/// What the HMAC of a namespace's token covers before the namespace: a token for this
/// purpose only, should the key ever be used for another.
const CONTEXT: &str = "serin-loadtester:";

/// Where the expected token lives.
#[derive(Debug, Clone)]
pub struct TokenFile {
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The cause follows in the error chain.
    #[error("--token-file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("--token-file {path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl TokenFile {
    /// The token, trimmed (files written by `echo` end with a newline). Never logged.
    pub fn read(&self) -> Result<String, TokenError> {
        let path = self.path.display().to_string();
        let size = std::fs::metadata(&self.path)
            .map_err(|source| TokenError::Read {
                path: path.clone(),
                source,
            })?
            .len();
        if size > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid {
                path,
                reason: format!("{size} bytes; a token has at most {MAX_TOKEN_BYTES}"),
            });
        }
        let text = std::fs::read_to_string(&self.path).map_err(|source| TokenError::Read {
            path: path.clone(),
            source,
        })?;
        let token = text.trim();
        if token.len() < MIN_TOKEN_BYTES {
            return Err(TokenError::Invalid {
                path,
                reason: format!(
                    "the token has {} characters; use at least {MIN_TOKEN_BYTES} (e.g. `openssl rand -hex 32`)",
                    token.len()
                ),
            });
        }
        Ok(token.to_string())
    }
}

/// The token of `namespace`: hex(HMAC-SHA256(key, "serin-loadtester:" + namespace)), `key`
/// being the trimmed content of the tester's `--token-file`. Not reversible: a namespace's
/// token reveals neither the key nor another namespace's token.
pub fn namespace_token(key: &str, namespace: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(CONTEXT.as_bytes());
    mac.update(namespace.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Equal, compared as SHA-256 digests in constant time: neither the content nor the length
/// of the expected token leaks through timing.
fn same(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

/// Does the bearer token `given` grant a request about `namespace` (None: a request naming
/// no namespace, such as the listings)? The key grants everything; a namespace's token
/// grants that namespace only.
pub fn grants(key: &str, given: &str, namespace: Option<&str>) -> bool {
    let admin = same(given, key);
    let tenant = namespace.is_some_and(|ns| same(given, &namespace_token(key, ns)));
    admin | tenant
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then_some(token)
}

/// The namespace a request is about: its JSON payload's `namespace`, parsed as the handlers
/// parse it (so both read the same one). None when the body names none.
fn namespace_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Scope {
        namespace: Option<String>,
    }
    serde_json::from_slice::<Scope>(body).ok()?.namespace
}

/// The middleware in front of every endpoint but `/healthz`.
pub async fn require_token(
    State(file): State<TokenFile>,
    request: Request,
    next: Next,
) -> Response {
    let key = match file.read() {
        Ok(token) => token,
        Err(error) => {
            // The Secret went away or was emptied: nobody is let in, and the operator is told.
            let cause = std::error::Error::source(&error)
                .map(ToString::to_string)
                .unwrap_or_default();
            tracing::error!(%error, %cause, "cannot read the token; refusing every request");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the load tester cannot read its token file\n",
            )
                .into_response();
        }
    };
    let Some(given) = bearer(request.headers()).map(str::to_string) else {
        return unauthorized(
            "send Authorization: Bearer <token> (the token of the payload's namespace, or the load tester's key)",
        );
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body could not be read whole, or is over {MAX_BODY_BYTES} bytes\n"
            ),
        )
            .into_response();
    };
    let namespace = namespace_of(&body);
    if !grants(&key, &given, namespace.as_deref()) {
        return unauthorized(&refusal(namespace.as_deref()));
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Why a token was refused. The namespace comes from the caller: quoted, and only when it
/// can be a namespace name, so the answer stays short.
fn refusal(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if crate::loadtester::gates::checked_namespace(ns).is_ok() => format!(
            "the Authorization: Bearer token does not grant namespace {ns:?}: send its token (`serin loadtester token --namespace {ns}`) or the load tester's key"
        ),
        Some(_) => "the Authorization: Bearer token does not grant the payload's namespace".to_string(),
        None => "this request names no namespace (it spans them all): only the load tester's key, as Authorization: Bearer <key>, may send it".to_string(),
    }
}

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"serin-loadtester\"",
        )],
        format!("{message}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn a_namespace_token_grants_its_namespace_only_and_the_key_everything() {
        let team_a = namespace_token(TOKEN, "team-a");
        assert!(grants(TOKEN, &team_a, Some("team-a")));
        assert!(!grants(TOKEN, &team_a, Some("team-b")));
        assert!(!grants(TOKEN, &team_a, None), "listings need the key");
        for namespace in [Some("team-a"), Some("team-b"), None] {
            assert!(grants(TOKEN, TOKEN, namespace));
        }
        assert!(!grants(TOKEN, "0123456789abcdef012", Some("team-a")));
        assert!(!grants(TOKEN, "", None));
        // Another key, another token.
        assert_ne!(namespace_token("another key 0123456789", "team-a"), team_a);
    }

    #[test]
    fn the_token_is_the_hex_hmac_sha256_of_the_context_and_namespace() {
        // As `echo -n serin-loadtester:team-a | openssl dgst -sha256 -hmac <key>` computes it.
        assert_eq!(
            namespace_token(TOKEN, "team-a"),
            "95ff67693b27c2c27d0af66e6278a48e2ec7a7237b33b1416d3aa267b1014902"
        );
    }

    #[test]
    fn the_bearer_scheme_is_required() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(header::AUTHORIZATION, value.parse().unwrap());
            map
        };
        assert_eq!(bearer(&headers(&format!("Bearer {TOKEN}"))), Some(TOKEN));
        assert_eq!(bearer(&headers(TOKEN)), None);
        assert_eq!(bearer(&headers(&format!("Basic {TOKEN}"))), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn the_namespace_is_the_payloads() {
        assert_eq!(
            namespace_of(br#"{"name": "web", "namespace": "team-b", "metadata": {}}"#).as_deref(),
            Some("team-b")
        );
        assert_eq!(namespace_of(b"{}"), None);
        assert_eq!(namespace_of(b""), None);
        // Ambiguous payloads name no namespace (the handlers refuse them too).
        assert_eq!(
            namespace_of(br#"{"namespace": "team-a", "namespace": "team-b"}"#),
            None
        );
    }

    #[test]
    fn a_short_empty_or_huge_token_file_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("serin-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let file = TokenFile { path: path.clone() };
        std::fs::write(&path, "short\n").unwrap();
        let error = file.read().unwrap_err().to_string();
        assert!(
            error.contains("--token-file") && error.contains("at least 16"),
            "{error}"
        );
        std::fs::write(&path, "x".repeat(5000)).unwrap();
        assert!(
            file.read()
                .unwrap_err()
                .to_string()
                .contains("at most 4096")
        );
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        assert_eq!(file.read().unwrap(), TOKEN);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
