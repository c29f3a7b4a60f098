//! Retries against a sequencing stub: HTTP 429 with `Retry-After` (seconds and HTTP date)
//! retried when it fits the timeout, failing at once with 429 when it does not; 503 then 200.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{column, error_with, frames_ok, query_one, FnStub, Reply};
use crate::support::plugin::{context, PluginProcess};

/// A stub whose `/seq` answers `first` on the first request and 200 `{"n": k}` after.
async fn sequence(first: Reply) -> FnStub {
    let n = Arc::new(AtomicUsize::new(0));
    FnStub::serve([127, 0, 0, 1], move |r| {
        if r.path != "/seq" {
            return Reply::json(404, &json!({"error": "no route"}));
        }
        let k = n.fetch_add(1, Ordering::SeqCst);
        if k == 0 {
            first.clone()
        } else {
            Reply::json(200, &json!({"n": k}))
        }
    })
    .await
}

fn jd(timeout: u64) -> serde_json::Value {
    json!({"rules": [{"id": "seq", "request": {"url": "/seq"}, "timeout": timeout,
        "response": {"fields": [{"name": "n", "path": "$.n", "type": "int"}]}}]})
}

fn gap(stub: &FnStub) -> Duration {
    let seen = stub.seen();
    seen[1].at.duration_since(seen[0].at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_seconds_within_timeout_is_retried() {
    let stub =
        sequence(Reply::json(429, &json!({"error": "slow down"})).header("Retry-After", "1")).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("ra-1", &stub.url(), &jd(5), &[], 1);
    let t = Instant::now();
    let f = frames_ok(&query_one(&p, &ctx, "seq", json!({})).await);
    let took = t.elapsed();
    assert_eq!(column(&f, "n"), vec![json!(1)]);
    assert_eq!(stub.hits("/seq"), 2);
    let g = gap(&stub);
    assert!(
        g >= Duration::from_millis(990) && g < Duration::from_millis(2500),
        "{g:?}"
    );
    println!(
        "proved: 429 Retry-After: 1 with a 5 s timeout → waited {:.2} s, retried, 200 \
         (stub hit 2×, query {:.2} s)",
        g.as_secs_f64(),
        took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_http_date_within_timeout_is_retried() {
    // An HTTP date ~2 s ahead (whole seconds, so 1–2 s of waiting).
    let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&when)
        .unwrap();
    let stub = sequence(Reply::json(429, &json!({})).header("Retry-After", &date)).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("ra-date", &stub.url(), &jd(5), &[], 1);
    let f = frames_ok(&query_one(&p, &ctx, "seq", json!({})).await);
    assert_eq!(column(&f, "n"), vec![json!(1)]);
    assert_eq!(stub.hits("/seq"), 2);
    let g = gap(&stub);
    assert!(
        g >= Duration::from_millis(900) && g < Duration::from_millis(2600),
        "{g:?}"
    );
    println!(
        "proved: 429 Retry-After: {date} (HTTP date) → waited {:.2} s, retried, 200",
        g.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_beyond_timeout_fails_at_once_with_429() {
    let stub = sequence(
        Reply::json(429, &json!({"error": "quota exhausted"})).header("Retry-After", "120"),
    )
    .await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("ra-120", &stub.url(), &jd(5), &[], 1);
    let t = Instant::now();
    let r = query_one(&p, &ctx, "seq", json!({})).await;
    let took = t.elapsed();
    let err = error_with(&r, 429);
    assert!(err.contains("retry after 120 s"), "{err}");
    assert!(err.contains("quota exhausted"), "{err}");
    assert!(took < Duration::from_millis(900), "{took:?}");
    assert_eq!(stub.hits("/seq"), 1);
    // Retry-After 2 does not fit a 1 s rule timeout either.
    let stub2 = sequence(Reply::json(429, &json!({})).header("Retry-After", "2")).await;
    let ctx = context("ra-2", &stub2.url(), &jd(1), &[], 1);
    let t = Instant::now();
    let err2 = error_with(&query_one(&p, &ctx, "seq", json!({})).await, 429);
    assert!(err2.contains("retry after 2 s"), "{err2}");
    assert!(t.elapsed() < Duration::from_millis(900));
    assert_eq!(stub2.hits("/seq"), 1);
    println!("proved: 429 Retry-After: 2 with a 1 s timeout → 429 at once ({err2})");
    println!(
        "proved: 429 Retry-After: 120 with a 5 s timeout → failed in {:.3} s with status 429: \
         {err} (stub hit once)",
        took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_unavailable_then_ok_is_retried() {
    let stub = sequence(Reply::text(503, "maintenance")).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("s503-ok", &stub.url(), &jd(5), &[], 1);
    let f = frames_ok(&query_one(&p, &ctx, "seq", json!({})).await);
    assert_eq!(column(&f, "n"), vec![json!(1)]);
    assert_eq!(stub.hits("/seq"), 2);
    let g = gap(&stub);
    assert!(
        g >= Duration::from_millis(45) && g < Duration::from_millis(1000),
        "{g:?}"
    );

    // A POST is not idempotent: no retry, the 503 is reported (502).
    let stub = sequence(Reply::text(503, "maintenance")).await;
    let post = json!({"rules": [{"id": "seq", "request": {"url": "/seq", "method": "POST",
        "body": {"a": 1}}, "response": {"fields": [{"name": "n", "path": "$.n", "type": "int"}]}}]});
    let ctx = context("s503-post", &stub.url(), &post, &[], 1);
    let err = error_with(&query_one(&p, &ctx, "seq", json!({})).await, 502);
    assert!(
        err.contains("HTTP 503") && err.contains("maintenance"),
        "{err}"
    );
    assert_eq!(stub.hits("/seq"), 1);
    println!(
        "proved: GET 503 then 200 → retried after {:.0} ms backoff, 200 (stub hit 2×); \
         POST 503 → not retried, 502 ({err})",
        g.as_secs_f64() * 1000.0
    );
}
