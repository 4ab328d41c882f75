//! Kubernetes events on Canaries (events.k8s.io/v1), with repeats of the same event folded
//! into a series as client-go does: the same note about the same Canary again within six
//! minutes raises the existing Event's `series.count` instead of creating another object.
//!
//! serin's own rather than kube-runtime's `Recorder`, for two reasons found at scale:
//! - kube-runtime keys a series by type, reason and action only, not by the note. A rollout
//!   says `WeightAdvanced` at every step with a different weight, and the second step's event
//!   became "canary weight 10% (x2)": `kubectl describe` never showed the later weights.
//! - it keeps a clone of every Event it sent for six minutes (about 2 KiB each, several per
//!   rollout) and scans them all on every publish. Here a series is a hash and the Event's name
//!   (under 100 bytes), pruned every 30 s: a wave of 1,000 rollouts no longer holds megabytes.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

/// How long a repeat joins the earlier event's series (client-go's window).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// How often ended series are dropped from memory.
const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// A bound on the series remembered at once, whatever the event rate (about 10 MiB): past it
/// all are forgotten, which costs only the folding of repeats, never an event.
const MAX_SERIES: usize = 100_000;

/// What one event says.
pub struct Note<'a> {
    pub warning: bool,
    /// A CamelCase reason (`crate::engine::Reason`).
    pub reason: &'a str,
    /// What serin was doing: `Reconcile`, `Notify`.
    pub action: &'a str,
    /// The message, at most 1 KiB (the API server's limit); longer ones are cut.
    pub note: &'a str,
}

/// Publishes events about Canaries. Cheap to clone into a spawned task.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// `reportingController`: serin.
    controller: String,
    /// `reportingInstance`: this replica.
    instance: String,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    /// By the hash of (type, reason, action, note, regarded object).
    series: HashMap<u64, Series>,
    pruned: Option<Instant>,
}

struct Series {
    namespace: Box<str>,
    name: Box<str>,
    count: i32,
    last: Instant,
}

/// What to write for one publish.
enum Write {
    Create,
    Repeat {
        namespace: Box<str>,
        name: Box<str>,
        count: i32,
    },
}

impl Recent {
    /// Whether the event with `key` continues a series, and forgets ended series now and then.
    fn plan(&mut self, key: u64, now: Instant) -> Write {
        if self
            .pruned
            .is_none_or(|at| now.duration_since(at) >= PRUNE_EVERY)
        {
            self.series
                .retain(|_, s| now.duration_since(s.last) < SERIES_WINDOW);
            self.pruned = Some(now);
        }
        match self.series.get(&key) {
            Some(s) if now.duration_since(s.last) < SERIES_WINDOW => Write::Repeat {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                count: s.count + 1,
            },
            _ => Write::Create,
        }
    }

