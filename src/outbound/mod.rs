//! What every call serin makes to a server it does not run (webhooks, alert services, metrics
//! servers, load targets) must respect, whoever wrote the address:
//!
//! - [`body`]: answers are read in chunks up to a limit, never whole into memory;
//! - [`egress`]: the optional policy on which addresses may be reached at all;
//! - [`redact`]: answer text is cut and stripped of credentials before it reaches a status,
//!   an event or a log line;
//! - [`timeout`]: no call may wait longer than [`MAX_TIMEOUT`], whatever a spec asks.

pub mod body;
pub mod egress;
pub mod redact;

use std::time::Duration;

/// The longest one call may take (webhooks, metric queries, load requests). A Canary's tick
/// waits for its checks, so a longer timeout would stall the rollout it belongs to; validation
/// refuses more and the call sites clamp to it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// The settings every HTTP client of serin shares: its user agent, and redirects not followed
/// (a secret header must not travel to a host the user did not name, and a redirect usually
/// means a wrong URL, better reported than silently chased).
pub fn client_builder() -> reqwest::ClientBuilder {
    // reqwest is built without a default TLS crypto provider; ring is serin's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("serin/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
}

/// An error as one line for a status, an event or a log: its message and each cause's
/// (`error sending request: client error (Connect): tcp connect error: ...`; a TLS reason
/// lives deep in the chain), a cause whose text is already there said once, stripped of
/// credentials and cut to `max_chars` (see [`redact::excerpt`]).
pub fn error_text(error: &(dyn std::error::Error + 'static), max_chars: usize) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    redact::excerpt(&text, max_chars)
}

/// The timeout a spec asked for (or `default`), clamped to [`MAX_TIMEOUT`].
pub fn timeout(requested: Option<Duration>, default: Duration) -> Duration {
    requested.unwrap_or(default).min(MAX_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn an_errors_text_has_each_cause_once_without_credentials_and_cut() {
        let chain = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer(
                    "client error (Connect)",
                    Some(Box::new(Layer(
                        "invalid peer certificate: UnknownIssuer",
                        None,
                    ))),
                ))),
            ))),
        );
        assert_eq!(
            error_text(&chain, 200),
            "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer"
        );
        let secret = Layer(
            "connect to https://user:hunter2@example.com failed",
            Some(Box::new(Layer("refused", None))),
        );
        let text = error_text(&secret, 200);
        assert!(
            !text.contains("hunter2") && text.ends_with(": refused"),
            "{text}"
        );
        assert_eq!(error_text(&chain, 10), "error send…");
    }

    #[test]
    fn a_timeout_above_the_maximum_is_clamped_and_a_missing_one_takes_the_default() {
        let ten = Duration::from_secs(10);
        assert_eq!(timeout(None, ten), ten);
        assert_eq!(
            timeout(Some(Duration::from_secs(30)), ten),
            Duration::from_secs(30)
        );
        assert_eq!(timeout(Some(Duration::from_secs(86_400)), ten), MAX_TIMEOUT);
    }
}
