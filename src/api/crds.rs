//! The CustomResourceDefinitions generated from the Rust types: `serin crds` prints them and
//! crds/ holds the committed copies a test keeps current. The `flagger.app` set (drop-in mode,
//! `serin crds --group flagger.app`) is the same schema under Flagger's group: a superset of
//! Flagger's, so every object Flagger's CRDs admit is admitted, and applying it over Flagger's
//! CRDs replaces their schema in place without deleting a Canary.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::group::ApiGroup;
use super::{AlertProvider, Canary, MetricTemplate};

/// serin's CRDs as one multi-document YAML stream, in a stable order.
pub fn yaml() -> Result<String, serde_yaml_ng::Error> {
    yaml_for(ApiGroup::Serin)
}

/// The CRDs of `group` as one multi-document YAML stream, in a stable order.
pub fn yaml_for(group: ApiGroup) -> Result<String, serde_yaml_ng::Error> {
    let crds = [Canary::crd(), MetricTemplate::crd(), AlertProvider::crd()];
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&in_group(crd, group))?);
    }
    Ok(out)
}

/// `crd` served under `group`; Flagger's kinds keep Flagger's category `all` (`kubectl get
/// all` lists Canaries, as with Flagger).
fn in_group(mut crd: CustomResourceDefinition, group: ApiGroup) -> CustomResourceDefinition {
    if group == ApiGroup::Serin {
        return crd;
    }
    crd.spec.group = group.name().to_string();
    crd.metadata.name = Some(format!("{}.{}", crd.spec.names.plural, group.name()));
    crd.spec.names.short_names = None;
    let categories = crd.spec.names.categories.get_or_insert_with(Vec::new);
    categories.insert(0, "all".to_string());
    crd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flaggers_crds_are_serins_schema_under_flaggers_group() {
        let serin: Vec<serde_json::Value> = docs(&yaml().unwrap());
        let flagger: Vec<serde_json::Value> = docs(&yaml_for(ApiGroup::Flagger).unwrap());
        assert_eq!(flagger.len(), 3);
        for (ours, theirs) in serin.iter().zip(&flagger) {
            assert_eq!(theirs["spec"]["group"], "flagger.app");
            let plural = theirs["spec"]["names"]["plural"].as_str().unwrap();
            assert_eq!(theirs["metadata"]["name"], format!("{plural}.flagger.app"));
            assert_eq!(theirs["spec"]["versions"], ours["spec"]["versions"]);
            assert_eq!(theirs["spec"]["names"]["categories"][0], "all");
        }
    }

    fn docs(text: &str) -> Vec<serde_json::Value> {
        text.split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_yaml_ng::from_str(d).unwrap())
            .collect()
    }
}
