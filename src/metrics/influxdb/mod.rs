//! InfluxDB, in both of its query languages. Flagger's influxdb provider speaks Flux only
//! (InfluxDB 2's `/api/v2/query`, a token and an `org` from the Secret); InfluxDB 1.x servers
//! (Debian ships 1.6) answer only InfluxQL on `/query`. The query says which: one that starts
//! with `SELECT` is InfluxQL, anything else is Flux (Flux has no `SELECT`).
//!
//! - [`flux`]: the annotated CSV of the v2 API;
//! - [`influxql`]: the JSON of the 1.x API.
//!
//! Credentials: `token` is sent as `Authorization: Token <token>` (InfluxDB 2, and 1.8+ for
//! both APIs); else `username` and `password`, as basic auth on `/query`, and as the token
//! `username:password` on `/api/v2/query` (InfluxDB 1.8's documented form). The Secret's `org`
//! (Flux) and `database` (InfluxQL's `db` parameter) are read from it too, as Flagger reads
//! `org`.

pub mod flux;
pub mod influxql;

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::exchange::{Auth, Call, Reach, Refusal};
use super::provider::{Answer, Connection, Credentials, MetricsProvider, QueryError};

/// The largest answer read. A one-series answer of a day at 10-second resolution is under
/// 1 MB in either format.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// The Flux query [`MetricsProvider::probe`] sends with an `org`: one row, value 1.
pub const PROBE_FLUX: &str = "import \"array\"\narray.from(rows: [{_value: 1.0}])";

/// The language of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Flux,
    InfluxQl,
}

impl Language {
    /// InfluxQL when the query starts with `SELECT` (any case), else Flux.
    pub fn of(query: &str) -> Self {
        let start = query.trim_start();
        let select = start
            .get(..6)
            .is_some_and(|word| word.eq_ignore_ascii_case("select"));
        if select && start[6..].starts_with(|c: char| c.is_whitespace()) {
            Self::InfluxQl
        } else {
            Self::Flux
        }
    }
}

/// An InfluxDB server: the InfluxDB implementation of [`MetricsProvider`].
#[derive(Clone)]
pub struct InfluxDb {
    /// E.g. `http://influxdb.monitoring:8086`.
    pub reach: Reach,
    /// The Secret's `token`, or its `username` and `password`.
    pub token: Option<String>,
    pub basic: Option<(String, String)>,
    /// Flux: the organization (`org` key of the Secret).
    pub org: Option<String>,
    /// InfluxQL: the database (`database` key of the Secret).
    pub database: Option<String>,
}

impl InfluxDb {
    /// The InfluxDB client for a resolved connection.
    pub fn connect(connection: Connection) -> Self {
        let credentials: &Credentials = &connection.credentials;
        let get = |key| credentials.get(key).map(str::to_string);
        Self {
            token: get("token"),
            basic: get("username").zip(get("password")),
            org: get("org"),
            database: get("database"),
            reach: Reach::of(&connection),
        }
    }

    fn auth(&self, language: Language) -> Auth {
        match (&self.token, &self.basic, language) {
            (Some(token), _, _) => Auth::Token(token.clone()),
            (None, Some((username, password)), Language::InfluxQl) => Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            (None, Some((username, password)), Language::Flux) => {
                Auth::Token(format!("{username}:{password}"))
            }
            (None, None, _) => Auth::None,
        }
    }

    /// Sends `query` in its language and returns the answer's text.
    async fn query(&self, query: &str) -> Result<String, QueryError> {
        let language = Language::of(query);
        let auth = self.auth(language);
        let server = self.reach.server(&auth);
        let mut params: Vec<(&str, &str)> = Vec::new();
        let (path, body, refusal): (_, _, Refusal) = match language {
            Language::InfluxQl => {
                params.extend([("q", query), ("epoch", "ms")]);
                params.extend(self.database.as_deref().map(|db| ("db", db)));
                ("query", None, influxql::refusal)
            }
            Language::Flux => {
                params.extend(self.org.as_deref().map(|org| ("org", org)));
                let body = ("application/json", flux_request(query));
                ("api/v2/query", Some(body), flux::refusal)
            }
        };
        let call = Call {
            path,
            params: &params,
            body,
            limit: MAX_ANSWER,
        };
        server.send(&call, refusal).await
    }
}

