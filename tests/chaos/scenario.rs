//! One release under a fault: a Deployment whose pods take a few seconds to become ready (so
//! Initializing and Promoting last long enough to be hit), a Canary stepping 20% to 40% every
//! second and handing traffic back 10% per second at promotion (so the moment before
//! Finalising can be hit), a confirm-promotion gate the test opens and closes, and a recorder
//! of every status the Canary showed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use serin::api::{CanaryStatus, Phase};

use crate::cluster::history::History;
use crate::cluster::rollout::{Setup, WAIT, setup};
use crate::cluster::workloads::{Readiness, set_version};
use crate::cluster::{self, eventually};
use crate::mock;

pub const NAME: &str = "app";
/// Seconds a new pod takes to become ready: the length of Initializing, of the canary's
/// scale-up and of the primary's rollout in Promoting.
const POD_START: u32 = 3;
pub const MAX_WEIGHT: i32 = 40;
/// How long a rollout may take to end after a fault (an API server restart included).
pub const FINISH: Duration = Duration::from_secs(240);

/// A confirm-promotion gate: answers 200 when open, 403 when closed.
pub struct Gate {
    open: Arc<AtomicBool>,
    server: mock::Server,
}

impl Gate {
    pub async fn start(open: bool) -> Self {
        let state = Arc::new(AtomicBool::new(open));
        let answer = state.clone();
        let server = mock::serve(move |_| {
            if answer.load(Ordering::SeqCst) {
                mock::Reply::ok("go")
            } else {
                mock::Reply::status(403, "not yet")
            }
        })
        .await;
        Self {
            open: state,
            server,
        }
    }

    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("{}/promote", self.server.url)
    }
}

/// A namespace with the controller, the Deployment at v1 and the recorder; the Canary is
/// created by `create_canary`.
pub struct Release {
    pub s: Setup,
    pub history: History,
}

/// The analysis of every chaos rollout, with `webhooks` and `metrics` added.
pub fn analysis(webhooks: Value, metrics: Value) -> Value {
    json!({"interval": "1s", "threshold": 2, "stepWeight": 20, "maxWeight": MAX_WEIGHT,
           "stepWeightPromotion": 10, "webhooks": webhooks, "metrics": metrics})
}

impl Release {
    pub async fn start(test: &str) -> Self {
        let s = setup(test, &[]).await;
        Self::with(s).await
    }

    /// Around an existing setup (e.g. one whose controller the test replaced).
    pub async fn with(s: Setup) -> Self {
        s.create_deployment(NAME, Readiness::After(POD_START)).await;
        let history = History::record(&s.client, &s.ns, NAME);
        Self { s, history }
    }

    pub async fn create_canary(&self, analysis: Value) {
        self.s.create_canary(NAME, analysis, json!({})).await;
    }

    /// A new pod template (VERSION=`version`), as `kubectl set env` would make it.
    pub async fn release(&self, version: &str) {
        self.s
            .deployments()
            .patch(
                NAME,
                &PatchParams::default(),
                &Patch::Strategic(set_version(version)),
            )
            .await
            .unwrap_or_else(|e| panic!("releasing {version}: {e}"));
    }

    pub async fn status(&self) -> Option<CanaryStatus> {
        self.s.canaries().get(NAME).await.ok()?.status
    }

    /// Waits until the Canary's status satisfies `point`, named `what`.
    pub async fn reach(&self, what: &str, point: impl Fn(&CanaryStatus) -> bool) {
        eventually(what, WAIT, || async {
            let status = self.status().await?;
            assert_ne!(
                status.phase,
                Some(Phase::Failed),
                "rolled back before {what}: {:?}\n{}",
                status.conditions,
                self.s.controller.logs()
            );
            point(&status).then_some(())
        })
        .await;
    }

    /// Waits for the end of the rollout; panics if it ends in `unwanted`.
    pub async fn ends(&self, wanted: Phase, unwanted: Phase) -> Instant {
        eventually(&format!("{wanted:?}"), FINISH, || async {
            let status = self.status().await?;
            assert_ne!(
                status.phase,
                Some(unwanted),
                "the rollout ended {unwanted:?}: {:?}\n{}",
                status.conditions,
                self.s.controller.logs()
            );
            (status.phase == Some(wanted)).then_some(())
        })
        .await;
        Instant::now()
    }

    /// What a user expects after a good release, whatever happened meanwhile: Succeeded, the
    /// primary on `version`, all traffic on it, the target scaled to zero, and a status that
    /// never went backwards nor rolled back.
    pub async fn assert_promoted(&self, version: &str) {
        self.ends(Phase::Succeeded, Phase::Failed).await;
        self.assert_settled(version).await;
        self.wait_recorded(Phase::Succeeded).await;
        let phases = self.history.phases();
        assert!(
            !phases.contains(&Some(Phase::Failed)),
            "a good release was rolled back on the way: {phases:?}"
        );
        self.history.assert_never_backwards();
    }

    /// What a user expects after a release the checks could not confirm: Failed, the primary
    /// still on `version`, all traffic on it, the target scaled to zero, never promoted.
    pub async fn assert_rolled_back(&self, version: &str) {
        self.ends(Phase::Failed, Phase::Succeeded).await;
        self.assert_settled(version).await;
        self.wait_recorded(Phase::Failed).await;
        let phases = self.history.phases();
        assert!(
            !phases.contains(&Some(Phase::Promoting)),
            "a release whose checks never passed was promoted: {phases:?}"
        );
        self.history.assert_never_backwards();
    }

    async fn assert_settled(&self, version: &str) {
        let s = &self.s;
        assert_eq!(s.primary_version(NAME).await.as_deref(), Some(version));
        assert_eq!(
            s.weights(NAME).await,
            Some((100, 0)),
            "all traffic on the primary"
        );
        eventually("the target scaled to zero", WAIT, || async {
            (s.replicas(NAME).await == Some(0)).then_some(())
        })
        .await;
    }

    /// Waits until the recorder's watch saw `phase` (it may lag the GET that saw it first).
    async fn wait_recorded(&self, phase: Phase) {
        eventually(&format!("the recorder seeing {phase:?}"), WAIT, || async {
            (self.history.seen().last()?.phase == Some(phase)).then_some(())
        })
        .await;
    }

    /// The test's client again after an API server restart (the old one's connections died).
    pub async fn reconnect(&mut self) {
        self.s.client = cluster::client().await;
    }
}
