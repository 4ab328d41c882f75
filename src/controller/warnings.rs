//! Warning events for failures of background work: an alert that was not sent, a
//! post-rollout or event hook that failed. Such work runs after the reconcile that started it
//! has returned, so an event on the Canary is the only place a person sees it (the log is not
//! where a team looks). The texts are the same as the log's: no URLs, tokens or Secret values.

use k8s_openapi::api::core::v1::ObjectReference;

use super::events::{Note, Recorder};

use crate::api::Canary;
use crate::engine::Reason;

/// Where background work reports its failures: one Canary's events. Cheap to clone into a
/// spawned task.
#[derive(Clone)]
pub struct Warnings {
    recorder: Recorder,
    canary: ObjectReference,
}

impl Warnings {
    pub fn of(ctx: &super::context::Context, canary: &Canary) -> Self {
        Self {
            recorder: ctx.recorder.clone(),
            canary: ctx.group_of(canary).object_reference(canary),
        }
    }

    /// Records a Warning event; a failure to record one is only logged.
    pub async fn warn(&self, reason: Reason, note: &str) {
        let event = Note {
            warning: true,
            reason: reason.as_str(),
            action: "Notify",
            note,
        };
        if let Err(error) = self.recorder.publish(&event, &self.canary).await {
            tracing::warn!(%error, "recording an event");
        }
    }
}
