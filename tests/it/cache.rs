//! Cache behaviour seen from Grafana: alert queries, X-Cache-Skip, stale-if-error, metrics
//! (config.md §1 `cache`, protocol.md §4.3).

use std::collections::HashMap;
use std::time::Duration;

use restbridge::pb::pluginv2;
use serde_json::json;

use crate::support::arrow::decode;
use crate::support::plugin::{context, query, PluginProcess};
use crate::support::stub::{Route, Stub};

fn rules() -> serde_json::Value {
    json!({"rules": [
        {"id": "fresh_alerts", "request": {"url": "/v"}, "cache": {"ttlSeconds": 60},
         "response": {"fields": [{"name": "v", "path": "$.v", "type": "number"}]}},
        {"id": "cached_alerts", "request": {"url": "/w"}, "cache": {"ttlSeconds": 60, "alertQueries": "cached"},
         "response": {"fields": [{"name": "v", "path": "$.v", "type": "number"}]}},
        {"id": "stale", "request": {"url": "/s"}, "cache": {"ttlSeconds": 1, "staleIfErrorSeconds": 60},
         "response": {"fields": [{"name": "v", "path": "$.v", "type": "number"}]}}
    ]})
}

async fn ask(
    p: &PluginProcess,
    ctx: &pluginv2::PluginContext,
    rule: &str,
    headers: &[(&str, &str)],
) -> pluginv2::DataResponse {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    p.data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            headers,
            queries: vec![query("A", rule, json!({}), 0, 1)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .responses
        .remove("A")
        .unwrap()
}

fn hits(stub: &Stub, path: &str) -> usize {
    stub.seen()
        .iter()
        .filter(|s| s.path_and_query.starts_with(path))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_queries_get_fresh_data_unless_the_rule_says_cached() {
    let up = Stub::start(vec![
        ("/v", Route::json(r#"{"v":1}"#)),
        ("/w", Route::json(r#"{"v":2}"#)),
    ])
    .await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("c", &up.url(), &rules(), &[], 1);
    let alert = [("FromAlert", "true"), ("X-Cache-Skip", "true")];
    // Dashboard query fills the cache; a second dashboard query is a hit.
    assert_eq!(ask(&p, &ctx, "fresh_alerts", &[]).await.status, 200);
    assert_eq!(ask(&p, &ctx, "fresh_alerts", &[]).await.status, 200);
    assert_eq!(hits(&up, "/v"), 1);
    // Alert queries skip the cache by default...
    assert_eq!(ask(&p, &ctx, "fresh_alerts", &alert).await.status, 200);
    assert_eq!(
        ask(&p, &ctx, "fresh_alerts", &[("FromAlert", "true")])
            .await
            .status,
        200
    );
    assert_eq!(hits(&up, "/v"), 3, "alert queries went upstream");
    // ...and X-Cache-Skip alone too.
    assert_eq!(
        ask(&p, &ctx, "fresh_alerts", &[("X-Cache-Skip", "true")])
            .await
            .status,
        200
    );
    assert_eq!(hits(&up, "/v"), 4);
    // With alertQueries: cached they are served from the cache.
    assert_eq!(ask(&p, &ctx, "cached_alerts", &[]).await.status, 200);
    assert_eq!(ask(&p, &ctx, "cached_alerts", &alert).await.status, 200);
    assert_eq!(hits(&up, "/w"), 1, "alert query answered from the cache");

    // Concurrent identical alert queries still coalesce into one upstream call.
    up.set(
        "/v",
        Route::json(r#"{"v":1}"#).delay(Duration::from_millis(300)),
    );
    let before = hits(&up, "/v");
    let headers: HashMap<String, String> = alert
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let qs = (0..6)
        .map(|i| query(&format!("Q{i}"), "fresh_alerts", json!({}), 0, 1))
        .collect();
    let r = p
        .data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            headers,
            queries: qs,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.responses.values().all(|x| x.status == 200));
    assert_eq!(
        hits(&up, "/v") - before,
        1,
        "6 concurrent alert queries → 1 upstream call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_answer_when_the_upstream_fails_within_stale_if_error() {
    let up = Stub::start(vec![("/s", Route::json(r#"{"v":7}"#))]).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("s", &up.url(), &rules(), &[], 1);
    assert_eq!(ask(&p, &ctx, "stale", &[]).await.status, 200);
    up.set("/s", Route::json(r#"{"error":"maintenance"}"#).status(500));
    tokio::time::sleep(Duration::from_millis(1200)).await; // past the 1 s TTL
    let r = ask(&p, &ctx, "stale", &[]).await;
    assert_eq!(r.status, 200, "{}", r.error);
    let f = decode(&r.frames[0]);
    assert_eq!(f.field("v").values, vec![json!(7.0)]);
    let notices = f.meta.as_ref().unwrap()["notices"]
        .as_array()
        .unwrap()
        .clone();
    let text = notices[0]["text"].as_str().unwrap();
    assert!(
        text.contains("stale data") && text.contains("HTTP 500") && text.contains("maintenance"),
        "{text}"
    );
    assert_eq!(notices[0]["severity"], "warning");
    // A rule without staleIfErrorSeconds fails as usual.
    let ctx2 = context(
        "s2",
        &up.url(),
        &json!({"rules": [{"id": "nostale", "request": {"url": "/s"}, "cache": {"ttlSeconds": 60},
                            "response": {"fields": [{"name": "v", "path": "$.v"}]}}]}),
        &[],
        1,
    );
    assert_eq!(ask(&p, &ctx2, "nostale", &[]).await.status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_metrics_reports_queries_upstream_and_cache() {
    let up = Stub::start(vec![
        ("/v", Route::json(r#"{"v":1}"#)),
        ("/w", Route::json(r#"{"v":2}"#)),
    ])
    .await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("m", &up.url(), &rules(), &[("unused", "m-secret-9f3e")], 1);
    for _ in 0..3 {
        assert_eq!(ask(&p, &ctx, "fresh_alerts", &[]).await.status, 200);
    }
    assert_eq!(ask(&p, &ctx, "no_such_rule_abc", &[]).await.status, 400);
    let text = metrics_text(&p, Some(ctx)).await;
    let host = up.addr.to_string();
    for needle in [
        "restbridge_queries_total{rule=\"fresh_alerts\",status=\"200\"} 3".to_owned(),
        "restbridge_queries_total{rule=\"unknown\",status=\"400\"} 1".to_owned(),
        format!("restbridge_upstream_requests_total{{host=\"{host}\",status=\"2xx\"}} 1"),
        "restbridge_cache_events_total{event=\"hit\"} 2".to_owned(),
        "restbridge_cache_events_total{event=\"miss\"} 1".to_owned(),
        "restbridge_upstream_request_duration_seconds_count 1".to_owned(),
        "restbridge_upstream_inflight_requests 0".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} missing in\n{text}");
    }
    assert!(text.contains("restbridge_cache_bytes "), "{text}");
    // Runtime gauges are read at scrape time: at least this CollectMetrics call's own task.
    let gauge = |name: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    assert!(gauge("restbridge_runtime_alive_tasks ") >= 1, "{text}");
    assert!(gauge("restbridge_runtime_workers ") >= 1, "{text}");
    assert!(
        !text.contains("no_such_rule_abc"),
        "free text never becomes a label"
    );
    assert!(
        !text.contains("m-secret-9f3e") && !text.contains("/v"),
        "no secrets or URLs in metrics"
    );
}

/// The CollectMetrics text (Prometheus exposition format).
async fn metrics_text(p: &PluginProcess, ctx: Option<pluginv2::PluginContext>) -> String {
    let m = p
        .diagnostics()
        .collect_metrics(pluginv2::CollectMetricsRequest {
            plugin_context: ctx,
        })
        .await
        .unwrap()
        .into_inner();
    String::from_utf8(m.metrics.unwrap().prometheus).unwrap()
}

/// Reads one counter/gauge value from CollectMetrics (0 when absent).
async fn metric(p: &PluginProcess, name: &str) -> f64 {
    metrics_text(p, None)
        .await
        .lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// `n` separate QueryData calls at the same time, each one query (refId `A`) of `rule`.
async fn at_once(
    p: &PluginProcess,
    ctx: &pluginv2::PluginContext,
    rule: &str,
    n: usize,
) -> Vec<pluginv2::DataResponse> {
    let calls = (0..n).map(|_| ask(p, ctx, rule, &[]));
    futures_util::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_queries_share_one_conversion_and_its_error() {
    let up = Stub::start(vec![
        (
            "/slow",
            Route::json(r#"{"rows":[{"v":1},{"v":2},{"v":3}]}"#).delay(Duration::from_millis(400)),
        ),
        (
            "/broken",
            Route::json("<html>down</html>")
                .status(500)
                .delay(Duration::from_millis(400)),
        ),
    ])
    .await;
    let p = PluginProcess::spawn(&[]).await;
    // ttlSeconds 0: nothing is cached, so every answer not shared is computed anew.
    let jd = json!({"rules": [
        {"id": "slow", "request": {"url": "/slow"}, "cache": {"ttlSeconds": 0},
         "response": {"rows": "$.rows[*]", "fields": [{"name": "v", "path": "$.v", "type": "number"}]}},
        {"id": "broken", "request": {"url": "/broken"}, "cache": {"ttlSeconds": 0},
         "response": {"fields": [{"name": "v", "path": "$.v", "type": "number"}]}}
    ]});
    let ctx = context("share", &up.url(), &jd, &[], 1);
    let computed = "restbridge_answers_computed_total ";
    let coalesced = "restbridge_cache_events_total{event=\"coalesced\"} ";

    // 8 separate QueryData calls for the same rule, request and refId, at the same time.
    let answers = at_once(&p, &ctx, "slow", 8).await;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.error);
        assert_eq!(
            a.frames, answers[0].frames,
            "every waiter gets the same frames"
        );
        assert_eq!(decode(&a.frames[0]).field("v").values.len(), 3);
    }
    assert_eq!(hits(&up, "/slow"), 1, "one upstream call");
    assert_eq!(
        metric(&p, computed).await,
        1.0,
        "one conversion for 8 queries"
    );
    assert_eq!(metric(&p, coalesced).await, 7.0);

    // Different refIds are different answers (each its own frame refId): 8 conversions,
    // still one upstream call (the fetch layer coalesces).
    let qs = (0..8)
        .map(|i| query(&format!("Q{i}"), "slow", json!({}), 0, 1))
        .collect();
    let r = p
        .data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            queries: qs,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.responses.values().all(|a| a.status == 200));
    assert_eq!(hits(&up, "/slow"), 2);
    assert_eq!(metric(&p, computed).await, 9.0);

    // A failure is shared too: every waiter gets the same status, source and message.
    let answers = at_once(&p, &ctx, "broken", 4).await;
    for a in &answers {
        assert_eq!(a.status, answers[0].status);
        assert!(a.status >= 500, "{}: {}", a.status, a.error);
        assert_eq!(a.error, answers[0].error);
        assert_eq!(a.error_source, "downstream");
        assert!(a.error.contains("500"), "{}", a.error);
    }
    assert_eq!(
        metric(&p, computed).await,
        10.0,
        "one computation for 4 failing queries"
    );
}
