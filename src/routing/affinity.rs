//! Session affinity for the canary strategy (`analysis.sessionAffinity`), as Flagger does it:
//! a user the weighted split sent to the canary gets a cookie, and requests carrying it go to
//! the canary for the rest of the analysis, so one user does not flip between versions on
//! every request. With `primaryCookieName`, users sent to the primary are pinned there too.
//! When no traffic is on the canary (before a rollout, after promotion or rollback) requests
//! with the cookies go to the primary and the cookies are expired.

use crate::api::CanarySpec;

/// Flagger's default lifetime of the cookies: one day.
pub const DEFAULT_MAX_AGE: i32 = 86_400;

pub struct Cookies<'a> {
    pub canary: &'a str,
    pub primary: Option<&'a str>,
    pub max_age: i32,
}

pub fn cookies(spec: &CanarySpec) -> Option<Cookies<'_>> {
    let affinity = spec.analysis.session_affinity.as_ref()?;
    Some(Cookies {
        canary: &affinity.cookie_name,
        primary: affinity.primary_cookie_name.as_deref(),
        max_age: affinity.max_age.unwrap_or(DEFAULT_MAX_AGE),
    })
}

/// A regular expression (RE2, as Envoy and Istio use) matching a `Cookie` header that carries
/// the cookie `name`, whatever its value and position.
pub fn carries(name: &str) -> String {
    format!("^(.*;\\s*)?{}=.*$", super::regex_escape(name))
}

/// The `Set-Cookie` value giving the cookie.
pub fn set(name: &str, max_age: i32) -> String {
    format!("{name}=1; Max-Age={max_age}; Path=/")
}

/// The `Set-Cookie` value expiring it.
pub fn expire(name: &str) -> String {
    format!("{name}=; Max-Age=0; Path=/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_finds_the_cookie_anywhere_and_only_it() {
        assert_eq!(carries("canary.v2"), "^(.*;\\s*)?canary\\.v2=.*$");
        assert_eq!(set("c", 60), "c=1; Max-Age=60; Path=/");
        assert_eq!(expire("c"), "c=; Max-Age=0; Path=/");
    }
}
