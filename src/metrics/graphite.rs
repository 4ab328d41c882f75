//! Graphite's render API (`/render?target=...&format=json`), as graphite-web and the servers
//! compatible with it (carbonapi, Grafana's graphite backend) serve it.
//!
//! The query is what Flagger's graphite provider takes: the render API's query string
//! (`target=...&from=-5min`), whitespace collapsed so a template may spread a long target over
//! lines; a query that does not start with a parameter (`name=`) is a bare target expression. The value of a threshold
//! check is the last non-null datapoint of the one series the target returns (Flagger's
//! choice); the judge reads every datapoint of the series over its window (`from`/`until` set
//! by serin), a null point counting as NaN.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::outbound::redact;

use super::exchange::{Auth, Call, Reach};
use super::provider::{Answer, Connection, MetricsProvider, QueryError};

/// The largest answer read: one series of a day at 10-second resolution is under 400 KB.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// The target that [`MetricsProvider::probe`] renders: one series, constantly 1.
pub const PROBE_TARGET: &str = "constantLine(1)";

/// A Graphite render API: the Graphite implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct Graphite {
    /// E.g. `http://graphite.monitoring` (a path prefix is kept).
    pub reach: Reach,
    /// Basic auth from the Secret's `username` and `password`.
    pub auth: Auth,
}

/// One series of a render answer.
#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    target: String,
    datapoints: Vec<(serde_json::Value, serde_json::Value)>,
}

impl Graphite {
    /// The Graphite client for a resolved connection.
    pub fn connect(connection: Connection) -> Self {
        Self {
            auth: Auth::basic(&connection.credentials).unwrap_or_default(),
            reach: Reach::of(&connection),
        }
    }

    async fn render(&self, params: Vec<(String, String)>) -> Result<Vec<Series>, QueryError> {
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let server = self.reach.server(&self.auth);
        let call = Call {
            path: "render",
            params: &params,
            body: None,
            limit: MAX_ANSWER,
        };
        // graphite-web answers a bad target with a plain-text 400 or a 500 page: the status
        // and the start of the page say it.
        let body = server.send(&call, |_, _| None).await?;
        parse(&body)
    }
}

impl MetricsProvider for Graphite {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let series = self.render(params(query, None)?).await?;
        last_value(&series)
    }

    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        _step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        // The render API answers at the storage's resolution; the judge's step has no
        // equivalent short of rewriting the target (summarize), which stays the user's choice.
        let series = self.render(params(query, Some((start, end)))?).await?;
        every_value(&series)
    }

    /// Renders a constant through the same credentials and headers as the real queries.
    async fn probe(&self) -> Result<(), QueryError> {
        let query = format!("target={PROBE_TARGET}&from=-5min");
        match self.instant(&query).await? {
            Answer::Value(1.0) => Ok(()),
            other => Err(QueryError::Unhealthy(format!(
                "{PROBE_TARGET} answered {other:?}, not 1"
            ))),
        }
    }
}

