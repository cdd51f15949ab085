//! Reading a document's bytes from a URL: `data:` URLs decoded in place, `http(s)` fetched with a
//! size and time limit. Unless allowed, every address a host name resolves to (on the first
//! request and after each redirect) must be public: private, loopback, link-local, shared and
//! unspecified addresses are refused, and the request goes to exactly the addresses checked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub allow_private: bool,
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// Bytes with the media type and charset their source declared, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub mime_type: Option<String>,
    pub charset: Option<String>,
}

/// Reads `uri`; the error is a sentence for the user (the caller names the document).
pub async fn read_url(uri: &str, limits: &FetchLimits) -> Result<Fetched, String> {
    let lower = uri.trim_start().to_ascii_lowercase();
    if lower.starts_with("data:") {
        return decode_data_url(uri.trim_start(), limits.max_bytes);
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return match tokio::time::timeout(limits.timeout, fetch_http(uri.trim(), limits)).await {
            Ok(r) => r,
            Err(_) => Err(format!("fetching `{uri}` took longer than {:.0} s", limits.timeout.as_secs_f64())),
        };
    }
    Err(format!("URL `{}` is not supported: use http, https or data URLs", shorten(uri)))
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 { format!("{}…", s.chars().take(80).collect::<String>()) } else { s.to_owned() }
}

/// `data:[<mediatype>][;charset=<enc>][;base64],<data>` (RFC 2397).
pub fn decode_data_url(uri: &str, max_bytes: u64) -> Result<Fetched, String> {
    let rest = uri.get(5..).ok_or("empty data URL")?;
    let Some((header, data)) = rest.split_once(',') else {
        return Err("invalid data URL: no `,` between the media type and the data".to_owned());
    };
    let mut parts = header.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let mut charset = None;
    let mut base64 = false;
    for p in parts {
        let p = p.trim();
        if p.eq_ignore_ascii_case("base64") {
            base64 = true;
        } else if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("charset") {
                charset = Some(v.trim().to_ascii_lowercase());
            }
        }
    }
    let bytes = if base64 {
        let cleaned: String =
            percent_decode(data)?.into_iter().map(char::from).filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(cleaned.as_bytes())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.trim_end_matches('=')))
            .map_err(|e| format!("invalid data URL: the base64 data does not decode ({e})"))?
    } else {
        percent_decode(data)?
    };
    if bytes.len() as u64 > max_bytes {
        return Err(format!("the data URL holds {} bytes, more than the limit of {max_bytes}", bytes.len()));
    }
    Ok(Fetched { bytes, mime_type: (!mime.is_empty()).then_some(mime), charset })
}

fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("invalid data URL: `%` not followed by two hex digits")?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| format!("invalid data URL: bad escape `%{hex}`"))?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Whether an address may be fetched when private addresses are not allowed.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80) // link-local fe80::/10
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))) // shared address space 100.64/10
}

async fn fetch_http(uri: &str, limits: &FetchLimits) -> Result<Fetched, String> {
    let started = Instant::now();
    let mut url = reqwest::Url::parse(uri).map_err(|e| format!("invalid URL `{}`: {e}", shorten(uri)))?;
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("redirected to `{url}`, which is not an http(s) URL"));
        }
        let host = url.host_str().ok_or_else(|| format!("URL `{url}` has no host"))?.to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve host `{host}`: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("host `{host}` has no address"));
        }
        if !limits.allow_private {
            if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(format!(
                    "`{url}` resolves to {}, a private, loopback or link-local address, which this provider may not fetch",
                    bad.ip()
                ));
            }
        }
        let remaining = limits.timeout.saturating_sub(started.elapsed());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve_to_addrs(&lookup_host, &addrs)
            .timeout(remaining.max(Duration::from_millis(1)))
            .build()
            .map_err(|e| format!("cannot set up an HTTP client: {e}"))?;
        let mut resp = client.get(url.clone()).send().await.map_err(|e| format!("cannot fetch `{url}`: {e}"))?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("`{url}` answered {status} without a Location"))?;
            url = url.join(location).map_err(|e| format!("`{url}` redirected to an invalid URL: {e}"))?;
            continue;
        }
        if !status.is_success() {
            return Err(format!("`{url}` answered HTTP {status}"));
        }
        if let Some(len) = resp.content_length() {
            if len > limits.max_bytes {
                return Err(format!("`{url}` is {len} bytes, more than the limit of {}", limits.max_bytes));
            }
        }
        let (mime_type, charset) = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map_or((None, None), parse_content_type);
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading `{url}` failed: {e}"))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > limits.max_bytes {
                return Err(format!("`{url}` is larger than the limit of {} bytes", limits.max_bytes));
            }
        }
        return Ok(Fetched { bytes, mime_type, charset });
    }
    Err(format!("`{}` redirected more than {MAX_REDIRECTS} times", shorten(uri)))
}

/// `text/html; charset=UTF-8` → (`text/html`, `utf-8`).
pub fn parse_content_type(value: &str) -> (Option<String>, Option<String>) {
    let mut parts = value.split(';');
    let mime = parts.next().map(|m| m.trim().to_ascii_lowercase()).filter(|m| !m.is_empty());
    let charset = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    });
    (mime, charset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        let f = decode_data_url("data:text/plain;charset=utf-8;base64,aGVsbG8=", 100).unwrap();
        assert_eq!(f.bytes, b"hello");
        assert_eq!(f.mime_type.as_deref(), Some("text/plain"));
        assert_eq!(f.charset.as_deref(), Some("utf-8"));
        let f = decode_data_url("data:,a%20b", 100).unwrap();
        assert_eq!(f.bytes, b"a b");
        assert_eq!(f.mime_type, None);
        assert!(decode_data_url("data:text/plain;base64,@@@", 100).unwrap_err().contains("base64"));
        assert!(decode_data_url("data:text/plain", 100).unwrap_err().contains("`,`"));
        assert!(decode_data_url("data:,%zz", 100).is_err());
        assert!(decode_data_url("data:,aaaa", 3).unwrap_err().contains("limit"));
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let limits = FetchLimits { allow_private: false, max_bytes: 100, timeout: Duration::from_secs(5) };
        let err = read_url("http://127.0.0.1:9/x", &limits).await.unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        let err = read_url("file:///etc/passwd", &limits).await.unwrap_err();
        assert!(err.contains("not supported"), "{err}");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            parse_content_type("Text/HTML; charset=\"UTF-8\""),
            (Some("text/html".into()), Some("utf-8".into()))
        );
    }
}
