//! A document's text: inline text and media, or the text extracted from what a URL holds
//! (plain text, markdown, HTML, PDF).

use super::fetch::{FetchLimits, Fetched, read_url};
use crate::error::{Error, Result};
use crate::types::common::InterleavedTextMedia;
use crate::types::memory::{DocumentContent, MemoryBankDocument};

/// Strings that are taken as a URL to read, as upstream does.
fn looks_like_url(s: &str) -> bool {
    let l = s.trim_start().get(..8).unwrap_or(s).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://") || l.starts_with("file://") || l.starts_with("data:")
}

fn bad(doc: &MemoryBankDocument, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("document `{}`: {msg}", doc.document_id))
}

/// The text of one document, or a 400 naming it.
pub async fn document_text(doc: &MemoryBankDocument, limits: &FetchLimits) -> Result<String> {
    if doc.document_id.trim().is_empty() {
        return Err(Error::invalid("a document has an empty `document_id`"));
    }
    let declared = doc.mime_type.as_deref().map(|m| super::fetch::parse_content_type(m).0).unwrap_or_default();
    let text = match &doc.content {
        DocumentContent::Url(url) => from_url(doc, &url.uri, declared.as_deref(), limits).await?,
        DocumentContent::Media(InterleavedTextMedia::Text(s)) if looks_like_url(s) => {
            from_url(doc, s, declared.as_deref(), limits).await?
        }
        DocumentContent::Media(m) => {
            let text = m.as_text(" ");
            if text.len() as u64 > limits.max_bytes {
                return Err(bad(
                    doc,
                    format!("its text is {} bytes, more than the limit of {}", text.len(), limits.max_bytes),
                ));
            }
            if declared.as_deref() == Some("text/html") { html_text(text.as_bytes()) } else { text }
        }
    };
    if text.trim().is_empty() {
        return Err(bad(doc, "it holds no text"));
    }
    Ok(text)
}

async fn from_url(doc: &MemoryBankDocument, uri: &str, declared: Option<&str>, limits: &FetchLimits) -> Result<String> {
    let fetched = read_url(uri, limits).await.map_err(|e| bad(doc, e))?;
    let doc_id = doc.document_id.clone();
    let declared = declared.map(str::to_owned);
    // PDF and HTML parsing is CPU work, and a malformed file may make a parser panic: both stay
    // off the async workers, and a panic becomes this document's error.
    match tokio::task::spawn_blocking(move || bytes_text(&fetched, declared.as_deref())).await {
        Ok(r) => r.map_err(|e| Error::invalid(format!("document `{doc_id}`: {e}"))),
        Err(_) => Err(Error::invalid(format!("document `{doc_id}`: its content could not be decoded"))),
    }
}

/// The media type to read the bytes as: what the source declared, else the document's
/// `mime_type`, else a guess from the first bytes.
fn effective_type(f: &Fetched, declared: Option<&str>) -> String {
    let source = f.mime_type.as_deref().filter(|m| *m != "application/octet-stream");
    match source.or(declared) {
        Some(m) => m.to_owned(),
        None if f.bytes.starts_with(b"%PDF-") => "application/pdf".to_owned(),
        None => "text/plain".to_owned(),
    }
}

/// Text of fetched bytes by media type.
pub fn bytes_text(f: &Fetched, declared: Option<&str>) -> std::result::Result<String, String> {
    let mime = effective_type(f, declared);
    match mime.as_str() {
        "application/pdf" => pdf_text(&f.bytes),
        "text/html" | "application/xhtml+xml" => Ok(html_text(decode(&f.bytes, f.charset.as_deref())?.as_bytes())),
        m if m.starts_with("text/")
            || matches!(m, "application/json" | "application/xml" | "application/x-yaml" | "application/yaml") =>
        {
            decode(&f.bytes, f.charset.as_deref())
        }
        other => Err(format!(
            "content type `{other}` is not supported (text/plain, text/markdown, text/html, application/pdf are)"
        )),
    }
}

