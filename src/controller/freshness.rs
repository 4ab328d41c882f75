//! How fresh the controller's view of the cluster is, per watch: when its last event arrived,
//! and whether it is failing (the API server restarted, the connection dropped) and since when.
//! Exported as metrics, and as the readiness of the replica: a watch failing for longer than
//! [`STALE_AFTER`], or never listed, makes /readyz answer 503 naming it.
//!
//! kube-runtime's watcher swallows the API server's bookmarks, so an idle watch and a healthy
//! one look alike from its events alone; what tells a live watch from a dead one is the
//! watcher's own errors, and the watch call timeout below, which bounds how long a half-open
//! connection (no RST, no data) can stay unnoticed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::watcher;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Server-side timeout of each watch call, in seconds. The watcher re-watches from its last
/// resourceVersion when a call ends (one cheap request per watch and period), and gives up on
/// a call that sent nothing for this long plus 5 s: a half-open connection is noticed within
/// 35 s instead of kube-runtime's default 295 s.
pub const WATCH_TIMEOUT_SECS: u32 = 30;

/// A watch failing for this long makes the replica unready: long enough to ride out the retry
/// of a dropped connection, short enough that an operator sees an API server that stays away.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// Client timeouts so no single request hangs on a dead connection: connecting, and waiting
/// for a response's next bytes (reset by each request written, so the idle time of a pooled
/// connection does not count). The read timeout is above [`WATCH_TIMEOUT_SECS`], so a watch
/// with nothing to say ends by its own timeout first.
pub fn bound_requests(config: &mut kube::Config) {
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    config.reset_reader_on_write = true;
}

/// The watch configuration every watch of the controller starts from.
pub fn watch_config() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_TIMEOUT_SECS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    pub watch: String,
}

#[derive(Debug)]
struct WatchState {
    /// When the last event (an object, or the end of a list) arrived; None before the first.
    last_event: Option<Instant>,
    /// Whether the initial list completed at least once: the cache holds the cluster's state.
    listed: bool,
    /// Since when every attempt has failed, and the last error; None while healthy.
    failing: Option<(Instant, String)>,
}

/// Every watch's state, and the metrics that show it.
pub struct Freshness {
    watches: Mutex<BTreeMap<&'static str, WatchState>>,
    seconds_since_event: Family<WatchLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    stale: Family<WatchLabels, Gauge>,
    errors: Family<WatchLabels, Counter>,
}

