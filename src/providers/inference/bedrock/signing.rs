//! AWS Signature Version 4 for the requests sent to Bedrock Runtime: the canonical request, the
//! string to sign, the derived key and the `Authorization` header, as AWS documents them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The service name Bedrock Runtime is signed for (its endpoint says `bedrock-runtime`, its
/// signing name is `bedrock`).
pub(super) const SERVICE: &str = "bedrock";

/// What a request is signed with: who, where, for which service, and when.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scope<'a> {
    pub credentials: &'a Credentials,
    pub region: &'a str,
    pub service: &'a str,
    pub time: DateTime<Utc>,
}

impl Scope<'_> {
    fn date(&self) -> String {
        self.time.format("%Y%m%d").to_string()
    }

    fn amz_date(&self) -> String {
        self.time.format("%Y%m%dT%H%M%SZ").to_string()
    }
}

/// One request as it goes on the wire. `path` and `query` are exactly as sent (already
/// percent-encoded); `headers` are the ones to sign besides `host`, `x-amz-date` and
/// `x-amz-security-token`, which signing adds.
#[derive(Debug, Clone)]
pub(super) struct Request<'a> {
    pub method: &'a str,
    /// `host[:port]` as the `Host` header carries it.
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// The headers that carry the signature, to add to the request.
pub(super) fn sign(req: &Request<'_>, scope: &Scope<'_>) -> Vec<(&'static str, String)> {
    let amz_date = scope.amz_date();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers {
        headers.insert(name.to_ascii_lowercase(), normalize_value(value));
    }
    headers.insert("host".into(), req.host.to_owned());
    headers.insert("x-amz-date".into(), amz_date.clone());
    if let Some(token) = &scope.credentials.session_token {
        headers.insert("x-amz-security-token".into(), token.clone());
    }
    let payload_hash = hex(&Sha256::digest(req.payload));
    let (canonical, signed_headers) = canonical_request(req.method, req.path, req.query, &headers, &payload_hash);
    let mut out = vec![("x-amz-date", amz_date), ("authorization", authorization(&canonical, &signed_headers, scope))];
    if let Some(token) = &scope.credentials.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    out
}

/// The canonical request and its list of signed header names. Every service but S3 encodes the
/// path once more on top of how it travels, so `%3A` in a model id is signed as `%253A`.
fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &BTreeMap<String, String>,
    payload_hash: &str,
) -> (String, String) {
    let path = if path.is_empty() { "/" } else { path };
    let canonical_headers = headers.iter().fold(String::new(), |mut out, (k, v)| {
        let _ = writeln!(out, "{k}:{v}");
        out
    });
    let signed_headers = headers.keys().map(String::as_str).collect::<Vec<_>>().join(";");
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        uri_encode(path, false),
        canonical_query(query)
    );
    (canonical, signed_headers)
}

/// Query parameters sorted by name then value, each encoded the strict way.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), true), uri_encode(&percent_decode(v), true))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn authorization(canonical: &str, signed_headers: &str, scope: &Scope<'_>) -> String {
    let date = scope.date();
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign =
        format!("{ALGORITHM}\n{}\n{credential_scope}\n{}", scope.amz_date(), hex(&Sha256::digest(canonical)));
    let key = signing_key(&scope.credentials.secret_access_key, &date, scope.region, scope.service);
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        scope.credentials.access_key_id
    )
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else { return Vec::new() };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Header values are trimmed and their runs of spaces squeezed to one.
fn normalize_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// AWS's URI encoding: every byte but the unreserved characters `A-Z a-z 0-9 - _ . ~` becomes
/// `%XX` (upper-case hex); `/` is kept unless `slash` says to encode it.
pub(crate) fn uri_encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (b == b'/' && !slash) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex_pair.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// The credentials and time of AWS's published `SigV4` test suite.
    fn suite_creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_owned),
        }
    }

    fn suite_sign(method: &str, query: &str, creds: &Credentials) -> Vec<(&'static str, String)> {
        let scope = Scope {
            credentials: creds,
            region: "us-east-1",
            service: "service",
            time: Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap(),
        };
        let req = Request { method, host: "example.amazonaws.com", path: "/", query, headers: &[], payload: b"" };
        sign(&req, &scope)
    }

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> &'a str {
        headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str()).unwrap()
    }

    #[test]
    fn matches_the_published_test_suite() {
        let creds = suite_creds(None);
        let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                      SignedHeaders=host;x-amz-date, Signature=";
        // get-vanilla
        let h = suite_sign("GET", "", &creds);
        assert_eq!(header(&h, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&h, "authorization"),
            format!("{prefix}5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
        // post-vanilla
        let h = suite_sign("POST", "", &creds);
        assert_eq!(
            header(&h, "authorization"),
            format!("{prefix}5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
        // get-vanilla-query-order-key-case: parameters are sorted before signing.
        let h = suite_sign("GET", "Param2=value2&Param1=value1", &creds);
        assert_eq!(
            header(&h, "authorization"),
            format!("{prefix}b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        );
    }

    #[test]
    fn a_session_token_is_sent_and_signed() {
        let creds = suite_creds(Some("token/with+chars"));
        let h = suite_sign("GET", "", &creds);
        assert_eq!(header(&h, "x-amz-security-token"), "token/with+chars");
        assert!(header(&h, "authorization").contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"));
    }

    #[test]
    fn model_ids_are_encoded_twice_in_the_canonical_path() {
        let mut headers = BTreeMap::new();
        headers.insert("host".to_owned(), "bedrock-runtime.us-east-1.amazonaws.com".to_owned());
        let (canonical, signed) =
            canonical_request("POST", "/model/meta.llama3-1-8b-instruct-v1%3A0/converse", "", &headers, "abc");
        assert_eq!(signed, "host");
        assert_eq!(
            canonical,
            "POST\n/model/meta.llama3-1-8b-instruct-v1%253A0/converse\n\nhost:bedrock-runtime.us-east-1.amazonaws.com\n\nhost\nabc"
        );
        assert_eq!(uri_encode("meta.llama3-1-8b-instruct-v1:0", true), "meta.llama3-1-8b-instruct-v1%3A0");
        assert_eq!(uri_encode("arn:aws:bedrock:x/y z~", true), "arn%3Aaws%3Abedrock%3Ax%2Fy%20z~");
        assert_eq!(canonical_query("b=2&a=%3a1&c"), "a=%3A1&b=2&c=");
        assert_eq!(normalize_value("  a   b  "), "a b");
    }
}
