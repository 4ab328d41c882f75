//! The one list of reasons a decision can have. A variant's name is the Kubernetes event
//! reason, the condition reason and the metric label: never a Debug string.

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason { $($(#[$doc])* $name),* }

        impl Reason {
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$name => stringify!($name)),* }
            }
        }
    };
}

reasons! {
    /// The primary is being created from the target.
    Initializing,
    /// The primary serves all traffic; the target is scaled to zero.
    Initialized,
    /// The target's pod template or a tracked config changed.
    NewRevision,
    /// A Canary another controller (Flagger) managed was taken over where it stood.
    TakenOver,
    /// A new revision arrived during analysis; the analysis starts over.
    RolloutRestarted,
    /// The target was set back to the promoted revision: nothing to roll out.
    RevertedToPromoted,
    /// A confirm-rollout gate holds the rollout.
    WaitingForConfirmation,
    /// The canary Deployment is being scaled up.
    CanaryScaledUp,
    /// Waiting for canary or primary pods to become ready.
    WaitingForPods,
    /// Traffic shifted to the next step.
    WeightAdvanced,
    /// A/B or blue/green: one more passing iteration.
    IterationPassed,
    /// A step holds for its pause, or a confirm-traffic-increase gate says no.
    StepHeld,
    /// A check failed; counted against the threshold.
    CheckFailed,
    /// A metric returned no data and its policy is to wait.
    WaitingForData,
    /// A pre-rollout hook failed.
    PreRolloutFailed,
    /// A confirm-promotion gate holds the rollout.
    WaitingForPromotion,
    /// The primary is being updated to the canary's template.
    Promoting,
    /// Traffic is returning to the primary after promotion.
    TrafficRestored,
    /// The canary is scaled down after promotion.
    Finalising,
    /// The rollout finished: the primary runs the new revision.
    Succeeded,
    /// Failed checks reached the threshold.
    ThresholdReached,
    /// A metric marked critical regressed against the primary.
    CriticalMetricFailed,
    /// Pods did not become ready, or data did not arrive, within the progress deadline.
    ProgressDeadlineExceeded,
    /// WaitingPromotion lasted longer than analysis.promotionTimeout.
    PromotionTimedOut,
    /// A rollback hook asked for a rollback.
    RollbackRequested,
    /// Manual requests.
    PromotedByRequest,
    /// One step forward by request (the next weight or iteration).
    SteppedByRequest,
    AbortedByRequest,
    Retried,
    Paused,
    Resumed,
    /// The judged metrics' score fell between the marginal and pass thresholds: the rollout
    /// is paused for a human to promote, abort or resume.
    JudgeMarginal,
    /// A manual request that does not apply in this phase, or is unknown.
    RequestIgnored,
    /// spec.suspend is set.
    Suspended,
    /// The target (Deployment, DaemonSet) does not exist.
    TargetNotFound,
    /// The Canary's spec is invalid.
    InvalidSpec,
    /// The spec is run as Flagger reads it, which differs from what it says (a deprecated
    /// field, a fallback): the message names each field.
    ReadAsFlagger,
    /// Another Canary already manages the target Deployment.
    TargetConflict,
    /// The Canary is being deleted; the original objects are being restored.
    Reverting,
    /// A steady state: nothing to do.
    UpToDate,
    /// An alert could not be sent (its provider, Secret or service failed).
    AlertNotSent,
    /// A post-rollout or event webhook failed (these report, they do not decide).
    HookFailed,
    // Reconcile failures a person must act on (`controller::error`): the Stalled condition
    // carries them until a reconcile succeeds.
    /// RBAC forbids a request serin makes.
    Forbidden,
    /// The API server does not serve a kind serin writes (its CRD is not installed).
    KindNotServed,
    /// Another writer keeps changing what serin writes.
    FieldConflict,
    /// The API server or an admission webhook rejected an object serin wrote.
    ObjectRejected,
    /// An object a step needs does not exist.
    ObjectMissing,
    /// An object to write cannot be built from the Canary and its target.
    CannotBuildObject,
}

impl Reason {
    /// Decisions that cannot be taken back and that a stale view of the workloads could cause:
    /// a rollback because pods did not become ready in time, and the end of a promotion because
    /// the primary is ready with the new revision (traffic leaves the canary, which is then
    /// scaled to zero). The controller confirms them from a fresh read of the target and
    /// primary before acting; a stale cache delays such a decision, never makes it. Each costs
    /// one read of each workload, once per rollout.
    pub const fn needs_fresh_view(self) -> bool {
        matches!(
            self,
            Self::ProgressDeadlineExceeded | Self::TrafficRestored | Self::Succeeded
        )
    }

    /// The reasons of [`Reason`]'s reconcile failures, which a successful reconcile clears.
    pub const RECONCILE_FAILURES: [Reason; 6] = [
        Self::Forbidden,
        Self::KindNotServed,
        Self::FieldConflict,
        Self::ObjectRejected,
        Self::ObjectMissing,
        Self::CannotBuildObject,
    ];
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
