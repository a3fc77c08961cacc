//! Watch events and the decoding of a watch response: newline-delimited JSON objects
//! `{"type": …, "object": …}` that may arrive split across any number of body frames.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::BoxStream;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, Status};

/// One event of a watch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", content = "object", rename_all = "UPPERCASE")]
pub enum WatchEvent<K> {
    /// The object was created (or existed when a watch from an old version began).
    Added(K),
    /// The object changed.
    Modified(K),
    /// The object was deleted; this is its last state.
    Deleted(K),
    /// Nothing changed in what this watch selects up to this resourceVersion.
    Bookmark(Bookmark),
    /// The watch failed; a `410 Expired` means the version it started from was compacted.
    Error(Status),
}

/// The object of a `BOOKMARK` event: only its resourceVersion means anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Bookmark {
    /// Metadata with the resourceVersion.
    pub metadata: BookmarkMeta,
}

/// The metadata of a bookmark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookmarkMeta {
    /// The resourceVersion the watch has reached.
    #[serde(default)]
    pub resource_version: String,
}

/// Splits a byte stream into lines, keeping a partial line until its end arrives.
#[derive(Debug, Default)]
pub(crate) struct LineDecoder {
    buffer: BytesMut,
}

impl LineDecoder {
    /// Adds a chunk and returns the complete, non-empty lines it finished.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.buffer.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let mut line = self.buffer.split_to(end + 1).freeze();
            line.truncate(end);
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push(line);
            }
        }
        lines
    }

    /// The unterminated rest at the end of the stream, if any.
    pub(crate) fn finish(&mut self) -> Option<Bytes> {
        let rest = std::mem::take(&mut self.buffer).freeze();
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

/// Decodes one event line.
pub(crate) fn decode<K: DeserializeOwned>(path: &str, line: &[u8]) -> Result<WatchEvent<K>> {
    serde_json::from_slice(line).map_err(|source| Error::Decode {
        path: path.to_string(),
        source,
    })
}

/// The events of a watch response body. Ends when the server ends the watch.
pub(crate) fn events<K: DeserializeOwned + Send + 'static>(
    path: String,
    body: Incoming,
) -> WatchStream<K> {
    struct State {
        path: String,
        body: Option<Incoming>,
        decoder: LineDecoder,
        lines: VecDeque<Bytes>,
    }
    let state = State {
        path,
        body: Some(body),
        decoder: LineDecoder::default(),
        lines: VecDeque::new(),
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(line) = state.lines.pop_front() {
                let event = decode::<K>(&state.path, line.chunk());
                return Some((event, state));
            }
            let body = state.body.as_mut()?;
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        state.lines.extend(state.decoder.push(&data));
                    }
                }
                Some(Err(source)) => {
                    state.body = None;
                    let error = Error::Body {
                        path: state.path.clone(),
                        source,
                    };
                    return Some((Err(error), state));
                }
                None => {
                    state.body = None;
                    state.lines.extend(state.decoder.finish());
                }
            }
        }
    });
    Box::pin(stream) as BoxStream<'static, _>
}

/// A stream of watch events, boxed.
pub type WatchStream<K> = BoxStream<'static, Result<WatchEvent<K>>>;

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    const ADDED: &str = r#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default","resourceVersion":"5"},"data":{"k":"v"}}}"#;
    const BOOKMARK: &str = r#"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"9","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
    const ERROR: &str = r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#;

    fn decode_all(chunks: &[&[u8]]) -> Vec<WatchEvent<ConfigMap>> {
        let mut decoder = LineDecoder::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            lines.extend(decoder.push(chunk));
        }
        lines.extend(decoder.finish());
        lines.iter().map(|l| decode("/w", l).unwrap()).collect()
    }

    #[test]
    fn events_split_anywhere_decode_the_same() {
        let text = format!("{ADDED}\n{BOOKMARK}\n\n{ERROR}\n");
        let whole = decode_all(&[text.as_bytes()]);
        assert_eq!(whole.len(), 3);
        for cut in 1..text.len() {
            let (a, b) = text.as_bytes().split_at(cut);
            assert_eq!(decode_all(&[a, b]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        assert_eq!(decode_all(&bytes), whole);
    }

    #[test]
    fn event_kinds_decode_to_their_variants() {
        let text = format!("{ADDED}\n{BOOKMARK}\n{ERROR}");
        let events = decode_all(&[text.as_bytes()]);
        match &events[0] {
            WatchEvent::Added(cm) => {
                assert_eq!(cm.metadata.name.as_deref(), Some("a"));
                assert_eq!(cm.metadata.resource_version.as_deref(), Some("5"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            matches!(&events[1], WatchEvent::Bookmark(b) if b.metadata.resource_version == "9")
        );
        match &events[2] {
            WatchEvent::Error(status) => {
                assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn object_before_type_still_decodes() {
        let line = r#"{"object":{"metadata":{"name":"b"}},"type":"DELETED"}"#;
        let event: WatchEvent<ConfigMap> = decode("/w", line.as_bytes()).unwrap();
        assert!(
            matches!(event, WatchEvent::Deleted(cm) if cm.metadata.name.as_deref() == Some("b"))
        );
    }
}
