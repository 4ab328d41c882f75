//! AWS Signature Version 4, as AWS documents it for the `Authorization` header: a canonical
//! request (method, path, sorted query, the signed headers, the payload's SHA-256), a string to
//! sign naming the time and scope (`<date>/<region>/<service>/aws4_request`), and an HMAC-SHA256
//! chain from the secret key through the date, region and service to the signature.
//!
//! Pure functions of their inputs (the time included), checked against AWS's published test
//! vectors. Written on `hmac` and `sha2` (both already serin dependencies) rather than the
//! `aws-sigv4` crate, which brings the AWS SDK's runtime types with it for about 150 lines of
//! arithmetic. The secret never leaves this module except as the signature it makes.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name that starts the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// AWS credentials: an access key pair and, for temporary credentials, a session token.
/// Debug prints the access key id only (it names the key, it does not open anything).
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What the signature covers: the request as it goes on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The URL's path, as sent (`/` when empty).
    pub path: &'a str,
    /// The URL's query string without `?`, as sent (empty when none).
    pub query: &'a str,
    /// Headers to sign besides `host`, `x-amz-date` and `x-amz-security-token` (which
    /// [`sign`] adds), in any order and case.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Where the key is used: the region and the service's signing name (`monitoring` for
/// CloudWatch, `sts` for STS).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// `20150830T123600Z`: the time as SigV4 writes it in `X-Amz-Date`.
pub fn amz_date(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The headers that authenticate `request` sent to `host` at `at`: `X-Amz-Date`, the session
/// token when the key has one, and `Authorization`.
pub fn sign(
    request: &Request<'_>,
    host: &str,
    key: &Key,
    scope: Scope<'_>,
    at: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let date = amz_date(at);
    let mut headers: Vec<(&str, &str)> = request.headers.to_vec();
    headers.push(("host", host));
    headers.push(("x-amz-date", &date));
    if let Some(token) = &key.session_token {
        headers.push(("x-amz-security-token", token));
    }
    let canonical = canonical_request(&Request {
        headers: &headers,
        ..*request
    });
    let signed_headers = signed_header_names(&headers);
    let signature = signature(&key.secret_access_key, scope, &date, &canonical);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
        key.access_key_id,
        credential_scope(scope, &date)
    );
    let mut out = vec![("X-Amz-Date", date)];
    if let Some(token) = &key.session_token {
        out.push(("X-Amz-Security-Token", token.clone()));
    }
    out.push(("Authorization", authorization));
    out
}

/// The hex signature of a canonical request at `date` (`X-Amz-Date`'s form).
pub fn signature(secret: &str, scope: Scope<'_>, date: &str, canonical_request: &str) -> String {
    let key = signing_key(secret, &date[..date.len().min(8)], scope);
    hex(&hmac(
        &key,
        string_to_sign(scope, date, canonical_request).as_bytes(),
    ))
}

/// The canonical request: method, path, sorted encoded query, headers lowercased, trimmed and
/// sorted, the signed header names, and the hex SHA-256 of the body.
pub fn canonical_request(request: &Request<'_>) -> String {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), collapse(value)))
        .collect();
    headers.sort();
    let lines: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path
    };
    format!(
        "{}\n{path}\n{}\n{lines}\n{}\n{}",
        request.method,
        canonical_query(request.query),
        signed_header_names(request.headers),
        hex(&Sha256::digest(request.body))
    )
}

/// `content-type;host;x-amz-date`: the signed headers' names, lowercased and sorted.
pub fn signed_header_names(headers: &[(&str, &str)]) -> String {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.trim().to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names.join(";")
}

/// `<date>/<region>/<service>/aws4_request`.
pub fn credential_scope(scope: Scope<'_>, date: &str) -> String {
    format!(
        "{}/{}/{}/aws4_request",
        &date[..date.len().min(8)],
        scope.region,
        scope.service
    )
}

/// The string to sign: algorithm, time, scope and the hash of the canonical request.
pub fn string_to_sign(scope: Scope<'_>, date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{date}\n{}\n{}",
        credential_scope(scope, date),
        hex(&Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The signing key: `AWS4<secret>` HMAC'd with the day, the region, the service and
/// `aws4_request` in turn.
pub fn signing_key(secret: &str, day: &str, scope: Scope<'_>) -> Vec<u8> {
    [day, scope.region, scope.service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
            hmac(&key, part.as_bytes())
        })
}

/// A query string of `params` encoded as SigV4's canonical form encodes it (`%20` for a
/// space, not `+`), so that what is sent and what is signed cannot differ in their encoding.
pub fn query_string(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name.as_bytes()), encode(value.as_bytes())))
        .collect::<Vec<_>>()
        .join("&")
}

