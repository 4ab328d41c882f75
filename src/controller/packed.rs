//! Workloads as the caches keep them: their JSON, decoded when a Canary is reconciled.
//!
//! A typed k8s-openapi Deployment takes about seven times its JSON in memory (every optional
//! field of every Container is held inline; `cargo bench --bench memory`): a two-container
//! Deployment is 21 KiB as a struct and 3 KiB as JSON. The caches hold every Deployment,
//! DaemonSet and StatefulSet in the controller's scope, most of them no Canary's, and a
//! reconcile reads two (the target and its primary), so the caches keep the text and a
//! reconcile decodes its two (tens of microseconds). Beside the text a packed workload keeps
//! what is read without a reconcile: its name, namespace, uid and resourceVersion (the watch
//! and the reflector key on them), and the configs its pods reference (the ConfigMap and
//! Secret watches map a change to the workloads using it without decoding every workload).
//!
//! `Packed<W>` deserializes from W's own JSON, so the watch decodes each object once, packs
//! it, and drops the struct: the list of ten thousand Deployments never stands in memory
//! typed.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer};

use crate::workload::configs::{ConfigRef, referenced};
use crate::workload::primary::PRIMARY_SUFFIX;
use crate::workload::target::{Workload, stamped_revision};

/// kubectl's (and Argo CD's client-side apply's) copy of the whole object as last applied: as
/// large as the object itself, and nothing serin reads (the primary and its autoscaler never
/// take it over), so a cache without it holds twice as many objects in the same memory.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A cached workload of kind `W`.
pub struct Packed<W> {
    /// Name, namespace, uid and resourceVersion only.
    metadata: ObjectMeta,
    json: Box<[u8]>,
    configs: Box<[ConfigRef]>,
    kind: PhantomData<fn() -> W>,
}

impl<W: Workload> Packed<W> {
    /// What the cache keeps of `workload`: all but the bookkeeping serin never reads
    /// ([`strip`]), and a stamped primary without its pods ([`forget_primary_pods`]).
    pub fn pack(mut workload: W) -> Self {
        strip(&mut workload);
        forget_primary_pods(&mut workload);
        let meta = workload.meta();
        let metadata = ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            ..ObjectMeta::default()
        };
        let configs = workload
            .pod_template()
            .and_then(|t| t.spec.as_ref())
            .map(|pod| referenced(pod).into_iter().collect())
            .unwrap_or_default();
        // Serializing a k8s-openapi struct to a Vec cannot fail (string keys, no maps of
        // non-string keys, no I/O).
        let json = serde_json::to_vec(&workload).unwrap_or_default();
        Self {
            metadata,
            json: json.into_boxed_slice(),
            configs,
            kind: PhantomData,
        }
    }

    /// The workload, decoded.
    pub fn unpack(&self) -> Result<W, serde_json::Error> {
        serde_json::from_slice(&self.json)
    }

    /// The ConfigMaps and Secrets its pod template references.
    pub fn configs(&self) -> &[ConfigRef] {
        &self.configs
    }

    /// Heap bytes held besides the struct itself (for `cargo bench --bench memory`).
    pub fn json_len(&self) -> usize {
        self.json.len()
    }
}

/// What the caches keep of each object: all but the bookkeeping serin never reads.
pub fn strip<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// A `-primary` serin stamped with its revision is read for its metadata, selector, replicas
/// and status, never for its pods: those are the target's at that revision (a revert reads the
/// primary's history objects from the API). Its pod spec is most of its size, so the cache
/// keeps it without. A primary another controller made (Flagger's, before a switch) keeps its
/// pods: it is compared with the target once.
pub fn forget_primary_pods<W: Workload>(workload: &mut W) {
    let stamped = workload
        .meta()
        .name
        .as_deref()
        .is_some_and(|n| n.ends_with(PRIMARY_SUFFIX))
        && stamped_revision(workload).is_some();
    if !stamped {
        return;
    }
    if let Some(template) = workload.pod_template()
        && template.spec.is_some()
    {
        let template = k8s_openapi::api::core::v1::PodTemplateSpec {
            metadata: template.metadata.clone(),
            spec: None,
        };
        workload.set_template(template);
    }
}

impl<'de, W: Workload> Deserialize<'de> for Packed<W> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        W::deserialize(deserializer).map(Self::pack)
    }
}

impl<W> Clone for Packed<W> {
    fn clone(&self) -> Self {
        Self {
            metadata: self.metadata.clone(),
            json: self.json.clone(),
            configs: self.configs.clone(),
            kind: PhantomData,
        }
    }
}

