//! Every permission `serin controller` uses, and the call that needs it. config/rbac.yaml is
//! exactly this list plus each traffic provider's kinds from the provider table and what a
//! metric provider reads from the cluster (`metric_provider::Row::cluster_reads`)
//! (`tests/rbac.rs` fails on a kind a provider writes that the file does not grant, and on a
//! granted verb nothing here uses); docs/operations.md explains each line to operators.

use super::group::ApiGroup;
use super::provider::{Access, TABLE};

/// serin's own kinds, granted in each group it serves (`ApiGroup::ALL`: flagger.app is
/// reconciled with `--flagger-api`); their `group` here is left empty.
pub const OWN_KINDS: &[Access] = &[
    // The watch, a fresh read before deciding, finalizers (merge patch).
    Access::new("", "canaries", &["get", "list", "watch", "patch"]),
    // Status by server-side apply.
    Access::new("", "canaries/status", &["patch"]),
    // Owner references with blockOwnerDeletion on objects serin creates for a Canary.
    Access::new("", "canaries/finalizers", &["update"]),
    // Read by name when a Canary's metrics or alerts are checked.
    Access::new("", "metrictemplates", &["get"]),
    Access::new("", "alertproviders", &["get"]),
];

/// What the controller itself reads and writes, whatever the provider.
pub const CONTROLLER: &[Access] = &[
    // Targets and primaries: watched, read afresh before a rollback at the progress deadline
    // (a stale cache must not cause one), written by server-side apply (which may create).
    Access::new(
        "apps",
        "deployments",
        &["get", "list", "watch", "create", "patch"],
    ),
    // The primary's ReplicaSets: the template a failed promotion reverts to.
    Access::new("apps", "replicasets", &["list"]),
    // DaemonSet targets and primaries, as Deployments; their history is in ControllerRevisions.
    Access::new(
        "apps",
        "daemonsets",
        &["get", "list", "watch", "create", "patch"],
    ),
    // StatefulSet targets and primaries, as Deployments (history in ControllerRevisions too).
    // Never PersistentVolumeClaims: serin has no permission to delete a claim.
    Access::new(
        "apps",
        "statefulsets",
        &["get", "list", "watch", "create", "patch"],
    ),
    Access::new("apps", "controllerrevisions", &["list"]),
    // Apex, primary and canary Services.
    Access::new("", "services", &["create", "patch"]),
    // Tracked configs: watched, read, copied to -primary. Secrets also hold credentials.
    Access::new(
        "",
        "configmaps",
        &["get", "list", "watch", "create", "patch"],
    ),
    Access::new("", "secrets", &["get", "list", "watch", "create", "patch"]),
    // The primary's autoscaler.
    Access::new(
        "autoscaling",
        "horizontalpodautoscalers",
        &["list", "watch", "create", "patch"],
    ),
    // A KEDA ScaledObject as autoscaler: the target's read by name (at creation and
    // promotion) and paused by a merge patch while the target idles at zero; the primary's
    // written by server-side apply.
    Access::new("keda.sh", "scaledobjects", &["get", "create", "patch"]),
    // Events on Canaries (events.k8s.io/v1, created and patched for a series: controller::events).
    Access::new("events.k8s.io", "events", &["create", "patch"]),
];

/// Every (group, resource, verb) the controller needs: its own and every provider's.
pub fn required() -> std::collections::BTreeSet<(String, String, String)> {
    let providers = TABLE.iter().flat_map(|row| row.kinds.iter());
    let metric_providers = super::metric_provider::TABLE
        .iter()
        .flat_map(|row| row.cluster_reads.iter());
    let own = ApiGroup::ALL.into_iter().flat_map(|group| {
        OWN_KINDS.iter().map(move |access| Access {
            group: group.name(),
            ..*access
        })
    });
    CONTROLLER
        .iter()
        .chain(providers)
        .chain(metric_providers)
        .copied()
        .chain(own)
        .flat_map(|access| {
            access.verbs.iter().map(move |verb| {
                (
                    access.group.to_string(),
                    access.resource.to_string(),
                    (*verb).to_string(),
                )
            })
        })
        .collect()
}
