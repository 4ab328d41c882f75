//! A Canary's own API, in the group it was read from (`api::group`): reading it afresh and
//! writing its status and finalizers. Every other write names the Canary through
//! `Context::group_of` too (owner references, events, the templates it refers to).

use kube::api::{Api, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use crate::api::Canary;
use crate::api::group::{ApiGroup, FlaggerCanary};

/// What is written: the object, or its status subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Object,
    Status,
}

/// Reads the Canary `namespace/name` of `group`; None when it is gone.
pub async fn get(
    client: &Client,
    group: ApiGroup,
    namespace: &str,
    name: &str,
) -> kube::Result<Option<Canary>> {
    match group {
        ApiGroup::Serin => get_as::<Canary>(client, namespace, name).await,
        ApiGroup::Flagger => get_as::<FlaggerCanary>(client, namespace, name).await,
    }
}

/// Patches the Canary `namespace/name` of `group` (a server-side apply body names the group's
/// apiVersion itself: `apply_body`).
pub async fn patch(
    client: &Client,
    group: ApiGroup,
    (namespace, name): (&str, &str),
    part: Part,
    params: &PatchParams,
    patch: &Patch<serde_json::Value>,
) -> kube::Result<Canary> {
    match group {
        ApiGroup::Serin => patch_as::<Canary>(client, (namespace, name), part, params, patch).await,
        ApiGroup::Flagger => {
            patch_as::<FlaggerCanary>(client, (namespace, name), part, params, patch).await
        }
    }
}

/// The body of a server-side apply to the Canary `name` of `group`, setting `fields`.
pub fn apply_body(group: ApiGroup, name: &str, fields: serde_json::Value) -> serde_json::Value {
    let mut body = serde_json::json!({
        "apiVersion": group.api_version(),
        "kind": "Canary",
        "metadata": {"name": name},
    });
    if let (Some(body), serde_json::Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    body
}

async fn get_as<K>(client: &Client, namespace: &str, name: &str) -> kube::Result<Option<Canary>>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Into<Canary>,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    Ok(api.get_opt(name).await?.map(Into::into))
}

async fn patch_as<K>(
    client: &Client,
    (namespace, name): (&str, &str),
    part: Part,
    params: &PatchParams,
    patch: &Patch<serde_json::Value>,
) -> kube::Result<Canary>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Into<Canary>,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let written = match part {
        Part::Object => api.patch(name, params, patch).await?,
        Part::Status => api.patch_status(name, params, patch).await?,
    };
    Ok(written.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apply_body_names_the_group_it_is_sent_to() {
        let body = apply_body(
            ApiGroup::Flagger,
            "podinfo",
            serde_json::json!({"status": {"phase": "Succeeded"}}),
        );
        assert_eq!(body["apiVersion"], "flagger.app/v1beta1");
        assert_eq!(body["kind"], "Canary");
        assert_eq!(body["metadata"]["name"], "podinfo");
        assert_eq!(body["status"]["phase"], "Succeeded");
    }
}
