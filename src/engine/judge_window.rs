//! Which stretch of metric history the judge compares: the range queries look back
//! `judge.lookback`, but never before the canary's current traffic began (older values belong
//! to a previous revision or weight), and never ask for more points than a server returns.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::status::{CanaryStatus, Phase};

/// Prometheus refuses a range query of more than 11,000 points per series.
pub const MAX_POINTS: u32 = 11_000;

/// Since when the canary's values describe what is analysed now: while Progressing, the last
/// transition (the phase began or the canary weight last changed); in any other phase the
/// lookback alone bounds the window.
pub fn since(status: &CanaryStatus) -> Option<DateTime<Utc>> {
    if status.phase == Some(Phase::Progressing) {
        status.last_transition_time
    } else {
        None
    }
}

/// `now - lookback`, but not before `since`, and never more than [`MAX_POINTS`] steps back.
pub fn start(
    now: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    step: Duration,
    lookback: Duration,
) -> DateTime<Utc> {
    let lookback = lookback.min(step * MAX_POINTS);
    let earliest = now - chrono::Duration::from_std(lookback).unwrap_or(chrono::Duration::zero());
    since.map_or(earliest, |since| since.clamp(earliest, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noon() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn the_window_starts_at_the_rollout_and_respects_the_point_limit() {
        let now = noon();
        let minutes = |m| chrono::Duration::minutes(m);
        let step = Duration::from_secs(15);
        let ten = Duration::from_secs(600);
        assert_eq!(start(now, None, step, ten), now - minutes(10));
        assert_eq!(
            start(now, Some(now - minutes(3)), step, ten),
            now - minutes(3)
        );
        assert_eq!(
            start(now, Some(now - minutes(30)), step, ten),
            now - minutes(10)
        );
        let day = Duration::from_secs(86_400);
        let one_second = Duration::from_secs(1);
        assert_eq!(
            start(now, None, one_second, day),
            now - chrono::Duration::seconds(11_000)
        );
    }

    #[test]
    fn a_start_in_the_future_is_clamped_to_now() {
        let now = noon();
        let later = now + chrono::Duration::minutes(5);
        let step = Duration::from_secs(15);
        assert_eq!(start(now, Some(later), step, Duration::from_secs(600)), now);
    }

    #[test]
    fn only_a_progressing_canary_bounds_the_window_by_its_last_transition() {
        let changed = noon() - chrono::Duration::minutes(4);
        let mut status = CanaryStatus {
            phase: Some(Phase::Progressing),
            last_transition_time: Some(changed),
            ..CanaryStatus::default()
        };
        assert_eq!(since(&status), Some(changed));
        for phase in [Phase::WaitingPromotion, Phase::Promoting, Phase::Succeeded] {
            status.phase = Some(phase);
            assert_eq!(since(&status), None, "{phase:?}");
        }
        status.phase = None;
        assert_eq!(since(&status), None);
    }
}
