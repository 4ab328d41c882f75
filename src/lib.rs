//! serin: progressive delivery for Kubernetes.
//!
//! - [`api`]: the Canary, MetricTemplate and AlertProvider resources and their validation;
//! - [`cli`]: the commands for people and pipelines (get, status, requests, wait, check, migrate);
//! - [`controller`]: the Kubernetes shell: watches, observe -> engine -> act, status, leases;
//! - [`engine`]: the pure rollout lifecycle (no I/O, no clock);
//! - [`hooks`]: webhook calls;
//! - [`judge`]: pure metric judgement;
//! - [`picture`]: drawings of rollouts and judgements (SVG, HTML, Mermaid);
//! - [`outbound`]: limits every outgoing call respects (body size, timeouts, egress, redaction);
//! - [`loadtester`]: `serin loadtester`, load generation and gates kept in a ConfigMap;
//! - [`routing`]: traffic providers, each a pure function of the split to the objects expressing it;
//! - [`sim`]: the engine over an in-memory cluster, scripted metrics and a virtual clock;
//! - [`workload`]: revisions of pod templates and configs.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod hooks;
pub mod judge;
pub mod loadtester;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod picture;
pub mod routing;
pub mod sim;
pub mod workload;
