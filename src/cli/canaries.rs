//! The Canaries the commands read, watch and annotate, in whichever served group holds them:
//! `serin.dev`, or `flagger.app` for a cluster switched over from Flagger in drop-in mode
//! (docs/migrating.md), whose Canaries stay in Flagger's group with nothing in git changed.
//! A group whose CRD is not installed is simply not there; only when neither is does a
//! command say so.

use futures::{Stream, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::{WatchStreamExt, watcher};

use crate::api::Canary;
use crate::api::group::{ApiGroup, VERSION};

/// One Canary, with the group it was read from and the object exactly as the API server
/// served it (what `-o json|yaml` prints, its apiVersion included).
#[derive(Debug, Clone)]
pub struct Found {
    pub group: ApiGroup,
    pub canary: Canary,
    pub object: serde_json::Value,
}

/// The Canary resource of `group`.
fn resource(group: ApiGroup) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group.name(), VERSION, "Canary"),
        "canaries",
    )
}

/// The Canaries of `group` in `namespace` (every namespace when None).
pub fn api(client: &kube::Client, namespace: Option<&str>, group: ApiGroup) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource(group)),
        None => Api::all_with(client.clone(), &resource(group)),
    }
}

/// The typed Canary of a served object, and the object as served.
fn found(group: ApiGroup, object: DynamicObject) -> anyhow::Result<Found> {
    let object = serde_json::to_value(object)?;
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let canary = serde_json::from_value(object.clone())
        .map_err(|e| anyhow::anyhow!("reading {} Canary {name}: {e}", group.name()))?;
    Ok(Found {
        group,
        canary,
        object,
    })
}

/// The Canary `name` in `namespace`, from serin.dev first, then flagger.app; None in neither.
pub async fn find(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<Found>> {
    for group in ApiGroup::ALL {
        // A 404 is the same answer for "no such Canary" and "no such CRD": not in this group.
        if let Some(object) = api(client, Some(namespace), group).get_opt(name).await? {
            return found(group, object).map(Some);
        }
    }
    Ok(None)
}

/// [`find`], or an error naming the Canary and both groups.
pub async fn get(client: &kube::Client, namespace: &str, name: &str) -> anyhow::Result<Found> {
    find(client, namespace, name).await?.ok_or_else(|| {
        anyhow::anyhow!("canary {namespace}/{name} not found (in serin.dev or flagger.app)")
    })
}

/// The Canaries of every served group, sorted by namespace and name.
pub async fn list(
    client: &kube::Client,
    namespace: Option<&str>,
    params: &ListParams,
) -> anyhow::Result<Vec<Found>> {
    let mut all = Vec::new();
    let mut served = false;
    for group in ApiGroup::ALL {
        match api(client, namespace, group).list(params).await {
            Ok(list) => {
                served = true;
                for object in list.items {
                    all.push(found(group, object)?);
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    if !served {
        anyhow::bail!(
            "the cluster serves no Canaries (neither serin.dev/v1beta1 nor flagger.app/v1beta1): install the CRDs (serin crds | kubectl apply --server-side -f -)"
        );
    }
    all.sort_by(|a, b| {
        let key = |f: &Found| {
            (
                f.canary.metadata.namespace.clone(),
                f.canary.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(all)
}

/// Every change of the Canary `found` names, from a watch of its own group.
pub fn watch(
    client: &kube::Client,
    namespace: &str,
    found: &Found,
) -> impl Stream<Item = anyhow::Result<Found>> + Send + use<> {
    let group = found.group;
    let name = found.canary.metadata.name.clone().unwrap_or_default();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    watcher(api(client, Some(namespace), group), config)
        .applied_objects()
        .map(move |event| match event {
            Ok(object) => self::found(group, object),
            Err(error) => Err(anyhow::anyhow!("watch: {error}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flagger_object_keeps_its_group_and_api_version() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                     "service": {"port": 9898}, "analysis": {"interval": "1m"}},
        }))
        .unwrap();
        let found = found(ApiGroup::Flagger, object).unwrap();
        assert_eq!(found.object["apiVersion"], "flagger.app/v1beta1");
        assert_eq!(found.canary.spec.target_ref.name, "podinfo");
        assert_eq!(found.group, ApiGroup::Flagger);
    }

    #[test]
    fn an_unreadable_canary_is_named() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
            "metadata": {"name": "broken", "namespace": "test"},
            "spec": {"targetRef": "not an object"},
        }))
        .unwrap();
        let error = found(ApiGroup::Serin, object).unwrap_err().to_string();
        assert!(
            error.starts_with("reading serin.dev Canary broken: "),
            "{error}"
        );
    }
}
