//! Process metrics for `pluginv2.Diagnostics/CollectMetrics` (protocol.md §2.6), in the
//! Prometheus text exposition format. Label values are rule ids, `host:port` and statuses —
//! never URLs, params or anything that could hold a secret.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of `restbridge_queries`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// Rule id (or `unknown` when the query named no known rule).
    pub rule: String,
    /// DataResponse status (200, 400, 502, ...).
    pub status: String,
}

/// Labels of the upstream metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// `host:port` of the upstream.
    pub host: String,
    /// HTTP status, or `error` / `timeout` when there was none.
    pub status: String,
}

/// Labels of `restbridge_cache_events`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit`, `miss`, `stale` or `coalesced`.
    pub event: String,
}

/// Every metric RestBridge exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Queries answered, by rule and status.
    pub queries: Family<QueryLabels, Counter>,
    /// Upstream HTTP requests, by host and status.
    pub upstream_requests: Family<UpstreamLabels, Counter>,
    /// Upstream request latency in seconds (connect to end of body).
    pub upstream_seconds: Histogram,
    /// Cache hits, misses, stale answers and coalesced waits.
    pub cache_events: Family<CacheLabels, Counter>,
    /// Bytes held by the response caches (sum over datasource instances).
    pub cache_bytes: Gauge,
    /// Upstream requests in flight.
    pub inflight: Gauge,
    /// Answers computed: fetched (or read from the body cache), converted and encoded. A
    /// query answered from the answer cache, or by joining an identical query's
    /// computation, computes none.
    pub answers_computed: Counter,
    /// Tokio tasks alive in the plugin's runtime (set at each [`encode`](Self::encode)).
    pub runtime_tasks: Gauge,
    /// Tokio async worker threads.
    pub runtime_workers: Gauge,
    cache_bytes_total: AtomicU64,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("restbridge");
        let queries = Family::<QueryLabels, Counter>::default();
        registry.register(
            "queries",
            "Queries answered, by rule and status",
            queries.clone(),
        );
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "Upstream HTTP requests, by host and status",
            upstream_requests.clone(),
        );
        let upstream_seconds = Histogram::new([
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        registry.register(
            "upstream_request_duration_seconds",
            "Upstream request latency in seconds",
            upstream_seconds.clone(),
        );
        let cache_events = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_events",
            "Response cache events: hit, miss, stale, coalesced",
            cache_events.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "cache_bytes",
            "Bytes held by the response caches",
            cache_bytes.clone(),
        );
        let inflight = Gauge::default();
        registry.register(
            "upstream_inflight_requests",
            "Upstream requests in flight",
            inflight.clone(),
        );
        let answers_computed = Counter::default();
        registry.register(
            "answers_computed",
            "Answers computed (fetch, convert, encode); cached and coalesced queries compute none",
            answers_computed.clone(),
        );
        let runtime_tasks = Gauge::default();
        registry.register(
            "runtime_alive_tasks",
            "Tokio tasks alive in the plugin's runtime",
            runtime_tasks.clone(),
        );
        let runtime_workers = Gauge::default();
        registry.register(
            "runtime_workers",
            "Tokio async worker threads",
            runtime_workers.clone(),
        );
        Metrics {
            registry,
            queries,
            upstream_requests,
            upstream_seconds,
            cache_events,
            cache_bytes,
            inflight,
            answers_computed,
            runtime_tasks,
            runtime_workers,
            cache_bytes_total: AtomicU64::new(0),
        }
    }

    /// Counts one cache event (`hit`, `miss`, `stale`, `coalesced`).
    pub fn cache_event(&self, event: &str) {
        self.cache_events
            .get_or_create(&CacheLabels {
                event: event.to_owned(),
            })
            .inc();
    }

    /// Counts one answered query.
    pub fn query(&self, rule: &str, status: i32) {
        self.queries
            .get_or_create(&QueryLabels {
                rule: rule.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Records one upstream request.
    pub fn upstream(&self, host: &str, status: &str, seconds: f64) {
        self.upstream_requests
            .get_or_create(&UpstreamLabels {
                host: host.to_owned(),
                status: status.to_owned(),
            })
            .inc();
        self.upstream_seconds.observe(seconds);
    }

    /// Sets the cache byte total (computed by the caller over all instances).
    pub fn set_cache_bytes(&self, bytes: u64) {
        self.cache_bytes_total.store(bytes, Ordering::Relaxed);
        self.cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric. Reads the tokio runtime's task and
    /// thread counts first when called inside a runtime (for soak runs: they must stay flat).
    pub fn encode(&self) -> String {
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let m = h.metrics();
            let g = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            self.runtime_tasks.set(g(m.num_alive_tasks()));
            self.runtime_workers.set(g(m.num_workers()));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_exposition_has_every_family() {
        let m = Metrics::new();
        m.query("r1", 200);
        m.upstream("127.0.0.1:9", "200", 0.01);
        m.cache_event("hit");
        m.set_cache_bytes(42);
        let text = m.encode();
        for needle in [
            "restbridge_queries_total{rule=\"r1\",status=\"200\"} 1",
            "restbridge_upstream_requests_total{host=\"127.0.0.1:9\",status=\"200\"} 1",
            "restbridge_upstream_request_duration_seconds_count 1",
            "restbridge_cache_events_total{event=\"hit\"} 1",
            "restbridge_cache_bytes 42",
            "restbridge_upstream_inflight_requests 0",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
