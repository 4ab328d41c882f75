//! serin's API, group `serin.dev`, version `v1beta1`: the Canary, MetricTemplate and
//! AlertProvider resources, their generated CRDs, and the semantic validation the schema cannot
//! express.

pub mod access;
pub mod alert_provider;
pub mod autoscaler;
pub mod canary;
pub mod crds;
pub mod duration;
pub mod gateway;
pub mod group;
pub mod history;
pub mod istio;
pub mod known_fields;
pub mod leniency;
pub mod load;
pub mod locate;
pub mod nesting;
pub mod references;
pub mod route_template;
pub mod schema;
pub mod status;
pub mod target;
pub mod validation;
pub mod yaml;

pub use alert_provider::{AlertProvider, AlertProviderSpec};
pub use canary::{Canary, CanarySpec, HookKind};
pub use duration::Duration;
pub use metric_template::{MetricTemplate, MetricTemplateSpec};
pub use status::{CanaryStatus, Phase};

pub mod metric_provider;
pub mod metric_template;
pub mod provider;