    fn sent(&mut self, key: u64, namespace: &str, name: &str, count: i32, now: Instant) {
        if self.series.len() >= MAX_SERIES && !self.series.contains_key(&key) {
            self.series.clear();
        }
        self.series.insert(
            key,
            Series {
                namespace: namespace.into(),
                name: name.into(),
                count,
                last: now,
            },
        );
    }
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                controller: controller.to_string(),
                instance: instance.unwrap_or_else(|| controller.to_string()),
                recent: Mutex::default(),
            }),
        }
    }

    /// Records `note` about `regarding`: a new Event, or the next count of the same one's
    /// series. An Event gone meanwhile (the API server's TTL, a person's delete) starts over.
    pub async fn publish(&self, note: &Note<'_>, regarding: &ObjectReference) -> kube::Result<()> {
        let key = key(note, regarding);
        let plan = self.recent().plan(key, Instant::now());
        if let Write::Repeat {
            namespace,
            name,
            count,
        } = plan
        {
            let events: Api<KubeEvent> = Api::namespaced(self.inner.client.clone(), &namespace);
            let series =
                json!({"series": {"count": count, "lastObservedTime": MicroTime(jiff_now())}});
            match events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                Ok(_) => {
                    self.recent()
                        .sent(key, &namespace, &name, count, Instant::now());
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let event = self.event(note, regarding);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let events: Api<KubeEvent> = Api::namespaced(self.inner.client.clone(), &namespace);
        let created = events.create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.recent()
            .sent(key, &namespace, &name, 1, Instant::now());
        Ok(())
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        // A panic while holding the lock leaves only a map of hashes behind: still usable.
        self.inner
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn event(&self, note: &Note<'_>, regarding: &ObjectReference) -> KubeEvent {
        let now = jiff_now();
        let about = regarding.name.as_deref().unwrap_or(&self.inner.controller);
        KubeEvent {
            metadata: ObjectMeta {
                namespace: Some(
                    regarding
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                ),
                // client-go's form: the object's name and the time in hexadecimal nanoseconds.
                name: Some(format!("{about}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if note.warning { "Warning" } else { "Normal" }.into()),
            reason: Some(note.reason.to_string()),
            action: Some(note.action.to_string()),
            note: Some(bounded(note.note)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.inner.controller.clone()),
            reporting_instance: Some(self.inner.instance.clone()),
            ..KubeEvent::default()
        }
    }
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// The note cut to the API server's limit of 1,024 bytes, at a character boundary.
fn bounded(note: &str) -> String {
    const LIMIT: usize = 1024;
    if note.len() <= LIMIT {
        return note.to_string();
    }
    let mut end = LIMIT;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note[..end].to_string()
}

/// Which series an event belongs to. A 64-bit hash: two different events colliding among the
/// few thousand remembered is vanishingly rare, and would only fold one into the other's count.
fn key(note: &Note<'_>, regarding: &ObjectReference) -> u64 {
    let mut hasher = DefaultHasher::new();
    note.warning.hash(&mut hasher);
    note.reason.hash(&mut hasher);
    note.action.hash(&mut hasher);
    note.note.hash(&mut hasher);
    regarding.uid.hash(&mut hasher);
    regarding.kind.hash(&mut hasher);
    regarding.namespace.hash(&mut hasher);
    regarding.name.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("Canary".into()),
            namespace: Some("shop".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    fn note(text: &str) -> Note<'_> {
        Note {
            warning: false,
            reason: "WeightAdvanced",
            action: "Reconcile",
            note: text,
        }
    }

    #[test]
    fn a_series_is_the_same_note_about_the_same_object() {
        let web = canary("web");
        let same = key(&note("canary weight 10%"), &web);
        assert_eq!(same, key(&note("canary weight 10%"), &web));
        assert_ne!(
            same,
            key(&note("canary weight 20%"), &web),
            "another weight"
        );
        assert_ne!(same, key(&note("canary weight 10%"), &canary("api")));
        let warning = Note {
            warning: true,
            ..note("canary weight 10%")
        };
        assert_ne!(same, key(&warning, &web));
    }

    #[test]
    fn a_repeat_within_six_minutes_raises_the_count_and_a_later_one_starts_over() {
        let mut recent = Recent::default();
        let start = Instant::now();
        assert!(matches!(recent.plan(1, start), Write::Create));
        recent.sent(1, "shop", "web.1", 1, start);
        let soon = start + Duration::from_secs(60);
        match recent.plan(1, soon) {
            Write::Repeat { name, count, .. } => assert_eq!((&*name, count), ("web.1", 2)),
            Write::Create => panic!("a repeat within the window continues the series"),
        }
        assert!(
            matches!(recent.plan(2, soon), Write::Create),
            "another note"
        );
        recent.sent(1, "shop", "web.1", 2, soon);
        let late = soon + SERIES_WINDOW;
        assert!(matches!(recent.plan(1, late), Write::Create));
        assert!(recent.series.is_empty(), "ended series are forgotten");
    }

    #[test]
    fn the_series_remembered_are_bounded() {
        let mut recent = Recent::default();
        let now = Instant::now();
        for key in 0..MAX_SERIES as u64 {
            recent.sent(key, "shop", "e", 1, now);
        }
        recent.sent(u64::MAX, "shop", "e", 1, now);
        assert_eq!(recent.series.len(), 1);
    }

    #[test]
    fn a_long_note_is_cut_at_a_character_boundary() {
        let long = "é".repeat(600);
        let cut = bounded(&long);
        assert!(cut.len() <= 1024 && cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded("short"), "short");
    }
}
