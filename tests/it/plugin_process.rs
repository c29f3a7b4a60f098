//! The plugin process as Grafana sees it: handshake, gRPC services, frames, logs, signals,
//! shutdown (protocol.md §1, §2, §3).

use std::time::Duration;

use restbridge::pb::goplugin;
use restbridge::pb::pluginv2;
use serde_json::json;

use crate::support::arrow::decode;
use crate::support::plugin::{context, query, PluginProcess};
use crate::support::stub::{Route, Stub};

const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z in ms

fn series_body() -> String {
    json!({"data": {"result": [
        {"metric": {"host": "a"}, "values": [[1704067260, "2.5"], [1704067200, "1.5"]]},
        {"metric": {"host": "b"}, "values": [[1704067200, "NaN"], [1704067260, "+Inf"]]}
    ]}})
    .to_string()
}

fn rules_json() -> serde_json::Value {
    json!({
        "rules": [
            {"id": "series", "title": "Series",
             "request": {"url": "/series", "query": {"start": "${__from:date:seconds}", "host": "${host}"}},
             "params": [{"name": "host", "default": "all", "options": ["all", "a"]}],
             "response": {"frames": "$.data.result[*]", "labelsFrom": "$.metric", "rows": "$.values[*]",
                          "fields": [{"name": "time", "path": "$[0]", "type": "time", "format": "epoch_s"},
                                     {"name": "value", "path": "$[1]", "type": "number", "unit": "short"}]}},
            {"id": "table", "request": {"url": "/table"},
             "response": {"rows": "$[*]", "fields": [
                {"name": "name", "path": "$.name"},
                {"name": "n", "path": "$.n", "type": "int"},
                {"name": "ok", "path": "$.ok", "type": "bool"},
                {"name": "raw", "path": "$.raw", "type": "json"}]}}
        ]
    })
}

