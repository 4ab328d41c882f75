//! Faults during rollouts on the real control plane: the outcome a user expects, whatever
//! fails meanwhile. Each test asserts the final phase, the primary's template, the route's
//! weights and, from a recorder watching the Canary, that its status never went backwards.
//!
//! - `control_plane_faults`: the controller SIGKILLed and kube-apiserver restarted at each
//!   moment of a rollout (one table), etcd restarted, the leader killed under leader election;
//! - `outside_faults`: a metrics server unreachable, slow or answering garbage, a hanging
//!   webhook.

mod cluster;
#[path = "chaos/control_plane_faults.rs"]
mod control_plane_faults;
mod mock;
#[path = "chaos/outside_faults.rs"]
mod outside_faults;
#[path = "chaos/scenario.rs"]
mod scenario;

use std::time::{Duration, Instant};

use cluster::eventually;
use cluster::rollout::{WAIT, setup};
use cluster::workloads::Readiness;
use serde_json::json;
use serin::api::Phase;

#[tokio::test]
async fn a_good_release_is_promoted_across_an_api_server_restart() {
    let s = setup("apiserver-restart", &[]).await;
    s.create_deployment("shop", Readiness::Ready).await;
    // Slow enough steps that the restart lands mid-analysis.
    let analysis = json!({"interval": "5s", "threshold": 2, "stepWeight": 10, "maxWeight": 50});
    s.create_canary("shop", analysis, json!({"progressDeadlineSeconds": 60}))
        .await;
    s.wait_phase("shop", Phase::Initialized).await;
    s.gitops_apply("shop", "v2").await;
    eventually("the first step", WAIT, || async {
        let (_, canary) = s.weights("shop").await?;
        (canary >= 10).then_some(())
    })
    .await;
    let restarted = Instant::now();
    tokio::task::spawn_blocking(|| cluster::cluster().restart_apiserver())
        .await
        .unwrap();
    eprintln!("API server back after {:?}", restarted.elapsed());
    let s = cluster::rollout::Setup {
        client: cluster::client().await,
        ..s
    };
    eventually("Succeeded", Duration::from_secs(240), || async {
        let phase = s.phase("shop").await?;
        assert_ne!(phase, Phase::Failed, "{}", s.controller.logs());
        (phase == Phase::Succeeded).then_some(())
    })
    .await;
    eprintln!("promoted {:?} after the restart", restarted.elapsed());
    assert_eq!(s.primary_version("shop").await.as_deref(), Some("v2"));
}

/// The recorder's rule, on histories written by hand: it can fail.
#[test]
fn the_recorder_flags_a_status_that_goes_backwards() {
    use cluster::history::{Seen, never_backwards};
    let seen = |phase, canary_weight, failed_checks| Seen {
        phase: Some(phase),
        canary_weight,
        failed_checks,
        iterations: 0,
        revision: Some("r1".to_string()),
    };
    let good = [
        seen(Phase::Initializing, 0, 0),
        seen(Phase::Initialized, 0, 0),
        seen(Phase::Progressing, 0, 0),
        seen(Phase::Progressing, 20, 0),
        seen(Phase::Progressing, 40, 1),
        seen(Phase::WaitingPromotion, 40, 1),
        seen(Phase::Promoting, 40, 1),
        seen(Phase::Promoting, 30, 1),
        seen(Phase::Succeeded, 0, 0),
        seen(Phase::Progressing, 20, 0),
        seen(Phase::Failed, 0, 2),
    ];
    assert_eq!(never_backwards(&good), Ok(()));
    let bad: [&[Seen]; 6] = [
        &[
            seen(Phase::Progressing, 40, 0),
            seen(Phase::Progressing, 20, 0),
        ],
        &[
            seen(Phase::Promoting, 40, 0),
            seen(Phase::Progressing, 40, 0),
        ],
        &[
            seen(Phase::Progressing, 20, 1),
            seen(Phase::Progressing, 20, 0),
        ],
        &[seen(Phase::Promoting, 20, 0), seen(Phase::Promoting, 30, 0)],
        &[
            seen(Phase::Progressing, 20, 0),
            seen(Phase::Succeeded, 0, 0),
        ],
        &[
            seen(Phase::Succeeded, 0, 0),
            seen(Phase::Initializing, 0, 0),
        ],
    ];
    for history in bad {
        assert!(never_backwards(history).is_err(), "{history:?}");
    }
    // A newer revision restarts the analysis from zero: not a step backwards.
    let mut restarted = seen(Phase::Progressing, 0, 0);
    restarted.revision = Some("r2".to_string());
    assert_eq!(
        never_backwards(&[seen(Phase::Progressing, 40, 1), restarted]),
        Ok(())
    );
}
