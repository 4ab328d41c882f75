//! Google Cloud Monitoring (`stackdriver`) and Google Managed Prometheus against local
//! stand-ins for Google's OAuth token endpoint, the GKE metadata server and the Monitoring
//! API, each following Google's documented requests and answers. The token endpoint checks the
//! JWT bearer grant as Google does: its claims, and its RS256 signature against the public key
//! of the service-account key (tests/fixtures/google: a throwaway RSA key made with `openssl
//! genpkey` for these tests only). A wrong or missing credential gets Google's own refusal,
//! and serin's error says so without the key or the token.

mod mock;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use mock::{Reply, Request};
use serin::api::metric_provider::MetricProviderKind;
use serin::engine::input::Sample;
use serin::metrics::builtin::Source;
use serin::metrics::prometheus::Endpoint;
use serin::metrics::provider::{Connection, Credentials, sample};
use serin::metrics::queries;
use serin::metrics::stackdriver::Stackdriver;

const EMAIL: &str = "serin-reader@shop-prod.iam.gserviceaccount.com";
const KEY_TOKEN: &str = "ya29.stand-in-for-the-key";
const METADATA_TOKEN: &str = "ya29.stand-in-for-workload-identity";
/// A token the metadata server hands out that the Monitoring API no longer accepts.
const REVOKED_TOKEN: &str = "ya29.revoked";
const PROJECT: &str = "shop-prod";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/google/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A service-account key file as Google hands it out, with `pem` as its private key and the
/// token endpoint at `token_uri`.
fn key_file(pem: &[u8], token_uri: &str, email: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef",
        "private_key": String::from_utf8_lossy(pem),
        "client_email": email,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    })
    .to_string()
}

/// A request header's value (names are case-insensitive).
fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

fn form(request: &Request) -> BTreeMap<String, String> {
    let body = String::from_utf8_lossy(&request.body);
    reqwest::Url::parse(&format!("http://form/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn invalid_grant(description: &str) -> Reply {
    Reply::status(
        400,
        &serde_json::json!({"error": "invalid_grant", "error_description": description})
            .to_string(),
    )
    .header("content-type", "application/json")
}

/// Google's OAuth token endpoint (`POST /token`) for the JWT bearer grant: the assertion's
/// header says RS256, its claims name the known account, the monitoring scope and this
/// endpoint as audience, valid for an hour at most, and its signature verifies with the
/// account's public key.
fn token_endpoint(request: &Request) -> Reply {
    if !request.line().starts_with("POST /token ") {
        return Reply::status(404, "Not Found");
    }
    let form = form(request);
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Reply::status(
            400,
            r#"{"error":"unsupported_grant_type","error_description":"Invalid grant_type: "}"#,
        );
    }
    let Some(assertion) = form.get("assertion") else {
        return invalid_grant("Missing required parameter: assertion");
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    let [head, claims, signature] = parts[..] else {
        return invalid_grant(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
        );
    };
    let decode = |part: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default())
            .unwrap_or_default()
    };
    let (head_json, claims_json) = (decode(head), decode(claims));
    if head_json["alg"] != "RS256" {
        return invalid_grant("Invalid JWT: unsupported algorithm");
    }
    let host = header(request, "host").unwrap_or_default();
    let lifetime =
        claims_json["exp"].as_i64().unwrap_or(0) - claims_json["iat"].as_i64().unwrap_or(0);
    if claims_json["aud"] != format!("http://{host}/token")
        || claims_json["scope"] != "https://www.googleapis.com/auth/monitoring.read"
        || !(1..=3600).contains(&lifetime)
    {
        return invalid_grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    if claims_json["iss"] != EMAIL {
        return invalid_grant("Invalid grant: account not found");
    }
    let public = fixture("public.der");
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &public,
    );
    let signed = format!("{head}.{claims}");
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    if key.verify(signed.as_bytes(), &signature).is_err() {
        return invalid_grant("Invalid JWT Signature.");
    }
    Reply::ok(&format!(
        r#"{{"access_token":"{KEY_TOKEN}","expires_in":3599,"token_type":"Bearer"}}"#
    ))
    .header("content-type", "application/json")
}

