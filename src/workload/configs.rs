//! The ConfigMaps and Secrets a pod template references (env, envFrom, volumes, projected
//! volumes): which ones serin tracks, their checksums, and the rewrite of references to the
//! `-primary` copies. One visitor walks every reference, so finding and rewriting agree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

/// Annotation on a ConfigMap or Secret that keeps serin from tracking and copying it.
pub const TRACKING_ANNOTATION: &str = "serin.dev/config-tracking";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    ConfigMap,
    Secret,
}

/// One referenced config, e.g. `configmap/podinfo-config`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigRef {
    pub kind: ConfigKind,
    pub name: String,
}

impl fmt::Display for ConfigRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ConfigKind::ConfigMap => "configmap",
            ConfigKind::Secret => "secret",
        };
        write!(f, "{kind}/{}", self.name)
    }
}

/// Calls `visit` with every config reference of the pod spec; `visit` may rename it.
pub fn visit_references(spec: &mut PodSpec, mut visit: impl FnMut(ConfigKind, &mut String)) {
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for container in containers {
        for env in container.env.iter_mut().flatten() {
            let Some(source) = env.value_from.as_mut() else {
                continue;
            };
            if let Some(key) = source.config_map_key_ref.as_mut() {
                visit(ConfigKind::ConfigMap, &mut key.name);
            }
            if let Some(key) = source.secret_key_ref.as_mut() {
                visit(ConfigKind::Secret, &mut key.name);
            }
        }
        for source in container.env_from.iter_mut().flatten() {
            if let Some(map) = source.config_map_ref.as_mut() {
                visit(ConfigKind::ConfigMap, &mut map.name);
            }
            if let Some(secret) = source.secret_ref.as_mut() {
                visit(ConfigKind::Secret, &mut secret.name);
            }
        }
    }
    for volume in spec.volumes.iter_mut().flatten() {
        if let Some(map) = volume.config_map.as_mut() {
            visit(ConfigKind::ConfigMap, &mut map.name);
        }
        if let Some(name) = volume.secret.as_mut().and_then(|s| s.secret_name.as_mut()) {
            visit(ConfigKind::Secret, name);
        }
        let projected = volume.projected.as_mut().and_then(|p| p.sources.as_mut());
        for source in projected.into_iter().flatten() {
            if let Some(map) = source.config_map.as_mut() {
                visit(ConfigKind::ConfigMap, &mut map.name);
            }
            if let Some(secret) = source.secret.as_mut() {
                visit(ConfigKind::Secret, &mut secret.name);
            }
        }
    }
}

/// Every config the pod spec references, each once, in a stable order.
pub fn referenced(spec: &PodSpec) -> BTreeSet<ConfigRef> {
    let mut found = BTreeSet::new();
    let mut copy = spec.clone();
    visit_references(&mut copy, |kind, name| {
        if !name.is_empty() {
            found.insert(ConfigRef {
                kind,
                name: name.clone(),
            });
        }
    });
    found
}

/// Points every reference to a tracked config at its `<name>-primary` copy.
pub fn rewrite_to_primary(spec: &mut PodSpec, tracked: &BTreeSet<ConfigRef>) {
    visit_references(spec, |kind, name| {
        if tracked.contains(&ConfigRef {
            kind,
            name: name.clone(),
        }) {
            name.push_str("-primary");
        }
    });
}

/// Checksum of a config's contents (keys and values, in key order).
pub fn checksum<'a>(entries: impl IntoIterator<Item = (&'a String, &'a [u8])>) -> String {
    let sorted: BTreeMap<&String, &[u8]> = entries.into_iter().collect();
    let mut hasher = Sha256::new();
    for (key, value) in sorted {
        hasher.update((key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `trackedConfigs` map of the status: `configmap/NAME` -> checksum.
pub fn tracked_checksums(checksums: &BTreeMap<ConfigRef, String>) -> BTreeMap<String, String> {
    checksums
        .iter()
        .map(|(r, sum)| (r.to_string(), sum.clone()))
        .collect()
}

/// Flagger's name for the same opt-out, honoured so a config Flagger left alone stays alone.
pub const FLAGGER_TRACKING_ANNOTATION: &str = "flagger.app/config-tracking";

/// Whether a config's annotations let serin track it (`serin.dev/config-tracking: disabled`,
/// or Flagger's `flagger.app/config-tracking: disabled`, opts out).
pub fn is_tracked(annotations: Option<&BTreeMap<String, String>>) -> bool {
    let Some(annotations) = annotations else {
        return true;
    };
    [TRACKING_ANNOTATION, FLAGGER_TRACKING_ANNOTATION]
        .iter()
        .all(|key| annotations.get(*key).is_none_or(|v| v != "disabled"))
}

/// Checksum of a ConfigMap's data and binary data.
pub fn configmap_checksum(config: &ConfigMap) -> String {
    let text = config.data.iter().flatten().map(|(k, v)| (k, v.as_bytes()));
    let binary = config
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.0.as_slice()));
    checksum(text.chain(binary))
}

/// Checksum of a Secret's data.
pub fn secret_checksum(secret: &Secret) -> String {
    let data = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.0.as_slice()));
    let text = secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.as_bytes()));
    checksum(data.chain(text))
}

