//! Head office's HTTP side: the sites, the day reports (one site, or all
//! sites summed) as JSON and CSV, a small page, `/healthz` and `/metrics`.
//! Everything but the page's own files needs `SPA_HQ_TOKEN`, sent as
//! `Authorization: Bearer …` (or `?token=` for a plain download link).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::{json, Value};

use super::hq::{now_ms, HqStore};
use crate::config::HqConfig;
use crate::domain::money::PerMethod;
use crate::domain::report::{to_csv, DayReport};

pub struct Hq {
    pub config: Arc<HqConfig>,
    pub store: Arc<HqStore>,
}

pub fn router(hq: Arc<Hq>) -> Router {
    Router::new()
        .route("/hq", get(page))
        .route("/hq/", get(page))
        .route("/hq/app.js", get(script))
        .route("/hq/api/sites", get(sites))
        .route("/hq/reports/day.json", get(day_json))
        .route("/hq/reports/day.csv", get(day_csv))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(hq)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        json!({"error": {"code": code, "message": message.into()}}),
    )
}

fn authorized(hq: &Hq, headers: &HeaderMap, query: &BTreeMap<String, String>) -> bool {
    use subtle::ConstantTimeEq;
    let given = crate::http::bearer(headers)
        .map(str::to_string)
        .or_else(|| query.get("token").cloned());
    given.is_some_and(|t| bool::from(t.as_bytes().ct_eq(hq.config.token.as_bytes())))
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send SPA_HQ_TOKEN as Authorization: Bearer …",
    )
}

/// What head office sums across sites for a day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DaySummary {
    pub visits_created: u64,
    pub revenue_cents: i64,
    pub booked_revenue_cents: i64,
    pub walk_in_revenue_cents: i64,
    pub tips_cents: i64,
    pub tips_count: u64,
    pub discounts_cents: i64,
    pub refunds_cents: i64,
    pub bookings_made: u64,
    pub no_shows: u64,
    pub drawers: u64,
    pub drawer_variance: PerMethod,
    pub events: u64,
}

impl DaySummary {
    pub fn of(r: &DayReport) -> DaySummary {
        let mut variance = PerMethod::default();
        for d in &r.drawers {
            add(&mut variance, &d.variance);
        }
        DaySummary {
            visits_created: r.visits_created,
            revenue_cents: r.revenue_cents,
            booked_revenue_cents: r.booked_revenue_cents,
            walk_in_revenue_cents: r.walk_in_revenue_cents,
            tips_cents: r.tips.cents,
            tips_count: r.tips.count,
            discounts_cents: r.discounts.cents,
            refunds_cents: r.refunds.cents,
            bookings_made: r.bookings.made,
            no_shows: r.bookings.no_shows,
            drawers: r.drawers.len() as u64,
            drawer_variance: variance,
            events: r.events,
        }
    }

    fn add(&mut self, o: &DaySummary) {
        self.visits_created += o.visits_created;
        self.revenue_cents += o.revenue_cents;
        self.booked_revenue_cents += o.booked_revenue_cents;
        self.walk_in_revenue_cents += o.walk_in_revenue_cents;
        self.tips_cents += o.tips_cents;
        self.tips_count += o.tips_count;
        self.discounts_cents += o.discounts_cents;
        self.refunds_cents += o.refunds_cents;
        self.bookings_made += o.bookings_made;
        self.no_shows += o.no_shows;
        self.drawers += o.drawers;
        add(&mut self.drawer_variance, &o.drawer_variance);
        self.events += o.events;
    }

    fn csv_fields(&self) -> [(&'static str, String); 16] {
        [
            ("visits_created", self.visits_created.to_string()),
            ("revenue_cents", self.revenue_cents.to_string()),
            (
                "booked_revenue_cents",
                self.booked_revenue_cents.to_string(),
            ),
            (
                "walk_in_revenue_cents",
                self.walk_in_revenue_cents.to_string(),
            ),
            ("tips_cents", self.tips_cents.to_string()),
            ("tips_count", self.tips_count.to_string()),
            ("discounts_cents", self.discounts_cents.to_string()),
            ("refunds_cents", self.refunds_cents.to_string()),
            ("bookings_made", self.bookings_made.to_string()),
            ("no_shows", self.no_shows.to_string()),
            ("drawers", self.drawers.to_string()),
            (
                "drawer_variance_cash_cents",
                self.drawer_variance.cash.to_string(),
            ),
            (
                "drawer_variance_card_cents",
                self.drawer_variance.card.to_string(),
            ),
            (
                "drawer_variance_voucher_cents",
                self.drawer_variance.voucher.to_string(),
            ),
            (
                "drawer_variance_other_cents",
                self.drawer_variance.other.to_string(),
            ),
            ("events", self.events.to_string()),
        ]
    }
}

fn add(to: &mut PerMethod, o: &PerMethod) {
    to.cash += o.cash;
    to.card += o.card;
    to.voucher += o.voucher;
    to.other += o.other;
}

fn format_day(day: u32) -> String {
    format!("{}-{:02}-{:02}", day / 10_000, day / 100 % 100, day % 100)
}

/// A response that refuses (boxed: it is large and the happy path is not).
type Refused = Box<Response>;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
) -> Result<T, Refused> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ))),
        Err(_) => Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the report failed",
        ))),
    }
}

