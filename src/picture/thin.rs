//! Thinning: a long rollout (a day of ticks, 100,000 reconciles) has far more moments than a
//! drawing has pixels. Marks that would land in the same column of pixels are merged, keeping
//! the one that matters (a failure over a pass), so the drawing's size is bounded by its width,
//! never by the length of the run, and nothing a reader should see is dropped.

/// `items` (in time order) with at most one per `column` pixels of `x`: of the items sharing a
/// column, the first one `prefer` ranks highest (later ones replace earlier ones on a tie when
/// `latest` is set, as a step line's last value in a column is the one that holds).
pub fn by_column<T>(
    items: &[T],
    column: f64,
    x: impl Fn(&T) -> f64,
    rank: impl Fn(&T) -> u8,
    latest: bool,
) -> Vec<&T> {
    let mut out: Vec<&T> = Vec::new();
    let mut last_column = None;
    for item in items {
        let here = (x(item) / column).floor() as i64;
        match out.last_mut() {
            Some(kept) if last_column == Some(here) => {
                let (new, old) = (rank(item), rank(kept));
                if new > old || (new == old && latest) {
                    *kept = item;
                }
            }
            _ => {
                out.push(item);
                last_column = Some(here);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_in_one_column_merge_and_a_failure_wins() {
        // (pixel, failed)
        let marks: Vec<(f64, bool)> = (0..10_000)
            .map(|i| (f64::from(i) * 0.01, i == 4321))
            .collect();
        let kept = by_column(&marks, 2.0, |m| m.0, |m| u8::from(m.1), false);
        assert_eq!(kept.len(), 50);
        assert!(kept.iter().any(|m| m.1), "the one failure is kept");
    }

    #[test]
    fn a_step_line_keeps_the_last_value_of_a_column() {
        let steps = [(0.0, 0), (0.2, 10), (0.4, 20), (5.0, 30)];
        let kept = by_column(&steps, 1.0, |s| s.0, |_| 0, true);
        assert_eq!(kept, vec![&(0.4, 20), &(5.0, 30)]);
    }
}