/// The GKE metadata server: the default account's token, only with `Metadata-Flavor: Google`
/// (without it, the 403 and text the metadata server answers). `revoked` hands out a token the
/// Monitoring API refuses.
fn metadata(revoked: bool) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |request| {
        if header(request, "metadata-flavor") != Some("Google") {
            return Reply::status(403, "Missing Metadata-Flavor:Google header.\n");
        }
        if !request
            .line()
            .starts_with("GET /computeMetadata/v1/instance/service-accounts/default/token")
        {
            return Reply::status(404, "Not Found\n");
        }
        let token = if revoked {
            REVOKED_TOKEN
        } else {
            METADATA_TOKEN
        };
        Reply::ok(&format!(
            r#"{{"access_token":"{token}","expires_in":3599,"token_type":"Bearer"}}"#
        ))
        .header("content-type", "application/json")
    }
}

fn google_error(code: u16, status: &str, message: &str) -> Reply {
    Reply::status(
        code,
        &serde_json::json!({"error": {"code": code, "message": message, "status": status}})
            .to_string(),
    )
    .header("content-type", "application/json")
}

/// The Monitoring API: bearer tokens the stand-ins issued only (Google's 401 otherwise),
/// `timeSeries:query` for the project with MQL in a JSON body (the canary's latency 12.5 newest,
/// `gone` nothing, other text a syntax error), and Google Managed Prometheus' query API.
fn monitoring(request: &Request) -> Reply {
    let authorization = header(request, "authorization");
    match authorization {
        None => {
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            );
        }
        Some(a)
            if a != format!("Bearer {KEY_TOKEN}") && a != format!("Bearer {METADATA_TOKEN}") =>
        {
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            );
        }
        Some(_) => {}
    }
    let line = request.line();
    if line.starts_with(&format!("POST /v3/projects/{PROJECT}/timeSeries:query ")) {
        return mql(&request.json()["query"]);
    }
    let gmp = format!("GET /v1/projects/{PROJECT}/location/global/prometheus/api/v1/");
    if line.starts_with(&format!("{gmp}query_range?")) {
        return Reply::ok(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"3"],[2,"3.5"],[3,"4"]]}]}}"#,
        );
    }
    if line.starts_with(&format!("{gmp}query?")) {
        return Reply::ok(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.25"]}]}}"#,
        );
    }
    if line.starts_with("POST /v3/projects/") {
        return google_error(
            403,
            "PERMISSION_DENIED",
            "Permission monitoring.timeSeries.list denied (or the resource may not exist).",
        );
    }
    google_error(404, "NOT_FOUND", "Requested entity was not found.")
}

fn mql(query: &serde_json::Value) -> Reply {
    let query = query.as_str().unwrap_or_default();
    if !query.starts_with("fetch ") {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "Line 1, column 1: Expected table operation 'fetch'.",
        );
    }
    if query.contains("'gone'") {
        return Reply::ok(
            r#"{"timeSeriesDescriptor":{"pointDescriptors":[{"key":"value.latency","valueType":"DOUBLE"}]}}"#,
        );
    }
    Reply::ok(
        r#"{"timeSeriesDescriptor":{"pointDescriptors":[{"key":"value.latency","valueType":"DOUBLE"}]},"timeSeriesData":[{"labelValues":[],"pointData":[{"values":[{"doubleValue":12.5}],"timeInterval":{"startTime":"2026-12-02T01:00:00Z","endTime":"2026-12-02T01:01:00Z"}},{"values":[{"doubleValue":30}],"timeInterval":{"startTime":"2026-12-02T00:59:00Z","endTime":"2026-12-02T01:00:00Z"}}]}]}"#,
    )
}

fn connection(kind: MetricProviderKind, address: &str, secret: &[(&str, String)]) -> Connection {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let secret: BTreeMap<String, String> = secret
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Connection {
        client: reqwest::Client::new(),
        address: address.to_string(),
        credentials: Credentials::of(kind, &secret),
        headers: Vec::new(),
        timeout: Duration::from_secs(10),
        interval: Duration::from_secs(60),
        region: None,
    }
}

