//! Answers of the console's API compressed with gzip when the client takes
//! it (browsers always do): plot values and tables are JSON of digits that
//! shrink several times, which counts on a plant network and a VPN.

use std::io::Write;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Smaller bodies go as they are: compressing them saves nothing.
const MIN_BYTES: usize = 1024;

/// Compresses the answer of `request` if the client accepts gzip.
pub async fn compress(request: Request, next: Next) -> Response {
    let accepts = request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| coding.split(';').next().map(str::trim) == Some("gzip"));
    let response = next.run(request).await;
    // A stream of events never ends: it goes as it comes.
    let streams = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if !accepts || streams || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if bytes.len() < MIN_BYTES {
        return Response::from_parts(parts, Body::from(bytes));
    }
    // CPU work on large answers (a SQL result): off the async workers.
    let compressed = tokio::task::spawn_blocking(move || {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(bytes.len() / 4),
            flate2::Compression::fast(),
        );
        encoder
            .write_all(&bytes)
            .and_then(|()| encoder.finish())
            .expect("gzip into memory cannot fail")
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    Response::from_parts(parts, Body::from(compressed))
}
