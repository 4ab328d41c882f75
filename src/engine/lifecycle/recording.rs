//! Writing the decision down: phase and traffic into the next status, actions, events, alerts.

use crate::api::canary::Severity;
use crate::api::status::{CheckStatus, Phase};
use crate::engine::action::{Action, Alert, Event, Traffic};
use crate::engine::reasons::Reason;

use super::Tick;

impl Tick<'_> {
    pub(super) fn set_phase(&mut self, phase: Phase) {
        if self.next.phase != Some(phase) {
            self.next.phase = Some(phase);
            self.next.last_transition_time = Some(self.now);
        }
    }

    pub(super) fn route(&mut self, traffic: Traffic) {
        if self.next.canary_weight != traffic.canary {
            self.next.last_transition_time = Some(self.now);
        }
        self.next.canary_weight = traffic.canary;
        self.note_weight(traffic);
        self.actions.push(Action::SetTraffic(traffic));
    }

    pub(super) fn scale_canary(&mut self, replicas: i32) {
        self.actions.push(Action::ScaleCanary { replicas });
    }

    pub(super) fn record(&mut self, results: Vec<CheckStatus>) {
        for result in results {
            let slot = self
                .next
                .checks
                .iter_mut()
                .find(|c| c.name == result.name && c.kind == result.kind);
            match slot {
                Some(existing) => *existing = result,
                None => self.next.checks.push(result),
            }
        }
    }

    /// A decision worth an event.
    pub(super) fn decide(&mut self, reason: Reason, message: String) {
        self.actions.push(Action::Event(Event {
            warning: false,
            reason,
            message: message.clone(),
        }));
        self.reason = reason;
        self.message = message;
    }

    pub(super) fn warn(&mut self, reason: Reason, message: String) {
        self.actions.push(Action::Event(Event {
            warning: true,
            reason,
            message: message.clone(),
        }));
        self.reason = reason;
        self.message = message;
    }

    /// A holding pattern: reported in the decision, not as an event (it repeats every tick).
    pub(super) fn note(&mut self, reason: Reason, message: &str) {
        self.reason = reason;
        self.message = message.to_string();
    }

    pub(super) fn alert(&mut self, severity: Severity, reason: Reason, message: &str) {
        self.actions.push(Action::Alert(Alert {
            severity,
            reason,
            message: message.to_string(),
        }));
    }
}
