//! Hostile input from the Grafana side: jsonData that is empty or not an object, 10 000
//! rules, pathological regexes and JSONPaths, 1 000 queries in one QueryData, gRPC deadlines
//! that are short or already expired, and a client that cancels mid-flight.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use prost::Message;
use restbridge::pb::pluginv2::{self, PluginContext, QueryDataResponse};
use serde_json::{json, Value};

use crate::harness::{expect_err, expect_ok, json_data, q, row, rule, texts_of, Fx};
use crate::raw::{RawServer, Reply};

const HEALTH_OK: i32 = pluginv2::check_health_response::HealthStatus::Ok as i32;
const HEALTH_ERROR: i32 = pluginv2::check_health_response::HealthStatus::Error as i32;

fn with_json_data(mut ctx: PluginContext, bytes: &[u8]) -> PluginContext {
    ctx.data_source_instance_settings
        .as_mut()
        .unwrap()
        .json_data = bytes.to_vec();
    ctx
}

/// Three queries of a datasource whose settings do not compile: every one must fail with
/// 400/downstream and `message`, and CheckHealth must report ERROR with the same text.
async fn broken_settings(
    fx: &Fx,
    name: &str,
    ctx: &PluginContext,
    fragments: &[&str],
) -> Vec<String> {
    let t = Instant::now();
    let resp = fx
        .run(
            ctx,
            vec![
                q("A", "normal", json!({})),
                q("B", "other", json!({"x": 1})),
                pluginv2::DataQuery {
                    ref_id: "C".into(),
                    ..Default::default()
                },
            ],
        )
        .await;
    let took = t.elapsed();
    let mut texts = Vec::new();
    assert_eq!(resp.responses.len(), 3, "{name}: every refId answered");
    for id in ["A", "B", "C"] {
        let r = &resp.responses[id];
        if id == "A" {
            row(name, r, took);
        }
        let mut all = vec!["datasource settings are invalid: "];
        all.extend_from_slice(fragments);
        expect_err(&format!("{name} refId {id}"), r, 400, "downstream", &all);
        texts.extend(texts_of(r));
    }
    let (status, message) = fx.health(ctx).await;
    assert_eq!(
        status, HEALTH_ERROR,
        "{name}: CheckHealth status ({message})"
    );
    for f in fragments {
        assert!(
            message.contains(f),
            "{name}: CheckHealth message lacks {f:?}: {message}"
        );
    }
    texts.push(message);
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_non_object_json_data() {
    let server = RawServer::start(vec![]).await;
    let fx = Fx::spawn().await;
    let good = json_data(vec![], json!({}));
    println!("\njsonData\n| case | status | errorSource | took | message |\n|---|---|---|---|---|");

    // Empty and null jsonData mean `{}`: valid settings without rules, so every query names
    // an unknown rule (400) and CheckHealth says no rules are configured.
    for (i, bytes) in [&b""[..], b"null", b"  \n"].iter().enumerate() {
        let name = format!("jsonData {:?}", String::from_utf8_lossy(bytes));
        let uid = format!("empty{i}");
        let ctx = with_json_data(fx.ctx(&uid, &server.url(), &good, 1), bytes);
        let t = Instant::now();
        let resp = fx
            .run(
                &ctx,
                vec![q("A", "normal", json!({})), q("B", "other", json!({}))],
            )
            .await;
        row(&name, &resp.responses["A"], t.elapsed());
        let mut texts = Vec::new();
        for (id, msg) in [
            ("A", "unknown rule 'normal' (known rules: none)"),
            ("B", "unknown rule 'other' (known rules: none)"),
        ] {
            expect_err(
                &format!("{name} {id}"),
                &resp.responses[id],
                400,
                "downstream",
                &[msg],
            );
            texts.extend(texts_of(&resp.responses[id]));
        }
        let (status, message) = fx.health(&ctx).await;
        assert_eq!(status, HEALTH_OK, "{name}: {message}");
        assert!(
            message.contains("no rules are configured yet"),
            "{name}: {message}"
        );
        // The admin fixes the datasource: the next version serves.
        let fixed = fx.ctx(&uid, &server.url(), &good, 2);
        fx.after(&name, &fixed, &texts).await;
    }

    let deep: Vec<u8> = {
        let mut v = b"{\"rules\":".to_vec();
        v.extend(std::iter::repeat_n(b'[', 100_000));
        v.extend(std::iter::repeat_n(b']', 100_000));
        v.push(b'}');
        v
    };
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("jsonData []", b"[]".to_vec(), vec!["datasource jsonData is invalid: expected a JSON object, got an array"]),
        ("jsonData \"text\"", b"\"text\"".to_vec(), vec!["datasource jsonData is invalid: expected a JSON object, got a string"]),
        ("jsonData 42", b"42".to_vec(), vec!["datasource jsonData is invalid: expected a JSON object, got a number"]),
        ("jsonData true", b"true".to_vec(), vec!["datasource jsonData is invalid: expected a JSON object, got a boolean"]),
        ("jsonData not JSON", b"{\"rules\": [".to_vec(), vec!["datasource jsonData is invalid: not valid JSON: EOF while parsing"]),
        ("jsonData invalid UTF-8", b"{\"a\": \"\xff\"}".to_vec(), vec!["datasource jsonData is invalid: not valid JSON: invalid unicode code point"]),
        ("jsonData nested 100000 deep", deep, vec!["datasource jsonData is invalid: not valid JSON: recursion limit exceeded"]),
        ("jsonData rules is an object", br#"{"rules": {"id": "x"}}"#.to_vec(), vec!["datasource jsonData is invalid: at 'rules': invalid type: map, expected a sequence"]),
        ("jsonData rule is a string", br#"{"rules": ["x"]}"#.to_vec(), vec!["rule '#0': expected a mapping, got a string"]),
    ];
    for (i, (name, bytes, fragments)) in cases.iter().enumerate() {
        let uid = format!("bad{i}");
        let ctx = with_json_data(fx.ctx(&uid, &server.url(), &good, 1), bytes);
        let texts = broken_settings(&fx, name, &ctx, fragments).await;
        let fixed = fx.ctx(&uid, &server.url(), &good, 2);
        fx.after(name, &fixed, &texts).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rules() {
    let server = RawServer::start(vec![]).await;
    let fx = Fx::spawn().await;
    let rules: Vec<Value> = (0..10_000)
        .map(|i| {
            rule(
                &format!("r{i:05}"),
                "/normal",
                json!({
                    "params": [{"name": "p", "pattern": "[a-z]{1,8}", "default": "abc"}],
                    "request": {"url": "/normal", "query": {"p": "${p}", "i": format!("{i}")},
                                "headers": {"X-Auth-Token": "Bearer ${__secure.bearerToken}"}}
                }),
            )
        })
        .collect();
    let jd = json_data(rules, json!({}));
    let size = serde_json::to_vec(&jd).unwrap().len();
    let ctx = fx.ctx("many", &server.url(), &jd, 1);
    let t = Instant::now();
    let (status, message) = fx.health(&ctx).await;
    let compile = t.elapsed();
    println!(
        "10 000 rules ({:.1} MB of jsonData): first CheckHealth (compile) {:.3} s: {message}",
        size as f64 / 1e6,
        compile.as_secs_f64()
    );
    assert_eq!(status, HEALTH_OK, "{message}");
    assert!(message.contains("10001 rules loaded"), "{message}");
    assert!(
        compile < Duration::from_secs(30),
        "compiling 10 000 rules took {compile:?}"
    );
    let t = Instant::now();
    let (status, _) = fx.health(&ctx).await;
    let cached = t.elapsed();
    println!(
        "second CheckHealth (compiled instance cached): {:.3} s",
        cached.as_secs_f64()
    );
    assert_eq!(status, HEALTH_OK);
    let mut texts = Vec::new();
    for id in ["r00000", "r09999"] {
        let (r, took) = fx.one(&ctx, id, json!({"p": "xyz"})).await;
        row(id, &r, took);
        let frames = expect_ok(id, &r);
        assert_eq!(frames.iter().map(|f| f.rows()).sum::<usize>(), 2);
        texts.extend(texts_of(&r));
    }
    let (r, _) = fx.one(&ctx, "r10000", json!({})).await;
    let msg = expect_err(
        "unknown rule among 10 000",
        &r,
        400,
        "downstream",
        &["unknown rule 'r10000' (known rules: normal, r00000, r00001"],
    );
    println!(
        "unknown-rule message with 10 000 rules is {} bytes",
        msg.len()
    );
    texts.extend(texts_of(&r));
    fx.after("10 000 rules", &ctx, &texts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_param_regex_is_linear() {
    let server = RawServer::start(vec![]).await;
    let fx = Fx::spawn().await;
    let jd = json_data(
        vec![
            rule(
                "nested_plus",
                "/normal",
                json!({
                    "params": [{"name": "p", "pattern": "(a+)+$"}],
                    "request": {"url": "/normal", "query": {"p": "${p}"}}
                }),
            ),
            rule(
                "overlap",
                "/normal",
                json!({
                    "params": [{"name": "p", "pattern": "(x+x+)+y"}],
                    "request": {"url": "/normal", "query": {"p": "${p}"}}
                }),
            ),
        ],
        json!({}),
    );
    let ctx = fx.ctx("regex", &server.url(), &jd, 1);
    println!("\npathological regex\n| case | status | errorSource | took | message |\n|---|---|---|---|---|");
    let mut texts = Vec::new();
    let mut times = Vec::new();
    for n in [1_000usize, 100_000, 1_000_000] {
        for (rule_id, value, pattern) in [
            ("nested_plus", format!("{}!", "a".repeat(n)), "(a+)+$"),
            ("overlap", "x".repeat(n), "(x+x+)+y"),
        ] {
            let (r, took) = fx.one(&ctx, rule_id, json!({"p": value})).await;
            row(&format!("{rule_id} on {n} chars"), &r, took);
            expect_err(
                rule_id,
                &r,
                400,
                "downstream",
                &[
                    &format!("rule '{rule_id}': param 'p' value '"),
                    &format!("' does not match pattern '{pattern}'"),
                ],
            );
            // A backtracking engine needs 2^n steps here; Rust's regex is linear.
            assert!(
                took < Duration::from_secs(3),
                "{rule_id} on {n} chars took {took:?}"
            );
            times.push((rule_id, n, took));
            texts.push(r.error.chars().take(2000).collect());
        }
    }
    for (rule_id, n, took) in &times {
        println!(
            "  {rule_id}: {n} chars rejected in {:.1} ms (round trip)",
            took.as_secs_f64() * 1e3
        );
    }
    let (r, _) = fx
        .one(&ctx, "nested_plus", json!({"p": "a".repeat(10_000)}))
        .await;
    expect_ok("nested_plus matching 10 000 a's", &r);
    let (r, _) = fx
        .one(
            &ctx,
            "overlap",
            json!({"p": format!("{}y", "x".repeat(10_000))}),
        )
        .await;
    expect_ok("overlap matching", &r);
    fx.after("pathological regex", &ctx, &texts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_rules_fail_at_compile() {
    let server = RawServer::start(vec![]).await;
    let fx = Fx::spawn().await;
    let nest = |depth: usize| -> String {
        // length(length(…(@.a)…)) == 1 inside a filter: `[` + depth `(`.
        format!(
            "$.items[?{}@.a{} == 1]",
            "length(".repeat(depth),
            ")".repeat(depth)
        )
    };
    let long_path = format!("$.{}", "a".repeat(5000));
    let deep_groups = format!("{}a{}", "(".repeat(300), ")".repeat(300));
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "jsonpath nested 8 functions (9 levels)",
            json!({"response": {"rows": nest(8), "fields": [{"name": "v", "path": "$.v"}]}}),
            vec![
                "rule 'bad': 'response.rows': JSONPath query".into(),
                "nests brackets and parentheses 9 levels deep; the limit is 8".into(),
            ],
        ),
        (
            "jsonpath nested 26 functions",
            json!({"response": {"rows": "$.items[*]", "fields": [{"name": "v", "path": nest(26)}]}}),
            vec![
                "rule 'bad': 'response.fields[0].path': JSONPath query".into(),
                "27 levels deep; the limit is 8".into(),
            ],
        ),
        (
            "jsonpath 5000 bytes",
            json!({"response": {"rows": "$.items[*]", "labels": {"l": long_path}, "fields": [{"name": "v", "path": "$.v"}]}}),
            vec![
                "rule 'bad': 'response.labels.l': JSONPath query".into(),
                "is 5002 bytes long; the limit is 4096 bytes".into(),
            ],
        ),
        (
            "regex over the size limit",
            json!({"params": [{"name": "p", "pattern": "(?:\\w{500}){500}"}]}),
            vec![
                "rule 'bad': 'params[0].pattern' is not a valid regex".into(),
                "size limit".into(),
            ],
        ),
        (
            "regex nested 300 groups",
            json!({"params": [{"name": "p", "pattern": deep_groups}]}),
            vec![
                "rule 'bad': 'params[0].pattern' is not a valid regex".into(),
                "exceed the maximum number of nested parentheses/brackets (250)".into(),
            ],
        ),
    ];
    println!("\npathological rules\n| case | status | errorSource | took | message |\n|---|---|---|---|---|");
    for (i, (name, extra, fragments)) in cases.iter().enumerate() {
        let uid = format!("patho{i}");
        let jd = json_data(vec![rule("bad", "/normal", extra.clone())], json!({}));
        let ctx = fx.ctx(&uid, &server.url(), &jd, 1);
        let t = Instant::now();
        let (status, message) = fx.health(&ctx).await;
        let took = t.elapsed();
        println!(
            "| {name} (CheckHealth) | ERROR | - | {:.3} s | {message} |",
            took.as_secs_f64()
        );
        assert_eq!(status, HEALTH_ERROR, "{name}: {message}");
        // The regex crate stops at its 10 MiB program limit; in a debug build on a loaded
        // 2-CPU machine that still takes a few seconds, the JSONPath guard milliseconds.
        let bound = if name.starts_with("regex") { 10 } else { 2 };
        assert!(
            took < Duration::from_secs(bound),
            "{name}: CheckHealth took {took:?}"
        );
        let refs: Vec<&str> = fragments.iter().map(String::as_str).collect();
        for f in &refs {
            assert!(
                message.contains(f),
                "{name}: CheckHealth message lacks {f:?}: {message}"
            );
        }
        let mut texts = broken_settings(&fx, name, &ctx, &refs).await;
        texts.push(message);
        // Without the bad rule, the same datasource (next version) serves.
        let fixed = fx.ctx(&uid, &server.url(), &json_data(vec![], json!({})), 2);
        fx.after(name, &fixed, &texts).await;
    }
    // At the guard's limit (8 levels), padded to just under 4096 bytes: accepted, and cheap.
    let at_limit = format!(
        "$.items[?{}@.{}{} == 1]",
        "length(".repeat(7),
        "b".repeat(4000),
        ")".repeat(7)
    );
    assert!(at_limit.len() <= 4096);
    let jd = json_data(
        vec![rule(
            "limit",
            "/normal",
            json!({"response": {"rows": at_limit, "fields": [{"name": "v", "path": "$.v"}]}}),
        )],
        json!({}),
    );
    let ctx = fx.ctx("at-limit", &server.url(), &jd, 1);
    let t = Instant::now();
    let (status, message) = fx.health(&ctx).await;
    let took = t.elapsed();
    println!(
        "jsonpath at the guard limit ({} bytes, 8 levels): CheckHealth {:.3} s: {message}",
        at_limit.len(),
        took.as_secs_f64()
    );
    assert_eq!(status, HEALTH_OK, "{message}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let (r, _) = fx.one(&ctx, "limit", json!({})).await;
    let frames = expect_ok("jsonpath at the limit", &r);
    assert_eq!(frames.iter().map(|f| f.rows()).sum::<usize>(), 0);
    fx.after("jsonpath at the limit", &ctx, &texts_of(&r)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_queries_in_one_request() {
    let server = RawServer::start(vec![]).await;
    let fx = Fx::spawn().await;
    let jd = json_data(
        vec![rule(
            "item",
            "/normal",
            json!({
                "params": [{"name": "n", "pattern": "[0-9]+"}],
                "request": {"url": "/normal", "query": {"n": "${n}"},
                            "headers": {"X-Auth-Token": "Bearer ${__secure.bearerToken}"}}
            }),
        )],
        json!({}),
    );
    let ctx = fx.ctx("thousand", &server.url(), &jd, 1);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    // Nested 100,000 deep: the whole model (not an object) or inside `params` (read, so
    // serde_json's recursion limit stops it).
    let deep_params = format!(r#"{{"rule": "item", "params": {{"n": {deep}}}}}"#);
    let queries: Vec<pluginv2::DataQuery> = (0..1000)
        .map(|i| {
            let id = format!("q{i:04}");
            match i % 20 {
                0 => q(&id, "nope", json!({})),
                1 => pluginv2::DataQuery {
                    json: if i % 40 == 1 { &deep } else { &deep_params }
                        .clone()
                        .into_bytes(),
                    ..q(&id, "item", json!({}))
                },
                _ => q(&id, "item", json!({"n": i.to_string()})),
            }
        })
        .collect();
    let t = Instant::now();
    let resp = fx.run(&ctx, queries).await;
    let took = t.elapsed();
    println!(
        "1 000 queries in one QueryData: {:.3} s, {} upstream requests",
        took.as_secs_f64(),
        server.hits("/normal")
    );
    assert_eq!(resp.responses.len(), 1000, "every refId answered");
    let mut texts = Vec::new();
    for i in 0..1000 {
        let id = format!("q{i:04}");
        let r = resp
            .responses
            .get(&id)
            .unwrap_or_else(|| panic!("refId {id} missing"));
        match i % 20 {
            0 => {
                expect_err(
                    &id,
                    r,
                    400,
                    "downstream",
                    &["unknown rule 'nope' (known rules: item, normal)"],
                );
            }
            1 if i % 40 == 1 => {
                expect_err(&id, r, 400, "downstream", &["query JSON must be an object"]);
            }
            1 => {
                expect_err(
                    &id,
                    r,
                    400,
                    "downstream",
                    &["query JSON is invalid: recursion limit exceeded"],
                );
            }
            _ => {
                let frames = expect_ok(&id, r);
                assert_eq!(frames.iter().map(|f| f.rows()).sum::<usize>(), 2, "{id}");
                assert_eq!(frames[0].ref_id, id, "{id}: frame refId");
                let exec = crate::harness::executed_query(&frames);
                assert!(
                    exec.ends_with(&format!("/normal?n={i}&api_key=***")),
                    "{id}: {exec}"
                );
            }
        }
        texts.extend(texts_of(r));
    }
    assert_eq!(
        server.hits("/normal"),
        900,
        "one upstream request per valid query"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    fx.after("1 000 queries", &ctx, &texts).await;
}

/// QueryData as a raw gRPC call over HTTP/2 with a `grpc-timeout` header, without a client
/// timer: shows what the plugin itself answers when Grafana's deadline is short or gone.
/// `Err` holds the gRPC status code and message when the call failed as a whole.
async fn query_with_grpc_timeout(
    fx: &Fx,
    ctx: &PluginContext,
    rule: &str,
    grpc_timeout: &str,
) -> Result<QueryDataResponse, (String, String)> {
    let parts: Vec<&str> = fx.p.handshake.trim().split('|').collect();
    let req = pluginv2::QueryDataRequest {
        plugin_context: Some(ctx.clone()),
        headers: HashMap::new(),
        queries: vec![q("A", rule, json!({}))],
        format: 0,
    };
    let msg = req.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&msg);
    restbridge::fetch::init_tls();
    // go-plugin dials what the handshake names: a unix socket path or 127.0.0.1:PORT.
    let (builder, authority) = match parts[2] {
        "unix" => (
            reqwest::Client::builder().unix_socket(parts[3]),
            "plugin.invalid",
        ),
        _ => (reqwest::Client::builder(), parts[3]),
    };
    let client = builder.http2_prior_knowledge().build().unwrap();
    let resp = client
        .post(format!("http://{authority}/pluginv2.Data/QueryData"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", grpc_timeout)
        .body(frame)
        .send()
        .await
        .unwrap();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let status = (header("grpc-status"), header("grpc-message"));
    let body = resp.bytes().await.unwrap();
    if body.len() < 5 {
        return Err(status);
    }
    Ok(QueryDataResponse::decode(&body[5..]).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_deadlines() {
    let server = RawServer::start(vec![("/hang", Reply::Hang)]).await;
    let fx = Fx::spawn().await;
    let jd = json_data(
        vec![rule("hang", "/hang", json!({}))],
        json!({"timeout": 30}),
    );
    let ctx = fx.ctx("deadline", &server.url(), &jd, 1);
    println!(
        "\ngRPC deadlines\n| case | status | errorSource | took | message |\n|---|---|---|---|---|"
    );

    // An already expired deadline: nothing may reach the upstream.
    for timeout in ["0n", "1n", "1m"] {
        let name = format!("expired deadline (grpc-timeout {timeout})");
        let t = Instant::now();
        let got = query_with_grpc_timeout(&fx, &ctx, "hang", timeout).await;
        let took = t.elapsed();
        let mut texts = Vec::new();
        match &got {
            Ok(resp) => {
                let r = &resp.responses["A"];
                row(&name, r, took);
                expect_err(&name, r, 504, "downstream", &["did not answer within 0.00"]);
                texts.extend(texts_of(r));
            }
            Err((code, message)) => {
                println!(
                    "| {name} | gRPC {code} | - | {:.3} s | {message} |",
                    took.as_secs_f64()
                );
                assert_eq!(code, "1", "{name}: CANCELLED ({message})");
            }
        }
        assert!(took < Duration::from_secs(1), "{name}: {took:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(server.hits("/hang"), 0, "{name}: the upstream was called");
        fx.after(&name, &ctx, &texts).await;
    }

    // tonic's own deadline (Request::set_timeout), already expired: the client gives up; the
    // plugin must not call the upstream and must keep serving.
    let mut req = tonic::Request::new(pluginv2::QueryDataRequest {
        plugin_context: Some(ctx.clone()),
        headers: HashMap::new(),
        queries: vec![q("A", "hang", json!({}))],
        format: 0,
    });
    req.set_timeout(Duration::from_nanos(1));
    let got = fx.p.data().query_data(req).await;
    // Usually the client's own 1 ns timer wins; but tonic polls the call before its timer,
    // so a plugin that answers the expired `grpc-timeout: 1n` fast enough (its per-query
    // 504) wins the race. Either way the upstream must not be called.
    match got {
        Err(status) => {
            println!(
                "| expired deadline (tonic set_timeout 1 ns) | gRPC {:?} | - | - | {} |",
                status.code(),
                status.message()
            );
            assert!(
                matches!(
                    status.code(),
                    tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
                ),
                "{status:?}"
            );
        }
        Ok(resp) => {
            let r = &resp.get_ref().responses["A"];
            row(
                "expired deadline (tonic set_timeout 1 ns)",
                r,
                Duration::ZERO,
            );
            expect_err(
                "expired tonic deadline",
                r,
                504,
                "downstream",
                &["did not answer within 0.00"],
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.hits("/hang"),
        0,
        "expired tonic deadline: the upstream was called"
    );
    fx.after("expired tonic deadline", &ctx, &[]).await;

    // A short deadline (800 ms) while the upstream hangs: answered in time, the upstream
    // request ended (connection closed) by the plugin at the deadline.
    let name = "deadline 800 ms, upstream hangs";
    let t = Instant::now();
    let got = query_with_grpc_timeout(&fx, &ctx, "hang", "800m").await;
    let took = t.elapsed();
    let mut texts = Vec::new();
    match &got {
        Ok(resp) => {
            let r = &resp.responses["A"];
            row(name, r, took);
            expect_err(
                name,
                r,
                504,
                "downstream",
                &["did not answer within 0.7", "/hang?api_key=***"],
            );
            texts.extend(texts_of(r));
        }
        Err((code, message)) => {
            println!(
                "| {name} | gRPC {code} | - | {:.3} s | {message} |",
                took.as_secs_f64()
            );
            assert_eq!(code, "1", "{name}: CANCELLED ({message})");
        }
    }
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "{name}: {took:?}"
    );
    wait_for_hang_close(&server, 1, Duration::from_secs(3), name).await;
    fx.after_timeout(name, &ctx, &texts).await;
}

async fn wait_for_hang_close(
    server: &RawServer,
    n: usize,
    limit: Duration,
    what: &str,
) -> Duration {
    let start = Instant::now();
    loop {
        let closed = server.state.hangs_closed.lock().unwrap().clone();
        if closed.len() >= n {
            return closed[n - 1];
        }
        assert!(
            start.elapsed() < limit,
            "{what}: the upstream connection is still open {limit:?} later \
             (the upstream request was not aborted)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cancel_aborts_the_upstream_request() {
    let server = RawServer::start(vec![("/hang", Reply::Hang)]).await;
    let fx = Fx::spawn().await;
    let jd = json_data(
        vec![rule("hang", "/hang", json!({}))],
        json!({"timeout": 60}),
    );
    let ctx = fx.ctx("cancel", &server.url(), &jd, 1);
    let mut client = fx.p.data();
    let req = pluginv2::QueryDataRequest {
        plugin_context: Some(ctx.clone()),
        headers: HashMap::new(),
        queries: vec![q("A", "hang", json!({}))],
        format: 0,
    };
    let call = tokio::spawn(async move { client.query_data(req).await });
    let start = Instant::now();
    while server.state.hangs_started.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the upstream never saw the request"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fx.inflight().await, 1.0, "one upstream request in flight");
    // The client goes away mid-flight (Grafana's request context is cancelled).
    call.abort();
    let cancelled = Instant::now();
    let _ = call.await;
    let after = wait_for_hang_close(&server, 1, Duration::from_secs(5), "client cancel").await;
    println!(
        "client cancel: upstream connection closed {:.3} s after the cancel",
        cancelled.elapsed().as_secs_f64().min(after.as_secs_f64())
    );
    fx.after("client cancel", &ctx, &[]).await;
}
