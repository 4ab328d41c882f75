//! The controller's side of the workload seam: where each target kind's objects are cached,
//! and the one `match` that runs a reconcile with the kind a Canary targets. A new kind is an
//! arm here and a [`Watched`] impl naming its store (besides its `crate::workload` module and
//! its watch in `watches`).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::runtime::reflector::Store;

use crate::api::target::TargetKind;
use crate::workload::knative::{self, KnativeService};
use crate::workload::target::Workload;

use super::context::Context;
use super::packed::Packed;

/// A workload kind whose objects the controller watches and caches.
pub trait Watched: Workload {
    fn store(ctx: &Context) -> &Store<Packed<Self>>;

    /// Turns true once the store holds its first full list (before, a missing target would
    /// only mean the cache is empty).
    fn store_ready(ctx: &Context) -> &tokio::sync::watch::Receiver<bool>;

    /// Why the API server cannot serve this kind (its CRD is not installed), found by
    /// discovery at start; None when it is served.
    fn not_served(_ctx: &Context) -> Option<String> {
        None
    }
}

impl Watched for Deployment {
    fn store(ctx: &Context) -> &Store<Packed<Self>> {
        &ctx.deployments
    }

    fn store_ready(ctx: &Context) -> &tokio::sync::watch::Receiver<bool> {
        &ctx.deployments_ready
    }
}

impl Watched for DaemonSet {
    fn store(ctx: &Context) -> &Store<Packed<Self>> {
        &ctx.daemon_sets
    }

    fn store_ready(ctx: &Context) -> &tokio::sync::watch::Receiver<bool> {
        &ctx.daemon_sets_ready
    }
}

impl Watched for StatefulSet {
    fn store(ctx: &Context) -> &Store<Packed<Self>> {
        &ctx.stateful_sets
    }

    fn store_ready(ctx: &Context) -> &tokio::sync::watch::Receiver<bool> {
        &ctx.stateful_sets_ready
    }
}

impl Watched for KnativeService {
    fn store(ctx: &Context) -> &Store<Packed<Self>> {
        &ctx.knative_services
    }

    fn store_ready(ctx: &Context) -> &tokio::sync::watch::Receiver<bool> {
        &ctx.knative_services_ready
    }

    fn not_served(ctx: &Context) -> Option<String> {
        (!ctx.knative_served).then(|| {
            format!(
                "the {}/{} Service API is not installed: install Knative Serving, then this Canary is reconciled again",
                knative::GROUP,
                knative::VERSION
            )
        })
    }
}

/// Awaits `$run::<Kind>($args...)` with the workload type of `$kind` (a [`TargetKind`]): the
/// shell is generic over [`Watched`], and this is the one place a kind becomes a type.
macro_rules! with_target_kind {
    ($kind:expr, $run:ident ( $($arg:expr),* $(,)? )) => {
        match $kind {
            $crate::api::target::TargetKind::Deployment => {
                $run::<k8s_openapi::api::apps::v1::Deployment>($($arg),*).await
            }
            $crate::api::target::TargetKind::DaemonSet => {
                $run::<k8s_openapi::api::apps::v1::DaemonSet>($($arg),*).await
            }
            $crate::api::target::TargetKind::StatefulSet => {
                $run::<k8s_openapi::api::apps::v1::StatefulSet>($($arg),*).await
            }
            $crate::api::target::TargetKind::KnativeService => {
                $run::<$crate::workload::knative::KnativeService>($($arg),*).await
            }
        }
    };
}
pub(crate) use with_target_kind;

/// The kind of a Canary's target; a kind serin does not roll out has been refused by
/// validation before any reconcile gets here, so this falls back to Deployment only for
/// objects that were never validated (a deleted Canary being finalized).
pub fn kind_of(canary: &crate::api::Canary) -> TargetKind {
    TargetKind::of(&canary.spec.target_ref).unwrap_or(TargetKind::Deployment)
}
