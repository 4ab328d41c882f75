//! Validate: the Canary's spec becomes the engine's plan, or the reason it cannot be one (an
//! invalid field, a reference `--no-cross-namespace-refs` refuses, a target another Canary
//! manages, a strategy the provider cannot route). Found before anything is written.

use kube::ResourceExt;

use crate::api::Canary;
use crate::engine::{self, Plan, Reason};
use crate::workload::target::Workload;

use crate::controller::context::Context;
use crate::controller::scene::Scene;

/// The plan of `canary`'s spec, or the message of the spec errors.
pub fn plan(ctx: &Context, canary: &Canary) -> Result<Plan, String> {
    let plan = Plan::from_spec(&canary.spec, ctx.default_provider).map_err(|e| e.to_string())?;
    match refused_references(ctx, canary) {
        Some(message) => Err(message),
        None => Ok(plan),
    }
}

/// With `--no-cross-namespace-refs`, the references to other namespaces' templates and
/// providers, one line each naming the field; checked before any of them is read.
fn refused_references(ctx: &Context, canary: &Canary) -> Option<String> {
    if !ctx.options.no_cross_namespace_refs {
        return None;
    }
    let namespace = canary.namespace().unwrap_or_default();
    let errors = crate::api::references::cross_namespace(&canary.spec, &namespace);
    (!errors.is_empty()).then(|| crate::api::validation::ValidationErrors(errors).to_string())
}

/// Why the observed scene cannot be rolled out as planned: another Canary manages the target,
/// or the provider cannot express the strategy (e.g. weights with the kubernetes provider,
/// Gateway API without a gateway).
pub fn blocked<W: Workload>(scene: &Scene<W>, plan: &Plan) -> Option<(Reason, String)> {
    if let Some(owner) = scene.conflicting_owner() {
        let message = format!(
            "the {} {} is already managed by Canary {owner}; this Canary is left alone",
            W::kind(&()),
            scene.canary.spec.target_ref.name
        );
        return Some((Reason::TargetConflict, message));
    }
    let selector = scene.target_selector()?;
    let inputs = scene.route_inputs(selector);
    let router = crate::routing::router_for(scene.provider);
    // A router copying a live object (nginx) is built where that object is read (apply); what
    // its spec cannot express, the provider table has refused already.
    if router.source(&inputs).is_some() {
        return None;
    }
    let routed = router.objects(&inputs, engine::sample_traffic(plan));
    routed
        .err()
        .map(|error| (Reason::InvalidSpec, error.to_string()))
}
