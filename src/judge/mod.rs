//! Pure metric judgement: a measured value against declared bounds. No I/O: the metric
//! providers fetch, the judge decides, the engine counts.

pub mod threshold;
