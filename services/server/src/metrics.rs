//! Request metrics in Prometheus text format, and the middleware that records
//! them and writes one log line per request. No label ever carries text the
//! client chose: routes are labelled by pattern (never the concrete path),
//! methods outside the standard set by `OTHER`, and the number of series is
//! bounded, so no request can grow the exposition or the server's memory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::startup::AppState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum_seconds: f64,
    /// Count of observations at or below each bound of `BUCKETS`.
    buckets: [u64; BUCKETS.len()],
}

/// The most series kept; requests that would open another are counted under
/// [`OVERFLOW_ROUTE`]. The routes of the permission table times their methods
/// and statuses stay far below it.
const MAX_SERIES: usize = 2_000;

/// The route label of requests past [`MAX_SERIES`].
const OVERFLOW_ROUTE: &str = "other";

/// The method label of a request: its method when it is one of HTTP's
/// standard methods, `OTHER` for anything else a client may send.
pub fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|standard| *standard == method)
        .unwrap_or("OTHER")
}

/// Counters and latency histograms by method, route and status.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(&'static str, String, u16), Series>>,
}

impl Metrics {
    /// Records one request. `route` must be a route pattern (or another label
    /// the server chose), never a path the client sent.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut key = (method_label(method), route.to_owned(), status);
        if series.len() >= MAX_SERIES && !series.contains_key(&key) {
            key = ("OTHER", OVERFLOW_ROUTE.to_owned(), 0);
        }
        let entry = series.entry(key).or_default();
        entry.count += 1;
        entry.sum_seconds += seconds;
        for (bound, bucket) in BUCKETS.iter().zip(entry.buckets.iter_mut()) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let mut out = String::new();
        out.push_str("# HELP pilotgate_http_requests_total HTTP requests by method, route pattern and status.\n");
        out.push_str("# TYPE pilotgate_http_requests_total counter\n");
        for ((method, route, status), s) in &series {
            let _ = writeln!(
                out,
                "pilotgate_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP pilotgate_http_request_duration_seconds Latency of HTTP requests.\n");
        out.push_str("# TYPE pilotgate_http_request_duration_seconds histogram\n");
        for ((method, route, status), s) in &series {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            for (bound, count) in BUCKETS.iter().zip(s.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "pilotgate_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "pilotgate_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "pilotgate_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "pilotgate_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}

/// The outermost middleware: times the request, counts it and logs one line.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method().as_str());
    let route = crate::auth::route_pattern(&req).unwrap_or_else(|| "unmatched".to_owned());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let outcome = next.call(req).await;
    // Inner middleware refuses with an error that actix turns into a response later.
    let status = match &outcome {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(state) = state {
        state.metrics.observe(method, &route, status, seconds);
    }
    tracing::info!(
        method,
        route,
        status,
        latency_ms = seconds * 1000.0,
        "request"
    );
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_render_as_prometheus_counters_and_histograms() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/healthz", 200, 0.0007);
        metrics.observe("GET", "/healthz", 200, 0.3);
        let text = metrics.render();
        assert!(text.contains(
            "pilotgate_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.001\"} 1"));
        assert!(text.contains("le=\"0.5\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
    }

    #[test]
    fn a_made_up_method_is_labelled_other() {
        let metrics = Metrics::default();
        metrics.observe(&"X".repeat(8_000), "unmatched", 400, 0.001);
        metrics.observe("BREW", "unmatched", 400, 0.001);
        let text = metrics.render();
        assert!(text.contains(
            "pilotgate_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"400\"} 2"
        ));
        assert!(!text.contains("XXX") && !text.contains("BREW"), "{text}");
    }

    #[test]
    fn the_number_of_series_is_bounded() {
        let metrics = Metrics::default();
        for n in 0..(MAX_SERIES + 500) {
            metrics.observe("GET", &format!("/route/{n}"), 200, 0.001);
        }
        let series = metrics.series.lock().unwrap();
        assert_eq!(series.len(), MAX_SERIES + 1);
        assert_eq!(series[&("OTHER", OVERFLOW_ROUTE.to_owned(), 0)].count, 500);
    }
}
