//! The HTTP status server: `GET /status` (JSON), `GET /metrics` (Prometheus text),
//! `GET /health` and a self-refreshing page at `/`. Loopback by default; `[status] listen`.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::State as AxumState,
    http::{header, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};

use crate::{
    config::StatusListen,
    status::{prometheus, State, Status},
};

/// The page at `/`: no build step, no external assets; it polls `/status`.
const PAGE: &str = include_str!("status.html");

/// Binds the configured address. The default address being taken (another task on this
/// host) only costs the status server; a configured address that cannot be bound is an error.
pub async fn bind(listen: StatusListen) -> Result<Option<tokio::net::TcpListener>, String> {
    let Some(addr) = listen.addr() else { return Ok(None) };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok(Some(l)),
        Err(e) if matches!(listen, StatusListen::Default(_)) => {
            tracing::warn!(%addr, error = %e, "status server not started: the default address is taken; set [status] listen to another address (or \"off\")");
            Ok(None)
        }
        Err(e) => Err(format!("cannot listen on {addr} for the status server ({e}). Fix: set [status] listen to a free address, or \"off\"")),
    }
}

/// Serves until the runtime stops.
pub fn spawn(listener: tokio::net::TcpListener, status: Arc<Status>) -> SocketAddr {
    let addr = listener.local_addr().expect("bound listener");
    let app = Router::new()
        .route("/", get(page))
        .route("/status", get(status_json))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(status);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "status server stopped");
        }
    });
    tracing::info!(%addr, "status server listening: http://{addr}/");
    addr
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn status_json(AxumState(status): AxumState<Arc<Status>>) -> Response {
    let body = serde_json::to_string_pretty(&status.snapshot()).expect("snapshot serializes");
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

async fn metrics(AxumState(status): AxumState<Arc<Status>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], prometheus(&status.snapshot())).into_response()
}

/// 200 while the task works (checking, loading, syncing), 503 when it is degraded, stopped or
/// failed.
async fn health(AxumState(status): AxumState<Arc<Status>>) -> Response {
    let state = status.state();
    let healthy = matches!(state, State::Prechecking | State::Starting | State::Loading | State::Syncing);
    let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({ "healthy": healthy, "state": state.name() }).to_string();
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A minimal HTTP/1.1 GET of `path` on `addr` (for `sluice status`): status code and body.
pub async fn http_get(addr: SocketAddr, path: &str, timeout: std::time::Duration) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(raw)
    };
    let raw = tokio::time::timeout(timeout, exchange).await.map_err(|_| format!("no answer within {timeout:?}"))??;
    parse_response(&raw)
}

/// Splits a raw HTTP/1.1 response into status code and (de-chunked) body.
fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("not an HTTP response")?;
    let code: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("not an HTTP response")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((code, body.to_string()));
    }
    let mut rest = body;
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("truncated chunked body")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).map_err(|_| "bad chunk size")?;
        if size == 0 {
            return Ok((code, out));
        }
        out.push_str(after.get(..size).ok_or("truncated chunk")?);
        rest = after.get(size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(parse_response(plain).unwrap(), (200, "hi".to_string()));
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (503, "abcde".to_string()));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn page_is_self_contained() {
        assert!(PAGE.contains("fetch('status'"), "the page polls /status");
        for external in ["http://", "https://", "<link", "src=", "@import", "url("] {
            assert!(!PAGE.contains(external), "the page must not load anything external: {external}");
        }
    }

    #[tokio::test]
    async fn serves_status_metrics_health_and_page() {
        let status = Arc::new(Status::new("t1", "db:3306", "binlog heartbeat".into()));
        status.set_state(State::Syncing);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = spawn(listener, status.clone());
        let t = std::time::Duration::from_secs(5);
        let (code, body) = http_get(addr, "/status", t).await.unwrap();
        assert_eq!(code, 200);
        let snap: crate::status::Snapshot = serde_json::from_str(&body).unwrap();
        assert_eq!((snap.task.as_str(), snap.state), ("t1", State::Syncing));
        let (code, body) = http_get(addr, "/metrics", t).await.unwrap();
        assert_eq!(code, 200);
        assert!(body.contains("sluice_state{task=\"t1\",state=\"syncing\"} 1"), "{body}");
        assert_eq!(http_get(addr, "/health", t).await.unwrap().0, 200);
        status.degraded("lost the connection");
        assert_eq!(http_get(addr, "/health", t).await.unwrap().0, 503);
        let (code, body) = http_get(addr, "/", t).await.unwrap();
        assert_eq!(code, 200);
        assert!(body.contains("<title>sluice"), "{body}");
        assert_eq!(http_get(addr, "/nope", t).await.unwrap().0, 404);
    }
}
