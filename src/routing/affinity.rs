//! Session affinity for the canary strategy (`analysis.sessionAffinity`), as Flagger does it:
//! a user the weighted split sent to the canary gets a cookie, and requests carrying it go to
//! the canary for the rest of the analysis, so one user does not flip between versions on
//! every request. With `primaryCookieName`, users sent to the primary are pinned there too.
//! When no traffic is on the canary (before a rollout, after promotion or rollback) requests
//! with the cookies go to the primary and the cookies are expired.

use std::fmt::Write;

use crate::api::CanarySpec;
use crate::api::canary::SessionAffinity;

/// Flagger's default lifetime of the cookies: one day.
pub const DEFAULT_MAX_AGE: i32 = 86_400;

pub struct Cookies<'a> {
    pub canary: &'a str,
    pub primary: Option<&'a str>,
    pub max_age: i32,
    /// `; Domain=..; Path=..` and the other attributes every `Set-Cookie` carries.
    pub attributes: String,
}

pub fn cookies(spec: &CanarySpec) -> Option<Cookies<'_>> {
    let affinity = spec.analysis.session_affinity.as_ref()?;
    Some(Cookies {
        canary: &affinity.cookie_name,
        primary: affinity.primary_cookie_name.as_deref(),
        max_age: affinity.max_age.unwrap_or(DEFAULT_MAX_AGE),
        attributes: attributes(affinity),
    })
}

/// The attributes after `Max-Age`, in Flagger's order. `Path` defaults to `/`, so a cookie
/// set on one page is sent from every page of the site. Validation keeps `;` and control
/// characters out of domain and path: they would end the header's attribute list.
fn attributes(affinity: &SessionAffinity) -> String {
    let mut out = String::new();
    if let Some(domain) = &affinity.domain {
        let _ = write!(out, "; Domain={domain}");
    }
    if affinity.http_only {
        out.push_str("; HttpOnly");
    }
    if affinity.partitioned {
        out.push_str("; Partitioned");
    }
    let _ = write!(out, "; Path={}", affinity.path.as_deref().unwrap_or("/"));
    if let Some(same_site) = affinity.same_site {
        let _ = write!(out, "; SameSite={}", same_site.as_str());
    }
    if affinity.secure {
        out.push_str("; Secure");
    }
    out
}

impl Cookies<'_> {
    /// The `Set-Cookie` value giving the cookie `name`.
    pub fn set(&self, name: &str) -> String {
        format!("{name}=1; Max-Age={}{}", self.max_age, self.attributes)
    }

    /// The `Set-Cookie` value expiring it: with the same domain and path, or a browser keeps
    /// the original.
    pub fn expire(&self, name: &str) -> String {
        format!("{name}=; Max-Age=0{}", self.attributes)
    }
}

/// A regular expression (RE2, as Envoy and Istio use) matching a `Cookie` header that carries
/// the cookie `name`, whatever its value and position.
pub fn carries(name: &str) -> String {
    format!("^(.*;\\s*)?{}=.*$", super::regex_escape(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(affinity: &str) -> CanarySpec {
        serde_yaml_ng::from_str(&format!(
            "{{targetRef: {{name: a}}, service: {{port: 80}}, analysis: {{stepWeight: 10, sessionAffinity: {affinity}}}}}"
        ))
        .unwrap()
    }

    #[test]
    fn the_pattern_finds_the_cookie_anywhere_and_only_it() {
        assert_eq!(carries("canary.v2"), "^(.*;\\s*)?canary\\.v2=.*$");
        let plain = spec("{cookieName: c, maxAge: 60}");
        let cookies = cookies(&plain).unwrap();
        assert_eq!(cookies.set("c"), "c=1; Max-Age=60; Path=/");
        assert_eq!(cookies.expire("c"), "c=; Max-Age=0; Path=/");
    }

    #[test]
    fn every_cookie_attribute_of_flagger_is_written_and_kept_when_expiring() {
        let full = spec(
            "{cookieName: c, domain: shop.example, path: /app, sameSite: Strict, secure: true, httpOnly: true, partitioned: true}",
        );
        let cookies = cookies(&full).unwrap();
        assert_eq!(
            cookies.set("c"),
            "c=1; Max-Age=86400; Domain=shop.example; HttpOnly; Partitioned; Path=/app; SameSite=Strict; Secure"
        );
        assert_eq!(
            cookies.expire("c"),
            "c=; Max-Age=0; Domain=shop.example; HttpOnly; Partitioned; Path=/app; SameSite=Strict; Secure"
        );
    }
}
