//! What load to run, read from a webhook's `metadata` (all values are strings, as in every
//! webhook). Two spellings are accepted: serin's own keys (`url`, `rate`, `duration`, ...) and
//! Flagger's `cmd: "hey -z 1m -q 10 -c 2 http://..."`, so a Flagger manifest keeps working.
//! Pure: no I/O, every problem names the metadata key.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::api::duration::Duration as GoDuration;

/// Requests per second when `rate` is not set.
pub const DEFAULT_RATE: f64 = 10.0;
/// Requests in flight at most when `concurrency` is not set.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Per-request timeout when `timeout` is not set.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bounds that keep a typo (`rate: "50000000"`) from turning the tester into a weapon.
const MAX_RATE: f64 = 100_000.0;
const MAX_CONCURRENCY: usize = 10_000;

/// One load: `rate` requests per second to `url` with at most `concurrency` in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    pub url: String,
    pub method: reqwest::Method,
    pub rate: f64,
    pub concurrency: usize,
    /// None: runs until the rollout's phase ends, `/stop`, or the idle timeout.
    pub duration: Option<Duration>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub timeout: Duration,
    /// Answer the hook only when the load is over, with its summary (needs `duration`).
    pub wait: bool,
    /// With `wait`: an error ratio above this answers the hook with a "no" (422).
    pub max_error_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metadata.{key}: {reason}")]
pub struct SpecError {
    pub key: String,
    pub reason: String,
}

fn error(key: &str, reason: impl Into<String>) -> SpecError {
    SpecError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

impl LoadSpec {
    /// Reads the load from a hook's metadata.
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Result<Self, SpecError> {
        let mut spec = match metadata.get("cmd") {
            Some(cmd) => from_hey(cmd)?,
            None => {
                let url = metadata.get("url").ok_or_else(|| {
                    error(
                        "url",
                        "missing: say where to send load (or give a `cmd: hey ...` as in Flagger)",
                    )
                })?;
                let mut spec = Self::to(url)?;
                if let Some(rate) = metadata.get("rate") {
                    spec.rate = number(rate, "rate")?;
                }
                if let Some(c) = metadata.get("concurrency") {
                    spec.concurrency = c.trim().parse().map_err(|_| {
                        error("concurrency", format!("{c:?} is not a whole number"))
                    })?;
                }
                if let Some(d) = metadata.get("duration") {
                    spec.duration = Some(duration(d, "duration")?);
                }
                if let Some(m) = metadata.get("method") {
                    spec.method = method(m, "method")?;
                }
                if let Some(h) = metadata.get("headers") {
                    for line in h.lines().filter(|l| !l.trim().is_empty()) {
                        spec.headers.push(header(line, "headers")?);
                    }
                }
                spec.body = metadata.get("body").cloned();
                if let Some(t) = metadata.get("timeout") {
                    spec.timeout = duration(t, "timeout")?;
                }
                spec
            }
        };
        if let Some(w) = metadata.get("wait") {
            spec.wait = match w.trim() {
                "true" => true,
                "false" => false,
                other => return Err(error("wait", format!("{other:?} is not true or false"))),
            };
        }
        if let Some(r) = metadata.get("maxErrorRatio") {
            let ratio = number(r, "maxErrorRatio")?;
            if !(0.0..=1.0).contains(&ratio) {
                return Err(error("maxErrorRatio", "must be between 0 and 1"));
            }
            spec.max_error_ratio = Some(ratio);
        }
        spec.check()?;
        Ok(spec)
    }

    /// Default load against `url`.
    fn to(url: &str) -> Result<Self, SpecError> {
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|e| error("url", format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(error("url", format!("{url:?}: only http and https")));
        }
        Ok(Self {
            url: parsed.to_string(),
            method: reqwest::Method::GET,
            rate: DEFAULT_RATE,
            concurrency: DEFAULT_CONCURRENCY,
            duration: None,
            headers: Vec::new(),
            body: None,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            wait: false,
            max_error_ratio: None,
        })
    }

    fn check(&self) -> Result<(), SpecError> {
        if !(self.rate > 0.0 && self.rate <= MAX_RATE) {
            return Err(error(
                "rate",
                format!("must be above 0 and at most {MAX_RATE} requests per second"),
            ));
        }
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(error(
                "concurrency",
                format!("must be between 1 and {MAX_CONCURRENCY}"),
            ));
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(error(
                "duration",
                "must be above 0 (leave it out to run until the phase ends)",
            ));
        }
        if self.wait && self.duration.is_none() {
            return Err(error(
                "wait",
                "needs a duration: the hook is answered when the load is over",
            ));
        }
        if self.timeout.is_zero() {
            return Err(error("timeout", "must be above 0"));
        }
        Ok(())
    }
}