async fn stub() -> Stub {
    Stub::start(vec![
        ("/series", Route::json(&series_body())),
        (
            "/table",
            Route::json(r#"[{"name":"x","n":9007199254740993,"ok":true,"raw":{"a":[1,2]}},{"name":null,"n":"7","ok":"no","raw":null}]"#),
        ),
    ])
    .await
}

fn check_hclog_lines(lines: &[String]) {
    assert!(!lines.is_empty(), "the plugin logged nothing on stderr");
    let ts =
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$").unwrap();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        let level = v["@level"].as_str().expect("@level is a string");
        assert!(
            matches!(level, "trace" | "debug" | "info" | "warn" | "error"),
            "{line}"
        );
        assert!(v["@message"].is_string(), "{line}");
        assert!(
            ts.is_match(v["@timestamp"].as_str().expect("@timestamp string")),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_grafana_like_a_go_plugin() {
    let upstream = stub().await;
    let mut p = PluginProcess::spawn(&[]).await;
    // Like a Go plugin on Linux: a unix socket `plugin<digits>` in the temp directory.
    let sock_prefix = format!("1|2|unix|{}/plugin", std::env::temp_dir().display());
    assert!(p.handshake.starts_with(&sock_prefix), "{}", p.handshake);
    assert!(p.handshake.ends_with("|grpc"), "{}", p.handshake);
    let sock = std::path::PathBuf::from(p.handshake.trim().split('|').nth(3).unwrap());
    assert!(sock.exists(), "{sock:?} exists while serving");

    // grpc.health.v1 with service "plugin" (go-plugin's contract).
    let mut health = tonic_health::pb::health_client::HealthClient::new(p.channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let ctx = context("ds1", &upstream.url(), &rules_json(), &[], 1);
    let health = p
        .diagnostics()
        .check_health(pluginv2::CheckHealthRequest {
            plugin_context: Some(ctx.clone()),
            headers: Default::default(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        pluginv2::check_health_response::HealthStatus::Ok as i32,
        "{}",
        health.message
    );
    assert!(
        health.message.contains("2 rules loaded"),
        "{}",
        health.message
    );
    let details: serde_json::Value = serde_json::from_slice(&health.json_details).unwrap();
    assert!(details.is_object());

    let resp = p
        .data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            headers: Default::default(),
            queries: vec![
                query("A", "series", json!({}), T0, T0 + 3_600_000),
                query("B", "table", json!({}), T0, T0 + 3_600_000),
            ],
            format: pluginv2::DataFrameFormat::Json as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let a = &resp.responses["A"];
    assert_eq!(a.status, 200, "{}", a.error);
    assert_eq!(
        a.format,
        pluginv2::DataFrameFormat::Arrow as i32,
        "always Arrow"
    );
    assert!(a.error.is_empty());
    let frames: Vec<_> = a.frames.iter().map(|b| decode(b)).collect();
    assert_eq!(frames.len(), 2, "one frame per series");
    for f in &frames {
        assert_eq!(f.name, "series");
        assert_eq!(f.ref_id, "A");
        assert_eq!(f.meta_type(), Some("timeseries-multi"));
        assert_eq!(f.meta.as_ref().unwrap()["typeVersion"], json!([0, 1]));
        let time = f.field("time");
        assert!(!time.nullable);
        assert_eq!(time.tstype.as_deref(), Some("time"));
        // Sorted by time even though the API sent the rows out of order.
        assert_eq!(
            time.values,
            vec![
                json!(1_704_067_200_000_000_000i64),
                json!(1_704_067_260_000_000_000i64)
            ]
        );
        assert_eq!(f.field("value").config.as_ref().unwrap()["unit"], "short");
    }
    assert_eq!(
        frames[0].field("value").labels,
        [("host".to_owned(), "a".to_owned())].into()
    );
    assert_eq!(
        frames[0].field("value").values,
        vec![json!(1.5), json!(2.5)]
    );
    assert_eq!(
        frames[1].field("value").values,
        vec![json!("NaN"), json!("inf")]
    );
    let executed = frames[0].meta.as_ref().unwrap()["executedQueryString"]
        .as_str()
        .unwrap();
    assert_eq!(
        executed,
        format!("{}/series?host=all&start=1704067200", upstream.url())
    );

    let b = &resp.responses["B"];
    assert_eq!(b.status, 200, "{}", b.error);
    let t = decode(&b.frames[0]);
    assert_eq!(t.meta_type(), None, "a table is untyped");
    assert_eq!(t.field("name").values, vec![json!("x"), json!(null)]);
    assert_eq!(
        t.field("n").values,
        vec![json!(9_007_199_254_740_993i64), json!(7)],
        "int64 exact beyond 2^53"
    );
    assert_eq!(t.field("ok").values, vec![json!(true), json!(false)]);
    assert_eq!(t.field("raw").data_type, arrow_schema::DataType::Binary);
    assert_eq!(
        t.field("raw").values,
        vec![json!(r#"{"a":[1,2]}"#), json!(null)]
    );

    // QueryChunkedData answers UNIMPLEMENTED so Grafana falls back to QueryData.
    let chunked = p
        .data()
        .query_chunked_data(pluginv2::QueryChunkedDataRequest {
            plugin_context: Some(ctx),
            ..Default::default()
        })
        .await;
    assert_eq!(
        chunked.err().map(|s| s.code()),
        Some(tonic::Code::Unimplemented)
    );

    // Shutdown: answered, then the process exits within 1 s.
    p.controller().shutdown(goplugin::Empty {}).await.unwrap();
    let (status, took) = p
        .wait_exit(Duration::from_secs(2))
        .expect("exit after Shutdown");
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
    assert!(!sock.exists(), "{sock:?} removed at exit");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        p.stdout_rest.lock().unwrap().is_empty(),
        "nothing but the handshake on stdout"
    );
    check_hclog_lines(&p.stderr_lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignores_sigint_and_exits_on_sigterm() {
    let mut p = PluginProcess::spawn(&[]).await;
    let pid = p.child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGINT) };
    assert!(
        p.wait_exit(Duration::from_millis(500)).is_none(),
        "SIGINT must be ignored"
    );
    // Still serving after SIGINT.
    let r = p
        .diagnostics()
        .check_health(pluginv2::CheckHealthRequest {
            plugin_context: Some(context("x", "http://127.0.0.1:9", &json!({}), &[], 1)),
            headers: Default::default(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.message.contains("no rules"), "{}", r.message);
    let sock = std::path::PathBuf::from(p.handshake.trim().split('|').nth(3).unwrap());
    assert!(sock.exists(), "{sock:?}");
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let (status, _) = p
        .wait_exit(Duration::from_secs(2))
        .expect("exit on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "{sock:?} removed at exit");
}

/// One `table` query against `upstream` answers 200 (the process serves on its transport).
async fn answers_a_table_query(p: &PluginProcess, upstream: &Stub) {
    let resp = p
        .query_data(
            context("ds1", &upstream.url(), &rules_json(), &[], 1),
            vec![query("A", "table", json!({}), T0, T0)],
        )
        .await;
    assert_eq!(
        resp.responses["A"].status, 200,
        "{}",
        resp.responses["A"].error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listens_on_a_unix_socket_in_container_mode() {
    let dir = std::env::temp_dir().join(format!("rb-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let upstream = stub().await;
    let p = PluginProcess::spawn(&[("PLUGIN_UNIX_SOCKET_DIR", dir.to_str().unwrap())]).await;
    assert!(
        p.handshake
            .starts_with(&format!("1|2|unix|{}/plugin", dir.display())),
        "{}",
        p.handshake
    );
    answers_a_table_query(&p, &upstream).await;
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listens_on_loopback_tcp_when_asked() {
    let upstream = stub().await;
    let mut p = PluginProcess::spawn(&[("RESTBRIDGE_GRPC_NETWORK", "tcp")]).await;
    assert!(
        p.handshake.starts_with("1|2|tcp|127.0.0.1:"),
        "{}",
        p.handshake
    );
    answers_a_table_query(&p, &upstream).await;
    unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
    let (status, _) = p
        .wait_exit(Duration::from_secs(2))
        .expect("exit on SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_tcp_when_the_temp_dir_is_too_long_for_a_socket() {
    // Unix socket paths are limited to 108 bytes on Linux.
    let long = std::env::temp_dir()
        .join(format!("rb-{}-{}", std::process::id(), "d".repeat(60)))
        .join("e".repeat(60));
    std::fs::create_dir_all(&long).unwrap();
    let upstream = stub().await;
    let p = PluginProcess::spawn(&[("TMPDIR", long.to_str().unwrap())]).await;
    assert!(
        p.handshake.starts_with("1|2|tcp|127.0.0.1:"),
        "{}",
        p.handshake
    );
    answers_a_table_query(&p, &upstream).await;
    assert!(
        p.stderr_lines()
            .iter()
            .any(|l| l.contains("using loopback TCP")),
        "a warning says why"
    );
    drop(p);
    let _ = std::fs::remove_dir_all(long.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_host_without_protocol_2() {
    let exe = env!("CARGO_BIN_EXE_gpx_restbridge");
    let out = std::process::Command::new(exe)
        .env("grafana_plugin_type", "datasource")
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no handshake line");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("protocol versions '1'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_compile_once_per_version_and_large_requests_fit() {
    let upstream = stub().await;
    let p = PluginProcess::spawn(&[]).await;
    let run = |ctx: pluginv2::PluginContext, rule: &'static str| {
        let mut data = p.data();
        async move {
            data.query_data(pluginv2::QueryDataRequest {
                plugin_context: Some(ctx),
                queries: vec![query("A", rule, json!({}), T0, T0)],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .responses["A"]
                .clone()
        }
    };
    let v1 = context("ds1", &upstream.url(), &rules_json(), &[], 100);
    assert_eq!(run(v1, "table").await.status, 200);
    // Same uid and lastUpdatedMS, different jsonData: the compiled version is reused.
    let same_version = context("ds1", &upstream.url(), &json!({"rules": []}), &[], 100);
    assert_eq!(run(same_version, "table").await.status, 200);
    // A new lastUpdatedMS recompiles: the rule is gone now.
    let v2 = context("ds1", &upstream.url(), &json!({"rules": []}), &[], 101);
    let r = run(v2, "table").await;
    assert_eq!(r.status, 400);
    assert!(r.error.contains("unknown rule 'table'"), "{}", r.error);

    // A 20 MiB request (Grafana may send up to 16 MiB) is accepted.
    let mut big = query("BIG", "table", json!({}), T0, T0);
    let mut model: serde_json::Value = serde_json::from_slice(&big.json).unwrap();
    model["padding"] = json!("x".repeat(20 << 20));
    big.json = serde_json::to_vec(&model).unwrap();
    let resp = p
        .query_data(
            context("ds1", &upstream.url(), &rules_json(), &[], 102),
            vec![big],
        )
        .await;
    assert_eq!(
        resp.responses["BIG"].status, 200,
        "{}",
        resp.responses["BIG"].error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_query_is_that_refids_500_and_the_process_keeps_serving() {
    let upstream = stub().await;
    let p = PluginProcess::spawn(&[("RESTBRIDGE_TEST_HOOKS", "1")]).await;
    let ctx = context("ds1", &upstream.url(), &rules_json(), &[], 1);
    let resp = p
        .data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            queries: vec![
                query("BOOM", "__panic__", json!({}), T0, T0),
                query("OK", "table", json!({}), T0, T0),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let boom = &resp.responses["BOOM"];
    assert_eq!(boom.status, 500);
    assert_eq!(boom.error_source, "plugin");
    assert!(boom.error.contains("panicked"), "{}", boom.error);
    assert_eq!(resp.responses["OK"].status, 200);
    // A call with one query runs it without a task of its own: the same 500.
    let single = p
        .query_data(
            ctx.clone(),
            vec![query("ALONE", "__panic__", json!({}), T0, T0)],
        )
        .await;
    let alone = &single.responses["ALONE"];
    assert_eq!((alone.status, alone.error_source.as_str()), (500, "plugin"));
    assert!(alone.error.contains("panicked"), "{}", alone.error);
    // Still serving afterwards, and the panic was reported on stderr as go-plugin expects.
    let again = p
        .query_data(ctx, vec![query("A", "table", json!({}), T0, T0)])
        .await;
    assert_eq!(again.responses["A"].status, 200);
    std::thread::sleep(Duration::from_millis(100));
    let lines = p.stderr_lines();
    assert!(lines.iter().any(|l| l.starts_with("panic: ")), "{lines:?}");
}

/// Sends a raw HTTP/2 request to QueryData (body bytes as given) and returns the gRPC status
/// code and message, from the headers (trailers-only) or the trailers.
async fn raw_query_data(
    p: &PluginProcess,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (i32, String) {
    use http_body_util::BodyExt;
    use tonic::codegen::Service;
    let mut channel = p.channel.clone();
    let mut req = http::Request::builder()
        .method("POST")
        .uri("http://plugin/pluginv2.Data/QueryData")
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from(body),
        )))
        .unwrap();
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), channel.call(req))
        .await
        .expect("answered in time")
        .expect("an HTTP/2 response");
    assert_eq!(resp.status(), 200);
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let get = |name: &str| {
        parts
            .headers
            .get(name)
            .or_else(|| trailers.get(name))
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let code = get("grpc-status").expect("a grpc-status").parse().unwrap();
    let message = get("grpc-message").unwrap_or_default();
    let message = percent_encoding::percent_decode_str(&message)
        .decode_utf8_lossy()
        .into_owned();
    (code, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_grpc_messages_get_grpc_errors_and_the_process_keeps_serving() {
    let upstream = stub().await;
    let p = PluginProcess::spawn(&[]).await;
    let framed = |flag: u8, len: u32, msg: &[u8]| {
        let mut v = vec![flag];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(msg);
        v
    };
    // QueryData's own decoding (src/grpc_data.rs): INTERNAL, as tonic's decoder answers.
    for (body, why) in [
        (
            framed(1, 3, b"abc"),
            "compressed message without a grpc-encoding",
        ),
        (framed(0, 9, b"abc"), "one 9-byte message carries 3 bytes"),
        (framed(0, 1, b"abc"), "one 1-byte message carries 3 bytes"),
        (vec![0, 0], "carries no message"),
        (framed(0, 2, &[0xff, 0xff]), ""),
    ] {
        let (code, message) = raw_query_data(&p, &[], body).await;
        assert_eq!(code, tonic::Code::Internal as i32, "{why}: {message}");
        assert!(message.contains(why), "{why}: {message}");
    }
    // A compressed request goes to tonic's generated server, which supports no compression.
    let (code, message) =
        raw_query_data(&p, &[("grpc-encoding", "gzip")], framed(1, 3, b"abc")).await;
    assert_eq!(code, tonic::Code::Unimplemented as i32, "{message}");
    // An empty QueryDataRequest is a valid message: no queries, no answers.
    let (code, message) = raw_query_data(&p, &[], framed(0, 0, b"")).await;
    assert_eq!(code, 0, "{message}");
    // And the process keeps serving.
    let ctx = context("ds1", &upstream.url(), &rules_json(), &[], 1);
    let resp = p
        .query_data(ctx, vec![query("A", "table", json!({}), T0, T0)])
        .await;
    assert_eq!(
        resp.responses["A"].status, 200,
        "{}",
        resp.responses["A"].error
    );
}
