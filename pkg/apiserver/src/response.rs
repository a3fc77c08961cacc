//! Building responses: JSON documents, Status errors, and streamed bodies for watches.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::ApiError;

/// The body of every response.
pub type Body = BoxBody<Bytes, Infallible>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A response with a body and content type.
pub fn with_type(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// A JSON document.
pub fn json(status: StatusCode, value: &Value) -> Response<Body> {
    json_typed(status, "application/json", value)
}

/// A JSON document with a specific media type (`…;as=Table`, aggregated discovery).
pub fn json_typed(status: StatusCode, content_type: &str, value: &Value) -> Response<Body> {
    with_type(
        status,
        content_type,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// A Status error (with `Retry-After` when the client should retry).
pub fn error(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json(status, &e.status());
    if let Some(seconds) = e.retry_after() {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    r
}

/// Plain text.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    with_type(status, "text/plain; charset=utf-8", body)
}

/// A streamed body fed by the returned sender; each message is sent as one frame.
pub fn stream(content_type: &str) -> (mpsc::Sender<Bytes>, Response<Body>) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let frames = tokio_stream::StreamExt::map(ReceiverStream::new(rx), |b| {
        Ok::<_, Infallible>(Frame::data(b))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    (tx, r)
}