/// The tester's own bounds on one load (`--max-rate`, `--max-concurrency`, `--max-duration`):
/// whoever holds the token still cannot turn the tester against a service at full force.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_rate: f64,
    pub max_concurrency: usize,
    pub max_duration: Duration,
}

impl LoadSpec {
    /// Refuses a load above the limits, naming the metadata key that asked for it (`cmd` for
    /// Flagger's spelling) and the flag that bounds it.
    pub fn within(&self, limits: &Limits, from_cmd: bool) -> Result<(), SpecError> {
        let key = |own: &'static str| if from_cmd { "cmd" } else { own };
        if self.rate > limits.max_rate {
            return Err(error(
                key("rate"),
                format!(
                    "{} requests per second is above this tester's --max-rate {}",
                    self.rate, limits.max_rate
                ),
            ));
        }
        if self.concurrency > limits.max_concurrency {
            return Err(error(
                key("concurrency"),
                format!(
                    "{} requests in flight is above this tester's --max-concurrency {}",
                    self.concurrency, limits.max_concurrency
                ),
            ));
        }
        if let Some(d) = self.duration.filter(|d| *d > limits.max_duration) {
            return Err(error(
                key("duration"),
                format!(
                    "{}s is above this tester's --max-duration of {}s",
                    d.as_secs(),
                    limits.max_duration.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

fn number(text: &str, key: &str) -> Result<f64, SpecError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| error(key, format!("{text:?} is not a number")))
}

fn duration(text: &str, key: &str) -> Result<Duration, SpecError> {
    GoDuration::parse(text.trim())
        .map(GoDuration::as_std)
        .map_err(|e| error(key, e.to_string()))
}

fn method(text: &str, key: &str) -> Result<reqwest::Method, SpecError> {
    reqwest::Method::from_bytes(text.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| error(key, format!("{text:?} is not an HTTP method")))
}

fn header(line: &str, key: &str) -> Result<(String, String), SpecError> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| error(key, format!("{line:?} is not `Name: value`")))?;
    let name = name.trim();
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| error(key, format!("{name:?} is not a header name")))?;
    Ok((name.to_string(), value.trim().to_string()))
}

/// Flagger's loadtester runs `hey`; serin reads the same flags and generates the load itself.
/// hey's `-q` is per worker, so the total rate is `q × c`.
fn from_hey(cmd: &str) -> Result<LoadSpec, SpecError> {
    let key = "cmd";
    let words = split_words(cmd).map_err(|reason| error(key, reason))?;
    let mut words = words.into_iter();
    match words.next().as_deref() {
        Some("hey") => {}
        Some(other) => {
            return Err(error(
                key,
                format!(
                    "serin loadtester runs HTTP load itself and does not run commands ({other:?}); \
                     use `hey ...` flags or the url/rate/duration keys (docs/webhooks.md)"
                ),
            ));
        }
        None => return Err(error(key, "empty")),
    }
    let (mut per_worker, mut concurrency, mut url) = (None, 50_usize, None);
    let mut spec = LoadSpec::to("http://placeholder.invalid/")?;
    let mut content_type = None;
    while let Some(word) = words.next() {
        let mut value = |flag: &str| {
            words
                .next()
                .ok_or_else(|| error(key, format!("{flag} needs a value")))
        };
        match word.as_str() {
            "-z" => spec.duration = Some(duration(&value("-z")?, key)?),
            "-q" => per_worker = Some(number(&value("-q")?, key)?),
            "-c" => {
                let c = value("-c")?;
                concurrency = c
                    .parse()
                    .map_err(|_| error(key, format!("-c {c:?} is not a whole number")))?;
            }
            "-m" => spec.method = method(&value("-m")?, key)?,
            "-H" => spec.headers.push(header(&value("-H")?, key)?),
            "-d" => spec.body = Some(value("-d")?),
            "-T" => content_type = Some(value("-T")?),
            "-t" => {
                let t = value("-t")?;
                let secs: u64 = t
                    .parse()
                    .map_err(|_| error(key, format!("-t {t:?} is not whole seconds")))?;
                // hey's -t 0 means no timeout; serin keeps a bound.
                spec.timeout = if secs == 0 {
                    Duration::from_secs(3600)
                } else {
                    Duration::from_secs(secs)
                };
            }
            "-n" => {
                return Err(error(
                    key,
                    "-n (a request count) is not supported: give -z with a duration",
                ));
            }
            "-host" => spec.headers.push(("Host".into(), value("-host")?)),
            "-A" => spec.headers.push(("Accept".into(), value("-A")?)),
            "-a" => {
                let credentials = value("-a")?;
                if !credentials.contains(':') {
                    return Err(error(key, "-a needs user:password"));
                }
                spec.headers.push((
                    "Authorization".into(),
                    format!("Basic {}", base64(&credentials)),
                ));
            }
            // Transport details of hey's own client; serin's generator keeps connections
            // alive and speaks HTTP/1.1, which is what a load test of a service wants.
            "-disable-keepalive" | "-disable-compression" | "-disable-redirects" | "-h2" => {}
            "-cpus" | "-o" => {
                value(word.as_str())?;
            }
            "-x" => {
                return Err(error(
                    key,
                    "-x (a proxy) is not supported: the load goes straight to the URL",
                ));
            }
            flag if flag.starts_with('-') => {
                return Err(error(key, format!("unknown hey flag {flag}")));
            }
            target => {
                if url.replace(target.to_string()).is_some() {
                    return Err(error(key, "more than one URL"));
                }
            }
        }
    }
    let url = url.ok_or_else(|| error(key, "no URL"))?;
    spec.url = LoadSpec::to(&url).map_err(|e| error(key, e.reason))?.url;
    spec.concurrency = concurrency;
    spec.rate = per_worker.map_or(DEFAULT_RATE, |q| q * concurrency as f64);
    if let Some(ct) = content_type {
        spec.headers.push(("Content-Type".into(), ct));
    }
    Ok(spec)
}

/// Standard base64 (RFC 4648, with padding) for hey's `-a user:password`.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Splits a command line into words, honouring single and double quotes (as a shell would
/// for the simple commands hooks carry). No expansion of any kind.
fn split_words(cmd: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in cmd.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unbalanced quote".into());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn serin_keys() {
        let spec = LoadSpec::from_metadata(&meta(&[
            ("url", "http://podinfo-canary.test:9898/"),
            ("rate", "25.5"),
            ("concurrency", "8"),
            ("duration", "1m"),
            ("method", "post"),
            ("headers", "X-Test: 1\nAuthorization: Bearer t"),
            ("body", "{}"),
        ]))
        .unwrap();
        assert_eq!(spec.rate, 25.5);
        assert_eq!(spec.concurrency, 8);
        assert_eq!(spec.duration, Some(Duration::from_secs(60)));
        assert_eq!(spec.method, reqwest::Method::POST);
        assert_eq!(spec.headers.len(), 2);
        assert_eq!(spec.headers[1], ("Authorization".into(), "Bearer t".into()));
    }

