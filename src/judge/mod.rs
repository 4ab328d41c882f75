//! Pure metric judgement. No I/O: the metric providers fetch, the judge decides, the engine
//! counts.
//!
//! - [`threshold`]: one value against declared bounds;
//! - [`compare`]: a canary sample against the primary's (rank-sum test, Hodges-Lehmann shift,
//!   Kayenta-style classification and scoring), built on [`rank_sum`] and [`shift`];
//! - [`samples`]: reading samples from files for `serin judge`.

pub mod compare;
pub mod rank_sum;
pub mod samples;
pub mod shift;
pub mod threshold;
