//! A revision identifies what the target would run: its pod template plus the contents of the
//! ConfigMaps and Secrets it references. Two targets with the same revision run the same thing,
//! so reverting to the promoted revision is recognised as no release.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Hex digest (16 characters) of a pod template and the checksums of its tracked configs.
/// `template` must serialize deterministically (serde_json orders map keys).
pub fn of<T: serde::Serialize>(template: &T, configs: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    // Serializing a plain struct to a Vec cannot fail; an empty digest input is still stable.
    hasher.update(serde_json::to_vec(template).unwrap_or_default());
    for (name, checksum) in configs {
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(checksum.as_bytes());
    }
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_same_template_and_configs_give_the_same_revision() {
        let template = serde_json::json!({"spec": {"containers": [{"image": "podinfo:6.0.0"}]}});
        let a = of(&template, &configs(&[("configmap/podinfo", "1")]));
        let b = of(&template, &configs(&[("configmap/podinfo", "1")]));
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn a_config_change_alone_is_a_new_revision() {
        let template = serde_json::json!({"image": "podinfo:6.0.0"});
        assert_ne!(
            of(&template, &configs(&[("configmap/podinfo", "1")])),
            of(&template, &configs(&[("configmap/podinfo", "2")]))
        );
    }

    #[test]
    fn a_template_change_is_a_new_revision() {
        let empty = BTreeMap::new();
        assert_ne!(of(&"podinfo:6.0.0", &empty), of(&"podinfo:6.0.1", &empty));
    }
}