    #[test]
    fn flagger_hey_command() {
        let spec = LoadSpec::from_metadata(&meta(&[(
            "cmd",
            "hey -z 1m -q 10 -c 2 -H 'X-Canary: yes' -m POST -d '{\"a\": 1}' http://podinfo-canary.test:9898/",
        )]))
        .unwrap();
        assert_eq!(spec.rate, 20.0, "hey's -q is per worker");
        assert_eq!(spec.concurrency, 2);
        assert_eq!(spec.duration, Some(Duration::from_secs(60)));
        assert_eq!(spec.headers, vec![("X-Canary".into(), "yes".into())]);
        assert_eq!(spec.body.as_deref(), Some("{\"a\": 1}"));
        assert_eq!(spec.url, "http://podinfo-canary.test:9898/");
    }

    #[test]
    fn hey_transport_flags_are_accepted_and_host_accept_auth_become_headers() {
        let spec = LoadSpec::from_metadata(&meta(&[(
            "cmd",
            "hey -z 30s -c 1 -q 5 -h2 -disable-keepalive -cpus 2 -host app.example.com -A application/json -a 'ops:s3cret' http://podinfo-canary:9898/",
        )]))
        .unwrap();
        assert_eq!(
            spec.headers,
            vec![
                ("Host".into(), "app.example.com".into()),
                ("Accept".into(), "application/json".into()),
                ("Authorization".into(), "Basic b3BzOnMzY3JldA==".into()),
            ]
        );
        assert_eq!(spec.rate, 5.0);
    }

