//! Answer text on its way into a status, an event or a log line: cut to a length people read,
//! and stripped of what looks like a credential. A webhook or a proxy in front of a metrics
//! server may echo the request back (its Authorization header, a `?token=` in a URL), and
//! whatever reaches a Canary's status is readable by everyone who may read the Canary.

use std::sync::LazyLock;

use regex::Regex;

/// What a masked credential is replaced with.
const MASK: &str = "***";

/// `Bearer abc...`, `Basic dXNlcj...`: the scheme stays, the credential goes.
static SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}").expect("valid pattern")
});

/// `password=...`, `"api_key": "..."`, `X-Auth-Token: ...`, `access_token=...`: a key that
/// names a secret, then `=` or `:`, then the value.
static KEYED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)([A-Za-z0-9_.-]*(?:token|passw(?:or)?d|pwd|secret|api[_-]?key|authorization|credential|cookie|session[_-]?id|private[_-]?key)[A-Za-z0-9_.-]*["']?\s*[:=]\s*["']?)((?:(?:bearer|basic|token)\s+)?[^\s"'&,;}]+)"#,
    )
    .expect("valid pattern")
});

/// `https://user:password@host`: the user information of a URL.
static USERINFO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@").expect("valid pattern"));

/// A JSON Web Token anywhere (`eyJ...` header, payload, signature).
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?")
        .expect("valid pattern")
});

/// `text` with credentials masked, trimmed, and cut to `max_chars` characters (on a character
/// boundary, marked with `…`). Masking comes first, so a cut cannot leave half a secret
/// unrecognised.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let masked = mask(text.trim());
    match masked.char_indices().nth(max_chars) {
        None => masked,
        Some((end, _)) => format!("{}…", masked[..end].trim_end()),
    }
}

/// `text` with everything that looks like a credential replaced by `***`.
pub fn mask(text: &str) -> String {
    let text = USERINFO.replace_all(text, format!("${{1}}{MASK}@"));
    let text = JWT.replace_all(&text, MASK);
    let text = SCHEME.replace_all(&text, format!("${{1}} {MASK}"));
    KEYED
        .replace_all(&text, format!("${{1}}{MASK}"))
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_headers_queries_json_and_urls_are_masked() {
        let cases = [
            ("Authorization: Bearer abcdef123456", "Authorization: ***"),
            (
                "got bearer abcdef123456 from you",
                "got bearer *** from you",
            ),
            ("GET /cb?token=s3cr3t&x=1", "GET /cb?token=***&x=1"),
            (
                r#"{"password": "hunter2", "user": "bob"}"#,
                r#"{"password": "***", "user": "bob"}"#,
            ),
            ("api_key=AKIA1234 apikey: zz9", "api_key=*** apikey: ***"),
            ("X-Auth-Token: 0123456789abcdef", "X-Auth-Token: ***"),
            (
                "dial https://bob:hunter2@prom.example/x",
                "dial https://***@prom.example/x",
            ),
            ("client_secret=abc", "client_secret=***"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig-nature_x",
                "jwt ***",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(mask(input), expected, "{input}");
        }
    }

    #[test]
    fn ordinary_messages_are_left_alone() {
        for text in [
            "canary broken: 3 of 10 checks failed",
            "parse error at char 5: unexpected identifier \"sum\"",
            "tokens_remaining 5, rate limited",
        ] {
            assert_eq!(mask(text), text);
        }
    }

    #[test]
    fn an_excerpt_is_cut_on_a_character_boundary_after_masking() {
        let text = format!("{}password=hunter2", "é".repeat(10));
        assert_eq!(
            excerpt(&text, 100),
            format!("{}password=***", "é".repeat(10))
        );
        assert_eq!(excerpt(&"é".repeat(300), 4), "éééé…");
        let cut = excerpt(&format!("{} password=hunter2-and-more", "x".repeat(10)), 22);
        assert!(!cut.contains("hunter"), "{cut}");
        assert_eq!(excerpt("  short  ", 10), "short");
    }
}
