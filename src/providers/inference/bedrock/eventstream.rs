//! The AWS event-stream framing (`application/vnd.amazon.eventstream`) that Bedrock's streamed
//! answers come in. Each message is a 12-byte prelude (total length, headers length, CRC32 of
//! those 8 bytes), typed headers, a payload, and a CRC32 of everything before it; both checksums
//! are verified.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::stream::{self, BoxStream, Stream, StreamExt};

const PRELUDE_LEN: usize = 12;
/// Prelude plus the trailing checksum: the size of a message with no headers and no payload.
const MIN_MESSAGE: usize = PRELUDE_LEN + 4;
/// AWS caps a message at 16 MiB; anything longer means the bytes are not an event stream.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// A header value, by the type byte that precedes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A string header's value.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| match v {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

/// What a message means to the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
    /// `:message-type: event`, named by `:event-type`, with a JSON payload.
    Event { event_type: String, payload: Vec<u8> },
    /// `:message-type: exception` (a modelled failure such as `throttlingException`, message in
    /// the JSON payload) or `error` (`:error-code` and `:error-message` headers).
    Exception { exception_type: String, message: String },
}

impl Frame {
    pub(super) fn from_message(m: Message) -> Result<Self, String> {
        match m.header(":message-type") {
            Some("event") => {
                let event_type = m.header(":event-type").ok_or("an event without `:event-type`")?.to_owned();
                Ok(Self::Event { event_type, payload: m.payload })
            }
            Some("exception") => {
                let exception_type = m.header(":exception-type").unwrap_or("unknown exception").to_owned();
                Ok(Self::Exception { exception_type, message: exception_message(&m.payload) })
            }
            Some("error") => Ok(Self::Exception {
                exception_type: m.header(":error-code").unwrap_or("unknown error").to_owned(),
                message: m.header(":error-message").unwrap_or_default().to_owned(),
            }),
            Some(other) => Err(format!("a message of unknown type `{other}`")),
            None => Err("a message without `:message-type`".into()),
        }
    }
}

/// The `message` of an exception payload, else the payload as text.
fn exception_message(payload: &[u8]) -> String {
    let value: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    match value.as_ref().and_then(|v| v.get("message").or_else(|| v.get("Message"))) {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => String::from_utf8_lossy(payload).into_owned(),
    }
}

