//! etcd 3.4 (Debian `etcd-server`) with auth enabled: the login flow
//! (`auth: {type: login, url: /v3/auth/authenticate, tokenPath: $.token, header: Authorization}`,
//! the token sent raw as `Authorization`), reading keys with `POST /v3/kv/range` (base64
//! key in a JSON body; keys and values come back base64, read as strings).
//!
//! Logins and reads are counted by etcd itself: its metrics port reports
//! `grpc_server_handled_total{grpc_method="Authenticate"|"Range",grpc_code=…}` (the HTTP
//! gateway goes through the same gRPC handlers).

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{one_frame, run, run_one, strings};
use crate::servers::{b64, find_in_path, http, require, Server, TempDir};
use crate::support::plugin::{context, PluginProcess};

const ROOT_PASSWORD: &str = "etcd-root-pw-5e1f";
/// Keys written before auth is enabled, and their values.
const KEYS: [(&str, &str); 3] = [
    ("sensor/1", "21.5"),
    ("sensor/2", "19.0"),
    ("sensor/3", "23.25"),
];

struct Etcd {
    server: Server,
    _dir: TempDir,
}

impl Etcd {
    fn metrics_port(&self) -> u16 {
        self.server.extra_ports[1]
    }

    /// `grpc_server_handled_total` for `method` and `code`, read from etcd's metrics port.
    fn handled(&self, method: &str, code: &str) -> u64 {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.metrics_port()));
        let (status, _, body) = http(addr, "GET", "/metrics", &[], None).unwrap();
        assert_eq!(status, 200);
        let needle =
            format!("grpc_server_handled_total{{grpc_code=\"{code}\",grpc_method=\"{method}\",");
        body.lines()
            .find(|l| l.starts_with(&needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn logins(&self) -> u64 {
        self.handled("Authenticate", "OK")
    }
}

/// Starts etcd (client, peer and metrics ports on 127.0.0.1), writes [`KEYS`], adds user
/// `root` with [`ROOT_PASSWORD`] and role root, and enables auth. `token_ttl`: etcd's
/// `--auth-token-ttl` (seconds a simple token lives without use).
fn start(token_ttl: u32) -> Option<Etcd> {
    let bin = require("etcd (apt-get install etcd-server)", find_in_path("etcd"))?;
    let dir = TempDir::new("etcd");
    let data = dir.path.join("data");
    let server = Server::start("etcd", &dir.path, 2, "/health", |port, extra| {
        let client = format!("http://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{}", extra[0]);
        let mut c = Command::new(&bin);
        c.args(["--name", "t1", "--data-dir"])
            .arg(&data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("t1={peer}")])
            .args([
                "--listen-metrics-urls",
                &format!("http://127.0.0.1:{}", extra[1]),
            ])
            .args(["--auth-token-ttl", &token_ttl.to_string()]);
        c
    });
    let addr = server.addr();
    let post = |path: &str, body: Value| {
        let (status, _, text) = http(addr, "POST", path, &[], Some(&body.to_string())).unwrap();
        assert_eq!(status, 200, "{path}: {text}");
    };
    for (k, v) in KEYS {
        post("/v3/kv/put", json!({"key": b64(k), "value": b64(v)}));
    }
    post(
        "/v3/auth/user/add",
        json!({"name": "root", "password": ROOT_PASSWORD}),
    );
    post(
        "/v3/auth/user/grant",
        json!({"user": "root", "role": "root"}),
    );
    post("/v3/auth/enable", json!({}));
    // Auth is on: a read without a token is refused.
    let (status, _, text) = http(
        addr,
        "POST",
        "/v3/kv/range",
        &[],
        Some(&json!({"key": b64("sensor/1")}).to_string()),
    )
    .unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("user name is empty"), "{text}");
    Some(Etcd { server, _dir: dir })
}

fn json_data(ttl_seconds: u64) -> Value {
    json!({
        "auth": {"type": "login", "url": "/v3/auth/authenticate", "method": "POST",
                 "body": {"name": "root", "password": "${__secure.loginPassword}"},
                 "tokenPath": "$.token", "header": "Authorization", "prefix": "",
                 "ttlSeconds": ttl_seconds},
        "rules": [{
            "id": "sensors",
            "request": {"method": "POST", "url": "/v3/kv/range",
                        "body": {"key": b64("sensor/"), "range_end": b64("sensor0")}},
            "cache": {"ttlSeconds": 0},
            "response": {"rows": "$.kvs[*]", "format": "table", "fields": [
                {"name": "key", "path": "$.key", "type": "string"},
                {"name": "value", "path": "$.value", "type": "string"},
                {"name": "version", "path": "$.version", "type": "int"}
            ]}
        }]
    })
}

