//! Status writes the Canary cache has not shown yet. A reconcile that starts while the watch
//! still delivers an older version must decide from what serin wrote, never from the older
//! status (a decision would be made twice). Each pending write keeps the object the API server
//! answered with and the versions older than it that the cache may still show; the reconcile
//! decides from that answer without a request, and reads the Canary afresh only when the cache
//! shows a version serin cannot place (someone else wrote meanwhile). An entry lives until the
//! watch delivers the version it holds (`seen`), so the map holds writes in flight, not every
//! Canary.
//!
//! No ordering of resourceVersions is assumed (Kubernetes calls them opaque): a version is
//! known to be older only because serin read it before it wrote, or before it read afresh.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::runtime::reflector::ObjectRef;

use crate::api::Canary;

/// Older versions remembered per Canary: more than the writes a reconcile chain makes before
/// the watch delivers the first of them; beyond it the Canary is read afresh, which is correct.
const OLDER_KEPT: usize = 8;

/// The pending writes, per Canary.
#[derive(Debug, Default)]
pub struct Pending(Mutex<HashMap<ObjectRef<Canary>, Written>>);

/// One Canary's newest known object and the versions older than it.
#[derive(Debug, Clone)]
struct Written {
    newest: Canary,
    older: Vec<String>,
}

/// What the cached Canary is, next to what serin wrote.
#[derive(Debug, PartialEq)]
enum View {
    /// The cache shows serin's last write: decide from the cache.
    Caught,
    /// The cache holds a version older than serin's last write: decide from the write's answer.
    Behind,
    /// A version serin cannot place: read it afresh.
    Unknown,
}

impl Pending {
    /// The Canary to decide from, when no request is needed: the cached one when nothing is
    /// pending or the cache shows the last write, the last write's answer when the cache is
    /// behind it. None: read the Canary afresh (then [`Pending::record`] what was read).
    pub fn decide_from(&self, cached: &Canary) -> Option<Canary> {
        let key = ObjectRef::from_obj(cached);
        let mut map = self.lock();
        let Some(written) = map.get(&key) else {
            return Some(cached.clone());
        };
        match written.view_of(cached.resource_version().as_deref()) {
            View::Caught => {
                map.remove(&key);
                Some(cached.clone())
            }
            View::Behind => Some(written.newest.clone()),
            View::Unknown => None,
        }
    }

    /// Records `newest` (what a status write answered, or a read afresh returned) for the
    /// Canary `from` was decided from (or read after); forgets the Canary when `newest` is
    /// None (it is gone or being deleted).
    pub fn record(&self, from: &Canary, newest: Option<&Canary>) {
        let key = ObjectRef::from_obj(from);
        let mut map = self.lock();
        let previous = map.remove(&key);
        if let Some(newest) = newest {
            let written = Written::after(previous, from.resource_version(), newest);
            map.insert(key, written);
        }
    }

    /// The watch delivered this version of a Canary (and the cache holds it now): a write it
    /// shows is no longer pending.
    pub fn seen(&self, meta: &ObjectMeta) {
        let (Some(name), Some(version)) = (&meta.name, &meta.resource_version) else {
            return;
        };
        let key = ObjectRef::new(name).within(meta.namespace.as_deref().unwrap_or_default());
        let mut map = self.lock();
        if map
            .get(&key)
            .is_some_and(|w| w.newest.resource_version().as_ref() == Some(version))
        {
            map.remove(&key);
        }
    }

    /// How many Canaries have a write in flight.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<Canary>, Written>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Written {
    fn view_of(&self, cached_version: Option<&str>) -> View {
        let Some(cached) = cached_version else {
            return View::Unknown;
        };
        if self.newest.resource_version().as_deref() == Some(cached) {
            View::Caught
        } else if self.older.iter().any(|v| v == cached) {
            View::Behind
        } else {
            View::Unknown
        }
    }

