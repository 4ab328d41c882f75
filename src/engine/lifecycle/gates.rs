//! Gates: whether every hook of a kind said yes this tick, and whether its failures are alerted.

use crate::api::canary::HookKind;
use crate::api::status::CheckResult;
use crate::engine::analysis;

use super::Tick;

impl Tick<'_> {
    /// Every hook of the gate's kind said yes; records their answers either way.
    pub(super) fn gate(&mut self, kind: HookKind) -> bool {
        let results = analysis::hook_results(self.plan, kind, self.found, self.now);
        let open = results.iter().all(|r| r.result == CheckResult::Pass);
        self.record(results);
        open
    }

    /// Every hook of the kind is muted (`muteAlert`): its failures are not alerted.
    pub(super) fn hooks_muted(&self, kind: HookKind) -> bool {
        self.plan
            .hooks_of(kind)
            .iter()
            .all(|h| self.plan.muted_hooks.contains(h))
    }
}
