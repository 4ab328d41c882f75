//! Durations written the way Kubernetes users already write them: Go's `time.ParseDuration`
//! syntax (`30s`, `1m30s`, `1.5h`, `500ms`), so a Flagger manifest keeps its values.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration as StdDuration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Regular expression the CRD schema uses, so the API server rejects a malformed duration before
/// serin ever sees it. Kept in step with [`Duration::parse`].
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// A non-negative duration in Go syntax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(StdDuration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (expected Go syntax such as 30s, 1m30s or 1.5h)")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(StdDuration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        Self(StdDuration::from_millis(millis))
    }

    pub const fn as_std(self) -> StdDuration {
        self.0
    }

    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }

    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Parses Go's duration syntax: one or more `<number><unit>` terms, units ns, us (µs), ms,
    /// s, m, h. Negative durations are refused: no serin field has a use for them.
    pub fn parse(input: &str) -> Result<Self, ParseDurationError> {
        let fail = |reason| ParseDurationError {
            input: input.to_string(),
            reason,
        };
        if input == "0" {
            return Ok(Self::default());
        }
        if input.is_empty() {
            return Err(fail("empty"));
        }
        if input.starts_with('-') {
            return Err(fail("negative durations are not allowed"));
        }
        let mut rest = input.strip_prefix('+').unwrap_or(input);
        let mut nanos: u128 = 0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| fail("missing unit"))?;
            if number_len == 0 {
                return Err(fail("expected a number"));
            }
            let digits = &rest[..number_len];
            let number: f64 = digits.parse().map_err(|_| fail("malformed number"))?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit_nanos: u64 = match &rest[..unit_len] {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(fail("unknown unit")),
            };
            rest = &rest[unit_len..];
            // Each term and the sum stay within u64 nanoseconds (about 584 years), checked
            // before any cast: a float cast saturates and an integer sum would wrap.
            let term = match digits.parse::<u128>() {
                Ok(whole) => whole.checked_mul(u128::from(unit_nanos)),
                // A fraction: f64 is exact to the nanosecond well beyond any real interval.
                Err(_) => {
                    let term = (number * unit_nanos as f64).round();
                    (term.is_finite() && term < u64::MAX as f64).then_some(term as u128)
                }
            };
            nanos = term
                .and_then(|term| nanos.checked_add(term))
                .filter(|n| *n <= u128::from(u64::MAX))
                .ok_or_else(|| fail("too large (at most about 584 years)"))?;
        }
        let nanos =
            u64::try_from(nanos).map_err(|_| fail("too large (at most about 584 years)"))?;
        Ok(Self(StdDuration::from_nanos(nanos)))
    }
}

impl From<StdDuration> for Duration {
    fn from(value: StdDuration) -> Self {
        Self(value)
    }
}

impl std::str::FromStr for Duration {
    type Err = ParseDurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Prints the shortest Go form: `1h30m`, `1m30s`, `45s`, `250ms`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0;
        if total.is_zero() {
            return f.write_str("0s");
        }
        if total.subsec_nanos() != 0 && total.as_secs() == 0 {
            let nanos = total.subsec_nanos();
            return if nanos.is_multiple_of(1_000_000) {
                write!(f, "{}ms", nanos / 1_000_000)
            } else {
                write!(f, "{nanos}ns")
            };
        }
        let secs = total.as_secs();
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        let millis = total.subsec_millis();
        if millis > 0 {
            write!(f, "{s}.{millis:03}s")
        } else if s > 0 || (h == 0 && m == 0) {
            write!(f, "{s}s")
        } else {
            Ok(())
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_beyond_u64_nanoseconds_are_refused_not_wrapped() {
        for input in [
            "999999999999999999999999999999h",
            "5124096h",
            "5124095h5124095h",
            "18446744073709551616ns",
        ] {
            let error = Duration::parse(input).unwrap_err().to_string();
            assert!(error.contains("too large"), "{input}: {error}");
        }
        assert_eq!(
            Duration::parse("18446744073709551615ns").unwrap().as_std(),
            StdDuration::from_nanos(u64::MAX)
        );
    }

    fn secs(text: &str) -> f64 {
        Duration::parse(text).unwrap().as_std().as_secs_f64()
    }

    #[test]
    fn parses_go_syntax() {
        assert_eq!(secs("30s"), 30.0);
        assert_eq!(secs("1m30s"), 90.0);
        assert_eq!(secs("1.5h"), 5400.0);
        assert_eq!(secs("500ms"), 0.5);
        assert_eq!(secs("2h45m"), 9900.0);
        assert_eq!(secs("0"), 0.0);
    }

    #[test]
    fn refuses_malformed_input_with_the_reason() {
        for bad in ["abc", "", "10", "5 m", "-1s", "1d", "m", "1..5s"] {
            let err = Duration::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn prints_the_shortest_form_and_round_trips() {
        for text in [
            "1h30m", "1m30s", "45s", "250ms", "1h", "10m", "0s", "1.500s",
        ] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(Duration::parse(&d.to_string()).unwrap(), d);
        }
    }
}
