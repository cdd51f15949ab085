//! Ollama's streamed bodies: newline-delimited JSON, one object per line, where a line may arrive
//! split over any number of network chunks. An object with an `error` is Ollama reporting a
//! failure (it does so mid-stream, after status 200).

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::providers::inference::client::{Origin, decode};
use crate::providers::inference::http_util::{LineError, body_lines, until};

/// Decodes an NDJSON body into a stream of `T`. The stream owns the body, so dropping it closes
/// the connection. It ends after the first error.
pub(super) fn decode_lines<T, S>(body: S, origin: Origin, path: &'static str) -> BoxStream<'static, Result<T>>
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
{
    let items = body_lines(body)
        .map(move |line| match line {
            Ok(line) => decode(&line, &origin, path),
            Err(LineError::TooLong(len)) => Err(origin.bad_answer(path, LineError::describe(len))),
            Err(LineError::Transport(e)) => Err(origin.transport(path, &e)),
        })
        .boxed();
    until(items, Result::is_err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use bytes::Bytes;
    use futures::stream;
    use serde_json::Value;

    use super::*;
    use crate::error::Error;

    #[tokio::test]
    async fn error_objects_and_garbage_end_the_stream() {
        let body = b"{\"n\":1}\n{\"error\":\"out of memory\"}\n{\"n\":2}\n";
        let chunks: Vec<reqwest::Result<Bytes>> = body.chunks(5).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let got: Vec<Result<Value>> =
            decode_lines(stream::iter(chunks), Origin::for_tests(), "/api/chat").collect().await;
        assert_eq!(got.len(), 2);
        assert!(
            matches!(&got[1], Err(Error::Upstream { message, .. }) if message.contains("out of memory")),
            "{got:?}"
        );
        let garbage: Vec<reqwest::Result<Bytes>> = vec![Ok(Bytes::from_static(b"<html>\n"))];
        let got: Vec<Result<Value>> =
            decode_lines(stream::iter(garbage), Origin::for_tests(), "/api/chat").collect().await;
        assert!(matches!(got.as_slice(), [Err(e)] if e.to_string().contains("<html>")), "{got:?}");
    }
}