    #[test]
    fn a_load_above_the_testers_limits_is_refused_naming_key_and_flag() {
        let limits = Limits {
            max_rate: 100.0,
            max_concurrency: 8,
            max_duration: Duration::from_secs(600),
        };
        let load = |pairs: &[(&str, &str)]| LoadSpec::from_metadata(&meta(pairs)).unwrap();
        let fast = load(&[("url", "http://x/"), ("rate", "500")]);
        assert_eq!(
            fast.within(&limits, false).unwrap_err().to_string(),
            "metadata.rate: 500 requests per second is above this tester's --max-rate 100"
        );
        let wide = load(&[("url", "http://x/"), ("concurrency", "9")]);
        assert!(
            wide.within(&limits, false)
                .unwrap_err()
                .to_string()
                .starts_with("metadata.concurrency:")
        );
        let long = load(&[("url", "http://x/"), ("duration", "1h")]);
        assert!(
            long.within(&limits, false)
                .unwrap_err()
                .to_string()
                .contains("--max-duration")
        );
        // Flagger's hey defaults to 50 workers: named through `cmd`.
        let hey = load(&[("cmd", "hey -z 1m -q 1 http://x/")]);
        assert!(
            hey.within(&limits, true)
                .unwrap_err()
                .to_string()
                .starts_with("metadata.cmd:")
        );
        assert!(
            load(&[("url", "http://x/"), ("rate", "100"), ("duration", "10m")])
                .within(&limits, false)
                .is_ok()
        );
    }

    #[test]
    fn problems_name_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "metadata.url: missing"),
            (
                &[("url", "ftp://x/")],
                "metadata.url: \"ftp://x/\": only http",
            ),
            (
                &[("url", "http://x/"), ("rate", "fast")],
                "metadata.rate: \"fast\" is not a number",
            ),
            (
                &[("url", "http://x/"), ("rate", "0")],
                "metadata.rate: must be above 0",
            ),
            (
                &[("url", "http://x/"), ("duration", "1 minute")],
                "metadata.duration: invalid duration",
            ),
            (
                &[("url", "http://x/"), ("wait", "true")],
                "metadata.wait: needs a duration",
            ),
            (
                &[("url", "http://x/"), ("headers", "nocolon")],
                "metadata.headers: \"nocolon\" is not",
            ),
            (&[("cmd", "curl -s http://x/")], "does not run commands"),
            (
                &[("cmd", "hey -n 100 http://x/")],
                "-n (a request count) is not supported",
            ),
            (&[("cmd", "hey -z 1m 'http://x/")], "unbalanced quote"),
        ];
        for (pairs, expected) in cases {
            let message = LoadSpec::from_metadata(&meta(pairs))
                .unwrap_err()
                .to_string();
            assert!(message.contains(expected), "{pairs:?}: {message}");
        }
    }
}