fn decode(bytes: &[u8], charset: Option<&str>) -> std::result::Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match charset {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            // Undeclared and not UTF-8: read as Latin-1, which every byte sequence is.
            Err(_) if charset.is_none() => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            Err(e) => Err(format!("the text is not valid UTF-8 ({e})")),
        },
        Some("iso-8859-1" | "latin1" | "latin-1") => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        Some(other) => Err(format!("charset `{other}` is not supported (utf-8 and iso-8859-1 are)")),
    }
}

/// Visible text of an HTML page, without markup.
pub fn html_text(html: &[u8]) -> String {
    // Wide lines: wrapping would only add newlines inside paragraphs.
    html2text::config::plain_no_decorate()
        .string_from_read(html, 10_000)
        .unwrap_or_else(|_| String::from_utf8_lossy(html).into_owned())
}

fn pdf_text(bytes: &[u8]) -> std::result::Result<String, String> {
    // The parser may panic on a malformed file; that is this document's error, not the server's.
    match std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes)) {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(format!("the PDF could not be read ({e})")),
        Err(_) => Err("the PDF could not be read (malformed file)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(bytes: &[u8], mime: Option<&str>) -> Fetched {
        Fetched { bytes: bytes.to_vec(), mime_type: mime.map(str::to_owned), charset: None }
    }

    #[test]
    fn text_by_type() {
        assert_eq!(bytes_text(&fetched(b"# Title\nbody", Some("text/markdown")), None).unwrap(), "# Title\nbody");
        let html = bytes_text(
            &fetched(
                b"<html><body><h1>Cats</h1><p>sleep <b>a lot</b></p><script>x()</script></body></html>",
                Some("text/html"),
            ),
            None,
        )
        .unwrap();
        assert!(html.contains("Cats") && html.contains("sleep a lot") && !html.contains('<'), "{html}");
        let err = bytes_text(&fetched(b"\x89PNG", Some("image/png")), None).unwrap_err();
        assert!(err.contains("image/png"));
        let err = bytes_text(&fetched(b"%PDF-1.4 garbage", None), None).unwrap_err();
        assert!(err.contains("PDF"), "{err}");
        assert_eq!(bytes_text(&fetched(b"caf\xe9", None), None).unwrap(), "café");
    }

    #[test]
    fn pdf_text_is_extracted() {
        let pdf = tests_pdf::hello_pdf("Memory banks hold documents");
        let text = bytes_text(&fetched(&pdf, Some("application/pdf")), None).unwrap();
        assert!(text.contains("Memory banks hold documents"), "{text:?}");
    }

    #[tokio::test]
    async fn empty_and_inline_documents() {
        let limits = FetchLimits { allow_private: false, max_bytes: 1000, timeout: std::time::Duration::from_secs(1) };
        let doc = |content: serde_json::Value| -> MemoryBankDocument {
            serde_json::from_value(serde_json::json!({"document_id": "d1", "content": content})).unwrap()
        };
        assert_eq!(document_text(&doc(serde_json::json!(["a", "b"])), &limits).await.unwrap(), "a b");
        let err = document_text(&doc(serde_json::json!("   ")), &limits).await.unwrap_err().to_string();
        assert!(err.contains("`d1`") && err.contains("no text"), "{err}");
        let err = document_text(&doc(serde_json::json!("x".repeat(2000))), &limits).await.unwrap_err().to_string();
        assert!(err.contains("limit"), "{err}");
        let err =
            document_text(&doc(serde_json::json!({"uri": "data:text/plain,"})), &limits).await.unwrap_err().to_string();
        assert!(err.contains("`d1`"), "{err}");
        let ok = document_text(&doc(serde_json::json!({"uri": "data:text/plain;base64,aGk="})), &limits).await.unwrap();
        assert_eq!(ok, "hi");
    }
}

/// A minimal valid one-page PDF, for tests.
#[cfg(test)]
pub mod tests_pdf {
    pub fn hello_pdf(text: &str) -> Vec<u8> {
        let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
            format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
        for off in offsets {
            out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
        );
        out
    }
}
