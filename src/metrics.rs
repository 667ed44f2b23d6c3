//! Process metrics for `GET /metrics`, in the Prometheus text format.
//!
//! A handful of counters and one latency histogram per route do not need a metrics
//! library: they are atomics and one small map behind a mutex, rendered by hand.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::content_log::ContentLogMetrics;
use crate::events::EventMetrics;
use crate::outbox::OutboxMetrics;
use crate::webhooks::WebhookMetrics;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Cumulative counts are computed when rendering; these are per bucket.
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Debug, Default)]
struct RouteMetrics {
    /// Requests by (route, method, status).
    requests: BTreeMap<(String, String, u16), u64>,
    /// Latency by route.
    latency: BTreeMap<String, Histogram>,
}

/// All metrics of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<RouteMetrics>,
    pub suggestions_answered: AtomicU64,
    pub suggestions_abstained: AtomicU64,
    pub suggestions_held_out: AtomicU64,
    pub events: Arc<EventMetrics>,
    pub webhooks: Arc<WebhookMetrics>,
    pub outbox: Arc<OutboxMetrics>,
    pub content_log: Arc<ContentLogMetrics>,
}

impl Metrics {
    pub fn new(events: Arc<EventMetrics>, content_log: Arc<ContentLogMetrics>) -> Metrics {
        Metrics {
            events,
            content_log,
            ..Metrics::default()
        }
    }

    /// Counts one request of `route` and its latency.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *routes
            .requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_insert(0) += 1;
        let histogram = routes.latency.entry(route.to_owned()).or_default();
        histogram.count += 1;
        histogram.sum_seconds += seconds;
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[bucket] += 1;
        }
    }

    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (requests, latency) = {
            let routes = self
                .routes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (routes.requests.clone(), routes.latency.clone())
        };
        out.push_str(
            "# HELP deflect_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE deflect_http_requests_total counter\n");
        for ((route, method, status), count) in &requests {
            let _ = writeln!(
                out,
                "deflect_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                escape_label(route),
                escape_label(method)
            );
        }
        out.push_str(
            "# HELP deflect_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE deflect_http_request_duration_seconds histogram\n");
        for (route, histogram) in &latency {
            let route = escape_label(route);
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "deflect_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "deflect_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "deflect_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum_seconds
            );
            let _ = writeln!(
                out,
                "deflect_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        let events = &self.events;
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        let webhooks = &self.webhooks;
        let outbox = &self.outbox;
        let content_log = &self.content_log;
        let simple: [(&str, &str, &str, u64); 25] = [
            (
                "deflect_suggestions_total",
                "counter",
                "Suggest answers given.",
                load(&self.suggestions_answered),
            ),
            (
                "deflect_suggestions_abstained_total",
                "counter",
                "Suggest answers that suggested nothing.",
                load(&self.suggestions_abstained),
            ),
            (
                "deflect_suggestions_held_out_total",
                "counter",
                "Suggest answers withheld for holdout sessions.",
                load(&self.suggestions_held_out),
            ),
            (
                "deflect_event_queue_depth",
                "gauge",
                "Events waiting in the in-memory queue.",
                events.queue_depth.load(Ordering::Relaxed) as u64,
            ),
            (
                "deflect_event_spool_bytes",
                "gauge",
                "Bytes in the event spool file.",
                load(&events.spool_bytes),
            ),
            (
                "deflect_redis_errors_total",
                "counter",
                "Failed Redis calls of the event writer.",
                load(&events.redis_errors),
            ),
            (
                "deflect_events_counted_total",
                "counter",
                "Events counted in Redis.",
                load(&events.counted),
            ),
            (
                "deflect_events_duplicate_total",
                "counter",
                "Events Redis had already counted.",
                load(&events.duplicates),
            ),
            (
                "deflect_events_spooled_total",
                "counter",
                "Events written to the spool and fsynced.",
                load(&events.spooled),
            ),
            (
                "deflect_event_spool_syncs_total",
                "counter",
                "Fsyncs of the event spool.",
                load(&events.spool_syncs),
            ),
            (
                "deflect_events_replayed_total",
                "counter",
                "Spooled events replayed into Redis.",
                load(&events.replayed),
            ),
            (
                "deflect_events_rejected_total",
                "counter",
                "Invalid events rejected.",
                load(&events.rejected),
            ),
            (
                "deflect_events_dropped_total",
                "counter",
                "Events lost (queue or spool full).",
                load(&events.dropped),
            ),
            (
                "deflect_webhooks_verified_total",
                "counter",
                "Webhook deliveries that passed verification.",
                load(&webhooks.verified),
            ),
            (
                "deflect_webhooks_unauthorized_total",
                "counter",
                "Webhook deliveries refused with 401.",
                load(&webhooks.unauthorized),
            ),
            (
                "deflect_webhooks_malformed_total",
                "counter",
                "Verified webhook deliveries that were not ticket webhooks (400).",
                load(&webhooks.malformed),
            ),
            (
                "deflect_webhooks_duplicate_total",
                "counter",
                "Redeliveries of webhook deliveries already processed.",
                load(&webhooks.duplicates),
            ),
            (
                "deflect_outbox_queued_total",
                "counter",
                "Helpdesk calls queued.",
                load(&outbox.queued),
            ),
            (
                "deflect_outbox_done_total",
                "counter",
                "Helpdesk calls done.",
                load(&outbox.done),
            ),
            (
                "deflect_outbox_retried_total",
                "counter",
                "Failed helpdesk call attempts scheduled again.",
                load(&outbox.retried),
            ),
            (
                "deflect_outbox_failed_total",
                "counter",
                "Helpdesk calls given up (retries exhausted or a permanent failure).",
                load(&outbox.failed),
            ),
            (
                "deflect_outbox_found_posted_total",
                "counter",
                "Comments a retry found already posted (and did not post again).",
                load(&outbox.found_posted),
            ),
            (
                "deflect_content_log_lost_total",
                "counter",
                "Times this instance found the content log lost (flushed, restarted empty or replaced by an older copy).",
                load(&content_log.lost),
            ),
            (
                "deflect_content_log_seeded_total",
                "counter",
                "Seeds of a lost or empty content log this instance wrote from its index.",
                load(&content_log.seeded),
            ),
            ("deflect_up", "gauge", "1 while the process serves.", 1),
        ];
        for (name, kind, help, value) in simple {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: counts every request by its route pattern (never the raw path, so ids
/// do not multiply the series) and records its latency.
pub async fn record_request_metrics(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let metrics = request.app_data::<web::Data<Arc<Metrics>>>().cloned();
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        metrics.observe_request(
            &route,
            &method,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative_in_the_rendering() {
        let metrics = Metrics::default();
        metrics.observe_request("/v1/suggest", "POST", 200, 0.0015);
        metrics.observe_request("/v1/suggest", "POST", 200, 0.2);

        let text = metrics.render();

        assert!(text.contains("deflect_http_requests_total{route=\"/v1/suggest\",method=\"POST\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("deflect_http_request_duration_seconds_bucket{route=\"/v1/suggest\",le=\"0.002\"} 1"), "{text}");
        assert!(
            text.contains(
                "deflect_http_request_duration_seconds_bucket{route=\"/v1/suggest\",le=\"0.25\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("deflect_http_request_duration_seconds_count{route=\"/v1/suggest\"} 2"),
            "{text}"
        );
    }
}
