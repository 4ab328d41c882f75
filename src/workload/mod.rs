//! Workloads as serin sees them. For now: what identifies a revision of the target.

pub mod revision;
