//! What the engine asks the world to do. Actions are data: the controller turns them into
//! server-side-apply patches, the simulator into changes of its in-memory cluster, and tests
//! assert on them directly.

use crate::api::canary::{HookKind, Severity};

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