async fn sites(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&hq, &headers, &query) {
        return unauthorized();
    }
    let store = hq.store.clone();
    let live_after = hq.config.live_after_ms as i64;
    let result = blocking(move || {
        let now = now_ms();
        let mut out = Vec::new();
        for (site, meta) in store.sites() {
            let alive = store.alive(&site);
            let today = store.today(&site).unwrap_or(0);
            let report = store.day_report(&site, today)?;
            let site_seq = alive.map(|(a, _)| a.seq).unwrap_or(meta.last_seq);
            let lag_events = site_seq.saturating_sub(meta.last_seq);
            out.push(json!({
                "site": site,
                "tz": meta.tz,
                "pii": meta.pii,
                "live": alive.is_some_and(|(_, heard)| now - heard <= live_after),
                "last_seq": meta.last_seq,
                "last_event_at": meta.last_event_at,
                "received_at": meta.received_at,
                "site_seq": site_seq,
                "lag_events": lag_events,
                "lag_seconds": if lag_events == 0 { 0.0 } else { (now - meta.last_event_at).max(0) as f64 / 1000.0 },
                "gaps": meta.gaps,
                "today": {
                    "date": format_day(today),
                    "revenue_cents": report.as_ref().map_or(0, |r| r.revenue_cents),
                    "tips_cents": report.as_ref().map_or(0, |r| r.tips.cents),
                    "visits_created": report.as_ref().map_or(0, |r| r.visits_created),
                },
            }));
        }
        Ok(json!({ "sites": out }))
    })
    .await;
    match result {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(r) => *r,
    }
}

/// The day asked for: `date=YYYY-MM-DD`, or today (the site's, or head
/// office's own zone for all sites).
fn day_of_query(hq: &Hq, query: &BTreeMap<String, String>) -> Result<u32, Refused> {
    match query
        .get("date")
        .map(|d| d.trim())
        .filter(|d| !d.is_empty())
    {
        Some(text) => crate::hub::parse_date(text)
            .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, "bad_request", e.message))),
        None => Ok(query
            .get("site")
            .and_then(|s| hq.store.today(s))
            .unwrap_or_else(|| {
                crate::clock::SpaClock::new(jiff::tz::TimeZone::system())
                    .now()
                    .day
            })),
    }
}

enum Day {
    Site(Box<DayReport>),
    All {
        sites: Vec<(String, DaySummary)>,
        total: DaySummary,
    },
}

async fn day(hq: &Hq, query: &BTreeMap<String, String>) -> Result<(u32, Day), Refused> {
    let day = day_of_query(hq, query)?;
    let store = hq.store.clone();
    match query.get("site").cloned().filter(|s| !s.is_empty()) {
        Some(site) => {
            let report = blocking(move || store.day_report(&site, day)).await?;
            match report {
                Some(r) => Ok((day, Day::Site(Box::new(r)))),
                None => Err(Box::new(error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no such site",
                ))),
            }
        }
        None => {
            let (sites, total) = blocking(move || {
                let mut sites = Vec::new();
                let mut total = DaySummary::default();
                for site in store.sites().into_keys() {
                    if let Some(r) = store.day_report(&site, day)? {
                        let s = DaySummary::of(&r);
                        total.add(&s);
                        sites.push((site, s));
                    }
                }
                Ok((sites, total))
            })
            .await?;
            Ok((day, Day::All { sites, total }))
        }
    }
}

async fn day_json(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&hq, &headers, &query) {
        return unauthorized();
    }
    match day(&hq, &query).await {
        Ok((_, Day::Site(r))) => json_response(StatusCode::OK, json!(r)),
        Ok((d, Day::All { sites, total })) => json_response(
            StatusCode::OK,
            json!({
                "date": format_day(d),
                "sites": sites.into_iter().map(|(site, s)| json!({"site": site, "summary": s})).collect::<Vec<_>>(),
                "total": total,
            }),
        ),
        Err(r) => *r,
    }
}

async fn day_csv(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&hq, &headers, &query) {
        return unauthorized();
    }
    let text = match day(&hq, &query).await {
        Ok((_, Day::Site(r))) => to_csv(&r),
        Ok((d, Day::All { sites, total })) => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let date = format_day(d);
            let mut rows = vec![[
                "date".to_string(),
                "site".into(),
                "figure".into(),
                "value".into(),
            ]];
            for (site, s) in sites.iter().chain([("all".to_string(), total)].iter()) {
                for (k, v) in s.csv_fields() {
                    rows.push([date.clone(), site.clone(), k.to_string(), v]);
                }
            }
            rows.iter()
                .try_for_each(|r| w.write_record(r))
                .map_err(|e| e.to_string())
                .and_then(|()| w.into_inner().map_err(|e| e.to_string()))
                .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
        }
        Err(r) => return *r,
    };
    match text {
        Ok(t) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            t,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}

