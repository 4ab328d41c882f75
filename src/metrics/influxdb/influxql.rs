//! InfluxQL answers of the 1.x `/query` API (which InfluxDB 2 serves too, for compatibility):
//! `{"results":[{"statement_id":0,"series":[{"name":..,"columns":["time","mean"],"values":[[t,v]]}]}]}`,
//! times asked for as epoch milliseconds. A statement's error is in its result, with HTTP 200.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::outbound::redact;

use super::super::provider::{Answer, QueryError};

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    results: Vec<Statement>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(default)]
    series: Vec<Series>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

fn malformed(detail: String) -> QueryError {
    QueryError::Malformed {
        service: "InfluxDB query JSON",
        detail,
    }
}

fn refused(message: &str) -> QueryError {
    QueryError::Refused {
        kind: "influxql".into(),
        message: redact::excerpt(message, 800),
    }
}

/// The points `(epoch ms, value)` of the one series of the one statement; `None` when the
/// statement returned no series.
fn points(body: &str) -> Result<Option<Vec<(i64, f64)>>, QueryError> {
    let envelope: Envelope = crate::metrics::exchange::decode(body, "InfluxDB query JSON")?;
    if let Some(error) = envelope.error {
        return Err(refused(&error));
    }
    let statement = match envelope.results.as_slice() {
        [one] => one,
        [] => return Err(malformed("no statement result".into())),
        many => {
            return Err(refused(&format!(
                "{} statements answered; a metric query is one SELECT",
                many.len()
            )));
        }
    };
    if let Some(error) = &statement.error {
        return Err(refused(error));
    }
    let series = match statement.series.as_slice() {
        [] => return Ok(None),
        [one] => one,
        many => return Err(QueryError::ManySeries(many.len())),
    };
    if series.columns.len() != 2 || series.columns[0] != "time" {
        return Err(QueryError::WrongType {
            expected: "one series with a time column and one value column (SELECT one field)",
            got: format!("columns {:?}", series.columns),
        });
    }
    series
        .values
        .iter()
        .map(row)
        .collect::<Result<_, _>>()
        .map(Some)
}

/// One row `[time, value]`; a null value is NaN.
fn row(values: &Vec<serde_json::Value>) -> Result<(i64, f64), QueryError> {
    let [time, value] = values.as_slice() else {
        return Err(malformed(format!(
            "a row of {} values, not 2",
            values.len()
        )));
    };
    let time = time
        .as_i64()
        .ok_or_else(|| malformed(format!("time {time} is not epoch milliseconds")))?;
    let value = match value {
        serde_json::Value::Null => f64::NAN,
        serde_json::Value::Number(number) => number.as_f64().unwrap_or(f64::NAN),
        other => {
            return Err(QueryError::WrongType {
                expected: "a numeric field",
                got: format!("value {}", redact::excerpt(&other.to_string(), 40)),
            });
        }
    };
    Ok((time, value))
}

/// A threshold check's value: the last non-null value of the one series. No series, or only
/// nulls, is no data.
pub fn last_value(body: &str) -> Result<Answer<f64>, QueryError> {
    let Some(points) = points(body)? else {
        return Ok(Answer::NoData);
    };
    Ok(Answer::last_present(points.iter().map(|(_, value)| *value)))
}

/// The judge's series: the values from `start` to `end` (the query's own WHERE time clause
/// and GROUP BY time() pick the window and resolution; serin drops points outside its window,
/// which would belong to an earlier revision).
pub fn values_between(
    body: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Answer<Vec<f64>>, QueryError> {
    let Some(points) = points(body)? else {
        return Ok(Answer::NoData);
    };
    let (start, end) = (start.timestamp_millis(), end.timestamp_millis());
    let values: Vec<f64> = points
        .into_iter()
        .filter(|(time, _)| (start..=end).contains(time))
        .map(|(_, value)| value)
        .collect();
    Ok(Answer::series(values))
}

/// Whether a `SHOW DATABASES` (the probe) was answered without an error.
pub fn answered(body: &str) -> Result<(), QueryError> {
    points(body).map(drop).or_else(|error| match error {
        // SHOW DATABASES has a `name` column, not time: an answer all the same.
        QueryError::WrongType { .. } => Ok(()),
        other => Err(other),
    })
}

/// An error answer (4xx/5xx) of the 1.x API: `{"error": "..."}`.
pub fn refusal(_status: u16, body: &str) -> Option<QueryError> {
    super::super::exchange::json_message(body, "error").map(|message| refused(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &str) -> String {
        format!(
            r#"{{"results":[{{"statement_id":0,"series":[{{"name":"requests","columns":["time","mean"],"values":{values}}}]}}]}}"#
        )
    }

    #[test]
    fn the_value_is_the_last_non_null_of_one_series() {
        let body = series("[[1000,1.5],[2000,2.5],[3000,null]]");
        assert_eq!(last_value(&body), Ok(Answer::Value(2.5)));
        let none = r#"{"results":[{"statement_id":0}]}"#;
        assert_eq!(last_value(none), Ok(Answer::NoData));
        assert_eq!(last_value(&series("[[1000,null]]")), Ok(Answer::NoData));
        let two = r#"{"results":[{"statement_id":0,"series":[{"columns":["time","v"],"values":[]},{"columns":["time","v"],"values":[]}]}]}"#;
        assert_eq!(last_value(two), Err(QueryError::ManySeries(2)));
    }

    #[test]
    fn the_window_keeps_the_points_inside_it() {
        let body = series("[[1000,1],[2000,2],[3000,null],[4000,4]]");
        let at = |ms| DateTime::from_timestamp_millis(ms).unwrap();
        let Ok(Answer::Value(values)) = values_between(&body, at(2000), at(3000)) else {
            panic!("values expected")
        };
        assert_eq!(values[0], 2.0);
        assert!(values[1].is_nan());
        assert_eq!(
            values_between(&body, at(5000), at(6000)),
            Ok(Answer::NoData)
        );
    }

    #[test]
    fn statement_errors_and_odd_shapes_are_errors_naming_the_cause() {
        let error = r#"{"results":[{"statement_id":0,"error":"database not found: shop"}]}"#;
        assert_eq!(
            last_value(error).unwrap_err().to_string(),
            "query refused by the metrics server (influxql): database not found: shop"
        );
        let columns = r#"{"results":[{"statement_id":0,"series":[{"columns":["time","a","b"],"values":[[1,1,2]]}]}]}"#;
        assert!(matches!(
            last_value(columns),
            Err(QueryError::WrongType { .. })
        ));
        let text = series(r#"[[1000,"fast"]]"#);
        assert!(matches!(
            last_value(&text),
            Err(QueryError::WrongType { .. })
        ));
        let truncated = &series("[[1000,1]]")[..40];
        assert!(
            last_value(truncated)
                .unwrap_err()
                .to_string()
                .starts_with("response is not InfluxDB query JSON")
        );
    }
}