impl Freshness {
    /// The tracker, its metrics registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let freshness = Self {
            watches: Mutex::new(BTreeMap::new()),
            seconds_since_event: Family::default(),
            stale: Family::default(),
            errors: Family::default(),
        };
        registry.register(
            "serin_watch_seconds_since_event",
            "Seconds since the watch's last event (an idle watch grows too; see serin_watch_stale)",
            freshness.seconds_since_event.clone(),
        );
        registry.register(
            "serin_watch_stale",
            "1 while the watch has not listed yet or has been failing for 30 s or more",
            freshness.stale.clone(),
        );
        registry.register(
            "serin_watch_errors",
            "Errors of the watch (dropped connections, expired resourceVersions, refusals)",
            freshness.errors.clone(),
        );
        freshness
    }

    /// Starts tracking `watch` (before its first event it is stale: nothing listed yet).
    pub fn track(&self, watch: &'static str) {
        self.lock().entry(watch).or_insert(WatchState {
            last_event: None,
            listed: false,
            failing: None,
        });
    }

    /// Records one item of `watch`'s watcher stream.
    pub fn record<K>(&self, watch: &'static str, item: &Result<watcher::Event<K>, watcher::Error>) {
        let now = Instant::now();
        let mut watches = self.lock();
        let state = watches.entry(watch).or_insert(WatchState {
            last_event: None,
            listed: false,
            failing: None,
        });
        match item {
            // The watcher says Init before it asks for the list: no word from the API server.
            Ok(watcher::Event::Init) => {}
            Ok(event) => {
                if state.failing.take().is_some() {
                    tracing::info!(watch, "watch recovered");
                }
                state.last_event = Some(now);
                state.listed |= matches!(event, watcher::Event::InitDone);
            }
            Err(error) => {
                self.errors
                    .get_or_create(&WatchLabels {
                        watch: watch.into(),
                    })
                    .inc();
                if state.failing.is_none() {
                    tracing::warn!(watch, %error, "watch failing; retrying");
                }
                let since = state.failing.as_ref().map_or(now, |(since, _)| *since);
                state.failing = Some((since, error.to_string()));
            }
        }
    }

    /// Why the view is stale, naming each stale watch; None when every watch is fresh.
    pub fn stale(&self) -> Option<String> {
        let now = Instant::now();
        let reasons: Vec<String> = self
            .lock()
            .iter()
            .filter_map(|(watch, state)| staleness(state, now).map(|why| format!("{watch}: {why}")))
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// Brings the gauges up to date (before each scrape).
    pub fn export(&self) {
        let now = Instant::now();
        for (watch, state) in self.lock().iter() {
            let labels = WatchLabels {
                watch: (*watch).into(),
            };
            if let Some(last) = state.last_event {
                self.seconds_since_event
                    .get_or_create(&labels)
                    .set(now.duration_since(last).as_secs_f64());
            }
            self.stale
                .get_or_create(&labels)
                .set(i64::from(staleness(state, now).is_some()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, WatchState>> {
        // A panic while holding the lock cannot leave the map inconsistent (each update is one
        // assignment), so a poisoned lock is still good to read.
        self.watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why one watch is stale at `now`, if it is.
fn staleness(state: &WatchState, now: Instant) -> Option<String> {
    match &state.failing {
        Some((since, error)) if now.duration_since(*since) >= STALE_AFTER => Some(format!(
            "failing for {}s: {error}",
            now.duration_since(*since).as_secs()
        )),
        _ if !state.listed => Some("not listed yet".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn tracker() -> Freshness {
        Freshness::register(&mut Registry::default())
    }

    fn failure() -> Result<watcher::Event<ConfigMap>, watcher::Error> {
        Err(watcher::Error::NoResourceVersion)
    }

    #[test]
    fn a_watch_is_stale_until_its_first_list_completes() {
        let freshness = tracker();
        freshness.track("deployments");
        assert_eq!(
            freshness.stale().as_deref(),
            Some("deployments: not listed yet")
        );
        freshness.record::<ConfigMap>("deployments", &Ok(watcher::Event::Init));
        assert!(
            freshness.stale().is_some(),
            "a list in progress is not a view"
        );
        freshness.record::<ConfigMap>("deployments", &Ok(watcher::Event::InitDone));
        assert_eq!(freshness.stale(), None);
    }

    #[test]
    fn a_short_failure_is_not_stale_and_a_recovery_clears_it() {
        let freshness = tracker();
        freshness.record::<ConfigMap>("canaries", &Ok(watcher::Event::InitDone));
        freshness.record("canaries", &failure());
        assert_eq!(
            freshness.stale(),
            None,
            "a retry in progress is not stale yet"
        );
        let state = |f: &Freshness| f.lock()["canaries"].failing.clone();
        assert!(state(&freshness).is_some());
        freshness.record::<ConfigMap>("canaries", &Ok(watcher::Event::Init));
        assert!(
            state(&freshness).is_some(),
            "Init comes before the list is asked for: no sign of recovery"
        );
        freshness.record::<ConfigMap>("canaries", &Ok(watcher::Event::InitDone));
        assert_eq!(state(&freshness), None);
    }

    #[test]
    fn a_long_failure_is_stale_and_names_the_error() {
        let now = Instant::now();
        let state = WatchState {
            last_event: Some(now),
            listed: true,
            failing: Some((now, "connection refused".into())),
        };
        assert_eq!(staleness(&state, now), None);
        let later = now + STALE_AFTER + Duration::from_secs(5);
        assert_eq!(
            staleness(&state, later).as_deref(),
            Some("failing for 35s: connection refused")
        );
    }

    #[test]
    fn the_gauges_show_each_watch() {
        let mut registry = Registry::default();
        let freshness = Freshness::register(&mut registry);
        freshness.track("secrets");
        freshness.record::<ConfigMap>("deployments", &Ok(watcher::Event::InitDone));
        freshness.record("deployments", &failure());
        freshness.export();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("serin_watch_stale{watch=\"secrets\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("serin_watch_stale{watch=\"deployments\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("serin_watch_errors_total{watch=\"deployments\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("serin_watch_seconds_since_event{watch=\"deployments\"}"),
            "{text}"
        );
    }
}