impl<W> fmt::Debug for Packed<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packed")
            .field("namespace", &self.metadata.namespace)
            .field("name", &self.metadata.name)
            .field("resource_version", &self.metadata.resource_version)
            .field("bytes", &self.json.len())
            .finish()
    }
}

impl<W: Resource<DynamicType = ()>> Resource for Packed<W> {
    type DynamicType = ();
    type Scope = W::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        W::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        W::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        W::version(dt)
    }

    fn api_version(dt: &()) -> Cow<'_, str> {
        W::api_version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        W::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The names of the workloads in `workloads` (of one namespace) referencing `config`.
pub fn referencing<'a, W: 'a>(
    workloads: impl IntoIterator<Item = &'a Packed<W>>,
    config: &ConfigRef,
) -> BTreeSet<String> {
    workloads
        .into_iter()
        .filter(|w| w.configs.contains(config))
        .filter_map(|w| w.metadata.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::configs::ConfigKind;
    use k8s_openapi::api::apps::v1::Deployment;
    use std::collections::BTreeMap;

    fn workload(name: &str, stamped: bool) -> Deployment {
        let annotations = stamped.then(|| {
            BTreeMap::from([(
                crate::workload::primary::REVISION_ANNOTATION.to_string(),
                "6d8f9b7c5f".to_string(),
            )])
        });
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
                         "annotations": annotations},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "podinfo:6.7.1",
                                                           "envFrom": [{"configMapRef": {"name": "settings"}}]}]}}},
            "status": {"readyReplicas": 2},
        }))
        .unwrap()
    }

    #[test]
    fn the_caches_drop_kubectls_copy_and_managed_fields_and_keep_every_other_annotation() {
        let mut deployment = workload("podinfo", false);
        deployment.metadata.annotations = Some(BTreeMap::from([
            (LAST_APPLIED.to_string(), "{\"big\": \"copy\"}".to_string()),
            ("flagger.app/config-tracking".into(), "disabled".into()),
        ]));
        deployment.metadata.managed_fields = Some(vec![Default::default()]);
        let cached = Packed::pack(deployment).unpack().unwrap();
        assert_eq!(cached.metadata.managed_fields, None);
        assert_eq!(
            cached.metadata.annotations,
            Some(BTreeMap::from([(
                "flagger.app/config-tracking".to_string(),
                "disabled".to_string()
            )]))
        );
    }

    #[test]
    fn a_packed_workload_decodes_to_what_was_cached_and_keys_as_the_object() {
        let target = workload("podinfo", false);
        let packed: Packed<Deployment> =
            serde_json::from_slice(&serde_json::to_vec(&target).unwrap()).unwrap();
        assert_eq!(packed.unpack().unwrap(), target);
        assert_eq!(packed.meta().name.as_deref(), Some("podinfo"));
        assert_eq!(packed.meta().namespace.as_deref(), Some("shop"));
        assert_eq!(packed.meta().resource_version.as_deref(), Some("42"));
        assert_eq!(packed.meta().uid.as_deref(), Some("u-1"));
        assert_eq!(packed.meta().labels, None, "the rest is in the JSON only");
        assert_eq!(<Packed<Deployment> as Resource>::plural(&()), "deployments");
        let settings = ConfigRef {
            kind: ConfigKind::ConfigMap,
            name: "settings".into(),
        };
        assert_eq!(packed.configs(), std::slice::from_ref(&settings));
        let other = Packed::pack(workload("api", false));
        let unrelated = ConfigRef {
            kind: ConfigKind::Secret,
            name: "settings".into(),
        };
        assert_eq!(
            referencing([&packed, &other], &settings),
            BTreeSet::from(["api".to_string(), "podinfo".to_string()])
        );
        assert!(referencing([&packed, &other], &unrelated).is_empty());
    }

    #[test]
    fn a_stamped_primary_is_cached_without_its_pods_and_everything_else_whole() {
        let primary = Packed::pack(workload("podinfo-primary", true))
            .unpack()
            .unwrap();
        let spec = primary.spec.as_ref().unwrap();
        assert_eq!(spec.template.spec, None);
        assert_eq!(spec.replicas, Some(2));
        assert!(spec.template.metadata.as_ref().unwrap().labels.is_some());
        assert_eq!(stamped_revision(&primary).as_deref(), Some("6d8f9b7c5f"));
        assert_eq!(primary.status.unwrap().ready_replicas, Some(2));
        // The target, and a primary Flagger made (compared with the target once), keep theirs.
        for (name, stamped) in [
            ("podinfo", true),
            ("podinfo", false),
            ("podinfo-primary", false),
        ] {
            let kept = Packed::pack(workload(name, stamped)).unpack().unwrap();
            assert!(
                kept.spec.unwrap().template.spec.is_some(),
                "{name} {stamped}"
            );
        }
    }
}
