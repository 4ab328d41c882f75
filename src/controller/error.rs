//! What went wrong in a reconcile, and what a user sees of it. Every error names the step it
//! happened in (observe, apply, status, finalize), what that step was doing to which object
//! (`applying HTTPRoute team/podinfo`), and the cause.
//!
//! A cause a person must act on (a write RBAC forbids, a kind the API server does not serve, an
//! object the API server rejects, a field another writer keeps changing, an object that must
//! exist and does not) is a [`Failure`]: the reconcile turns it into the Canary's Stalled
//! condition, a Warning event and the `reason` label of `serin_reconcile_total`, with what to
//! do. A transient cause (the API server unavailable, throttling, a timeout, a lost
//! connection) is only logged and retried: it needs no one.

use std::fmt;

use crate::engine::Reason;

/// The reconcile steps, as error context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading what the engine decides from: the Canary, tracked configs, live routes.
    Observe,
    /// Writing what the engine decided: primary, services, routes, autoscaler, replicas.
    Apply,
    /// Writing the Canary itself: its status and finalizers.
    Status,
    /// Restoring the original objects of a deleted Canary.
    Finalize,
}

impl Step {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Observe => "observe",
            Self::Apply => "apply",
            Self::Status => "status",
            Self::Finalize => "finalize",
        }
    }
}

/// Why a step failed.
#[derive(Debug)]
pub enum Cause {
    /// The API server refused or failed the request.
    Api(kube::Error),
    /// An object the step needs does not exist.
    Missing,
    /// The object to write cannot be built from the Canary and its target.
    Unbuildable(String),
}

#[derive(Debug, thiserror::Error)]
pub struct Error {
    pub step: Step,
    /// What the step was doing, naming the object: `applying Deployment team/podinfo-primary`
    /// (for [`Cause::Missing`], the object alone: `MetricTemplate team/latency`).
    pub what: String,
    pub cause: Cause,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            // kube's own Display repeats the status as Debug; people need its message.
            Cause::Api(kube::Error::Api(status)) => {
                write!(
                    f,
                    "{}: {} (HTTP {})",
                    self.what,
                    status.message.trim(),
                    status.code
                )
            }
            Cause::Api(source) => write!(f, "{}: {source}", self.what),
            Cause::Missing => write!(f, "{} not found", self.what),
            Cause::Unbuildable(reason) => write!(f, "{}: {reason}", self.what),
        }
    }
}

/// A failure a person must act on: the Canary's condition reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
}

/// The metric label of an error no one needs to act on.
pub const TRANSIENT: &str = "Transient";

impl Error {
    /// For `map_err` on a kube call: `.map_err(Error::api(Step::Apply, "applying ..."))`.
    pub fn api(step: Step, what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |source| Self {
            step,
            what,
            cause: Cause::Api(source),
        }
    }

    /// `object` (`Kind namespace/name`) must exist and does not.
    pub fn missing(step: Step, object: impl Into<String>) -> Self {
        Self {
            step,
            what: object.into(),
            cause: Cause::Missing,
        }
    }

    pub fn unbuildable(step: Step, what: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            step,
            what: what.into(),
            cause: Cause::Unbuildable(reason.to_string()),
        }
    }

    /// The failure a person must act on, or None for a transient error that a retry fixes.
    pub fn failure(&self) -> Option<Failure> {
        let (reason, advice) = match &self.cause {
            Cause::Missing => (Reason::ObjectMissing, "create it, or fix the reference"),
            Cause::Unbuildable(_) => (
                Reason::CannotBuildObject,
                "fix the target or the Canary's spec",
            ),
            Cause::Api(kube::Error::Api(status)) => api_failure(self.step, status.code)?,
            // Transport, TLS, timeouts, undecodable answers of a restarting server.
            Cause::Api(_) => return None,
        };
        Some(Failure {
            reason,
            message: format!("{self}; {advice}"),
        })
    }

    /// The `reason` label of `serin_reconcile_total`: the failure's reason, or `Transient`.
    pub fn label(&self) -> &'static str {
        self.failure().map_or(TRANSIENT, |f| f.reason.as_str())
    }
}

