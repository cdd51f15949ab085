//! Ollama's streamed bodies: newline-delimited JSON, one object per line, where a line may arrive
//! split over any number of network chunks.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::stream::{self, BoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::Origin;
use crate::error::{Error, Result};
use crate::providers::inference::http_util::{LineSplitter, preview};

/// Reads one JSON object Ollama sent on `path`. An object with an `error` string is Ollama
/// reporting a failure (it does so mid-stream with status 200), so it becomes an error.
pub(super) fn decode_object<T: DeserializeOwned>(bytes: &[u8], origin: &Origin, path: &str) -> Result<T> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| origin.bad_answer(path, format!("not JSON ({e}): {}", preview(bytes))))?;
    if let Some(msg) = value.get("error").and_then(Value::as_str) {
        return Err(Error::Upstream {
            provider: origin.provider.to_string(),
            message: format!("Ollama reported: {msg}"),
        });
    }
    serde_json::from_value(value).map_err(|e| origin.bad_answer(path, format!("{e}: {}", preview(bytes))))
}

struct Lines {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    splitter: LineSplitter,
    ready: VecDeque<Vec<u8>>,
    ended: bool,
    origin: Origin,
    path: &'static str,
}

/// Decodes an NDJSON body into a stream of `T`. The stream owns the body, so dropping it closes
/// the connection. It ends after the first error.
pub(super) fn decode_lines<T, S>(body: S, origin: Origin, path: &'static str) -> BoxStream<'static, Result<T>>
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
{
    let state = Lines {
        body: body.boxed(),
        splitter: LineSplitter::default(),
        ready: VecDeque::new(),
        ended: false,
        origin,
        path,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(line) = st.ready.pop_front() {
                let item = decode_object(&line, &st.origin, st.path);
                if item.is_err() {
                    st.ready.clear();
                    st.ended = true;
                }
                return Some((item, st));
            }
            if st.ended {
                return None;
            }
            match st.body.next().await {
                Some(Ok(bytes)) => match st.splitter.push(&bytes) {
                    Ok(lines) => st.ready.extend(lines),
                    Err(len) => {
                        st.ended = true;
                        let err = st.origin.bad_answer(st.path, format!("a line of over {len} bytes with no newline"));
                        return Some((Err(err), st));
                    }
                },
                Some(Err(e)) => {
                    st.ended = true;
                    let err = st.origin.transport(st.path, &e);
                    return Some((Err(err), st));
                }
                None => {
                    st.ended = true;
                    st.ready.extend(st.splitter.finish());
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn error_objects_and_garbage_become_errors() {
        let origin = Origin::for_tests();
        let e = decode_object::<Value>(br#"{"error":"out of memory"}"#, &origin, "/api/chat").err();
        assert!(matches!(&e, Some(Error::Upstream { message, .. }) if message.contains("out of memory")), "{e:?}");
        let e = decode_object::<Value>(b"<html>", &origin, "/api/chat").err();
        assert!(matches!(&e, Some(Error::Upstream { message, .. }) if message.contains("<html>")), "{e:?}");
    }
}