fn assert_sensors(resp: &restbridge::pb::pluginv2::DataResponse) {
    let f = one_frame(resp);
    assert_eq!(
        strings(&f, "key"),
        KEYS.iter().map(|(k, _)| b64(k)).collect::<Vec<_>>()
    );
    assert_eq!(
        strings(&f, "value"),
        KEYS.iter().map(|(_, v)| b64(v)).collect::<Vec<_>>(),
        "etcd's base64 values, read as strings"
    );
}

/// `n` query lists of `per` queries each (refIds `Qi_j`), all for rule `sensors`.
fn batches(n: usize, per: usize) -> Vec<Vec<(String, &'static str, Value)>> {
    (0..n)
        .map(|i| {
            (0..per)
                .map(|j| (format!("Q{i}_{j}"), "sensors", json!({})))
                .collect()
        })
        .collect()
}

/// Sends every batch as its own QueryData call, all at the same time (like the panels of a
/// dashboard), and checks every answer.
async fn concurrent_calls(
    plugin: &PluginProcess,
    ctx: &restbridge::pb::pluginv2::PluginContext,
    batches: &[Vec<(String, &'static str, Value)>],
) -> usize {
    let calls = batches.iter().map(|b| {
        let q: Vec<(&str, &str, Value)> = b
            .iter()
            .map(|(r, n, p)| (r.as_str(), *n, p.clone()))
            .collect();
        async move { run(plugin, ctx, &q).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut n = 0;
    for resp in answers.iter().flat_map(|a| a.values()) {
        assert_sensors(resp);
        n += 1;
    }
    n
}

/// Compiles the datasource in the plugin without running a rule (CheckHealth with no
/// `healthCheck`), so that later queries find a ready instance.
async fn compile_via_check_health(
    plugin: &PluginProcess,
    ctx: &restbridge::pb::pluginv2::PluginContext,
) {
    let health = plugin
        .diagnostics()
        .check_health(restbridge::pb::pluginv2::CheckHealthRequest {
            plugin_context: Some(ctx.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 1, "CheckHealth OK: {}", health.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_is_shared_by_concurrent_queries_and_reused() {
    let Some(etcd) = start(300) else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "etcd-login",
        &etcd.server.url(),
        &json_data(0),
        &[("loginPassword", ROOT_PASSWORD)],
        1,
    );
    compile_via_check_health(&plugin, &ctx).await;
    assert_eq!(etcd.logins(), 0, "compiling the settings does not log in");

    // 16 queries in one request run concurrently (at most 16 at a time).
    assert_eq!(concurrent_calls(&plugin, &ctx, &batches(1, 16)).await, 16);
    assert_eq!(etcd.logins(), 1, "16 concurrent queries share one login");
    // Identical concurrent requests are coalesced by the fetch layer, so 1..=16 reads.
    let reads = etcd.handled("Range", "OK");
    assert!((1..=16).contains(&reads), "{reads}");
    println!("proved: 16 concurrent queries of one request against etcd with auth on → exactly 1 /v3/auth/authenticate, {reads} authorized /v3/kv/range read(s) (identical calls coalesce); base64 values read as strings");

    // 4 concurrent QueryData calls of 4 queries, then 3 single ones: no new login.
    assert_eq!(concurrent_calls(&plugin, &ctx, &batches(4, 4)).await, 16);
    let before = etcd.handled("Range", "OK");
    for _ in 0..3 {
        assert_sensors(&run_one(&plugin, &ctx, "sensors", json!({})).await);
    }
    assert_eq!(etcd.logins(), 1, "ttlSeconds 0: the token is reused");
    assert_eq!(
        etcd.handled("Range", "OK"),
        before + 3,
        "cache ttl 0: each query reads"
    );
    assert_eq!(etcd.handled("Range", "Unauthenticated"), 0);
    let log = plugin.stderr_lines().join("\n");
    assert!(!log.contains(ROOT_PASSWORD), "password never logged");
    println!(
        "proved: 19 later queries (4 concurrent calls + 3 single) reused the token: still 1 login"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewal_is_shared_by_concurrent_calls() {
    let Some(etcd) = start(300) else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "etcd-renew",
        &etcd.server.url(),
        &json_data(1),
        &[("loginPassword", ROOT_PASSWORD)],
        1,
    );
    assert_sensors(&run_one(&plugin, &ctx, "sensors", json!({})).await);
    assert_eq!(etcd.logins(), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // The token expired (ttlSeconds 1): 6 concurrent calls of 3 queries need a new one.
    assert_eq!(concurrent_calls(&plugin, &ctx, &batches(6, 3)).await, 18);
    assert_eq!(
        etcd.logins(),
        2,
        "18 concurrent queries in 6 calls shared one renewal"
    );
    println!("proved: after ttlSeconds, 6 concurrent QueryData calls (18 queries) caused exactly one new login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_concurrent_calls_of_a_new_datasource_share_one_login() {
    let Some(etcd) = start(300) else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "etcd-first",
        &etcd.server.url(),
        &json_data(0),
        &[("loginPassword", ROOT_PASSWORD)],
        1,
    );
    // No CheckHealth first: the very first queries of this datasource version.
    assert_eq!(concurrent_calls(&plugin, &ctx, &batches(1, 16)).await, 16);
    let logins = etcd.logins();
    println!("first 16 concurrent queries of a new datasource version → {logins} logins");
    assert_eq!(logins, 1, "one login shared by concurrent queries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_seconds_expires_the_token_and_logs_in_again() {
    let Some(etcd) = start(300) else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "etcd-ttl",
        &etcd.server.url(),
        &json_data(1),
        &[("loginPassword", ROOT_PASSWORD)],
        1,
    );
    assert_sensors(&run_one(&plugin, &ctx, "sensors", json!({})).await);
    assert_sensors(&run_one(&plugin, &ctx, "sensors", json!({})).await);
    assert_eq!(etcd.logins(), 1, "within ttlSeconds the token is reused");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_sensors(&run_one(&plugin, &ctx, "sensors", json!({})).await);
    assert_eq!(etcd.logins(), 2, "after ttlSeconds (1 s) a new login");
    assert_eq!(
        etcd.handled("Range", "Unauthenticated"),
        0,
        "renewed before use, without a 401"
    );
    println!(
        "proved: ttlSeconds 1 → token reused inside 1 s, a new login after it (2 logins, no 401)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_401_triggers_one_relogin_and_retry() {
    // etcd forgets a simple token after 2 s without use; ttlSeconds 0 keeps ours until a 401.
    let Some(etcd) = start(2) else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "etcd-401",
        &etcd.server.url(),
        &json_data(0),
        &[("loginPassword", ROOT_PASSWORD)],
        1,
    );
    assert_sensors(&run_one(&plugin, &ctx, "sensors", json!({})).await);
    assert_eq!(etcd.logins(), 1);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_sensors(&run_one(&plugin, &ctx, "sensors", json!({})).await);
    assert_eq!(
        etcd.handled("Range", "Unauthenticated"),
        1,
        "the stale token got etcd's 401 once"
    );
    assert_eq!(etcd.logins(), 2, "then one new login");
    assert_eq!(etcd.handled("Range", "OK"), 2, "and the retry succeeded");
    println!("proved: etcd expired the token → 401 (\"invalid auth token\") → one re-login → retry OK, invisible to the query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_the_query_without_leaking_it() {
    let Some(etcd) = start(300) else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let wrong = "not-the-root-password-9";
    let ctx = context(
        "etcd-wrong",
        &etcd.server.url(),
        &json_data(0),
        &[("loginPassword", wrong)],
        1,
    );
    let resp = run_one(&plugin, &ctx, "sensors", json!({})).await;
    assert!(!resp.error.is_empty());
    assert_eq!(resp.error_source, "downstream");
    assert!(
        resp.error.contains("authentication failed"),
        "{}",
        resp.error
    );
    assert!(!resp.error.contains(wrong), "{}", resp.error);
    assert_eq!(etcd.handled("Range", "OK"), 0);
    println!(
        "proved: a failed login is a downstream error (status {}) naming etcd's answer, password masked: {}",
        resp.status, resp.error
    );
}
