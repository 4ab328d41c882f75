//! Flux answers of the v2 `/api/v2/query` API: annotated CSV, as InfluxData documents it.
//! Each table block starts with annotation rows (`#datatype`, `#group`, `#default`) and a
//! header row (`,result,table,_start,_stop,_time,_value,...`); blocks are separated by an
//! empty line; one block may hold several tables (the `table` column). A query error arrives
//! with HTTP 200 as a block whose header is `,error,reference`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::outbound::redact;

use super::super::provider::{Answer, QueryError};

/// One point of a table: its `_time` when it has one, and its `_value` (NaN when empty).
type Point = (Option<DateTime<Utc>>, f64);

fn malformed(detail: String) -> QueryError {
    QueryError::Malformed {
        service: "Flux annotated CSV",
        detail,
    }
}

/// The records of a CSV text (RFC 4180: quoted fields may hold commas, quotes doubled, line
/// breaks); an empty line is an empty record, which ends a table block.
fn records(text: &str) -> Result<Vec<Vec<String>>, QueryError> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                if !(record.is_empty() && field.is_empty()) {
                    record.push(std::mem::take(&mut field));
                }
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(malformed("the answer ends inside a quoted field".into()));
    }
    if !(record.is_empty() && field.is_empty()) {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// The header of the block being read, with its annotations.
#[derive(Default)]
struct Block {
    header: Option<Vec<String>>,
    datatypes: Vec<String>,
    defaults: Vec<String>,
}

impl Block {
    fn column(&self, name: &str) -> Option<usize> {
        self.header.as_ref()?.iter().position(|c| c == name)
    }

    /// The cell of `row` in column `name`, or the column's `#default` when empty.
    fn cell<'r>(&'r self, row: &'r [String], name: &str) -> Option<&'r str> {
        let at = self.column(name)?;
        let value = row.get(at).map(String::as_str).unwrap_or_default();
        if value.is_empty() {
            self.defaults.get(at).map(String::as_str)
        } else {
            Some(value)
        }
    }
}

/// Every table of the answer, keyed by (result, table), with its points in order.
fn tables(body: &str) -> Result<BTreeMap<(String, String), Vec<Point>>, QueryError> {
    let mut tables: BTreeMap<(String, String), Vec<Point>> = BTreeMap::new();
    let mut block = Block::default();
    for record in records(body)? {
        let first = record.first().map(String::as_str).unwrap_or_default();
        if record.is_empty() {
            block = Block::default();
        } else if let Some(annotation) = first.strip_prefix('#') {
            if block.header.is_some() {
                block = Block::default();
            }
            match annotation {
                "datatype" => block.datatypes = record,
                "default" => block.defaults = record,
                _ => {}
            }
        } else if block.header.is_none() {
            block.header = Some(header(record)?);
        } else if block.column("error").is_some() {
            let message = block.cell(&record, "error").unwrap_or_default();
            return Err(QueryError::Refused {
                kind: "flux".into(),
                message: redact::excerpt(message, 800),
            });
        } else if record.len() != block.header.as_ref().map_or(0, Vec::len) {
            // A row cut short: the answer was truncated (or is not Flux CSV).
            return Err(malformed(format!(
                "a row of {} cells under a header of {}",
                record.len(),
                block.header.as_ref().map_or(0, Vec::len)
            )));
        } else {
            let key = (
                block
                    .cell(&record, "result")
                    .unwrap_or_default()
                    .to_string(),
                block.cell(&record, "table").unwrap_or_default().to_string(),
            );
            tables.entry(key).or_default().push(point(&block, &record)?);
        }
    }
    Ok(tables)
}

/// A table's header row: the annotation column (empty) first, then `_value` (or `error` for
/// a query error). Anything else is no Flux table (an HTML page, another format).
fn header(record: Vec<String>) -> Result<Vec<String>, QueryError> {
    let named = |name: &str| record.iter().any(|c| c == name);
    if record.first().is_some_and(String::is_empty) && (named("_value") || named("error")) {
        return Ok(record);
    }
    Err(malformed(format!(
        "a table header without _value: {:?}",
        redact::excerpt(&record.join(","), 120)
    )))
}

/// The `_time` and `_value` of one row.
fn point(block: &Block, row: &[String]) -> Result<Point, QueryError> {
    let at = block
        .column("_value")
        .ok_or_else(|| malformed("a table without a _value column".into()))?;

    let datatype = block.datatypes.get(at).map(String::as_str).unwrap_or("");
    if matches!(datatype, "string" | "boolean") || datatype.starts_with("dateTime") {
        return Err(QueryError::WrongType {
            expected: "a numeric _value (double, long or unsignedLong)",
            got: format!("{datatype} _value"),
        });
    }
    let text = row.get(at).map(String::as_str).unwrap_or_default();
    let value = match text {
        "" => f64::NAN,
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => text.parse().map_err(|_| QueryError::WrongType {
            expected: "a numeric _value (double, long or unsignedLong)",
            got: format!("_value {:?}", redact::excerpt(text, 40)),
        })?,
    };
    let time = match block.cell(row, "_time") {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|e| malformed(format!("_time {text:?}: {e}")))?
                .to_utc(),
        ),
        None => None,
    };
    Ok((time, value))
}

/// The points of the one table, `None` when there is no table.
fn one_table(body: &str) -> Result<Option<Vec<Point>>, QueryError> {
    let mut tables = tables(body)?;
    match tables.len() {
        0 => Ok(None),
        1 => Ok(tables.pop_first().map(|(_, points)| points)),
        many => Err(QueryError::ManySeries(many)),
    }
}

