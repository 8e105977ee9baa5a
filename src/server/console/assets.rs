//! The console's files, embedded in the binary at build time (nothing to
//! install, no CDN, no bundler): the page at `/`, scripts and styles under
//! `/console/`. Answers carry a content security policy that lets the page
//! load only from its own origin and never be framed.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

use crate::server::http::HttpState;

/// (name, content type, bytes) of every file the console serves.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("web/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("web/style.css"),
    ),
    ("app.js", JS, include_str!("web/app.js")),
    ("api.js", JS, include_str!("web/api.js")),
    ("chart.js", JS, include_str!("web/chart.js")),
    ("trend.js", JS, include_str!("web/trend.js")),
    ("graph.js", JS, include_str!("web/graph.js")),
    ("lot.js", JS, include_str!("web/lot.js")),
    ("audit.js", JS, include_str!("web/audit.js")),
    ("status.js", JS, include_str!("web/status.js")),
    ("sql.js", JS, include_str!("web/sql.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route(
            "/console/{name}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
}

fn file(name: &str) -> Response {
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such console file").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, *content_type),
            // The files change with the binary; revalidating is cheap on loopback.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        *body,
    )
        .into_response()
}
