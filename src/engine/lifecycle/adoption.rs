//! Taking over a Canary from another controller (Flagger, scaled to zero for the switch). Its
//! status names revisions by Flagger's hash of the pod template, which serin cannot reproduce,
//! and its primary carries no serin revision; the shell compares the primary's pod template
//! with the target's instead (`Observations::foreign_primary`). A settled Canary stays settled
//! (nothing restarts), a failed one stays failed, and one caught mid-rollout starts its
//! analysis over from no traffic: Flagger's step, timers and check results cannot be carried
//! over faithfully (its status has no step index for stepWeights, and its check counts were
//! taken by other queries), so serin re-earns the promotion rather than trusting half of it.

use crate::api::status::Phase;
use crate::engine::action::Traffic;
use crate::engine::input::{ForeignPrimary, Target};
use crate::engine::reasons::Reason;

use super::{Tick, short};

impl Tick<'_> {
    /// Takes over a status another controller wrote; true when that decided this tick.
    pub(super) fn taken_over(&mut self, target: &Target) -> bool {
        let Some(foreign) = self.obs.foreign_primary else {
            return false;
        };
        let revision = Some(target.revision.as_str());
        let known = self.next.last_applied_spec.as_deref() == revision
            || self.next.last_promoted_spec.as_deref() == revision;
        let phase = self.next.phase;
        let own_path = matches!(
            phase,
            None | Some(Phase::Initializing | Phase::Terminating | Phase::Terminated)
        );
        if known || own_path {
            return false;
        }
        match (foreign, phase) {
            (ForeignPrimary::RunsTarget, _) => self.adopt_settled(target),
            (ForeignPrimary::RunsOther, Some(Phase::Failed)) => self.adopt_failed(target),
            // A release made while neither controller ran: an ordinary new revision.
            (ForeignPrimary::RunsOther, Some(Phase::Initialized | Phase::Succeeded)) => {
                return false;
            }
            (ForeignPrimary::RunsOther, _) => {
                self.route(Traffic::PRIMARY);
                self.start_rollout(target, Reason::RolloutRestarted);
                self.message = format!(
                    "taken over mid-rollout: {}; the analysis starts over from no traffic",
                    self.message
                );
            }
        }
        true
    }

    /// The primary already runs the target: settled, whatever phase the status said.
    fn adopt_settled(&mut self, target: &Target) {
        self.reset_analysis();
        self.route(Traffic::PRIMARY);
        self.adopt(target);
        self.next.last_promoted_spec = Some(target.revision.clone());
        if self.next.phase != Some(Phase::Initialized) {
            self.set_phase(Phase::Succeeded);
        }
        if target.state.replicas > 0 && self.primary_ready() {
            self.scale_canary(0);
        }
        self.decide(
            Reason::TakenOver,
            format!(
                "taken over: the primary already runs the target's revision {}; nothing to roll out",
                short(&target.revision)
            ),
        );
    }

    /// Flagger rolled the target's revision back: it stays rolled back until a new revision or
    /// a retry request, as it would have under Flagger.
    fn adopt_failed(&mut self, target: &Target) {
        self.adopt(target);
        self.decide(
            Reason::TakenOver,
            format!(
                "taken over a failed rollout: revision {} stays rolled back until a new revision or a retry request",
                short(&target.revision)
            ),
        );
    }
}