/// The query's parameters encoded as SigV4 wants (RFC 3986 unreserved characters kept, all
/// else `%XX` upper case) and sorted by name, then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (encode(&decode(name)), encode(&decode(value)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &[u8]) -> String {
    text.iter()
        .map(|&byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A query component as sent, `%XX` and `+` decoded, so that it is encoded once, canonically.
fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = bytes
            .get(at + 1..at + 3)
            .filter(|_| bytes[at] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[at]) {
            (Some(byte), _) => {
                out.push(byte);
                at += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                at += 1;
            }
            (None, byte) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    out
}

/// A header value trimmed, with runs of spaces made one (SigV4's canonical form).
fn collapse(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key and time of AWS's SigV4 test suite (and of its documentation's examples).
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SUITE: Scope = Scope {
        region: "us-east-1",
        service: "service",
    };

    fn suite_key() -> Key {
        Key {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.into(),
            session_token: None,
        }
    }

    fn suite_time() -> DateTime<Utc> {
        DateTime::from_timestamp(1_440_938_160, 0).unwrap()
    }

    fn authorization(method: &str, query: &str) -> String {
        let request = Request {
            method,
            path: "/",
            query,
            headers: &[],
            body: b"",
        };
        let signed = sign(
            &request,
            "example.amazonaws.com",
            &suite_key(),
            SUITE,
            suite_time(),
        );
        signed
            .into_iter()
            .find(|(name, _)| *name == "Authorization")
            .unwrap()
            .1
    }

    #[test]
    fn the_test_suites_vanilla_requests_get_its_published_signatures() {
        assert_eq!(
            authorization("GET", ""),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        // get-vanilla-query-order-key-case: parameters are sorted, upper case first.
        assert!(
            authorization("GET", "Param2=value2&Param1=value1").ends_with(
                "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            )
        );
        assert!(authorization("POST", "").ends_with(
            "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        ));
    }

    #[test]
    fn get_vanillas_canonical_request_and_string_to_sign_are_the_published_ones() {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let canonical = canonical_request(&Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        });
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(SUITE, "20150830T123600Z", &canonical),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
    }

    #[test]
    fn the_signing_key_is_the_one_awss_documentation_derives() {
        // AWS General Reference, "Examples of how to derive a signing key": IAM, 2015-08-30.
        let key = signing_key(
            SECRET,
            "20150830",
            Scope {
                region: "us-east-1",
                service: "iam",
            },
        );
        assert_eq!(
            hex(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn a_body_headers_and_a_session_token_are_all_under_the_signature() {
        let request = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &[("Content-Type", "application/x-amz-json-1.0")],
            body: br#"{"a":1}"#,
        };
        let key = Key {
            session_token: Some("FwoGZXIvYXdzEXAMPLE".into()),
            ..suite_key()
        };
        let signed = sign(
            &request,
            "monitoring.eu-west-1.amazonaws.com",
            &key,
            SUITE,
            suite_time(),
        );
        let names: Vec<&str> = signed.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            ["X-Amz-Date", "X-Amz-Security-Token", "Authorization"]
        );
        assert!(
            signed[2]
                .1
                .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, ")
        );
        let other_body = sign(
            &Request {
                body: br#"{"a":2}"#,
                ..request
            },
            "monitoring.eu-west-1.amazonaws.com",
            &key,
            SUITE,
            suite_time(),
        );
        assert_ne!(signed[2], other_body[2], "the body is signed");
        assert!(!format!("{signed:?}{key:?}").contains(SECRET));
    }

    #[test]
    fn query_parameters_are_encoded_once_and_sorted() {
        assert_eq!(canonical_query("b=2&a=x%20y&a=+z"), "a=%20z&a=x%20y&b=2");
        assert_eq!(canonical_query("k=a~b_c.d-e%2F"), "k=a~b_c.d-e%2F");
        assert_eq!(canonical_query(""), "");
    }
}
