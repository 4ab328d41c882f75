//! Faults of the control plane and of the controller itself, mid-rollout: a good release is
//! promoted all the same.

use std::time::Instant;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;
use serin::api::{CanaryStatus, Phase};

use super::scenario::{Gate, MAX_WEIGHT, Release, analysis};
use crate::cluster::controller::{ControllerProcess, kubeconfig_path};
use crate::cluster::rollout::{WAIT, setup};
use crate::cluster::{cluster, eventually};

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// SIGKILL, then started again (an OOM kill, a node failure).
    KillController,
    /// kube-apiserver SIGKILLed and started again (a control-plane upgrade).
    RestartApiServer,
}

/// Where in the rollout the fault lands.
#[derive(Debug, Clone, Copy)]
pub enum Moment {
    /// The primary is being created and is not ready yet.
    Initializing,
    /// Traffic is on the canary at a step (20%), the analysis under way.
    Progressing,
    /// The analysis passed; the confirm-promotion gate is closed.
    WaitingPromotion,
    /// The canary's template is being copied to the primary, whose new pods are not ready.
    Promoting,
    /// The primary runs the new revision and traffic is handed back to it, the canary not yet
    /// scaled down. serin decides Finalising and Succeeded in one reconcile, so Finalising is
    /// never a status of its own: this is the last moment before it.
    Finalising,
}

impl Moment {
    fn reached(self, status: &CanaryStatus) -> bool {
        let phase = status.phase;
        match self {
            Self::Initializing => phase == Some(Phase::Initializing),
            Self::Progressing => phase == Some(Phase::Progressing) && status.canary_weight >= 20,
            Self::WaitingPromotion => phase == Some(Phase::WaitingPromotion),
            Self::Promoting => {
                phase == Some(Phase::Promoting) && status.canary_weight == MAX_WEIGHT
            }
            Self::Finalising => {
                phase == Some(Phase::Promoting) && (1..MAX_WEIGHT).contains(&status.canary_weight)
            }
        }
    }
}

/// One row of the table: a good release from v1 to v2 with `fault` at `moment`, promoted
/// with everything a user looks at in order.
pub async fn good_release_survives(fault: Fault, moment: Moment) {
    if matches!(fault, Fault::RestartApiServer) && not_here("restarts the local API server") {
        return;
    }
    let test = format!("{fault:?}-{moment:?}").to_lowercase();
    let mut release = Release::start(&test).await;
    let gate = Gate::start(!matches!(moment, Moment::WaitingPromotion)).await;
    let hooks = json!([{"name": "go-live", "type": "confirm-promotion", "url": gate.url()}]);
    release.create_canary(analysis(hooks, json!([]))).await;
    if !matches!(moment, Moment::Initializing) {
        release
            .s
            .wait_phase(super::scenario::NAME, Phase::Initialized)
            .await;
        release.release("v2").await;
    }
    release
        .reach(&format!("{moment:?}"), |status| moment.reached(status))
        .await;
    let hit = Instant::now();
    inject(&mut release, fault).await;
    eprintln!("{fault:?} at {moment:?}: back after {:?}", hit.elapsed());
    match moment {
        Moment::Initializing => {
            release
                .s
                .wait_phase(super::scenario::NAME, Phase::Initialized)
                .await;
            release.release("v2").await;
        }
        Moment::WaitingPromotion => gate.open(),
        _ => {}
    }
    release.assert_promoted("v2").await;
    eprintln!(
        "{fault:?} at {moment:?}: promoted {:?} after it",
        hit.elapsed()
    );
    let phases = release.history.phases();
    let expected = match moment {
        Moment::Finalising => Phase::Promoting,
        Moment::Initializing => Phase::Initializing,
        Moment::Progressing => Phase::Progressing,
        Moment::WaitingPromotion => Phase::WaitingPromotion,
        Moment::Promoting => Phase::Promoting,
    };
    assert!(
        phases.contains(&Some(expected)),
        "the recorder missed {expected:?}: {phases:?}"
    );
}

/// True (and says so) against SERIN_E2E_KUBECONFIG, whose components the tests cannot restart.
fn not_here(what: &str) -> bool {
    let external = cluster().external;
    if external {
        eprintln!("not applicable against SERIN_E2E_KUBECONFIG: it {what}");
    }
    external
}

