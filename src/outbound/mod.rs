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

/// The timeout a spec asked for (or `default`), clamped to [`MAX_TIMEOUT`].
pub fn timeout(requested: Option<Duration>, default: Duration) -> Duration {
    requested.unwrap_or(default).min(MAX_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

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
