//! What the engine asks the world to do. Actions are data: the controller turns them into
//! server-side-apply patches, the simulator into changes of its in-memory cluster, and tests
//! assert on them directly.

use crate::api::canary::{HookKind, Severity};

use super::plan::{Plan, Strategy};
use super::reasons::Reason;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the `-primary` Deployment from the target, the apex/primary/canary services, the
    /// copied configs and the route, where they do not exist yet.
    EnsurePrimary,
    /// Scale the target Deployment (the canary).
    ScaleCanary {
        replicas: i32,
    },
    /// Route traffic.
    SetTraffic(Traffic),
    /// Copy the target's pod template (and strategy, minReadySeconds...) to the primary.
    PromoteTemplate,
    /// Give the primary back the last promoted template (a promotion that failed).
    RevertPrimary,
    /// Run fire-and-report hooks (post-rollout); results are reported, never decide.
    RunHooks(HookKind),
    /// Bring the primary's autoscaler in line with the target's (written only when they
    /// differ). `EnsurePrimary` and `PromoteTemplate` sync it as part of their work; this is
    /// emitted on its own only with `primaryScalerSync: always`, on a reconcile that takes no
    /// other action, so an autoscaler edited between rollouts reaches the primary at once.
    SyncAutoscaler,
    Alert(Alert),
    Event(Event),
}

/// How requests are split between primary and canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub primary: i32,
    pub canary: i32,
    /// Requests matching `analysis.match` go to the canary (A/B testing).
    pub matched_to_canary: bool,
    /// Percent of primary traffic mirrored to the canary (blue/green with mirroring).
    pub mirror: Option<i32>,
}

impl Traffic {
    pub const PRIMARY: Self = Self::weights(100, 0);

    pub const fn weights(primary: i32, canary: i32) -> Self {
        Self {
            primary,
            canary,
            matched_to_canary: false,
            mirror: None,
        }
    }
}

/// The traffic a provider is asked to express before anything is written, to find a provider
/// that cannot carry the plan's strategy (weights with the kubernetes provider, Gateway API
/// without a gateway): a split for weighted canaries, the primary alone otherwise, with matched
/// requests going to the canary for A/B testing.
pub fn sample_traffic(plan: &Plan) -> Traffic {
    match plan.strategy {
        Strategy::Canary { .. } => Traffic::weights(50, 50),
        Strategy::AbTesting { .. } => Traffic {
            matched_to_canary: true,
            ..Traffic::PRIMARY
        },
        Strategy::BlueGreen { .. } => Traffic::PRIMARY,
    }
}

impl std::fmt::Display for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "primary {}% canary {}%", self.primary, self.canary)?;
        if self.matched_to_canary {
            f.write_str(", matching requests to canary")?;
        }
        if let Some(mirror) = self.mirror {
            write!(f, ", {mirror}% mirrored to canary")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub severity: Severity,
    pub reason: Reason,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: Reason,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Canary;
    use crate::api::load::from_yaml;
    use crate::api::provider::ProviderKind;
    use crate::api::provider::TrafficProvider;

    fn plan(analysis: &str) -> Plan {
        let yaml = format!(
            "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: web}}\nspec:\n  provider: istio\n  targetRef: {{name: web}}\n  service: {{port: 80}}\n  analysis: {analysis}\n"
        );
        let canary: Canary = from_yaml(&yaml, "").unwrap();
        Plan::from_spec(&canary.spec, TrafficProvider::of(ProviderKind::Istio)).unwrap()
    }

    #[test]
    fn a_weighted_canary_is_checked_with_a_split() {
        let sample = sample_traffic(&plan("{stepWeight: 10, maxWeight: 50}"));
        assert_eq!(sample, Traffic::weights(50, 50));
    }

    #[test]
    fn ab_testing_is_checked_with_matched_requests_to_the_canary() {
        let sample = sample_traffic(&plan(
            "{iterations: 5, match: [{headers: {x-canary: {exact: insider}}}]}",
        ));
        assert_eq!((sample.primary, sample.canary), (100, 0));
        assert!(sample.matched_to_canary);
    }

    #[test]
    fn blue_green_is_checked_with_the_primary_alone() {
        assert_eq!(sample_traffic(&plan("{iterations: 5}")), Traffic::PRIMARY);
        assert_eq!(
            sample_traffic(&plan("{iterations: 5, mirror: true, mirrorWeight: 50}")),
            Traffic::PRIMARY
        );
    }
}