async fn healthz(State(hq): State<Arc<Hq>>) -> Response {
    let c = &hq.store.counters;
    json_response(
        StatusCode::OK,
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "nats": if c.connected.load(Relaxed) { "consuming" } else { "connecting" },
            "last_error": hq.store.last_error(),
            "sites": hq.store.sites().len(),
            "ingested": c.ingested.load(Relaxed),
            "malformed": c.malformed.load(Relaxed),
        }),
    )
}

async fn metrics(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    use std::fmt::Write;
    if !authorized(&hq, &headers, &query) {
        return unauthorized();
    }
    let c = &hq.store.counters;
    let mut out = String::new();
    for (name, help, value) in [
        (
            "spa_hq_connected",
            "1 while consuming from NATS",
            c.connected.load(Relaxed) as u64,
        ),
        (
            "spa_hq_events_ingested_total",
            "Site events stored",
            c.ingested.load(Relaxed),
        ),
        (
            "spa_hq_duplicates_total",
            "Events already held (redelivered or republished)",
            c.duplicates.load(Relaxed),
        ),
        (
            "spa_hq_malformed_total",
            "Messages skipped: not a site's event",
            c.malformed.load(Relaxed),
        ),
        (
            "spa_hq_gaps_total",
            "Events that did not follow their site's last seq",
            c.gaps.load(Relaxed),
        ),
        (
            "spa_hq_failures_total",
            "Failed connects and consumer errors",
            c.failures.load(Relaxed),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP spa_hq_site_last_seq Last seq held per site\n# TYPE spa_hq_site_last_seq gauge"
    );
    for (site, meta) in hq.store.sites() {
        let _ = writeln!(
            out,
            "spa_hq_site_last_seq{{site=\"{site}\"}} {}",
            meta.last_seq
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}

const PAGE: &str = include_str!("hq.html");
const SCRIPT: &str = include_str!("hq.js");

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        PAGE,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// `spa-hub hq`: serves until SIGTERM/SIGINT, consuming all the while.
pub async fn serve(config: HqConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config = Arc::new(config);
    let store = Arc::new(HqStore::open(&config.data_dir)?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let consumer = tokio::spawn(super::hq::consume(config.clone(), store.clone(), stop_rx));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    log::info!(
        "spa-hub hq listening on {}, data in {}",
        listener.local_addr()?,
        config.data_dir.display()
    );
    let app = router(Arc::new(Hq {
        config: config.clone(),
        store: store.clone(),
    }));
    serve_http(
        listener,
        app,
        HttpLimits::HEAD_OFFICE,
        crate::daemon::wait_for_signal(),
    )
    .await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), consumer).await;
    log::info!("spa-hub hq stopped");
    Ok(())
}

/// What one head-office HTTP server allows: head office is a handful of
/// people and scripts, and its port may face the internet.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections at once; past it a new one is closed at once.
    pub max_connections: usize,
    /// A request's headers must arrive within this (an idle or trickling
    /// connection is closed).
    pub header_timeout: std::time::Duration,
    /// A connection is closed after this, kept alive or not.
    pub lifetime: std::time::Duration,
}

impl HttpLimits {
    pub const HEAD_OFFICE: HttpLimits = HttpLimits {
        max_connections: 256,
        header_timeout: std::time::Duration::from_secs(10),
        lifetime: std::time::Duration::from_secs(120),
    };
}

/// Serves `app` on `listener` within `limits` until `stop` completes.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: wait a little
                // rather than spin.
                log::warn!("accepting a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            log::debug!("refused a connection: {} open", limits.max_connections);
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    crate::edge::respond(app.clone(), request.map(axum::body::Body::new))
                },
            );
            let serving = crate::edge::http1(limits.header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
            let _ = tokio::time::timeout(limits.lifetime, serving).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn fetch_ok(port: u16) -> String {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await;
        out
    }

    /// Reads until the server closes (`true`) or `wait` passes (`false`).
    async fn closed_within(s: &mut tokio::net::TcpStream, wait: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(wait, s.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    #[tokio::test]
    async fn idle_and_surplus_connections_are_closed_and_requests_still_served() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = Router::new().route("/ok", get_route());
        let limits = HttpLimits {
            max_connections: 3,
            header_timeout: Duration::from_millis(300),
            lifetime: Duration::from_secs(30),
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_http(listener, app, limits, async {
            let _ = stop_rx.await;
        }));
        assert!(fetch_ok(port).await.contains("200 OK"));
        // Silent and trickling connections are closed after the header
        // timeout, so they cannot hold the server's places.
        let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut trickle = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        trickle
            .write_all(b"GET /ok HTTP/1.1\r\n")
            .await
            .expect("write");
        assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
        assert!(closed_within(&mut trickle, Duration::from_secs(3)).await);
        // Past the cap a new connection is closed at once; once the places
        // are free again, requests are served.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).await.expect("read");
            assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
            held.push(s);
        }
        let mut surplus = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        assert!(closed_within(&mut surplus, Duration::from_secs(1)).await);
        drop(held);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(fetch_ok(port).await.contains("200 OK"));
        let _ = stop_tx.send(());
        let _ = server.await;
    }

    fn get_route() -> axum::routing::MethodRouter {
        axum::routing::get(|| async { "ok" })
    }
}
