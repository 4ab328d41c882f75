//! `serin version`: this binary's version and the controller's, read from the cluster.
//!
//! The controller's version is read from its Deployment (the chart's labels select it): the
//! tag of its image, else its `app.kubernetes.io/version` label. That needs only the right to
//! list Deployments, which every user of a namespace has, and no port-forward: the version
//! the controller itself publishes (`flagger_info{version}` on its metrics port) is reachable
//! only through a port-forward or the API server's pod proxy, which namespace users lack.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams};
use serde::Serialize;

/// The chart's labels on the controller's Deployment.
pub const CONTROLLER_SELECTOR: &str =
    "app.kubernetes.io/name=serin,app.kubernetes.io/component=controller";

/// What `version` reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Versions {
    pub client: String,
    /// Every controller Deployment found (one per shard or install).
    pub controllers: Vec<ControllerVersion>,
}

/// One controller Deployment and the version it runs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ControllerVersion {
    pub namespace: String,
    pub name: String,
    pub image: Option<String>,
    pub version: Option<String>,
    pub ready_replicas: i32,
    pub replicas: i32,
}

pub const CLIENT: &str = env!("CARGO_PKG_VERSION");

/// The controllers in `namespace` (all namespaces when None).
pub async fn controllers(
    client: kube::Client,
    namespace: Option<&str>,
) -> anyhow::Result<Vec<ControllerVersion>> {
    let api: Api<Deployment> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let list = api
        .list(&ListParams::default().labels(CONTROLLER_SELECTOR))
        .await
        .map_err(|e| match e {
            kube::Error::Api(ref s) if s.code == 403 && namespace.is_none() => anyhow::anyhow!(
                "not allowed to list Deployments in every namespace: name the controller's with -n ({})",
                s.message
            ),
            other => anyhow::Error::from(other).context("listing the controller's Deployments"),
        })?;
    let mut found: Vec<ControllerVersion> = list.items.iter().map(of).collect();
    found.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(found)
}

/// The version a controller Deployment runs.
pub fn of(deployment: &Deployment) -> ControllerVersion {
    let container = deployment.spec.as_ref().and_then(|spec| {
        let containers = &spec.template.spec.as_ref()?.containers;
        containers
            .iter()
            .find(|c| c.name == "controller" || c.name == "serin")
            .or(containers.first())
    });
    let image = container.and_then(|c| c.image.clone());
    let label = deployment
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/version").cloned());
    let status = deployment.status.clone().unwrap_or_default();
    ControllerVersion {
        namespace: deployment.metadata.namespace.clone().unwrap_or_default(),
        name: deployment.metadata.name.clone().unwrap_or_default(),
        version: image.as_deref().and_then(tag).or(label),
        image,
        ready_replicas: status.ready_replicas.unwrap_or(0),
        replicas: status.replicas.unwrap_or(0),
    }
}

/// The tag of an image reference: `ghcr.io:443/serin/serin:0.2.0@sha256:..` gives 0.2.0; a
/// reference without one (or pinned only by digest) gives None.
pub fn tag(image: &str) -> Option<String> {
    let name = image.split('@').next().unwrap_or(image);
    // A colon after the last slash separates the tag; one before it is a registry's port.
    let last = name.rsplit('/').next().unwrap_or(name);
    let (_, tag) = last.split_once(':')?;
    (!tag.is_empty()).then(|| tag.to_string())
}

/// The controllers' lines for people (the client's is printed before the cluster is asked).
pub fn text(controllers: &[ControllerVersion]) -> String {
    let mut out = String::new();
    if controllers.is_empty() {
        out.push_str(&format!(
            "Controller not found (no Deployment labelled {CONTROLLER_SELECTOR})\n"
        ));
    }
    for c in controllers {
        out.push_str(&format!(
            "Controller {} ({}/{}, {}/{} ready, image {})\n",
            c.version.as_deref().unwrap_or("unknown"),
            c.namespace,
            c.name,
            c.ready_replicas,
            c.replicas,
            c.image.as_deref().unwrap_or("-"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_after_the_last_slash() {
        assert_eq!(
            tag("ghcr.io/serin-dev/serin:0.2.0").as_deref(),
            Some("0.2.0")
        );
        assert_eq!(
            tag("registry:5000/serin:1.0@sha256:abc").as_deref(),
            Some("1.0")
        );
        assert_eq!(tag("registry:5000/serin"), None);
        assert_eq!(tag("serin@sha256:abc"), None);
    }
}
