//! Leader election through a coordination.k8s.io Lease (kube-lease-manager). Only the holder
//! reconciles; a replica that loses the Lease exits at once so it can never write alongside
//! the new leader, and is restarted as a standby.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;

use super::options::Options;

/// Lease validity; a dead leader is replaced within this many seconds.
const DURATION_SECONDS: u64 = 15;
/// Renewal margin before expiry (also the clock skew tolerated between nodes).
const GRACE_SECONDS: u64 = 5;

pub struct Lease {
    _channel: tokio::sync::watch::Receiver<bool>,
}

pub async fn acquire(client: &Client, options: &Options) -> anyhow::Result<Lease> {
    let namespace = options
        .leader_election_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "default".into());
    let identity = options
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("serin-{}", std::process::id()));
    let manager = LeaseManagerBuilder::new(client.clone(), &options.lease_name)
        .with_namespace(&namespace)
        .with_identity(&identity)
        .with_duration(DURATION_SECONDS)
        .with_grace(GRACE_SECONDS)
        .build()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "leader election Lease {namespace}/{}: {e}",
                options.lease_name
            )
        })?;
    tracing::info!(lease = %options.lease_name, %namespace, %identity, "waiting for leadership");
    let (mut channel, _task) = manager.watch().await;
    while !*channel.borrow_and_update() {
        channel
            .changed()
            .await
            .map_err(|_| anyhow::anyhow!("leader election stopped"))?;
    }
    tracing::info!(%identity, "became the leader");
    let mut watcher = channel.clone();
    tokio::spawn(async move {
        loop {
            if watcher.changed().await.is_err() || !*watcher.borrow() {
                tracing::error!("lost the leader Lease; exiting so no two replicas write");
                std::process::exit(1);
            }
        }
    });
    Ok(Lease { _channel: channel })
}
