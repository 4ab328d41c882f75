//! Who may drive the load tester. Every endpoint but `/healthz` needs
//! `Authorization: Bearer <token>`, the token being the content of `--token-file` (a Secret
//! mounted as a file). serin sends it through a webhook's `secretRef`, a Secret whose
//! `Authorization` key holds `Bearer <token>`; people opening gates send it with curl.
//!
//! A shared token rather than a TokenReview of the caller's ServiceAccount: the tester then
//! needs no Kubernetes access to generate load, and serin never has to send its own
//! ServiceAccount token (a credential to the API server) to a webhook URL.
//!
//! The file is read again for every request, so a rotated Secret applies without a restart.

use std::path::PathBuf;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token longer than this is not a token: the file is refused rather than read whole.
const MAX_TOKEN_BYTES: u64 = 4096;
/// Below this a token can be guessed.
const MIN_TOKEN_BYTES: usize = 16;

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

/// Does the `Authorization` header carry the expected token? Compared as SHA-256 digests in
/// constant time, so neither the content nor the length of the token leaks through timing.
pub fn is_authorized(header: Option<&str>, expected: &str) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let given = Sha256::digest(given.trim().as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

/// The middleware in front of every endpoint but `/healthz`.
pub async fn require_token(
    State(file): State<TokenFile>,
    request: Request,
    next: Next,
) -> Response {
    let expected = match file.read() {
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
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if is_authorized(given, &expected) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"serin-loadtester\"",
        )],
        "send Authorization: Bearer <token> (the token of the load tester's --token-file)\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn only_the_exact_bearer_token_is_let_in() {
        assert!(is_authorized(Some(&format!("Bearer {TOKEN}")), TOKEN));
        assert!(!is_authorized(None, TOKEN));
        assert!(!is_authorized(Some(TOKEN), TOKEN), "the scheme is required");
        assert!(!is_authorized(Some(&format!("Basic {TOKEN}")), TOKEN));
        assert!(!is_authorized(Some("Bearer 0123456789abcdef012"), TOKEN));
        assert!(!is_authorized(Some("Bearer "), TOKEN));
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
