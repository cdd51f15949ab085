//! Ollama's streamed bodies: newline-delimited JSON, one object per line, where a line may arrive
//! split over any number of network chunks.

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::Origin;
use crate::error::{Error, Result};
use crate::providers::inference::http_util::{LineError, body_lines, preview, until};

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

/// Decodes an NDJSON body into a stream of `T`. The stream owns the body, so dropping it closes
/// the connection. It ends after the first error.
pub(super) fn decode_lines<T, S>(body: S, origin: Origin, path: &'static str) -> BoxStream<'static, Result<T>>
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
{
    let items = body_lines(body)
        .map(move |line| match line {
            Ok(line) => decode_object(&line, &origin, path),
            Err(LineError::TooLong(len)) => Err(origin.bad_answer(path, LineError::describe(len))),
            Err(LineError::Transport(e)) => Err(origin.transport(path, &e)),
        })
        .boxed();
    until(items, Result::is_err)
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
