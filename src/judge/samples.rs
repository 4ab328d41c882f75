//! Reading a sample of metric values from a file for `serin judge`: one number per line, CSV
//! (the last column of each row: `timestamp,value` works), or a saved Prometheus query response
//! (every value of every series of a matrix or vector).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    #[error("line {line}: {text:?} is not a number")]
    NotANumber { line: usize, text: String },
    #[error(
        "line {line}: {text:?} is beyond the range of a 64-bit float (±1.8e308); write +Inf or -Inf for an infinite value"
    )]
    OutOfRange { line: usize, text: String },
    #[error("not a Prometheus query response: {0}")]
    Prometheus(String),
}

/// Parses the text of a sample file.
pub fn parse(text: &str) -> Result<Vec<f64>, SampleError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return prometheus(trimmed);
    }
    let mut values = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let field = line.rsplit([',', ';', '\t']).next().unwrap_or(line).trim();
        match parse_number(field) {
            Some(value) if value.is_infinite() && !spelled_infinite(field) => {
                return Err(SampleError::OutOfRange {
                    line: index + 1,
                    text: field.to_string(),
                });
            }
            Some(value) => values.push(value),
            // A first row of column names is a header, not data.
            None if index == 0 => {}
            None => {
                return Err(SampleError::NotANumber {
                    line: index + 1,
                    text: field.to_string(),
                });
            }
        }
    }
    Ok(values)
}

/// Numbers as Prometheus writes them, including NaN and ±Inf.
fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim_matches('"');
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// Whether a number that parsed as infinite says so (`+Inf`, `inf`, `-Infinity`), rather than
/// being a literal too large for f64 (`1e999`), which is refused instead of judged as infinity.
fn spelled_infinite(text: &str) -> bool {
    text.trim_matches('"')
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase()
        .starts_with("inf")
}

fn prometheus(text: &str) -> Result<Vec<f64>, SampleError> {
    let fail = |why: &str| SampleError::Prometheus(why.to_string());
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| fail(&e.to_string()))?;
    let data = doc.get("data").ok_or_else(|| fail("no `data` field"))?;
    let result = data
        .get("result")
        .ok_or_else(|| fail("no `data.result` field"))?;
    let pair = |p: &serde_json::Value| -> Result<f64, SampleError> {
        p.get(1)
            .and_then(|v| v.as_str())
            .and_then(parse_number)
            .ok_or_else(|| fail("a sample is not a [timestamp, \"value\"] pair"))
    };
    match data.get("resultType").and_then(|t| t.as_str()) {
        Some("matrix") => result
            .as_array()
            .ok_or_else(|| fail("`result` is not a list"))?
            .iter()
            .flat_map(|series| {
                series
                    .get("values")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
            })
            .map(pair)
            .collect(),
        Some("vector") => result
            .as_array()
            .ok_or_else(|| fail("`result` is not a list"))?
            .iter()
            .map(|series| {
                series
                    .get("value")
                    .ok_or_else(|| fail("a vector element has no `value`"))
                    .and_then(pair)
            })
            .collect(),
        Some("scalar") => Ok(vec![pair(result)?]),
        other => Err(fail(&format!("unsupported resultType {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_lines_csv_with_a_header_and_prometheus_matrices() {
        assert_eq!(
            parse("1\n2.5\n\n# comment\n-3e2\n").unwrap(),
            vec![1.0, 2.5, -300.0]
        );
        assert_eq!(
            parse("time,latency\n1700000000,120\n1700000010,131.5\n").unwrap(),
            vec![120.0, 131.5]
        );
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"a"},"values":[[1,"1.5"],[2,"NaN"]]},
            {"metric":{"pod":"b"},"values":[[1,"+Inf"]]}]}}"#;
        let values = parse(matrix).unwrap();
        assert_eq!(values.len(), 3);
        assert!(values[1].is_nan() && values[2].is_infinite());
    }

    #[test]
    fn reports_the_line_of_a_bad_value() {
        assert_eq!(
            parse("1\n2\nabc\n").unwrap_err().to_string(),
            "line 3: \"abc\" is not a number"
        );
        assert!(parse(r#"{"data":{"resultType":"string","result":[1,"x"]}}"#).is_err());
    }
}
