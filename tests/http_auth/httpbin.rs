//! Against a real httpbin (Debian python3-httpbin): basic auth, bearer, custom headers,
//! API key in the query, status codes and retries, timeouts, redirects, compression and the
//! body cap — each through the spawned plugin.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    assert_no_secrets, column, error_with, executed, frame_texts, frames_ok, query_one, unique,
    with_basic_auth, FnStub, Reply,
};
use crate::servers::{b64, Httpbin};
use crate::support::plugin::{context, PluginProcess};

fn field(name: &str, path: &str, kind: &str) -> Value {
    json!({"name": name, "path": path, "type": kind})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_right_password_gives_frames_wrong_gives_401() {
    let Some(hb) = Httpbin::start() else { return };
    let right = unique("basic-pw");
    let wrong = unique("wrong-pw");
    // The expected password is itself a secret, so the URL shows `***` for it.
    let jd = json!({"rules": [
        {"id": "basic", "request": {"url": "/basic-auth/grafana/${__secure.expected}"},
         "response": {"fields": [field("authenticated", "$.authenticated", "bool"),
                                 field("user", "$.user", "string")]}},
        {"id": "teapot", "request": {"url": "/status/418"},
         "response": {"fields": [field("x", "$.x", "string")]}}
    ]});
    let p = PluginProcess::spawn(&[]).await;
    let good = with_basic_auth(
        context(
            "basic-good",
            &hb.url,
            &jd,
            &[("basicAuthPassword", &right), ("expected", &right)],
            1,
        ),
        "grafana",
    );
    let bad = with_basic_auth(
        context(
            "basic-bad",
            &hb.url,
            &jd,
            &[("basicAuthPassword", &wrong), ("expected", &right)],
            1,
        ),
        "grafana",
    );

    let f = frames_ok(&query_one(&p, &good, "basic", json!({})).await);
    assert_eq!(column(&f, "authenticated"), vec![json!(true)]);
    assert_eq!(column(&f, "user"), vec![json!("grafana")]);
    let eqs = executed(&f);
    assert_eq!(eqs, format!("{}/basic-auth/grafana/***", hb.url));

    let r = query_one(&p, &bad, "basic", json!({})).await;
    let err = error_with(&r, 401);
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(err.contains("/basic-auth/grafana/***"), "{err}");
    assert_no_secrets("the 401 error", &[&err], &[&right, &wrong]);

    // Upstream error bodies are passed on (first 512 bytes): httpbin's teapot.
    let r = query_one(&p, &good, "teapot", json!({})).await;
    let teapot = error_with(&r, 418);
    assert!(teapot.contains("-=[ teapot ]=-"), "{teapot}");
    assert!(teapot.len() < 512 + 200, "{}", teapot.len());

    assert_no_secrets("stderr", &p.stderr_lines(), &[&right, &wrong]);
    println!(
        "proved: basic auth — right password → 200 frames (authenticated=true, \
         executedQueryString {eqs}); wrong password → status 401 downstream ({err}); \
         418 → status 418 with the upstream body snippet; no password in errors or stderr"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_sent_and_never_shown() {
    let Some(hb) = Httpbin::start() else { return };
    let token = unique("bearer-tok");
    let rules = json!([{"id": "bearer", "request": {"url": "/bearer"},
        "response": {"fields": [field("authenticated", "$.authenticated", "bool")]}}]);
    let p = PluginProcess::spawn(&[]).await;
    let with = context(
        "bearer-on",
        &hb.url,
        &json!({"auth": {"type": "bearer"}, "rules": rules}),
        &[("bearerToken", &token)],
        1,
    );
    let without = context("bearer-off", &hb.url, &json!({"rules": rules}), &[], 1);
    let f = frames_ok(&query_one(&p, &with, "bearer", json!({})).await);
    assert_eq!(column(&f, "authenticated"), vec![json!(true)]);
    assert_no_secrets("frames", &frame_texts(&f), &[&token]);
    let err = error_with(&query_one(&p, &without, "bearer", json!({})).await, 401);
    // A bearer datasource without its token is a settings error, not a silent anonymous call.
    let missing = context(
        "bearer-missing",
        &hb.url,
        &json!({"auth": {"type": "bearer"}, "rules": rules}),
        &[],
        1,
    );
    let cfg = error_with(&query_one(&p, &missing, "bearer", json!({})).await, 400);
    assert!(cfg.contains("bearerToken"), "{cfg}");
    assert_no_secrets("stderr", &p.stderr_lines(), &[&token]);
    println!(
        "proved: auth type bearer → httpbin /bearer authenticated=true; without it 401 ({err}); \
         bearer without secureJsonData.bearerToken → 400 ({cfg}); token in no frame or log line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_arrive_and_their_secret_values_stay_hidden() {
    let Some(hb) = Httpbin::start() else { return };
    let pw = unique("hdr-basic-pw");
    let auth_value = format!("Basic {}", b64(format!("grafana:{pw}").as_bytes()));
    let trace = unique("hdr-secret");
    let jd = json!({
        "httpHeaderName1": "Authorization",
        "httpHeaderName2": "X-Trace-Secret",
        "rules": [
            // Header 1 carries a complete basic-auth value: httpbin accepting it proves the
            // exact value arrived.
            {"id": "auth", "request": {"url": "/basic-auth/grafana/${__secure.expected}"},
             "response": {"fields": [field("authenticated", "$.authenticated", "bool")]}},
            // /headers echoes every header: take only the header *names* (@key), so the frame
            // cannot carry the secret values.
            {"id": "names", "request": {"url": "/headers"},
             "response": {"rows": "$.headers.*", "fields": [field("name", "@key", "string")]}},
        ]
    });
    let ctx = context(
        "hdr",
        &hb.url,
        &jd,
        &[
            ("httpHeaderValue1", &auth_value),
            ("httpHeaderValue2", &trace),
            ("expected", &pw),
        ],
        1,
    );
    let p = PluginProcess::spawn(&[]).await;
    let f = frames_ok(&query_one(&p, &ctx, "auth", json!({})).await);
    assert_eq!(column(&f, "authenticated"), vec![json!(true)]);
    let f = frames_ok(&query_one(&p, &ctx, "names", json!({})).await);
    let names: Vec<String> = column(&f, "name")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"X-Trace-Secret".to_owned()), "{names:?}");
    assert!(names.contains(&"Authorization".to_owned()), "{names:?}");
    let all = frame_texts(&f);
    assert_no_secrets("frames", &all, &[&trace, &pw, &auth_value]);
    assert!(!executed(&f).contains(&trace));
    assert_no_secrets("stderr", &p.stderr_lines(), &[&trace, &pw, &auth_value]);
    println!(
        "proved: httpHeaderName1/httpHeaderValue1 (Authorization: Basic …) accepted by httpbin \
         /basic-auth; httpHeaderName2 arrived (/headers names {names:?}); secret values in no \
         frame, executedQueryString or log line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_in_query_is_masked_in_executed_query_string() {
    let Some(hb) = Httpbin::start() else { return };
    let key = unique("api/key&=x");
    let jd = json!({
        "auth": {"type": "apiKey", "in": "query", "name": "api_key"},
        "rules": [
            {"id": "args", "request": {"url": "/get", "query": {"q": "1"}},
             "response": {"rows": "$.args.*", "fields": [field("arg", "@key", "string")]}},
            {"id": "missing", "request": {"url": "/status/404", "query": {"q": "1"}},
             "response": {"fields": [field("x", "$.x", "string")]}}
        ]
    });
    let ctx = context("apikey-q", &hb.url, &jd, &[("apiKey", &key)], 1);
    let p = PluginProcess::spawn(&[]).await;
    let f = frames_ok(&query_one(&p, &ctx, "args", json!({})).await);
    let args = column(&f, "arg");
    assert_eq!(args, vec![json!("api_key"), json!("q")]);
    let eqs = executed(&f);
    assert_eq!(eqs, format!("{}/get?q=1&api_key=***", hb.url));
    let err = error_with(&query_one(&p, &ctx, "missing", json!({})).await, 404);
    assert!(err.contains("api_key=***"), "{err}");
    let enc: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
    assert_no_secrets("frames", &frame_texts(&f), &[&key, &enc]);
    assert_no_secrets("the 404 error", &[&err], &[&key, &enc]);
    assert_no_secrets("stderr", &p.stderr_lines(), &[&key, &enc]);
    println!(
        "proved: apiKey in query → httpbin saw args {args:?}; executedQueryString {eqs}; \
         404 passed through with the URL masked ({err})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_codes_retries_and_pass_through() {
    let Some(hb) = Httpbin::start() else { return };
    let rule = |id: &str, url: &str| {
        json!({"id": id, "request": {"url": url},
               "response": {"fields": [field("x", "$.x", "string")]}})
    };
    let jd = json!({"rules": [
        rule("s503", "/status/503"), rule("s404", "/status/404"), rule("s500", "/status/500"),
        rule("s429", "/status/429")
    ]});
    let ctx = context("status", &hb.url, &jd, &[], 1);
    let p = PluginProcess::spawn(&[]).await;

    let t = Instant::now();
    let err503 = error_with(&query_one(&p, &ctx, "s503", json!({})).await, 502);
    let took503 = t.elapsed();
    assert!(err503.contains("HTTP 503"), "{err503}");
    // 1 try + 3 retries, backoff 100/200/400 ms with 50–100 % jitter.
    assert_eq!(
        hb.hits_settled("/status/503", 4),
        4,
        "503 must be tried 4 times"
    );
    assert!(
        took503 >= Duration::from_millis(340) && took503 < Duration::from_secs(3),
        "{took503:?}"
    );

    let err404 = error_with(&query_one(&p, &ctx, "s404", json!({})).await, 404);
    assert!(err404.contains("HTTP 404"), "{err404}");
    let err500 = error_with(&query_one(&p, &ctx, "s500", json!({})).await, 502);
    assert!(err500.contains("HTTP 500"), "{err500}");
    // httpbin's 429 has no Retry-After: not retried, status 429.
    let err429 = error_with(&query_one(&p, &ctx, "s429", json!({})).await, 429);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(hb.hits("/status/404"), 1, "404 is not retried");
    assert_eq!(hb.hits("/status/500"), 1, "500 is not retried");
    assert_eq!(
        hb.hits("/status/429"),
        1,
        "429 without Retry-After is not retried"
    );
    println!(
        "proved: httpbin (pid {}) /status/503 tried 4× (1 + 3 retries) in {:.2} s then 502 \
         ({err503}); 404 → 404 once; 500 → 502 once; 429 without Retry-After → 429 once \
         ({err429})",
        hb.server.pid(),
        took503.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_times_out_with_504() {
    let Some(hb) = Httpbin::start() else { return };
    let jd = |timeout: Option<f64>, rule_timeout: Option<u64>| {
        let mut rule = json!({"id": "slow", "request": {"url": "/delay/3"},
            "response": {"fields": [field("url", "$.url", "string")]}});
        if let Some(t) = rule_timeout {
            rule["timeout"] = json!(t);
        }
        let mut jd = json!({"rules": [rule]});
        if let Some(t) = timeout {
            jd["timeout"] = json!(t);
        }
        jd
    };
    let p = PluginProcess::spawn(&[]).await;
    let mut report = Vec::new();
    for (uid, ds_timeout, rule_timeout) in [
        ("delay-rule", None, Some(1)),
        ("delay-ds", Some(1.0), Some(10)),
    ] {
        let ctx = context(uid, &hb.url, &jd(ds_timeout, rule_timeout), &[], 1);
        let t = Instant::now();
        let r = query_one(&p, &ctx, "slow", json!({})).await;
        let took = t.elapsed();
        let err = error_with(&r, 504);
        assert!(err.contains("did not answer within 1.000 s"), "{err}");
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
            "{uid}: {took:?}"
        );
        report.push(format!("{uid} {:.2} s", took.as_secs_f64()));
    }
    // Control: with room, the same endpoint answers.
    let ctx = context("delay-ok", &hb.url, &jd(None, Some(5)), &[], 1);
    let t = Instant::now();
    let f = frames_ok(&query_one(&p, &ctx, "slow", json!({})).await);
    assert!(t.elapsed() >= Duration::from_secs(3));
    assert_eq!(
        column(&f, "url"),
        vec![json!(format!("{}/delay/3", hb.url))]
    );
    println!(
        "proved: /delay/3 with rule timeout 1 and with datasource timeout 1 (rule 10) → 504 \
         ({}); with timeout 5 → 200 after {:.2} s",
        report.join(", "),
        t.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_deadline_gives_a_per_query_504() {
    let Some(hb) = Httpbin::start() else { return };
    let jd = json!({"rules": [{"id": "slow", "request": {"url": "/delay/3"},
        "response": {"fields": [field("url", "$.url", "string")]}}]});
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("delay-grpc", &hb.url, &jd, &[], 1);
    // Grafana's deadline (grpc-timeout 1500 ms) is the only timeout below 30 s. `took` is
    // the call alone (request sent → whole answer read).
    let (r, took) = crate::common::query_with_grpc_deadline(&p, &ctx, "slow", "1500m")
        .await
        .unwrap_or_else(|e| panic!("expected a per-refId 504, but {e}"));
    let err = error_with(&r, 504);
    assert!(took < Duration::from_millis(1600), "{took:?}");
    println!(
        "proved: grpc-timeout 1500m → per-refId 504 after {:.2} s ({err})",
        took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_followed_only_to_allowed_hosts() {
    let Some(hb) = Httpbin::start() else { return };
    // A real server on another loopback address, to see whether a redirect reaches it.
    let other = FnStub::serve([127, 0, 0, 2], |_| {
        Reply::json(200, &json!({"url": "other"}))
    })
    .await;
    let port = hb.addr.port();
    let rules = json!([
        {"id": "to", "request": {"url": "/redirect-to", "query": {"url": "${target}"}},
         "params": [{"name": "target"}],
         "response": {"fields": [field("url", "$.url", "string")]}},
        {"id": "chain", "request": {"url": "/redirect/2"},
         "response": {"fields": [field("url", "$.url", "string")]}}
    ]);
    let p = PluginProcess::spawn(&[]).await;
    let strict = context(
        "redir-strict",
        &hb.url,
        &json!({"allowedHosts": [format!("localhost:{port}")], "rules": rules}),
        &[],
        1,
    );
    // Relative redirects on the base host.
    let f = frames_ok(&query_one(&p, &strict, "chain", json!({})).await);
    assert_eq!(column(&f, "url"), vec![json!(format!("{}/get", hb.url))]);
    // To an allowed other host name (localhost:PORT): followed.
    let allowed_target = format!("http://localhost:{port}/get");
    let f = frames_ok(&query_one(&p, &strict, "to", json!({"target": allowed_target})).await);
    assert_eq!(column(&f, "url"), vec![json!(allowed_target)]);
    // To a host that is not allowed (127.0.0.2): not followed, 502 naming the 302.
    let denied_target = format!("{}/secret", other.url());
    let err = error_with(
        &query_one(&p, &strict, "to", json!({"target": denied_target})).await,
        502,
    );
    assert!(err.contains("HTTP 302"), "{err}");
    assert_eq!(
        other.hits("/secret"),
        0,
        "the redirect must not be followed"
    );
    // The same target once it is in allowedHosts: followed.
    let open = context(
        "redir-open",
        &hb.url,
        &json!({"allowedHosts": [other.addr.to_string()], "rules": rules}),
        &[],
        1,
    );
    let f = frames_ok(&query_one(&p, &open, "to", json!({"target": denied_target})).await);
    assert_eq!(column(&f, "url"), vec![json!("other")]);
    assert_eq!(other.hits("/secret"), 1);
    println!(
        "proved: /redirect/2 followed on the base host; /redirect-to {allowed_target} \
         (allowedHosts) followed; to {denied_target} (not allowed) not followed → 502 ({err}), \
         the 127.0.0.2 server saw 0 requests; allowed → followed (1 request)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_deflate_and_brotli_are_decoded() {
    let Some(hb) = Httpbin::start() else { return };
    let rule = |id: &str, flag: &str| {
        json!({"id": id, "request": {"url": format!("/{id}")},
            "response": {"fields": [field(flag, &format!("$.{flag}"), "bool"),
                                    field("accept", "$.headers['Accept-Encoding']", "string")]}})
    };
    let jd = json!({"rules": [rule("gzip", "gzipped"), rule("deflate", "deflated"),
                              rule("brotli", "brotli")]});
    let ctx = context("compress", &hb.url, &jd, &[], 1);
    let p = PluginProcess::spawn(&[]).await;
    let mut accept = String::new();
    for (id, flag) in [
        ("gzip", "gzipped"),
        ("deflate", "deflated"),
        ("brotli", "brotli"),
    ] {
        let f = frames_ok(&query_one(&p, &ctx, id, json!({})).await);
        assert_eq!(column(&f, flag), vec![json!(true)], "{id}");
        accept = column(&f, "accept")[0].as_str().unwrap().to_owned();
        for enc in ["gzip", "deflate", "br"] {
            assert!(accept.contains(enc), "Accept-Encoding {accept}");
        }
    }
    println!(
        "proved: /gzip, /deflate, /brotli (Content-Encoding gzip/deflate/br) decoded into \
         frames; the plugin sent Accept-Encoding: {accept}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_cap_applies_to_plain_streamed_and_decompressed_bodies() {
    let Some(hb) = Httpbin::start() else { return };
    let pad = "a".repeat(20_000);
    let rules = json!([
        {"id": "bytes", "request": {"url": "/bytes/5000"},
         "response": {"fields": [field("x", "$.x", "string")]}},
        {"id": "stream", "request": {"url": "/stream-bytes/5000", "query": {"chunk_size": "100"}},
         "response": {"fields": [field("x", "$.x", "string")]}},
        {"id": "small", "request": {"url": "/get"},
         "response": {"fields": [field("url", "$.url", "string")]}},
        // /gzip echoes the request headers: a 20 kB header makes a ~0.2 kB gzip body that
        // decodes to ~20 kB.
        {"id": "bomb", "request": {"url": "/gzip", "headers": {"X-Pad": pad}},
         "response": {"fields": [field("gzipped", "$.gzipped", "bool")]}}
    ]);
    let capped = context(
        "cap-small",
        &hb.url,
        &json!({"maxResponseBytes": 2000, "rules": rules}),
        &[],
        1,
    );
    let roomy = context(
        "cap-large",
        &hb.url,
        &json!({"maxResponseBytes": 100_000, "rules": rules}),
        &[],
        1,
    );
    let p = PluginProcess::spawn(&[]).await;
    let mut msgs = Vec::new();
    for id in ["bytes", "stream", "bomb"] {
        let err = error_with(&query_one(&p, &capped, id, json!({})).await, 502);
        assert!(
            err.contains("larger than maxResponseBytes (2000 bytes)"),
            "{id}: {err}"
        );
        msgs.push(format!("{id}: {err}"));
    }
    let f = frames_ok(&query_one(&p, &capped, "small", json!({})).await);
    assert_eq!(column(&f, "url"), vec![json!(format!("{}/get", hb.url))]);
    let f = frames_ok(&query_one(&p, &roomy, "bomb", json!({})).await);
    assert_eq!(column(&f, "gzipped"), vec![json!(true)]);
    // Over the cap the body is binary, not JSON: the next error is about JSON, not size.
    let err = error_with(&query_one(&p, &roomy, "bytes", json!({})).await, 502);
    assert!(err.contains("not valid JSON"), "{err}");
    println!(
        "proved: maxResponseBytes 2000 → 502 for /bytes/5000 (Content-Length), \
         /stream-bytes/5000 (chunked) and a ~0.2 kB gzip body decoding to ~20 kB; /get \
         (~0.3 kB) passes; with 100000 the gzip body decodes → {msgs:?}"
    );
}
