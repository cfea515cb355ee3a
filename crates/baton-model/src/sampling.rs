//! What an X-Ray sampling rule matches: wildcard patterns on the service
//! name, service type, host, HTTP method and URL path of the request a trace
//! starts with. One implementation for the tracer's local rules and the
//! server's centralized ones, so that both agree on what a rule matches.

/// The request a trace starts with, as a sampling rule sees it. A field left
/// `None` is unknown (see [`RulePatterns::matches`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SamplingRequest<'a> {
    /// The service's name, e.g. `orders`.
    pub service_name: Option<&'a str>,
    /// The service's origin, e.g. `AWS::EC2::Instance`.
    pub service_type: Option<&'a str>,
    /// The host the request was sent to, e.g. `api.example.com`.
    pub host: Option<&'a str>,
    /// The HTTP method, e.g. `GET`.
    pub http_method: Option<&'a str>,
    /// The URL path, e.g. `/api/orders`.
    pub url_path: Option<&'a str>,
}

/// A sampling rule's patterns, each matched by [`glob`] against its field of
/// a [`SamplingRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulePatterns {
    /// Matches [`SamplingRequest::service_name`].
    pub service_name: String,
    /// Matches [`SamplingRequest::service_type`].
    pub service_type: String,
    /// Matches [`SamplingRequest::host`].
    pub host: String,
    /// Matches [`SamplingRequest::http_method`].
    pub http_method: String,
    /// Matches [`SamplingRequest::url_path`].
    pub url_path: String,
}

impl RulePatterns {
    /// `*` for every field: matches every request, as X-Ray's Default rule does.
    pub fn any() -> RulePatterns {
        let any = || "*".to_owned();
        RulePatterns { service_name: any(), service_type: any(), host: any(), http_method: any(), url_path: any() }
    }

    /// Whether every pattern matches its field of `request`.
    ///
    /// An unknown field is matched as empty text, so that only `*` (or an
    /// empty pattern) matches it: a rule written for `/health` must not
    /// decide for a request whose path is unknown. (The Python X-Ray SDK
    /// lets any pattern match an unknown field instead.)
    pub fn matches(&self, request: &SamplingRequest<'_>) -> bool {
        [
            (&self.service_name, request.service_name),
            (&self.service_type, request.service_type),
            (&self.host, request.host),
            (&self.http_method, request.http_method),
            (&self.url_path, request.url_path),
        ]
        .into_iter()
        .all(|(pattern, text)| glob(pattern, text.unwrap_or("")))
    }
}

/// Whether `text` matches `pattern`, case-insensitively, as the X-Ray SDKs
/// match rules: `*` is any run of characters, `?` one character.
#[inline]
pub fn glob(pattern: &str, text: &str) -> bool {
    // Most patterns are `*`, and samplers match on every new trace: that case costs a comparison.
    pattern == "*" || wildcards(pattern, text)
}

fn wildcards(pattern: &str, text: &str) -> bool {
    // Byte offsets of the next pattern and text characters.
    let (mut p, mut t) = (0, 0);
    // The pattern after the last `*` seen and where its match in `text` ends: on a mismatch the
    // `*` takes one more character, so matching is at worst quadratic, never exponential.
    let mut last_star = None;
    while let Some(actual) = text[t..].chars().next() {
        match pattern[p..].chars().next() {
            Some('*') => {
                p += 1;
                last_star = Some((p, t));
            }
            Some(expected) if expected == '?' || same_letter(expected, actual) => {
                p += expected.len_utf8();
                t += actual.len_utf8();
            }
            _ => match last_star {
                Some((after_star, star_end)) => {
                    p = after_star;
                    t = star_end + text[star_end..].chars().next().map_or(0, char::len_utf8);
                    last_star = Some((after_star, t));
                }
                None => return false,
            },
        }
    }
    pattern[p..].chars().all(|c| c == '*')
}

fn same_letter(a: char, b: char) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(&b);
    }
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        for (pattern, text) in [
            ("*", ""),
            ("*", "anything"),
            ("", ""),
            ("GET", "get"),
            ("*.EXAMPLE.com", "api.example.COM"),
            ("/api/*/items", "/api/orders/items"),
            ("/api/*/items", "/api//items"),
            ("/a*b*c", "/aXbYbZc"),
            ("/v?/*", "/v2/orders"),
            ("ÉTÉ", "été"),
            ("?té", "été"),
            ("*é", "ééé"),
            ("é*?", "éé"),
            ("*a", "aaa"),
            ("AWS::EC2::*", "AWS::EC2::Instance"),
        ] {
            assert!(glob(pattern, text), "{pattern} should match {text}");
        }
        for (pattern, text) in [
            ("GET", "POST"),
            ("GET", "GETS"),
            ("/api/*", "/other/api/x"),
            ("/v?/*", "/v10/orders"),
            ("?", ""),
            ("", "x"),
            ("/a*b*c", "/aXbYbZ"),
            ("*.example.com", "example.com"),
            ("??", "é"),
            ("*é", "éa"),
        ] {
            assert!(!glob(pattern, text), "{pattern} should not match {text}");
        }
    }

    #[test]
    fn glob_is_not_exponential() {
        let text = "a".repeat(10_000);
        assert!(!glob(&format!("{}b", "*a".repeat(50)), &text));
    }

    #[test]
    fn a_rule_matches_when_every_pattern_does() {
        let health =
            RulePatterns { service_name: "orders-*".into(), url_path: "/health".into(), ..RulePatterns::any() };
        let request = SamplingRequest {
            service_name: Some("orders-api"),
            service_type: Some("AWS::EC2::Instance"),
            host: Some("orders.example.com"),
            http_method: Some("GET"),
            url_path: Some("/HEALTH"),
        };
        assert!(health.matches(&request));
        assert!(!health.matches(&SamplingRequest { url_path: Some("/orders"), ..request }));
        assert!(!health.matches(&SamplingRequest { service_name: Some("carts"), ..request }));
        assert!(RulePatterns::any().matches(&request));
    }

    #[test]
    fn an_unknown_field_matches_only_star() {
        let get = RulePatterns { http_method: "GET".into(), ..RulePatterns::any() };
        assert!(RulePatterns::any().matches(&SamplingRequest::default()));
        assert!(!get.matches(&SamplingRequest::default()));
        assert!(get.matches(&SamplingRequest { http_method: Some("get"), ..SamplingRequest::default() }));
    }
}
