//! The web pages served by the hub (embedded at build time).

use std::sync::Arc;

use axum::response::Html;
use axum::routing::get;
use axum::Router;

use crate::hub::Hub;

pub fn routes() -> Router<Arc<Hub>> {
    Router::new().route("/", get(index))
}

async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><meta charset=utf-8><title>spa-hub</title>",
        "<h1>spa-hub ",
        env!("CARGO_PKG_VERSION"),
        "</h1><p>The hub is running. Socket.IO clients connect to <code>/socket.io/</code> ",
        "(Engine.IO 4, WebSocket transport). Health: <a href=/healthz>/healthz</a>.</p>"
    ))
}
