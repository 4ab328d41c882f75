//! Workloads as serin shapes them, as pure functions the controller applies: the workload seam
//! (`target`: a kind's revision, readiness, primary, scale and history) and its kinds
//! (`deployment`, `daemonset`, `statefulset`, `knative`), the configs a target references, and the three Services.

pub mod autoscaler;
pub mod configs;
pub mod daemonset;
pub mod deployment;
pub mod foreign;
pub mod knative;
pub mod observe;
pub mod primary;
pub mod revision;
pub mod services;
pub mod statefulset;
pub mod target;
