//! The CustomResourceDefinitions generated from the Rust types: `serin crds` prints them and
//! crds/ holds the committed copy a test keeps current.

use kube::CustomResourceExt;

use super::{AlertProvider, Canary, MetricTemplate};

/// All CRDs as one multi-document YAML stream, in a stable order.
pub fn yaml() -> Result<String, serde_yaml_ng::Error> {
    let crds = [Canary::crd(), MetricTemplate::crd(), AlertProvider::crd()];
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd)?);
    }
    Ok(out)
}