/// Cuts a byte stream into messages; bytes may arrive split anywhere.
#[derive(Debug, Default)]
pub(super) struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub(super) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Whether bytes of an unfinished message are waiting.
    pub(super) fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next whole message, `None` when more bytes are needed.
    pub(super) fn next_message(&mut self) -> Result<Option<Message>, String> {
        if self.buf.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let total = be_u32(&self.buf[0..4]) as usize;
        let headers_len = be_u32(&self.buf[4..8]) as usize;
        let prelude_crc = be_u32(&self.buf[8..12]);
        if crc32fast::hash(&self.buf[..8]) != prelude_crc {
            return Err("the prelude checksum does not match".into());
        }
        if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&total) || headers_len > total - MIN_MESSAGE {
            return Err(format!("a message of {total} bytes with {headers_len} bytes of headers"));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buf.drain(..total).collect();
        let message_crc = be_u32(&frame[total - 4..]);
        if crc32fast::hash(&frame[..total - 4]) != message_crc {
            return Err("the message checksum does not match".into());
        }
        let headers = parse_headers(&frame[PRELUDE_LEN..PRELUDE_LEN + headers_len])?;
        Ok(Some(Message { headers, payload: frame[PRELUDE_LEN + headers_len..total - 4].to_vec() }))
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads headers: name length (1 byte), name, type byte, then the value in that type's layout.
fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err("a header runs past the end of the headers".into());
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    fn fixed<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(take(b, N)?);
        Ok(out)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = usize::from(take(&mut b, 1)?[0]);
        let name = String::from_utf8_lossy(take(&mut b, name_len)?).into_owned();
        let value = match take(&mut b, 1)?[0] {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(fixed(&mut b)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(fixed(&mut b)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(fixed(&mut b)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(fixed(&mut b)?)),
            t @ (6 | 7) => {
                let len = usize::from(u16::from_be_bytes(fixed(&mut b)?));
                let bytes = take(&mut b, len)?;
                if t == 6 {
                    HeaderValue::Bytes(bytes.to_vec())
                } else {
                    HeaderValue::String(String::from_utf8_lossy(bytes).into_owned())
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed(&mut b)?)),
            9 => HeaderValue::Uuid(fixed(&mut b)?),
            t => return Err(format!("header `{name}` has unknown type {t}")),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Why a stream of frames stopped early.
#[derive(Debug)]
pub(super) enum StreamError {
    Transport(reqwest::Error),
    /// The bytes are not a well-formed event stream.
    Malformed(String),
}

/// The frames of a streamed HTTP body. The stream owns the body, so dropping it closes the
/// connection; it ends after its first error.
pub(super) fn frames<S>(body: S) -> BoxStream<'static, Result<Frame, StreamError>>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
{
    struct State {
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        decoder: Decoder,
        ready: VecDeque<Frame>,
        ended: bool,
    }
    let state = State { body: body.boxed(), decoder: Decoder::default(), ready: VecDeque::new(), ended: false };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(frame) = st.ready.pop_front() {
                return Some((Ok(frame), st));
            }
            if st.ended {
                return None;
            }
            let fail = |mut st: State, e: StreamError| {
                st.ended = true;
                Some((Err(e), st))
            };
            match st.body.next().await {
                Some(Ok(bytes)) => {
                    st.decoder.push(&bytes);
                    loop {
                        match st.decoder.next_message() {
                            Ok(Some(m)) => match Frame::from_message(m) {
                                Ok(frame) => st.ready.push_back(frame),
                                Err(e) => return fail(st, StreamError::Malformed(e)),
                            },
                            Ok(None) => break,
                            Err(e) => return fail(st, StreamError::Malformed(e)),
                        }
                    }
                }
                Some(Err(e)) => return fail(st, StreamError::Transport(e)),
                None if st.decoder.has_partial() => {
                    return fail(st, StreamError::Malformed("the stream ended inside a message".into()));
                }
                None => st.ended = true,
            }
        }
    })
    .boxed()
}

/// Writes one message with string headers, for tests of the readers.
#[cfg(test)]
pub(super) fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = u32::try_from(MIN_MESSAGE + h.len() + payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out
}

/// An `event` message as Bedrock sends it.
#[cfg(test)]
pub(super) fn event(event_type: &str, payload: &serde_json::Value) -> Vec<u8> {
    let headers = [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")];
    encode(&headers, payload.to_string().as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_messages_split_at_every_offset() {
        let mut bytes = event("contentBlockDelta", &json!({"contentBlockIndex": 0, "delta": {"text": "Hé"}}));
        bytes.extend(encode(
            &[(":message-type", "exception"), (":exception-type", "throttlingException")],
            br#"{"message":"slow down"}"#,
        ));
        for cut in 0..=bytes.len() {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for part in [&bytes[..cut], &bytes[cut..]] {
                d.push(part);
                while let Some(m) = d.next_message().unwrap() {
                    got.push(Frame::from_message(m).unwrap());
                }
            }
            assert!(!d.has_partial());
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(
                got[0],
                Frame::Event {
                    event_type: "contentBlockDelta".into(),
                    payload: json!({"contentBlockIndex": 0, "delta": {"text": "Hé"}}).to_string().into_bytes()
                }
            );
            assert_eq!(
                got[1],
                Frame::Exception { exception_type: "throttlingException".into(), message: "slow down".into() }
            );
        }
    }

    #[test]
    fn corrupt_checksums_and_lengths_are_refused() {
        let good = event("messageStop", &json!({"stopReason": "end_turn"}));
        let mut bad_body = good.clone();
        let n = bad_body.len();
        bad_body[n - 6] ^= 1;
        let mut d = Decoder::default();
        d.push(&bad_body);
        assert!(d.next_message().unwrap_err().contains("message checksum"));
        let mut bad_prelude = good.clone();
        bad_prelude[3] ^= 1;
        let mut d = Decoder::default();
        d.push(&bad_prelude);
        assert!(d.next_message().unwrap_err().contains("prelude checksum"));
        let mut d = Decoder::default();
        d.push(b"<html>not an event stream</html>");
        assert!(d.next_message().is_err());
    }

    #[test]
    fn typed_headers_are_read() {
        let mut h = vec![4u8];
        h.extend_from_slice(b"flag");
        h.push(0);
        h.push(3);
        h.extend_from_slice(b"num");
        h.push(4);
        h.extend_from_slice(&7i32.to_be_bytes());
        h.push(2);
        h.extend_from_slice(b"id");
        h.push(9);
        h.extend_from_slice(&[1; 16]);
        let parsed = parse_headers(&h).unwrap();
        assert_eq!(parsed[0], ("flag".into(), HeaderValue::Bool(true)));
        assert_eq!(parsed[1], ("num".into(), HeaderValue::Int(7)));
        assert_eq!(parsed[2], ("id".into(), HeaderValue::Uuid([1; 16])));
        assert!(parse_headers(&[3, b'a', b'b', b'c', 7, 0, 9, b'x']).is_err(), "a string longer than the headers");
        let m =
            Message { headers: vec![(":message-type".into(), HeaderValue::String("event".into()))], payload: vec![] };
        assert!(Frame::from_message(m).is_err(), "an event must name its type");
    }

    #[tokio::test]
    async fn a_body_cut_inside_a_message_is_an_error() {
        let bytes = event("messageStart", &json!({"role": "assistant"}));
        let cut = bytes[..bytes.len() - 3].to_vec();
        let body = stream::iter(vec![Ok(Bytes::from(bytes)), Ok(Bytes::from(cut))]);
        let got: Vec<_> = frames(body).collect().await;
        assert!(
            matches!(got.as_slice(), [Ok(Frame::Event { .. }), Err(StreamError::Malformed(m))] if m.contains("inside"))
        );
    }
}
