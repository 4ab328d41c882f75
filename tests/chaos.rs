//! Faults during rollouts on the real control plane: the outcome a user expects, whatever
//! fails meanwhile.

mod cluster;

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
