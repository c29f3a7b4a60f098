//! Every error case yields its status, errorSource and a message naming the rule, param or
//! cause; secrets never leak; the process keeps serving (the next query works).

use std::time::Duration;

use restbridge::pb::pluginv2;
use serde_json::json;

use crate::support::plugin::{context, query, PluginProcess};
use crate::support::stub::{Route, Stub};

const SECRET: &str = "tok-3f9a-SECRET-77";

fn rules() -> serde_json::Value {
    json!({
        "timeout": 5,
        "allowedHosts": ["127.0.0.1:1"],
        "rules": [
            {"id": "ok", "request": {"url": "/ok", "headers": {"Authorization": "Bearer ${__secure.token}"}},
             "cache": {"ttlSeconds": 0},
             "response": {"rows": "$.items[*]", "fields": [{"name": "v", "path": "$.v", "type": "number"}]}},
            {"id": "city", "request": {"url": "/ok", "query": {"city": "${city}", "n": "${n}"}},
             "params": [{"name": "city", "options": ["Berlin", "Paris"], "required": true},
                        {"name": "n", "default": "1", "pattern": "[0-9]+"}],
             "response": {"rows": "$.items[*]", "fields": [{"name": "v", "path": "$.v", "type": "number"}]}},
            {"id": "slow", "timeout": 0.3, "request": {"url": "/slow"},
             "response": {"fields": [{"name": "v", "path": "$.v"}]}},
            {"id": "boom", "request": {"url": "/boom", "query": {"key": "${__secure.token}"}},
             "response": {"fields": [{"name": "v", "path": "$.v"}]}},
            {"id": "missing", "request": {"url": "/missing"},
             "response": {"fields": [{"name": "v", "path": "$.v"}]}},
            {"id": "html", "request": {"url": "/html"},
             "response": {"fields": [{"name": "v", "path": "$.v"}]}},
            {"id": "many", "request": {"url": "/ok"},
             "response": {"rows": "$", "fields": [{"name": "v", "path": "$.items[*].v", "type": "number"}]}},
            {"id": "forced", "request": {"url": "/ok"},
             "response": {"rows": "$.items[*]", "format": "timeseries",
                          "fields": [{"name": "v", "path": "$.v", "type": "number"}]}},
            {"id": "down", "request": {"url": "http://127.0.0.1:1/x"},
             "response": {"fields": [{"name": "v", "path": "$.v"}]}}
        ]
    })
}