/// The render parameters of `query`: its own (a query string, or a bare target), whitespace
/// collapsed, with `format=json`, and for a range `from`/`until` set to the window.
pub fn params(
    query: &str,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<Vec<(String, String)>, QueryError> {
    let query = query.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut params: Vec<(String, String)> = if is_query_string(&query) {
        // The query string as a URL would carry it, decoded once (a `#` is the target's, not
        // the start of a fragment).
        let query = query.replace('#', "%23");
        let url = reqwest::Url::parse(&format!("http://graphite/render?{query}")).map_err(|e| {
            QueryError::Refused {
                kind: "query".into(),
                message: format!("not a render query string: {e}"),
            }
        })?;
        url.query_pairs()
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    } else {
        vec![("target".to_string(), query)]
    };
    for (key, value) in &mut params {
        if key == "from" || key == "until" {
            *value = graphite_offset(value);
        }
    }
    params.retain(|(key, _)| {
        key != "format" && !(window.is_some() && (key == "from" || key == "until"))
    });
    if !params
        .iter()
        .any(|(key, value)| key == "target" && !value.is_empty())
    {
        return Err(QueryError::Refused {
            kind: "query".into(),
            message: "the query has no target (write target=<expression>&from=-<interval>)".into(),
        });
    }
    params.push(("format".into(), "json".into()));
    if let Some((start, end)) = window {
        params.push(("from".into(), start.timestamp().to_string()));
        params.push(("until".into(), end.timestamp().to_string()));
    }
    Ok(params)
}

/// A relative time as Graphite spells it: serin renders `{{ interval }}` as `1m` or `1h30m`,
/// and Graphite reads `m` as no unit (it wants `min`), so a minute is spelled out. Anything
/// else (`-1h`, `now`, `20260101`) is left as it was.
fn graphite_offset(value: &str) -> String {
    let (sign, rest) = value.split_at(usize::from(value.starts_with(['-', '+'])));
    let mut out = String::from(sign);
    let mut chars = rest.chars().peekable();
    while chars.peek().is_some() {
        let digits: String = std::iter::from_fn(|| chars.next_if(char::is_ascii_digit)).collect();
        let unit: String =
            std::iter::from_fn(|| chars.next_if(char::is_ascii_alphabetic)).collect();
        if digits.is_empty() || unit.is_empty() {
            return value.to_string();
        }
        out.push_str(&digits);
        out.push_str(if unit == "m" { "min" } else { &unit });
    }
    out
}

/// `key=...` with a parameter name first: the render API's query string (a target expression
/// never starts so).
fn is_query_string(query: &str) -> bool {
    query.split_once('=').is_some_and(|(key, _)| {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn malformed(detail: String) -> QueryError {
    QueryError::Malformed {
        service: "Graphite render JSON",
        detail,
    }
}

/// The series of a render answer. graphite-web writes infinities as `1e9999` (a number JSON
/// parsers refuse as out of range), and other servers may write `NaN` or `Infinity`: those are
/// spelled out as strings first.
fn parse(body: &str) -> Result<Vec<Series>, QueryError> {
    serde_json::from_str(&spell_out_specials(body)).map_err(|e| {
        malformed(format!(
            "{e} (body starts {:?})",
            redact::excerpt(body, 120)
        ))
    })
}

/// The one series' last non-null datapoint; no series or only nulls is no data.
pub fn last_value_of(body: &str) -> Result<Answer<f64>, QueryError> {
    last_value(&parse(body)?)
}

/// Every value of the one series, nulls as NaN; no series is no data.
pub fn every_value_of(body: &str) -> Result<Answer<Vec<f64>>, QueryError> {
    every_value(&parse(body)?)
}

fn one(series: &[Series]) -> Result<Option<&Series>, QueryError> {
    match series {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(QueryError::ManySeries(many.len())),
    }
}

fn last_value(series: &[Series]) -> Result<Answer<f64>, QueryError> {
    let Some(series) = one(series)? else {
        return Ok(Answer::NoData);
    };
    for (value, _) in series.datapoints.iter().rev() {
        let value = point(value, &series.target)?;
        if !value.is_nan() {
            return Ok(Answer::Value(value));
        }
    }
    Ok(Answer::NoData)
}

fn every_value(series: &[Series]) -> Result<Answer<Vec<f64>>, QueryError> {
    let Some(series) = one(series)? else {
        return Ok(Answer::NoData);
    };
    let values = series
        .datapoints
        .iter()
        .map(|(value, _)| point(value, &series.target))
        .collect::<Result<_, _>>()?;
    Ok(Answer::Value(values))
}

/// A datapoint's value: a number, null (NaN: no value), or a spelled-out special.
fn point(value: &serde_json::Value, target: &str) -> Result<f64, QueryError> {
    use serde_json::Value;
    let bad = || {
        malformed(format!(
            "datapoint {} of {:?} is not a number",
            redact::excerpt(&value.to_string(), 40),
            redact::excerpt(target, 80)
        ))
    };
    match value {
        Value::Null => Ok(f64::NAN),
        Value::Number(number) => number.as_f64().ok_or_else(bad),
        Value::String(text) => match text.as_str() {
            "NaN" => Ok(f64::NAN),
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            // Flagger reads numbers written as strings too.
            other => other.trim().parse().map_err(|_| bad()),
        },
        _ => Err(bad()),
    }
}

/// The bare tokens JSON lacks, outside strings, as strings serde reads: `NaN`, `Infinity`,
/// `-Infinity`, and graphite-web's `1e9999` and `-1e9999`.
fn spell_out_specials(body: &str) -> String {
    const SPECIALS: [(&str, &str); 5] = [
        ("-Infinity", "\"-Inf\""),
        ("Infinity", "\"+Inf\""),
        ("NaN", "\"NaN\""),
        ("-1e9999", "\"-Inf\""),
        ("1e9999", "\"+Inf\""),
    ];
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let (mut copied, mut i) = (0, 0);
    let (mut in_string, mut escaped) = (false, false);
    let part_of_token = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-');
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        in_string = b == b'"';
        let at_start = i == 0 || !part_of_token(bytes[i - 1]);
        let special = SPECIALS.iter().find(|(token, _)| {
            at_start
                && bytes[i..].starts_with(token.as_bytes())
                && !bytes
                    .get(i + token.len())
                    .is_some_and(|&b| part_of_token(b))
        });
        match special {
            Some((token, spelled)) => {
                out.push_str(&body[copied..i]);
                out.push_str(spelled);
                i += token.len();
                copied = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&body[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(params: &[(String, String)]) -> Vec<(&str, &str)> {
        params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn flagger_query_strings_and_bare_targets_become_render_parameters() {
        let query = "target=summarize(\n  asPercent(sumSeries(app.web.ok), sumSeries(app.web.*)),\n  '1min', 'avg')\n&from=-1min";
        let params = params(query, None).unwrap();
        assert_eq!(
            pairs(&params),
            [
                (
                    "target",
                    "summarize( asPercent(sumSeries(app.web.ok), sumSeries(app.web.*)), '1min', 'avg')"
                ),
                ("from", "-1min"),
                ("format", "json"),
            ]
        );
        let bare = params_of("sumSeries(app.{web,api}.errors)");
        assert_eq!(
            pairs(&bare),
            [
                ("target", "sumSeries(app.{web,api}.errors)"),
                ("format", "json")
            ]
        );
        let hashed = super::params("target=aliasByNode(a.#.b, 1)&from=-1min", None).unwrap();
        assert_eq!(pairs(&hashed)[0], ("target", "aliasByNode(a.#.b, 1)"));
        let minutes = super::params("target=a.b&from=-1h30m&until=-1m", None).unwrap();
        assert_eq!(
            pairs(&minutes)[1..3],
            [("from", "-1h30min"), ("until", "-1min")]
        );
        let kept = super::params("target=a.b&from=now-5m&until=20260101", None).unwrap();
        assert_eq!(
            pairs(&kept)[1..3],
            [("from", "now-5m"), ("until", "20260101")]
        );
        let error = super::params("from=-1min", None).unwrap_err().to_string();
        assert!(error.contains("the query has no target"), "{error}");
    }

    fn params_of(query: &str) -> Vec<(String, String)> {
        params(query, None).unwrap()
    }

    #[test]
    fn a_range_replaces_the_window_and_format() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let end = DateTime::from_timestamp(1_700_000_600, 0).unwrap();
        let params = params(
            "target=app.web.errors&from=-1h&until=now&format=csv",
            Some((start, end)),
        )
        .unwrap();
        assert_eq!(
            pairs(&params),
            [
                ("target", "app.web.errors"),
                ("format", "json"),
                ("from", "1700000000"),
                ("until", "1700000600"),
            ]
        );
    }

    #[test]
    fn the_value_is_the_last_non_null_datapoint_of_one_series() {
        let body = r#"[{"target":"a","tags":{},"datapoints":[[1.5,10],[2.5,20],[null,30]]}]"#;
        assert_eq!(last_value_of(body), Ok(Answer::Value(2.5)));
        assert_eq!(last_value_of("[]"), Ok(Answer::NoData));
        let nulls = r#"[{"target":"a","datapoints":[[null,10],[null,20]]}]"#;
        assert_eq!(last_value_of(nulls), Ok(Answer::NoData));
        let two = r#"[{"target":"a","datapoints":[[1,10]]},{"target":"b","datapoints":[[2,10]]}]"#;
        assert_eq!(last_value_of(two), Err(QueryError::ManySeries(2)));
        let strings = r#"[{"target":"a","datapoints":[["4.25",10]]}]"#;
        assert_eq!(last_value_of(strings), Ok(Answer::Value(4.25)));
    }

    #[test]
    fn infinities_and_nan_as_graphite_web_and_others_write_them() {
        let web = r#"[{"target":"a","datapoints":[[1e9999, 10], [-1e9999, 20]]}]"#;
        assert_eq!(last_value_of(web), Ok(Answer::Value(f64::NEG_INFINITY)));
        let bare = r#"[{"target":"NaN Infinity","datapoints":[[Infinity,10],[NaN,20]]}]"#;
        assert_eq!(last_value_of(bare), Ok(Answer::Value(f64::INFINITY)));
        let Ok(Answer::Value(values)) = every_value_of(bare) else {
            panic!("series expected")
        };
        assert_eq!(values[0], f64::INFINITY);
        assert!(values[1].is_nan());
        // A target name holding the words stays as it was.
        assert_eq!(
            spell_out_specials(r#"{"target":"x NaN \" Infinity"}"#),
            r#"{"target":"x NaN \" Infinity"}"#
        );
        assert_eq!(spell_out_specials("[11e9999, 2]"), "[11e9999, 2]");
    }

    #[test]
    fn malformed_and_truncated_answers_are_errors() {
        for body in [
            "<html>Server Error (500)</html>",
            r#"[{"target":"a","datapoints":[[1,10]"#,
            r#"[{"target":"a","datapoints":[[true,10]]}]"#,
            r#"{"error":"x"}"#,
        ] {
            let error = last_value_of(body).unwrap_err().to_string();
            assert!(
                error.starts_with("response is not Graphite render JSON"),
                "{body}: {error}"
            );
        }
    }
}