/// A threshold check's value: the last non-null `_value` of the one table (after an
/// aggregate such as `mean()` or `count()`, its only row).
pub fn last_value(body: &str) -> Result<Answer<f64>, QueryError> {
    let Some(points) = one_table(body)? else {
        return Ok(Answer::NoData);
    };
    Ok(Answer::last_present(points.iter().map(|(_, value)| *value)))
}

/// The judge's series: the one table's values whose `_time` lies from `start` to `end` (rows
/// without `_time` are kept; the query's own `range()` and `aggregateWindow()` pick the window
/// and resolution).
pub fn values_between(
    body: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Answer<Vec<f64>>, QueryError> {
    let Some(points) = one_table(body)? else {
        return Ok(Answer::NoData);
    };
    let values: Vec<f64> = points
        .into_iter()
        .filter(|(time, _)| time.is_none_or(|t| (start..=end).contains(&t)))
        .map(|(_, value)| value)
        .collect();
    Ok(Answer::series(values))
}

/// An error answer (4xx/5xx) of the v2 API: `{"code": "invalid", "message": "..."}`.
pub fn refusal(_status: u16, body: &str) -> Option<QueryError> {
    let message = super::super::exchange::json_message(body, "message")?;
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str().map(str::to_string)))
        .unwrap_or_else(|| "flux".into());
    Some(QueryError::Refused {
        kind: redact::excerpt(&code, 40),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANNOTATIONS: &str = "#datatype,string,long,dateTime:RFC3339,double,string\r\n#group,false,false,false,false,true\r\n#default,_result,,,,\r\n,result,table,_time,_value,_field\r\n";

    fn table(rows: &[&str]) -> String {
        format!("{ANNOTATIONS}{}\r\n\r\n", rows.join("\r\n"))
    }

    #[test]
    fn the_value_is_the_last_non_null_of_the_one_table() {
        let body = table(&[
            ",,0,2026-01-01T00:00:00Z,1.5,errors",
            ",,0,2026-01-01T00:00:10Z,2.5,errors",
            ",,0,2026-01-01T00:00:20Z,,errors",
        ]);
        assert_eq!(last_value(&body), Ok(Answer::Value(2.5)));
        assert_eq!(last_value(""), Ok(Answer::NoData));
        assert_eq!(last_value("\r\n"), Ok(Answer::NoData));
        let two = table(&[
            ",,0,2026-01-01T00:00:00Z,1,a",
            ",,1,2026-01-01T00:00:00Z,2,b",
        ]);
        assert_eq!(last_value(&two), Err(QueryError::ManySeries(2)));
        let specials = table(&[",,0,2026-01-01T00:00:00Z,+Inf,a"]);
        assert_eq!(last_value(&specials), Ok(Answer::Value(f64::INFINITY)));
        let nan = table(&[",,0,2026-01-01T00:00:00Z,NaN,a"]);
        assert_eq!(last_value(&nan), Ok(Answer::NoData));
    }

    #[test]
    fn a_second_block_and_a_second_yield_are_more_series() {
        let body = format!(
            "{}{}",
            table(&[",,0,2026-01-01T00:00:00Z,1,a"]),
            table(&[",other,0,2026-01-01T00:00:00Z,2,a"])
        );
        assert_eq!(last_value(&body), Err(QueryError::ManySeries(2)));
    }

    #[test]
    fn the_window_keeps_the_points_inside_it() {
        let body = table(&[
            ",,0,2026-01-01T00:00:00Z,1,a",
            ",,0,2026-01-01T00:00:10Z,2,a",
            ",,0,2026-01-01T00:00:20Z,3,a",
        ]);
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(
            values_between(
                &body,
                at("2026-01-01T00:00:05Z"),
                at("2026-01-01T00:00:20Z")
            ),
            Ok(Answer::Value(vec![2.0, 3.0]))
        );
    }

    #[test]
    fn query_errors_wrong_types_and_broken_csv_are_errors() {
        let error = "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,\"compilation failed: error at @1:1-1:5: undefined identifier \"\"frm\"\"\",\r\n\r\n";
        assert_eq!(
            last_value(error).unwrap_err().to_string(),
            "query refused by the metrics server (flux): compilation failed: error at @1:1-1:5: undefined identifier \"frm\""
        );
        let text = "#datatype,string,long,string\r\n#group,false,false,false\r\n#default,_result,,\r\n,result,table,_value\r\n,,0,fast\r\n";
        assert!(matches!(
            last_value(text),
            Err(QueryError::WrongType { .. })
        ));
        let truncated = table(&[",,0,2026-01-01T00:00:00Z,\"1"]);
        let message = last_value(&truncated).unwrap_err().to_string();
        assert!(
            message.starts_with("response is not Flux annotated CSV"),
            "{message}"
        );
        let no_value = ",result,table,_time\r\n,,0,2026-01-01T00:00:00Z\r\n";
        assert!(last_value(no_value).is_err());
        let cut = table(&[",,0,2026-01-01T00:00:00Z"]);
        let message = last_value(&cut).unwrap_err().to_string();
        assert!(
            message.contains("a row of 4 cells under a header of 6"),
            "{message}"
        );
    }

    #[test]
    fn the_v2_error_answer_names_its_code_and_message() {
        let refused = refusal(
            401,
            r#"{"code":"unauthorized","message":"unauthorized access"}"#,
        );
        assert_eq!(
            refused.unwrap().to_string(),
            "query refused by the metrics server (unauthorized): unauthorized access"
        );
        assert_eq!(refusal(502, "<html>bad gateway</html>"), None);
    }
}
