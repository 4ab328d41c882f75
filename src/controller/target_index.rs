//! Which Canaries target each workload, kept from the Canary watch beside the reflector's
//! store. Every event of every watched workload (Deployments, DaemonSets, StatefulSets,
//! Knative Services, autoscalers, configs) asks which Canaries it concerns; scanning every
//! cached Canary for that made the lookup O(N) per event, a quarter of the controller's CPU at
//! 10,000 Canaries (docs/benchmarks.md). The index answers it in O(1).
//!
//! It follows the watch's events exactly as the store does: an `Apply` or `Delete` at once, a
//! re-list (`Init` .. `InitApply`* .. `InitDone`) built aside and swapped in at its end, so a
//! Canary deleted while the watch was down leaves the index with the re-list.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::runtime::watcher;

use crate::api::group::Served;

/// Names keyed by namespace, then by another name: lookups borrow `&str`, no key is built.
type ByNamespace<V> = HashMap<String, HashMap<String, V>>;

#[derive(Default)]
struct Index {
    /// Namespace -> target name -> the names of the Canaries targeting it.
    canaries: ByNamespace<BTreeSet<String>>,
    /// Namespace -> Canary name -> its target's name, to move a Canary whose target changed.
    targets: ByNamespace<String>,
}

impl Index {
    fn apply(&mut self, namespace: &str, canary: &str, target: &str) {
        let previous = self
            .targets
            .entry(namespace.to_string())
            .or_default()
            .insert(canary.to_string(), target.to_string());
        match previous {
            Some(previous) if previous == target => return,
            Some(previous) => self.unlink(namespace, canary, &previous),
            None => {}
        }
        self.canaries
            .entry(namespace.to_string())
            .or_default()
            .entry(target.to_string())
            .or_default()
            .insert(canary.to_string());
    }

    fn delete(&mut self, namespace: &str, canary: &str) {
        let Some(names) = self.targets.get_mut(namespace) else {
            return;
        };
        let Some(target) = names.remove(canary) else {
            return;
        };
        if names.is_empty() {
            self.targets.remove(namespace);
        }
        self.unlink(namespace, canary, &target);
    }

    /// Removes `canary` from `target`'s set, and the emptied maps with it (namespaces come and
    /// go; the index must not keep one entry per namespace ever seen).
    fn unlink(&mut self, namespace: &str, canary: &str, target: &str) {
        let Some(by_target) = self.canaries.get_mut(namespace) else {
            return;
        };
        if let Some(names) = by_target.get_mut(target) {
            names.remove(canary);
            if names.is_empty() {
                by_target.remove(target);
            }
        }
        if by_target.is_empty() {
            self.canaries.remove(namespace);
        }
    }

    fn targeting(&self, namespace: &str, target: &str) -> impl Iterator<Item = &String> {
        self.canaries
            .get(namespace)
            .and_then(|by_target| by_target.get(target))
            .into_iter()
            .flatten()
    }
}

#[derive(Default)]
struct Sides {
    live: Index,
    /// The index a re-list is building, swapped in at its `InitDone`.
    relisting: Option<Index>,
}

/// The Canaries of one group by target name, shared by the watches that look it up.
#[derive(Clone, Default)]
pub struct TargetIndex {
    sides: Arc<RwLock<Sides>>,
}

impl TargetIndex {
    /// Follows one event of the group's Canary watch.
    pub fn record<K: Served + Resource>(&self, event: &watcher::Event<K>) {
        let entry = |canary: &K| {
            let meta = canary.meta();
            (
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
                canary.canary().spec.target_ref.name.clone(),
            )
        };
        // A poisoned lock only means a panic elsewhere mid-update; the maps stay usable.
        let mut sides = self.sides.write().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(canary) => {
                let (namespace, name, target) = entry(canary);
                sides.live.apply(&namespace, &name, &target);
            }
            watcher::Event::Delete(canary) => {
                let (namespace, name, _) = entry(canary);
                sides.live.delete(&namespace, &name);
            }
            watcher::Event::Init => sides.relisting = Some(Index::default()),
            watcher::Event::InitApply(canary) => {
                let (namespace, name, target) = entry(canary);
                sides
                    .relisting
                    .get_or_insert_with(Index::default)
                    .apply(&namespace, &name, &target);
            }
            watcher::Event::InitDone => {
                if let Some(index) = sides.relisting.take() {
                    sides.live = index;
                }
            }
        }
    }

    /// The names of the Canaries in `namespace` whose target is one of `targets`.
    pub fn targeting<'a>(
        &self,
        namespace: &str,
        targets: impl IntoIterator<Item = &'a str>,
    ) -> BTreeSet<String> {
        let sides = self.sides.read().unwrap_or_else(|e| e.into_inner());
        targets
            .into_iter()
            .flat_map(|target| sides.live.targeting(namespace, target))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Canary;

    fn canary(namespace: &str, name: &str, target: &str) -> Canary {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "serin.dev/v1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10, "maxWeight": 50}
            }
        }))
        .unwrap()
    }

    fn names(set: BTreeSet<String>) -> Vec<String> {
        set.into_iter().collect()
    }

    #[test]
    fn a_workload_finds_the_canaries_of_its_namespace_that_target_it() {
        let index = TargetIndex::default();
        index.record(&watcher::Event::Apply(canary("a", "web", "podinfo")));
        index.record(&watcher::Event::Apply(canary("a", "web-2", "podinfo")));
        index.record(&watcher::Event::Apply(canary("b", "web", "podinfo")));
        index.record(&watcher::Event::Apply(canary("a", "api", "backend")));
        assert_eq!(names(index.targeting("a", ["podinfo"])), ["web", "web-2"]);
        assert_eq!(
            names(index.targeting("a", ["podinfo", "backend"])),
            ["api", "web", "web-2"]
        );
        assert_eq!(names(index.targeting("b", ["podinfo"])), ["web"]);
        assert!(index.targeting("c", ["podinfo"]).is_empty());
    }

    #[test]
    fn a_changed_target_moves_the_canary_and_a_deleted_one_leaves() {
        let index = TargetIndex::default();
        index.record(&watcher::Event::Apply(canary("a", "web", "podinfo")));
        index.record(&watcher::Event::Apply(canary("a", "web", "podinfo-v2")));
        assert!(index.targeting("a", ["podinfo"]).is_empty());
        assert_eq!(names(index.targeting("a", ["podinfo-v2"])), ["web"]);

        index.record(&watcher::Event::Delete(canary("a", "web", "podinfo-v2")));
        assert!(index.targeting("a", ["podinfo-v2"]).is_empty());
        let sides = index.sides.read().unwrap();
        assert!(sides.live.canaries.is_empty() && sides.live.targets.is_empty());
    }

    #[test]
    fn a_relist_replaces_the_index_at_its_end() {
        let index = TargetIndex::default();
        index.record(&watcher::Event::Apply(canary("a", "gone", "podinfo")));
        index.record(&watcher::Event::<Canary>::Init);
        index.record(&watcher::Event::InitApply(canary("a", "web", "podinfo")));
        // Until the re-list ends, lookups answer from what was known before it.
        assert_eq!(names(index.targeting("a", ["podinfo"])), ["gone"]);
        index.record(&watcher::Event::<Canary>::InitDone);
        assert_eq!(names(index.targeting("a", ["podinfo"])), ["web"]);
    }
}