/// What an API status code means for a user; None when a retry is the answer.
fn api_failure(step: Step, code: u16) -> Option<(Reason, &'static str)> {
    match code {
        403 => Some((
            Reason::Forbidden,
            "grant serin's ServiceAccount this permission (config/rbac.yaml, or the chart's \
             ClusterRole; a route template's kinds: the chart value rbac.routeTemplateRules); \
             serin retries every 30s",
        )),
        // A missing object is read as None (get_opt) and created by apply: a 404 that reaches
        // here means the API server does not serve the kind at all.
        404 => Some((
            Reason::KindNotServed,
            "install the CustomResourceDefinition of this kind (see docs/routing.md for each \
             provider's), or set spec.provider to one the cluster runs; serin retries every 30s",
        )),
        // Finalizer updates are compare-and-swap: losing the race is retried from a fresh read.
        409 if step == Step::Status => None,
        409 => Some((
            Reason::FieldConflict,
            "another writer changes the same object; stop it managing the fields serin writes \
             (e.g. drop spec.replicas from a Deployment serin scales)",
        )),
        400 | 422 => Some((
            Reason::ObjectRejected,
            "the API server or an admission webhook rejected what serin wrote; fix the target \
             or the Canary's spec, or the policy that rejects it",
        )),
        _ => None,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "")
                .with_code(code)
                .boxed(),
        )
    }

    fn failed(step: Step, code: u16) -> Option<Failure> {
        Error::api(step, "applying HTTPRoute team/podinfo")(status(code, "no")).failure()
    }

    #[test]
    fn a_forbidden_write_names_the_request_and_what_to_grant() {
        let error = Error::api(Step::Apply, "applying Service team/podinfo-canary")(status(
            403,
            "services \"podinfo-canary\" is forbidden: User \"system:serviceaccount:serin:serin\" \
             cannot patch resource \"services\" in API group \"\" in the namespace \"team\"",
        ));
        let failure = error.failure().expect("a forbidden write needs a person");
        assert_eq!(failure.reason, Reason::Forbidden);
        assert!(
            failure
                .message
                .contains("cannot patch resource \"services\"")
        );
        assert!(
            failure
                .message
                .contains("applying Service team/podinfo-canary")
        );
        assert!(failure.message.contains("grant serin's ServiceAccount"));
        assert!(failure.message.contains("rbac.routeTemplateRules"));
        assert_eq!(error.label(), "Forbidden");
    }

    #[test]
    fn each_status_code_is_a_failure_or_a_retry() {
        assert_eq!(
            failed(Step::Apply, 404).map(|f| f.reason),
            Some(Reason::KindNotServed)
        );
        assert_eq!(
            failed(Step::Observe, 404).map(|f| f.reason),
            Some(Reason::KindNotServed)
        );
        assert_eq!(
            failed(Step::Apply, 409).map(|f| f.reason),
            Some(Reason::FieldConflict)
        );
        assert_eq!(failed(Step::Status, 409), None);
        assert_eq!(
            failed(Step::Apply, 422).map(|f| f.reason),
            Some(Reason::ObjectRejected)
        );
        for transient in [429, 500, 503, 504] {
            assert_eq!(failed(Step::Apply, transient), None, "HTTP {transient}");
        }
        let lost = Error::api(Step::Observe, "reading ConfigMap team/x")(kube::Error::ReadEvents(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        ));
        assert_eq!(lost.failure(), None);
        assert_eq!(lost.label(), TRANSIENT);
    }

    #[test]
    fn missing_and_unbuildable_objects_say_what_to_fix() {
        let missing = Error::missing(Step::Apply, "ReplicaSet of revision abc");
        assert_eq!(missing.to_string(), "ReplicaSet of revision abc not found");
        assert_eq!(missing.label(), "ObjectMissing");
        let unbuildable = Error::unbuildable(
            Step::Apply,
            "routing Canary team/podinfo",
            "the target has no selector",
        );
        assert_eq!(
            unbuildable.failure().map(|f| f.reason),
            Some(Reason::CannotBuildObject)
        );
    }
}
