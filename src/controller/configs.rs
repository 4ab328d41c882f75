//! The ConfigMaps and Secrets a target references: their checksums (part of the revision, so
//! a config change alone starts a rollout) and their `-primary` copies. Content is read only
//! when the watched metadata shows a new resourceVersion, so an idle canary costs no reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::workload::configs::{
    ConfigKind, ConfigRef, configmap_checksum, is_tracked, primary_configmap, primary_secret,
    referenced, secret_checksum,
};

use super::context::{Context, Result};

type Key = (ConfigKind, String, String);

pub struct ConfigCache {
    pub configmaps: Store<PartialObjectMeta<ConfigMap>>,
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// (kind, namespace, name) -> (resourceVersion, checksum; None when not tracked)
    sums: Mutex<HashMap<Key, (String, Option<String>)>>,
}

impl ConfigCache {
    pub fn new(
        configmaps: Store<PartialObjectMeta<ConfigMap>>,
        secrets: Store<PartialObjectMeta<Secret>>,
    ) -> Self {
        Self {
            configmaps,
            secrets,
            sums: Mutex::new(HashMap::new()),
        }
    }

    fn cached_version(&self, kind: ConfigKind, namespace: &str, name: &str) -> Option<String> {
        match kind {
            ConfigKind::ConfigMap => self
                .configmaps
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|m| m.metadata.resource_version.clone()),
            ConfigKind::Secret => self
                .secrets
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|m| m.metadata.resource_version.clone()),
        }
    }
}

/// Checksums of the tracked configs `pod` references; missing ones (optional references) and
/// ones opted out of tracking are left out.
pub async fn checksums(
    ctx: &Context,
    namespace: &str,
    pod: &PodSpec,
) -> Result<BTreeMap<ConfigRef, String>> {
    let mut found = BTreeMap::new();
    for config in referenced(pod) {
        if let Some(sum) = checksum(ctx, namespace, &config).await? {
            found.insert(config, sum);
        }
    }
    Ok(found)
}

async fn checksum(ctx: &Context, namespace: &str, config: &ConfigRef) -> Result<Option<String>> {
    let key = (config.kind, namespace.to_string(), config.name.clone());
    let version = ctx
        .configs
        .cached_version(config.kind, namespace, &config.name);
    if let Some(version) = &version {
        let sums = ctx.configs.sums.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, sum)) = sums.get(&key)
            && seen == version
        {
            return Ok(sum.clone());
        }
    }
    let read = match config.kind {
        ConfigKind::ConfigMap => ctx
            .get_opt::<ConfigMap>(namespace, &config.name)
            .await?
            .map(|c| {
                let tracked = is_tracked(c.metadata.annotations.as_ref());
                (
                    c.metadata.resource_version.clone(),
                    tracked.then(|| configmap_checksum(&c)),
                )
            }),
        ConfigKind::Secret => ctx
            .get_opt::<Secret>(namespace, &config.name)
            .await?
            .map(|s| {
                let tracked = is_tracked(s.metadata.annotations.as_ref());
                (
                    s.metadata.resource_version.clone(),
                    tracked.then(|| secret_checksum(&s)),
                )
            }),
    };
    let Some((version, sum)) = read else {
        return Ok(None);
    };
    if let Some(version) = version {
        let mut sums = ctx.configs.sums.lock().unwrap_or_else(|e| e.into_inner());
        sums.insert(key, (version, sum.clone()));
    }
    Ok(sum)
}

/// Writes the `-primary` copy of every tracked config, with the target's current content.
pub async fn copy_to_primary(
    ctx: &Context,
    namespace: &str,
    tracked: &BTreeSet<ConfigRef>,
    owner: &OwnerReference,
) -> Result<()> {
    for config in tracked {
        match config.kind {
            ConfigKind::ConfigMap => {
                if let Some(source) = ctx.get_opt::<ConfigMap>(namespace, &config.name).await? {
                    ctx.apply(&primary_configmap(&source, Some(owner.clone())))
                        .await?;
                }
            }
            ConfigKind::Secret => {
                if let Some(source) = ctx.get_opt::<Secret>(namespace, &config.name).await? {
                    ctx.apply(&primary_secret(&source, Some(owner.clone())))
                        .await?;
                }
            }
        }
    }
    Ok(())
}