struct Case {
    rule: &'static str,
    params: serde_json::Value,
    status: i32,
    source: &'static str,
    message: &'static [&'static str],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_case_has_status_source_and_message() {
    let upstream = Stub::start(vec![
        ("/ok", Route::json(r#"{"items":[{"v":1},{"v":2}]}"#)),
        (
            "/slow",
            Route::json(r#"{"v":1}"#).delay(Duration::from_secs(3)),
        ),
        (
            "/boom",
            Route::json(&format!(r#"{{"error":"db down","echo":"{SECRET}"}}"#)).status(500),
        ),
        (
            "/missing",
            Route::json(r#"{"error":"not found"}"#).status(404),
        ),
        (
            "/html",
            Route::json("<html>oops</html>").content_type("text/html"),
        ),
    ])
    .await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("ds", &upstream.url(), &rules(), &[("token", SECRET)], 1);
    let cases = [
        Case {
            rule: "nope",
            params: json!({}),
            status: 400,
            source: "downstream",
            message: &[
                "unknown rule 'nope'",
                "known rules: boom, city, down, forced, html, many, missing, ok, slow",
            ],
        },
        Case {
            rule: "city",
            params: json!({}),
            status: 400,
            source: "downstream",
            message: &["param 'city'", "required"],
        },
        Case {
            rule: "city",
            params: json!({"city": "Rome"}),
            status: 400,
            source: "downstream",
            message: &["param 'city'", "'Rome'", "Berlin, Paris"],
        },
        Case {
            rule: "city",
            params: json!({"city": "Paris", "n": "1;drop"}),
            status: 400,
            source: "downstream",
            message: &["param 'n'", "pattern"],
        },
        Case {
            rule: "city",
            params: json!({"city": "Paris", "x": "1"}),
            status: 400,
            source: "downstream",
            message: &["no param 'x'", "city, n"],
        },
        Case {
            rule: "slow",
            params: json!({}),
            status: 504,
            source: "downstream",
            message: &["did not answer within 0.300 s", "/slow"],
        },
        Case {
            rule: "boom",
            params: json!({}),
            status: 502,
            source: "downstream",
            message: &["HTTP 500", "db down", "***", "key=***"],
        },
        Case {
            rule: "missing",
            params: json!({}),
            status: 404,
            source: "downstream",
            message: &["HTTP 404", r#"{"error":"not found"}"#],
        },
        Case {
            rule: "html",
            params: json!({}),
            status: 502,
            source: "downstream",
            message: &["rule 'html'", "not valid JSON", "<html>"],
        },
        Case {
            rule: "many",
            params: json!({}),
            status: 502,
            source: "downstream",
            message: &["rule 'many'", "field 'v'", "selected 2 values in row 0"],
        },
        Case {
            rule: "forced",
            params: json!({}),
            status: 400,
            source: "downstream",
            message: &[
                "rule 'forced'",
                "format timeseries needs exactly one time field",
            ],
        },
        Case {
            rule: "down",
            params: json!({}),
            status: 502,
            source: "downstream",
            message: &["unreachable", "127.0.0.1:1"],
        },
    ];
    for c in &cases {
        let resp = p
            .data()
            .query_data(pluginv2::QueryDataRequest {
                plugin_context: Some(ctx.clone()),
                queries: vec![
                    query("E", c.rule, c.params.clone(), 0, 1000),
                    query("OK", "ok", json!({}), 0, 1000),
                ],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let e = &resp.responses["E"];
        assert_eq!(e.status, c.status, "rule {}: {}", c.rule, e.error);
        assert_eq!(e.error_source, c.source, "rule {}", c.rule);
        assert!(e.frames.is_empty());
        for m in c.message {
            assert!(
                e.error.contains(m),
                "rule {}: {:?} not in {:?}",
                c.rule,
                m,
                e.error
            );
        }
        assert!(!e.error.contains(SECRET), "secret leaked: {}", e.error);
        // The same request's other query, and the process, keep working.
        let ok = &resp.responses["OK"];
        assert_eq!(ok.status, 200, "{}", ok.error);
        assert_eq!(ok.frames.len(), 1);
    }
    // The secret reached the upstream only as configured, and never stderr or frames.
    assert!(upstream
        .seen()
        .iter()
        .any(|s| s.headers.get("authorization").map(String::as_str)
            == Some(&*format!("Bearer {SECRET}"))));
    let stderr = p.stderr_lines().join("\n");
    assert!(!stderr.contains(SECRET), "secret in stderr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_settings_give_every_query_a_clear_400() {
    let upstream = Stub::start(vec![("/ok", Route::json(r#"{"items":[{"v":1}]}"#))]).await;
    let p = PluginProcess::spawn(&[]).await;
    let bad_cases: Vec<(Vec<u8>, &[&str])> = vec![
        (
            b"{not json".to_vec(),
            &["jsonData is invalid", "not valid JSON"],
        ),
        (b"[1,2]".to_vec(), &["expected a JSON object"]),
        (
            serde_json::to_vec(
                &json!({"rules": [{"id": "r", "request": {"url": "/x", "metod": "GET"},
                "response": {"fields": [{"name": "a", "path": "$.a"}]}}]}),
            )
            .unwrap(),
            &["rule 'r'", "metod"],
        ),
        (
            serde_json::to_vec(&json!({"rules": [{"id": "r", "request": {"url": "/x"},
                "response": {"fields": [{"name": "a", "path": "$[?"}]}}]}))
            .unwrap(),
            &["rule 'r'", "response.fields[0].path", "$[?"],
        ),
    ];
    for (i, (json_data, expected)) in bad_cases.into_iter().enumerate() {
        let mut ctx = context("bad", &upstream.url(), &json!({}), &[], 10 + i as i64);
        ctx.data_source_instance_settings
            .as_mut()
            .unwrap()
            .json_data = json_data;
        let resp = p
            .data()
            .query_data(pluginv2::QueryDataRequest {
                plugin_context: Some(ctx.clone()),
                queries: vec![
                    query("A", "r", json!({}), 0, 1),
                    query("B", "other", json!({}), 0, 1),
                ],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for r in resp.responses.values() {
            assert_eq!(r.status, 400, "{}", r.error);
            assert_eq!(r.error_source, "downstream");
            for m in expected {
                assert!(r.error.contains(m), "{m:?} not in {:?}", r.error);
            }
        }
        let h = p
            .diagnostics()
            .check_health(pluginv2::CheckHealthRequest {
                plugin_context: Some(ctx),
                headers: Default::default(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            h.status,
            pluginv2::check_health_response::HealthStatus::Error as i32
        );
        for m in expected {
            assert!(h.message.contains(m), "{m:?} not in {:?}", h.message);
        }
    }
    // A good datasource on the same process still works.
    let good = context("good", &upstream.url(), &rules(), &[("token", SECRET)], 1);
    let resp = p
        .query_data(good, vec![query("A", "ok", json!({}), 0, 1)])
        .await;
    assert_eq!(
        resp.responses["A"].status, 200,
        "{}",
        resp.responses["A"].error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_serves_repeats_and_ttl_zero_bypasses_it() {
    let upstream = Stub::start(vec![("/ok", Route::json(r#"{"items":[{"v":1}]}"#))]).await;
    let p = PluginProcess::spawn(&[]).await;
    let jd = json!({"rules": [
        {"id": "cached", "request": {"url": "/ok", "query": {"q": "${q}"}}, "cache": {"ttlSeconds": 60},
         "params": [{"name": "q", "default": "a"}],
         "response": {"rows": "$.items[*]", "fields": [{"name": "v", "path": "$.v", "type": "number"}]}},
        {"id": "fresh", "request": {"url": "/ok"}, "cache": {"ttlSeconds": 0},
         "response": {"rows": "$.items[*]", "fields": [{"name": "v", "path": "$.v", "type": "number"}]}}
    ]});
    let ctx = context("c", &upstream.url(), &jd, &[], 1);
    let run = |rule: &'static str, params: serde_json::Value| {
        let mut data = p.data();
        let ctx = ctx.clone();
        async move {
            let r = data
                .query_data(pluginv2::QueryDataRequest {
                    plugin_context: Some(ctx),
                    queries: vec![query("A", rule, params, 0, 1)],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.responses["A"].status, 200, "{}", r.responses["A"].error);
        }
    };
    run("cached", json!({})).await;
    run("cached", json!({})).await;
    assert_eq!(
        upstream.hits(),
        1,
        "second identical query served from the cache"
    );
    run("cached", json!({"q": "b"})).await;
    assert_eq!(
        upstream.hits(),
        2,
        "a different rendered request is a different entry"
    );
    run("fresh", json!({})).await;
    run("fresh", json!({})).await;
    assert_eq!(upstream.hits(), 4, "ttlSeconds 0 never caches");
    // Concurrent identical queries coalesce into one upstream call.
    upstream.set(
        "/ok",
        Route::json(r#"{"items":[{"v":1}]}"#).delay(Duration::from_millis(300)),
    );
    let mut qs = Vec::new();
    for i in 0..8 {
        qs.push(query(&format!("Q{i}"), "cached", json!({"q": "c"}), 0, 1));
    }
    let r = p.query_data(ctx.clone(), qs).await;
    assert!(r.responses.values().all(|x| x.status == 200));
    assert_eq!(
        upstream.hits(),
        5,
        "8 concurrent identical queries → 1 upstream call"
    );
}