const THRESHOLD: &str = "      - name: latency\n        templateRef: {name: latency}\n        interval: 1m\n        thresholdRange: {max: 20}\n";
const JUDGED: &str = "      - name: latency\n        templateRef: {name: latency}\n        judge: {step: 10s, lookback: 10m, minSamples: 3}\n";
const MQL: &str = "fetch k8s_container | metric 'istio.io/service/server/response_latencies' | filter metric.destination_service_name == '{{ target }}-canary' | align delta(1m) | every 1m | group_by [], [p99: percentile(value.response_latencies, 99)]";

fn canary_queries(metric: &str, template: &str) -> serin::metrics::Queries {
    let yaml = format!(
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: web, namespace: shop}}\nspec:\n  targetRef: {{name: web}}\n  service: {{port: 80}}\n  analysis:\n    stepWeight: 10\n    metrics:\n{metric}"
    );
    let canary: serin::api::Canary = serin::api::load::from_yaml(&yaml, "").unwrap();
    let metric = canary.spec.analysis.metrics[0].clone();
    queries(&canary, &metric, Some(template), Source::App).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn error_of(sample: Sample) -> String {
    match sample {
        Sample::Error(message) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn stackdriver_runs_mql_with_a_service_account_keys_token_asked_once() {
    let google = mock::serve(token_endpoint).await;
    let api = mock::serve(monitoring).await;
    let key = key_file(&fixture("key.pem"), &format!("{}/token", google.url), EMAIL);
    let secret = [("project", PROJECT.to_string()), ("serviceAccountKey", key)];
    let queries = canary_queries(THRESHOLD, MQL);
    for _ in 0..2 {
        let conn = connection(MetricProviderKind::Stackdriver, &api.url, &secret);
        let found = sample(MetricProviderKind::Stackdriver, conn, &queries, now(), None).await;
        assert_eq!(found, Sample::Value(12.5), "the newest point");
    }
    assert_eq!(
        google.received().len(),
        1,
        "the token is kept until it expires"
    );
    let asked = &api.received()[0];
    assert!(
        asked
            .head
            .contains(&format!("authorization: Bearer {KEY_TOKEN}")),
        "{}",
        asked.head
    );
    assert!(
        asked.head.contains("content-type: application/json"),
        "{}",
        asked.head
    );
    assert_eq!(
        asked.json()["query"],
        MQL.replace("{{ target }}", "web"),
        "the template's MQL, rendered, as the body"
    );
    let claims = form(&google.received()[0])["assertion"]
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!(claims["iss"], EMAIL);

    // The project may come from the key file alone; no series is no data.
    let key = key_file(&fixture("key.pem"), &format!("{}/token", google.url), EMAIL);
    let conn = connection(
        MetricProviderKind::Stackdriver,
        &api.url,
        &[("serviceAccountKey", key)],
    );
    let gone = canary_queries(
        THRESHOLD,
        "fetch k8s_container | filter metric.name == 'gone'",
    );
    let found = sample(MetricProviderKind::Stackdriver, conn, &gone, now(), None).await;
    assert_eq!(found, Sample::NoData);
}

#[tokio::test]
async fn stackdriver_without_a_key_uses_workload_identity_from_the_metadata_server() {
    let metadata_server = mock::serve(metadata(false)).await;
    let api = mock::serve(monitoring).await;
    let host = metadata_server
        .url
        .trim_start_matches("http://")
        .to_string();
    let conn = connection(
        MetricProviderKind::Stackdriver,
        &api.url,
        &[("project", PROJECT.into())],
    );
    let provider = Stackdriver::connect_with(conn, host);
    let found =
        serin::metrics::sample(&provider, &canary_queries(THRESHOLD, MQL), now(), None).await;
    assert_eq!(found, Sample::Value(12.5));
    let asked = &metadata_server.received()[0];
    assert!(
        asked.head.contains("metadata-flavor: Google"),
        "{}",
        asked.head
    );
    assert!(
        asked
            .line()
            .contains("scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fmonitoring.read"),
        "{}",
        asked.line()
    );
    assert!(
        api.received()[0]
            .head
            .contains(&format!("authorization: Bearer {METADATA_TOKEN}"))
    );
}

#[tokio::test]
async fn wrong_or_missing_google_credentials_are_googles_refusals_said_without_them() {
    let google = mock::serve(token_endpoint).await;
    let api = mock::serve(monitoring).await;
    let token_uri = format!("{}/token", google.url);
    let queries = canary_queries(THRESHOLD, MQL);
    let check = |secret: Vec<(&'static str, String)>| {
        let conn = connection(MetricProviderKind::Stackdriver, &api.url, &secret);
        let queries = queries.clone();
        async move { sample(MetricProviderKind::Stackdriver, conn, &queries, now(), None).await }
    };
    // Another key signing for the account: the signature does not verify.
    let other = fixture("other-key.pem");
    let error = error_of(
        check(vec![
            ("project", PROJECT.into()),
            ("serviceAccountKey", key_file(&other, &token_uri, EMAIL)),
        ])
        .await,
    );
    assert_eq!(
        error,
        "query refused by the metrics server (Google OAuth invalid_grant, HTTP 400): Invalid JWT Signature. (exchanging the Secret's serviceAccountKey for an access token)"
    );
    let pem = String::from_utf8(other).unwrap();
    let body = pem.lines().nth(1).unwrap();
    assert!(!error.contains(body), "never the key");
    // An account Google does not know.
    let error = error_of(
        check(vec![
            ("project", PROJECT.into()),
            (
                "serviceAccountKey",
                key_file(
                    &fixture("key.pem"),
                    &token_uri,
                    "gone@shop-prod.iam.gserviceaccount.com",
                ),
            ),
        ])
        .await,
    );
    assert!(
        error.contains("(Google OAuth invalid_grant, HTTP 400): Invalid grant: account not found"),
        "{error}"
    );
    // A key that is not one: said before anything is sent.
    let sent = google.received().len();
    let error = error_of(
        check(vec![
            ("project", PROJECT.into()),
            ("serviceAccountKey", "{\"private_key\": \"hunter2\"}".into()),
        ])
        .await,
    );
    assert!(
        error.starts_with("query refused by the metrics server (secretRef): the Secret's serviceAccountKey is not a service-account key file"),
        "{error}"
    );
    assert!(!error.contains("hunter2"));
    // No project anywhere (a workload identity setup whose Secret lacks it).
    let error = error_of(check(vec![]).await);
    assert_eq!(
        error,
        "query refused by the metrics server (secretRef): the Secret (secretRef) has no project: the Google Cloud project whose metrics are queried"
    );
    assert_eq!(
        google.received().len(),
        sent,
        "nothing sent for a bad Secret"
    );

    // A token the Monitoring API refuses: Google's 401 with its JSON error, on the Canary.
    let metadata_server = mock::serve(metadata(true)).await;
    let host = metadata_server
        .url
        .trim_start_matches("http://")
        .to_string();
    let conn = connection(
        MetricProviderKind::Stackdriver,
        &api.url,
        &[("project", PROJECT.into())],
    );
    let provider = Stackdriver::connect_with(conn, host);
    let error = error_of(serin::metrics::sample(&provider, &queries, now(), None).await);
    assert_eq!(
        error,
        "query refused by the metrics server (Google UNAUTHENTICATED, HTTP 401): Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project. (Google refused the access token of the Secret's serviceAccountKey or of workload identity)"
    );
    assert!(!error.contains(REVOKED_TOKEN));
    // No metadata server (not on GKE): the transport error says where serin looked and why.
    let conn = connection(
        MetricProviderKind::Stackdriver,
        &api.url,
        &[("project", PROJECT.into())],
    );
    let closed = mock::closed_url().trim_start_matches("http://").to_string();
    let provider = Stackdriver::connect_with(conn, closed);
    let error = error_of(serin::metrics::sample(&provider, &queries, now(), None).await);
    assert!(error.starts_with("metrics server unreachable: "), "{error}");
    assert!(
        error.contains("serin asks the GKE metadata server at 127.0.0.1:"),
        "{error}"
    );
    // A project the account may not read: Google's 403 with the role to grant.
    let key = key_file(&fixture("key.pem"), &token_uri, EMAIL);
    let error = error_of(
        check(vec![
            ("project", "someone-else".into()),
            ("serviceAccountKey", key),
        ])
        .await,
    );
    assert_eq!(
        error,
        "query refused by the metrics server (Google PERMISSION_DENIED, HTTP 403): Permission monitoring.timeSeries.list denied (or the resource may not exist). (the Google service account needs roles/monitoring.viewer on the project)"
    );
    // MQL the API cannot parse: its own words.
    let bad = canary_queries(THRESHOLD, "fetc k8s_container");
    let key = key_file(&fixture("key.pem"), &token_uri, EMAIL);
    let conn = connection(
        MetricProviderKind::Stackdriver,
        &api.url,
        &[("project", PROJECT.into()), ("serviceAccountKey", key)],
    );
    let error = error_of(sample(MetricProviderKind::Stackdriver, conn, &bad, now(), None).await);
    assert_eq!(
        error,
        "query refused by the metrics server (Google INVALID_ARGUMENT, HTTP 400): Line 1, column 1: Expected table operation 'fetch'."
    );
}

#[tokio::test]
async fn google_managed_prometheus_answers_threshold_checks_and_the_judge_with_a_google_token() {
    let google = mock::serve(token_endpoint).await;
    let api = mock::serve(monitoring).await;
    let address = format!(
        "{}/v1/projects/{PROJECT}/location/global/prometheus",
        api.url
    );
    let key = key_file(&fixture("key.pem"), &format!("{}/token", google.url), EMAIL);
    // A token for another server in the same Secret is not sent to Google.
    let secret = [
        ("serviceAccountKey", key),
        ("token", "not-for-google".to_string()),
    ];
    let promql = "histogram_quantile(0.99, sum(rate(latency_bucket{pod=~\"{{ workload }}-.*\"}[1m])) by (le))";
    let conn = connection(MetricProviderKind::Prometheus, &address, &secret);
    let found = sample(
        MetricProviderKind::Prometheus,
        conn,
        &canary_queries(THRESHOLD, promql),
        now(),
        None,
    )
    .await;
    assert_eq!(found, Sample::Value(0.25));
    let conn = connection(MetricProviderKind::Prometheus, &address, &secret);
    let judged = sample(
        MetricProviderKind::Prometheus,
        conn,
        &canary_queries(JUDGED, promql),
        now(),
        None,
    )
    .await;
    assert_eq!(
        judged,
        Sample::Compared {
            canary: vec![3.0, 3.5, 4.0],
            primary: vec![3.0, 3.5, 4.0]
        }
    );
    assert_eq!(
        google.received().len(),
        1,
        "one token for the three queries"
    );
    for asked in api.received() {
        assert!(
            asked
                .head
                .contains(&format!("authorization: Bearer {KEY_TOKEN}")),
            "{}",
            asked.head
        );
    }

    // Workload identity, chosen by Google's address: the stand-in's address is not Google's, so
    // the metadata server is given; a revoked token is Google's 401, said as such.
    let metadata_server = mock::serve(metadata(true)).await;
    let host = metadata_server
        .url
        .trim_start_matches("http://")
        .to_string();
    let mut conn = connection(MetricProviderKind::Prometheus, &address, &[]);
    conn.address =
        "https://monitoring.googleapis.com/v1/projects/shop-prod/location/global/prometheus".into();
    assert!(serin::metrics::prometheus::is_google(&conn));
    conn.address = address.clone();
    assert!(
        !serin::metrics::prometheus::is_google(&conn),
        "an address and no key: plain Prometheus"
    );
    let endpoint = Endpoint::connect_google(conn, host);
    let error = error_of(
        serin::metrics::sample(&endpoint, &canary_queries(THRESHOLD, promql), now(), None).await,
    );
    assert!(
        error.starts_with("query refused by the metrics server (Google UNAUTHENTICATED, HTTP 401): Request had invalid authentication credentials."),
        "{error}"
    );
}
