//! Whether the primary is ready, and with which revision, as the observations report it.

use super::Tick;

impl Tick<'_> {
    pub(super) fn primary_ready(&self) -> bool {
        self.obs
            .primary
            .as_ref()
            .is_some_and(|p| p.is_ready(self.plan.primary_ready_threshold))
    }

    pub(super) fn primary_ready_with(&self, revision: &str) -> bool {
        self.primary_ready()
            && self
                .obs
                .primary
                .as_ref()
                .and_then(|p| p.revision.as_deref())
                == Some(revision)
    }

    pub(super) fn primary_progress(&self) -> String {
        self.obs
            .primary
            .as_ref()
            .map_or("not created yet".into(), |p| p.progress())
    }

    /// The primary's progress towards running `revision`: its pods, and the revision it
    /// runs when that is another one.
    pub(super) fn primary_progress_to(&self, revision: &str) -> String {
        let progress = self.primary_progress();
        match self
            .obs
            .primary
            .as_ref()
            .and_then(|p| p.revision.as_deref())
        {
            Some(running) if running != revision => format!(
                "{progress}; it still runs revision {}, not {}",
                super::short(running),
                super::short(revision)
            ),
            _ => progress,
        }
    }
}