/// The `<name>-primary` copy of a ConfigMap the primary's pods read.
pub fn primary_configmap(config: &ConfigMap, owner: Option<OwnerReference>) -> ConfigMap {
    ConfigMap {
        metadata: copy_meta(&config.metadata, owner),
        data: config.data.clone(),
        binary_data: config.binary_data.clone(),
        immutable: None,
    }
}

/// The `<name>-primary` copy of a Secret the primary's pods read.
pub fn primary_secret(secret: &Secret, owner: Option<OwnerReference>) -> Secret {
    Secret {
        metadata: copy_meta(&secret.metadata, owner),
        data: secret.data.clone(),
        string_data: None,
        type_: secret.type_.clone(),
        immutable: None,
    }
}

fn copy_meta(meta: &ObjectMeta, owner: Option<OwnerReference>) -> ObjectMeta {
    ObjectMeta {
        name: meta.name.as_ref().map(|n| format!("{n}-primary")),
        namespace: meta.namespace.clone(),
        labels: meta.labels.clone(),
        owner_references: owner.map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_spec() -> PodSpec {
        serde_json::from_value(serde_json::json!({
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-secret"}}]}],
            "containers": [{
                "name": "app",
                "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "env-map", "key": "a"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "b"}}},
                    {"name": "C", "value": "plain"},
                    {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "envFrom": [{"configMapRef": {"name": "from-map"}}],
            }],
            "volumes": [
                {"name": "v1", "configMap": {"name": "vol-map"}},
                {"name": "v2", "secret": {"secretName": "vol-secret"}},
                {"name": "v3", "projected": {"sources": [
                    {"configMap": {"name": "proj-map"}},
                    {"secret": {"name": "proj-secret"}},
                    {"serviceAccountToken": {"path": "token"}},
                ]}},
                {"name": "v4", "emptyDir": {}},
            ],
        }))
        .unwrap()
    }

    #[test]
    fn finds_every_kind_of_reference() {
        let names: Vec<String> = referenced(&pod_spec())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            names,
            [
                "configmap/env-map",
                "configmap/from-map",
                "configmap/proj-map",
                "configmap/vol-map",
                "secret/env-secret",
                "secret/init-secret",
                "secret/proj-secret",
                "secret/vol-secret",
            ]
        );
    }

    #[test]
    fn rewrites_only_tracked_references_to_their_primary_copies() {
        let mut spec = pod_spec();
        let tracked: BTreeSet<ConfigRef> = referenced(&spec)
            .into_iter()
            .filter(|r| r.name != "vol-secret")
            .collect();
        rewrite_to_primary(&mut spec, &tracked);
        let names: Vec<String> = referenced(&spec).iter().map(|r| r.name.clone()).collect();
        assert!(names.contains(&"env-map-primary".to_string()));
        assert!(names.contains(&"proj-secret-primary".to_string()));
        assert!(names.contains(&"init-secret-primary".to_string()));
        assert!(
            names.contains(&"vol-secret".to_string()),
            "untracked left alone"
        );
        assert_eq!(names.len(), 8);
    }

    #[test]
    fn checksums_depend_on_content_not_order() {
        let (a, b) = ("a".to_string(), "b".to_string());
        let one = checksum([(&a, b"1".as_slice()), (&b, b"2".as_slice())]);
        let same = checksum([(&b, b"2".as_slice()), (&a, b"1".as_slice())]);
        let other = checksum([(&a, b"1".as_slice()), (&b, b"3".as_slice())]);
        assert_eq!(one, same);
        assert_ne!(one, other);
        // Moving bytes between key and value is a different content.
        let (ab, empty) = ("ab".to_string(), String::new());
        assert_ne!(
            checksum([(&a, b"b".as_slice())]),
            checksum([(&ab, empty.as_bytes())])
        );
    }

    #[test]
    fn serins_and_flaggers_annotations_both_opt_a_config_out() {
        let with = |key: &str, value: &str| BTreeMap::from([(key.to_string(), value.to_string())]);
        assert!(is_tracked(None));
        assert!(!is_tracked(Some(&with(TRACKING_ANNOTATION, "disabled"))));
        assert!(!is_tracked(Some(&with(
            FLAGGER_TRACKING_ANNOTATION,
            "disabled"
        ))));
        assert!(is_tracked(Some(&with(
            FLAGGER_TRACKING_ANNOTATION,
            "enabled"
        ))));
    }
}
