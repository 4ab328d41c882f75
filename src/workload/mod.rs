//! Workloads as serin shapes them, as pure functions the controller applies: the revision of a
//! target, the configs it references, the `-primary` Deployment and the three Services.

pub mod autoscaler;
pub mod configs;
pub mod observe;
pub mod primary;
pub mod revision;
pub mod services;
