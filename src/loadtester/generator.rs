//! The load generator: requests started on a fixed schedule (`rate` per second, open model:
//! the schedule does not wait for answers) with at most `concurrency` in flight. When every
//! worker is busy the schedule waits, so a slow target lowers the achieved rate instead of
//! piling up unbounded requests; the summary shows the rate actually reached.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use super::spec::LoadSpec;
use super::stats::{Stats, Summary};

/// How far behind schedule the generator may fall before it gives up on the backlog (a
/// stalled target must not be hit by a burst of catch-up requests when it recovers).
const MAX_BACKLOG: Duration = Duration::from_secs(1);

/// A running load. The deadline can move: renewed by the next hook call, or pulled to now by
/// a stop.
pub struct Load {
    pub spec: LoadSpec,
    pub stats: Arc<Stats>,
    pub started: Instant,
    deadline: watch::Sender<Instant>,
    done: watch::Receiver<Option<Summary>>,
}

impl Load {
    /// Starts the load in the background; it ends at `deadline` unless moved.
    /// `label` names the load in the log line of its summary.
    pub fn start(
        http: reqwest::Client,
        spec: LoadSpec,
        deadline: Instant,
        label: String,
    ) -> Arc<Self> {
        let stats = Arc::new(Stats::default());
        let (deadline_tx, deadline_rx) = watch::channel(deadline);
        let (done_tx, done_rx) = watch::channel(None);
        let started = Instant::now();
        let load = Arc::new(Self {
            spec: spec.clone(),
            stats: stats.clone(),
            started,
            deadline: deadline_tx,
            done: done_rx,
        });
        tokio::spawn(async move {
            tracing::info!(load = %label, url = %spec.url, rate = spec.rate,
                concurrency = spec.concurrency, "load started");
            drive(http, &spec, stats.clone(), deadline_rx).await;
            let s = stats.summary(started.elapsed());
            tracing::info!(load = %label, url = %spec.url, requests = s.requests,
                failed = s.failed, rate = format!("{:.1}", s.rate),
                p99_ms = format!("{:.1}", s.latency_ms.p99), "load finished");
            let _ = done_tx.send(Some(s));
        });
        load
    }

    /// Keeps the load running until at least `until`.
    pub fn extend(&self, until: Instant) {
        self.deadline.send_if_modified(|d| {
            let later = until > *d;
            if later {
                *d = until;
            }
            later
        });
    }

    pub fn stop(&self) {
        self.deadline.send_replace(Instant::now());
    }

    pub fn deadline(&self) -> Instant {
        *self.deadline.borrow()
    }

    pub fn is_finished(&self) -> bool {
        self.done.borrow().is_some()
    }

    /// The summary so far, or the final one.
    pub fn summary(&self) -> Summary {
        self.done
            .borrow()
            .clone()
            .unwrap_or_else(|| self.stats.summary(self.started.elapsed()))
    }

    /// Waits until the load is over (in-flight requests included).
    pub async fn finished(&self) -> Summary {
        let mut done = self.done.clone();
        match done.wait_for(Option::is_some).await {
            Ok(summary) => summary.clone().unwrap_or_else(|| self.summary()),
            Err(_) => self.summary(),
        }
    }
}

async fn drive(
    http: reqwest::Client,
    spec: &LoadSpec,
    stats: Arc<Stats>,
    mut deadline: watch::Receiver<Instant>,
) {
    let permits = Arc::new(Semaphore::new(spec.concurrency));
    let period = Duration::from_secs_f64(1.0 / spec.rate);
    let mut next = Instant::now();
    loop {
        let end = *deadline.borrow_and_update();
        if next >= end {
            break;
        }
        // Wait for the request's slot on the schedule, or for the deadline to move.
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            changed = deadline.changed() => {
                if changed.is_err() { break; }
                continue;
            }
        }
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            changed = deadline.changed() => {
                if changed.is_err() { break; }
                continue;
            }
        };
        let (http, spec, stats) = (http.clone(), spec.clone(), stats.clone());
        tokio::spawn(async move {
            one_request(&http, &spec, &stats).await;
            drop(permit);
        });
        next += period;
        let now = Instant::now();
        if now > next + MAX_BACKLOG {
            next = now;
        }
    }
    // Let the requests in flight finish so the summary counts them.
    let _ = tokio::time::timeout(
        spec.timeout.min(crate::outbound::MAX_TIMEOUT) + Duration::from_secs(1),
        permits.acquire_many(spec.concurrency as u32),
    )
    .await;
}

async fn one_request(http: &reqwest::Client, spec: &LoadSpec, stats: &Stats) {
    let started = Instant::now();
    let mut request = http
        .request(spec.method.clone(), &spec.url)
        .timeout(spec.timeout.min(crate::outbound::MAX_TIMEOUT));
    for (name, value) in &spec.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &spec.body {
        request = request.body(body.clone());
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the body: a load test measures whole answers, and the connection is reused.
            // Chunk by chunk, kept nowhere: only the summary matters, and a target serving
            // large files must not make the tester hold them (4 loads of 200 MB answers).
            match crate::outbound::body::drain(response).await {
                Ok(_) => stats.answered(status, started.elapsed()),
                Err(error) => stats.failed(kind(&error), started.elapsed()),
            }
        }
        Err(error) => stats.failed(kind(&error), started.elapsed()),
    }
}

fn kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    }
}