    /// The entry once `newest` was written or read, starting from the version `base`: every
    /// version serin knew before is older than `newest`, since one task at a time reconciles a
    /// Canary and its writes are answered in order.
    fn after(previous: Option<Written>, base: Option<String>, newest: &Canary) -> Written {
        let mut older = Vec::new();
        if let Some(previous) = previous {
            older = previous.older;
            older.extend(previous.newest.resource_version());
        }
        older.extend(base);
        let newest_version = newest.resource_version();
        older.retain(|v| Some(v) != newest_version.as_ref());
        older.dedup();
        if older.len() > OLDER_KEPT {
            older.drain(..older.len() - OLDER_KEPT);
        }
        Written {
            newest: newest.clone(),
            older,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(version: &str) -> Canary {
        let mut canary: Canary = serde_json::from_value(json!({
            "apiVersion": "serin.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                     "analysis": {"interval": "1m"}},
        }))
        .expect("a Canary");
        canary.metadata.resource_version = Some(version.into());
        canary
    }

    fn written(canary: &Canary, phase: &str) -> Canary {
        let mut written = canary.clone();
        written.status = Some(serde_json::from_value(json!({"phase": phase})).unwrap());
        written
    }

    #[test]
    fn a_cache_behind_serins_own_write_is_answered_by_the_write() {
        let pending = Pending::default();
        pending.record(&at("10"), Some(&written(&at("11"), "Progressing")));
        let decided = pending.decide_from(&at("10")).expect("no read needed");
        assert_eq!(decided.resource_version().as_deref(), Some("11"));
        assert_eq!(
            decided.status.and_then(|s| s.phase),
            Some(crate::api::status::Phase::Progressing)
        );
        // Someone else wrote after serin: only a read can tell what it holds.
        assert!(pending.decide_from(&at("12")).is_none());
        // The cache caught up: the entry goes.
        let caught = pending.decide_from(&at("11")).expect("no read needed");
        assert_eq!(caught.resource_version().as_deref(), Some("11"));
        assert!(pending.is_empty());
    }

    #[test]
    fn a_chain_of_writes_before_the_watch_delivers_any_needs_no_read() {
        let pending = Pending::default();
        pending.record(&at("10"), Some(&at("11")));
        let second = pending.decide_from(&at("10")).unwrap();
        pending.record(&second, Some(&at("12")));
        let third = pending.decide_from(&at("11")).unwrap();
        pending.record(&third, Some(&at("13")));
        for behind in ["10", "11", "12"] {
            let decided = pending.decide_from(&at(behind)).expect("no read needed");
            assert_eq!(decided.resource_version().as_deref(), Some("13"));
        }
    }

    #[test]
    fn the_watch_delivering_the_write_ends_it_and_an_older_version_does_not() {
        let pending = Pending::default();
        pending.record(&at("10"), Some(&at("11")));
        pending.seen(&at("10").metadata);
        assert_eq!(pending.len(), 1);
        pending.seen(&at("11").metadata);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_read_afresh_places_the_version_the_cache_showed() {
        let pending = Pending::default();
        pending.record(&at("10"), Some(&at("11")));
        assert!(pending.decide_from(&at("12")).is_none());
        pending.record(&at("12"), Some(&at("14")));
        for behind in ["10", "11", "12"] {
            let decided = pending.decide_from(&at(behind)).expect("no read needed");
            assert_eq!(decided.resource_version().as_deref(), Some("14"));
        }
        pending.record(&at("14"), None);
        assert!(pending.is_empty());
    }

    #[test]
    fn the_versions_remembered_are_bounded() {
        let pending = Pending::default();
        pending.record(&at("0"), Some(&at("1")));
        for version in 2..100 {
            pending.record(
                &at(&(version - 1).to_string()),
                Some(&at(&version.to_string())),
            );
        }
        let map = pending.lock();
        let entry = map.values().next().unwrap();
        assert_eq!(entry.older.len(), OLDER_KEPT);
        assert_eq!(entry.view_of(Some("98")), View::Behind);
        // Too far behind to place: read afresh, which is always correct.
        assert_eq!(entry.view_of(Some("3")), View::Unknown);
    }
}
