//! `serin simulate`: the engine driven over an in-memory cluster, scripted metrics and webhooks,
//! and a virtual clock. The same decisions the controller makes, in milliseconds, without a
//! cluster: a newcomer's first contact, the engine's test bed, and a way to try a Canary spec.

pub mod cluster;
pub mod report;
pub mod run;
pub mod samples;
pub mod scenario;

pub use run::{Report, run};
pub use scenario::{Scenario, ScenarioError};