/// The v2 query request: the Flux text and the annotated CSV dialect serin reads.
fn flux_request(query: &str) -> String {
    serde_json::json!({
        "query": query,
        "type": "flux",
        "dialect": {
            "header": true,
            "delimiter": ",",
            "annotations": ["datatype", "group", "default"],
            "commentPrefix": "#",
            "dateTimeFormat": "RFC3339",
        },
    })
    .to_string()
}

impl MetricsProvider for InfluxDb {
    async fn instant(&self, query: &str) -> Result<Answer<f64>, QueryError> {
        let body = self.query(query).await?;
        match Language::of(query) {
            Language::Flux => flux::last_value(&body),
            Language::InfluxQl => influxql::last_value(&body),
        }
    }

    /// The query's own time range and grouping make the series (InfluxDB has no evaluation
    /// at steps as Prometheus has); serin keeps the points inside the judge's window.
    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        _step: Duration,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        let body = self.query(query).await?;
        match Language::of(query) {
            Language::Flux => flux::values_between(&body, start, end),
            Language::InfluxQl => influxql::values_between(&body, start, end),
        }
    }

    /// With an `org`, a Flux query answering 1; else InfluxQL's `SHOW DATABASES`. Either goes
    /// through the credentials and headers the real queries use.
    async fn probe(&self) -> Result<(), QueryError> {
        if self.org.is_some() {
            return match self.instant(PROBE_FLUX).await? {
                Answer::Value(1.0) => Ok(()),
                other => Err(QueryError::Unhealthy(format!(
                    "a Flux query of the value 1 answered {other:?}"
                ))),
            };
        }
        let body = self.query_influxql("SHOW DATABASES").await?;
        influxql::answered(&body)
    }
}

impl InfluxDb {
    /// `statement` as InfluxQL, whatever its first word.
    async fn query_influxql(&self, statement: &str) -> Result<String, QueryError> {
        let auth = self.auth(Language::InfluxQl);
        let server = self.reach.server(&auth);
        let call = Call {
            path: "query",
            params: &[("q", statement)],
            body: None,
            limit: MAX_ANSWER,
        };
        server.send(&call, influxql::refusal).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_starting_with_select_is_influxql_anything_else_flux() {
        assert_eq!(Language::of("  SELECT mean(v) FROM m"), Language::InfluxQl);
        assert_eq!(Language::of("select\n  last(v) FROM m"), Language::InfluxQl);
        assert_eq!(
            Language::of("from(bucket: \"b\") |> range(start: -1m)"),
            Language::Flux
        );
        assert_eq!(
            Language::of("selected = from(bucket: \"b\")"),
            Language::Flux
        );
        assert_eq!(Language::of("sel"), Language::Flux);
    }

    #[test]
    fn credentials_become_the_header_each_api_takes() {
        let with = |token: Option<&str>, basic: Option<(&str, &str)>| InfluxDb {
            reach: Reach {
                client: crate::outbound::client_builder().build().unwrap(),
                address: String::new(),
                headers: Vec::new(),
                timeout: Duration::from_secs(1),
            },
            token: token.map(str::to_string),
            basic: basic.map(|(u, p)| (u.to_string(), p.to_string())),
            org: None,
            database: None,
        };
        let shown = |db: &InfluxDb, language| format!("{:?}", db.auth(language));
        let token = with(Some("t"), Some(("u", "p")));
        assert_eq!(shown(&token, Language::Flux), "token");
        assert_eq!(shown(&token, Language::InfluxQl), "token");
        let basic = with(None, Some(("u", "p")));
        assert_eq!(shown(&basic, Language::InfluxQl), "basic");
        let Auth::Token(pair) = basic.auth(Language::Flux) else {
            panic!("Flux takes username:password as a token")
        };
        assert_eq!(pair, "u:p");
        assert_eq!(shown(&with(None, None), Language::Flux), "none");
    }
}