async fn inject(release: &mut Release, fault: Fault) {
    match fault {
        Fault::KillController => release.s.controller.restart(),
        Fault::RestartApiServer => {
            tokio::task::spawn_blocking(|| cluster().restart_apiserver())
                .await
                .expect("restarting kube-apiserver");
            release.reconnect().await;
        }
    }
}

macro_rules! table {
    ($($name:ident: $fault:ident at $moment:ident;)*) => {$(
        #[tokio::test]
        async fn $name() {
            good_release_survives(Fault::$fault, Moment::$moment).await;
        }
    )*};
}

table! {
    controller_killed_while_initializing: KillController at Initializing;
    controller_killed_while_progressing_at_a_step: KillController at Progressing;
    controller_killed_while_waiting_for_promotion: KillController at WaitingPromotion;
    controller_killed_while_promoting: KillController at Promoting;
    controller_killed_while_finalising: KillController at Finalising;
    api_server_restarted_while_initializing: RestartApiServer at Initializing;
    api_server_restarted_while_progressing_at_a_step: RestartApiServer at Progressing;
    api_server_restarted_while_waiting_for_promotion: RestartApiServer at WaitingPromotion;
    api_server_restarted_while_promoting: RestartApiServer at Promoting;
    api_server_restarted_while_finalising: RestartApiServer at Finalising;
}

#[tokio::test]
async fn etcd_restarted_mid_rollout() {
    if not_here("restarts the local etcd") {
        return;
    }
    let mut release = Release::start("etcd-restart").await;
    release.create_canary(analysis(json!([]), json!([]))).await;
    release
        .s
        .wait_phase(super::scenario::NAME, Phase::Initialized)
        .await;
    release.release("v2").await;
    release
        .reach("a step", |status| Moment::Progressing.reached(status))
        .await;
    let hit = Instant::now();
    tokio::task::spawn_blocking(|| cluster().restart_etcd())
        .await
        .expect("restarting etcd");
    eprintln!(
        "etcd restart: API server ready again after {:?}",
        hit.elapsed()
    );
    release.reconnect().await;
    release.assert_promoted("v2").await;
}

/// Two replicas share the Lease; the leader is SIGKILLed at a step. The standby takes the
/// Lease once it expires and finishes the rollout. The takeover time is printed, not asserted
/// (it is the Lease's duration plus the machine's load).
#[tokio::test]
async fn the_standby_finishes_the_rollout_when_the_leader_is_killed() {
    let mut s = setup("chaos-leader", &[]).await;
    s.controller.kill();
    let ns = s.ns.clone();
    let replica = |identity: &str| {
        let args = [
            "--leader-election",
            "--leader-election-namespace",
            ns.as_str(),
            "--identity",
            identity,
        ];
        ControllerProcess::start(&kubeconfig_path(&ns), &ns, &args)
    };
    s.controller = replica("first");
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), &ns);
    let holder = || async { leases.get("serin-leader").await.ok()?.spec?.holder_identity };
    eventually("first holds the Lease", WAIT, || async {
        (holder().await.as_deref() == Some("first")).then_some(())
    })
    .await;
    let mut standby = replica("second");
    let mut release = Release::with(s).await;
    release.create_canary(analysis(json!([]), json!([]))).await;
    release
        .s
        .wait_phase(super::scenario::NAME, Phase::Initialized)
        .await;
    release.release("v2").await;
    release
        .reach("a step", |status| Moment::Progressing.reached(status))
        .await;
    let statuses_before = release.history.seen().len();
    let killed = Instant::now();
    release.s.controller.kill();
    eventually("second holds the Lease", WAIT, || async {
        (holder().await.as_deref() == Some("second")).then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    eventually("the standby's first status change", WAIT, || async {
        (release.history.seen().len() > statuses_before).then_some(())
    })
    .await;
    eprintln!(
        "leader killed: the standby held the Lease after {takeover:?} and moved the rollout after {:?}",
        killed.elapsed()
    );
    release.assert_promoted("v2").await;
    assert!(standby.is_running(), "{}", standby.logs());
    assert!(standby.logs().contains("became the leader"));
    standby.kill();
}
