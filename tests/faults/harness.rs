//! What every fault case shares: a plugin process, four unique secrets wired into every
//! datasource (basic auth password, bearer token, API key in the query string, a custom
//! header value), the assertions on status / errorSource / message, and the after-case
//! checks: a normal query on the same process still answers 200, and no secret appears in
//! stderr, any error, any frame, `executedQueryString` or the metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use restbridge::pb::pluginv2::{self, DataQuery, DataResponse, PluginContext, QueryDataResponse};
use serde_json::{json, Value};

use crate::support::arrow::{decode, DecodedFrame};
use crate::support::plugin::{context, query, PluginProcess};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A string no other case or process uses: `prefix` + pid + counter + nanos.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// The basic-auth user of every datasource.
pub const USER: &str = "grafana";

/// Unique secret values; characters that URL and form encoding change are included so the
/// encoded forms are checked too.
#[derive(Debug, Clone)]
pub struct Secrets {
    pub basic: String,
    pub bearer: String,
    pub api_key: String,
    pub header: String,
}

impl Secrets {
    pub fn new() -> Secrets {
        Secrets {
            basic: unique("PW-basic/+&= x"),
            bearer: unique("TOK-bearer/+"),
            api_key: unique("KEY-api/+&="),
            header: unique("HDR-custom/+&"),
        }
    }

    /// secureJsonData.
    pub fn secure(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("basicAuthPassword", self.basic.as_str()),
            ("bearerToken", self.bearer.as_str()),
            ("apiKey", self.api_key.as_str()),
            ("httpHeaderValue1", self.header.as_str()),
        ]
    }

    /// Every form in which a secret could leak: raw, form-encoded, percent-encoded,
    /// JSON-escaped, and the basic-auth credential `base64(user:password)`.
    pub fn forbidden(&self) -> Vec<String> {
        let mut out = vec![self.basic_b64()];
        for s in [&self.basic, &self.bearer, &self.api_key, &self.header] {
            out.push(s.clone());
            out.push(form_urlencoded::byte_serialize(s.as_bytes()).collect());
            out.push(
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
            out.push(
                serde_json::to_string(s)
                    .unwrap()
                    .trim_matches('"')
                    .to_owned(),
            );
        }
        out.sort();
        out.dedup();
        out
    }

    /// The credential of the basic-auth header (`base64(user:password)`).
    pub fn basic_b64(&self) -> String {
        b64(format!("{USER}:{}", self.basic).as_bytes())
    }
}

/// Standard base64 with padding.
pub fn b64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A rule on `url` sending the bearer token in `X-Auth-Token`, rows `$.items[*]` with a
/// string `name` and a number `v`; `extra`'s keys replace the rule's.
pub fn rule(id: &str, url: &str, extra: Value) -> Value {
    let mut r = json!({
        "id": id,
        "request": {"url": url, "headers": {"X-Auth-Token": "Bearer ${__secure.bearerToken}"}},
        "response": {"rows": "$.items[*]", "fields": [
            {"name": "name", "path": "$.name", "type": "string"},
            {"name": "v", "path": "$.v", "type": "number"}
        ]}
    });
    if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    r
}

/// jsonData with the credentials wired in (API key in the query string, custom header
/// `X-Custom`), the cache off (every query reaches the upstream), `rules` plus the `normal`
/// rule, and `extra`'s keys on top.
pub fn json_data(mut rules: Vec<Value>, extra: Value) -> Value {
    rules.push(rule("normal", "/normal", json!({})));
    let mut jd = json!({
        "auth": {"type": "apiKey", "in": "query", "name": "api_key"},
        "httpHeaderName1": "X-Custom",
        "cache": {"ttlSeconds": 0},
        "timeout": 10,
        "rules": rules
    });
    if let (Some(o), Some(e)) = (jd.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    jd
}

/// now-1h .. now, epoch ms.
pub fn last_hour() -> (i64, i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    (now - 3_600_000, now)
}

pub fn q(ref_id: &str, rule: &str, params: Value) -> DataQuery {
    let (from, to) = last_hour();
    query(ref_id, rule, params, from, to)
}

/// A plugin process and the secrets of its datasources.
pub struct Fx {
    pub p: PluginProcess,
    pub s: Secrets,
}

impl std::fmt::Debug for Fx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fx({:?})", self.p)
    }
}

impl Fx {
    /// A plugin logging at `debug` (every per-query line), the strictest for secret checks.
    pub async fn spawn() -> Fx {
        Fx::spawn_with_log("debug").await
    }

    /// A plugin with `RESTBRIDGE_LOG=level`.
    pub async fn spawn_with_log(level: &str) -> Fx {
        Fx {
            p: PluginProcess::spawn(&[("RESTBRIDGE_LOG", level)]).await,
            s: Secrets::new(),
        }
    }

    /// A datasource with basic auth on and every secret set.
    pub fn ctx(&self, uid: &str, url: &str, jd: &Value, version: i64) -> PluginContext {
        let mut ctx = context(uid, url, jd, &self.s.secure(), version);
        let s = ctx.data_source_instance_settings.as_mut().unwrap();
        s.basic_auth_enabled = true;
        s.basic_auth_user = USER.into();
        ctx
    }

    pub async fn run(&self, ctx: &PluginContext, queries: Vec<DataQuery>) -> QueryDataResponse {
        self.p
            .data()
            .query_data(pluginv2::QueryDataRequest {
                plugin_context: Some(ctx.clone()),
                headers: HashMap::new(),
                queries,
                format: 0,
            })
            .await
            .expect("QueryData must not fail as a whole")
            .into_inner()
    }

    /// One query (refId `A`) of `rule` with `params`; the response and how long it took.
    pub async fn one(
        &self,
        ctx: &PluginContext,
        rule: &str,
        params: Value,
    ) -> (DataResponse, Duration) {
        let t = Instant::now();
        let mut r = self.run(ctx, vec![q("A", rule, params)]).await;
        let took = t.elapsed();
        (r.responses.remove("A").expect("refId A answered"), took)
    }

    pub async fn health(&self, ctx: &PluginContext) -> (i32, String) {
        let r = self
            .p
            .diagnostics()
            .check_health(pluginv2::CheckHealthRequest {
                plugin_context: Some(ctx.clone()),
                headers: HashMap::new(),
            })
            .await
            .unwrap()
            .into_inner();
        (r.status, r.message)
    }

    pub async fn metrics(&self) -> String {
        let m = self
            .p
            .diagnostics()
            .collect_metrics(pluginv2::CollectMetricsRequest {
                plugin_context: None,
            })
            .await
            .unwrap()
            .into_inner();
        String::from_utf8_lossy(&m.metrics.map(|m| m.prometheus).unwrap_or_default()).into_owned()
    }

    /// `restbridge_upstream_inflight_requests`.
    pub async fn inflight(&self) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix("restbridge_upstream_inflight_requests "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }

    /// Peak resident set of the plugin process (VmHWM), MiB.
    pub fn vm_hwm_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.p.child.id()))
            .expect("/proc/<pid>/status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM line");
        kb / 1024
    }

    /// The after-case checks: the process still serves a normal query on `ctx` (200, two
    /// rows, `executedQueryString` with the API key masked); nothing in `texts`, stderr or
    /// the metrics contains a secret; no panic was logged; no upstream request is left
    /// in flight.
    pub async fn after(&self, case: &str, ctx: &PluginContext, texts: &[String]) {
        self.after_with(case, ctx, texts, true).await;
    }

    /// [`after`](Self::after) for a case that timed out: everything but the in-flight gauge,
    /// which a timeout can leave at +1 (a bug, proven by
    /// `upstream::timed_out_requests_leave_nothing_in_flight`).
    pub async fn after_timeout(&self, case: &str, ctx: &PluginContext, texts: &[String]) {
        self.after_with(case, ctx, texts, false).await;
    }

    async fn after_with(&self, case: &str, ctx: &PluginContext, texts: &[String], inflight: bool) {
        let (r, _) = self.one(ctx, "normal", json!({})).await;
        let frames = expect_ok(&format!("{case}: following normal query"), &r);
        assert_eq!(
            frames.iter().map(DecodedFrame::rows).sum::<usize>(),
            2,
            "{case}: normal rows"
        );
        let executed = executed_query(&frames);
        assert!(
            executed.contains("/normal?api_key=***"),
            "{case}: executedQueryString {executed:?}"
        );
        let mut all: Vec<String> = texts.to_vec();
        all.extend(texts_of(&r));
        self.assert_clean(case, &all).await;
        if inflight {
            self.assert_nothing_in_flight(case).await;
        }
    }

    /// No secret in `texts`, stderr or metrics; no panic in stderr.
    pub async fn assert_clean(&self, case: &str, texts: &[String]) {
        let forbidden = self.s.forbidden();
        let metrics = self.metrics().await;
        let stderr = self.p.stderr_lines();
        for (what, list) in [
            ("an error or frame", texts.to_vec()),
            ("the metrics", vec![metrics]),
            ("stderr", stderr.clone()),
        ] {
            for t in &list {
                for s in &forbidden {
                    assert!(
                        !t.contains(s.as_str()),
                        "{case}: secret {s:?} leaked in {what}: {t}"
                    );
                }
            }
        }
        if let Some(l) = stderr.iter().find(|l| l.contains("panic")) {
            panic!("{case}: the plugin panicked: {l}");
        }
    }

    /// `restbridge_upstream_inflight_requests` is back to 0 within 5 s.
    pub async fn assert_nothing_in_flight(&self, case: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = self.inflight().await;
            if n == 0.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{case}: restbridge_upstream_inflight_requests is {n}, not 0, 5 s after the case"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every text of a response a user could see: the error and each frame (raw Arrow bytes as
/// lossy UTF-8, which includes the meta JSON and every string value).
pub fn texts_of(r: &DataResponse) -> Vec<String> {
    let mut out = vec![r.error.clone()];
    out.extend(
        r.frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned()),
    );
    out
}

/// Asserts an error response: status, errorSource, every `contains` in the message and no
/// frames. Returns the message.
#[track_caller]
pub fn expect_err(
    case: &str,
    r: &DataResponse,
    status: i32,
    source: &str,
    contains: &[&str],
) -> String {
    assert_eq!(
        (r.status, r.error_source.as_str()),
        (status, source),
        "{case}: status/errorSource (error: {:?})",
        r.error
    );
    assert!(!r.error.is_empty(), "{case}: an error message");
    for c in contains {
        assert!(
            r.error.contains(c),
            "{case}: message lacks {c:?}: {}",
            r.error
        );
    }
    assert!(r.frames.is_empty(), "{case}: no frames with an error");
    r.error.clone()
}

/// Asserts a 200 with decodable frames; returns them.
#[track_caller]
pub fn expect_ok(case: &str, r: &DataResponse) -> Vec<DecodedFrame> {
    assert!(
        r.status == 200 && r.error.is_empty(),
        "{case}: expected 200, got {} {:?} ({})",
        r.status,
        r.error_source,
        r.error
    );
    r.frames.iter().map(|f| decode(f)).collect()
}

/// The first frame's `meta.executedQueryString`.
pub fn executed_query(frames: &[DecodedFrame]) -> String {
    frames
        .first()
        .and_then(|f| f.meta.as_ref())
        .and_then(|m| m.get("executedQueryString"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Prints one matrix row (visible with `--nocapture`).
pub fn row(case: &str, r: &DataResponse, took: Duration) {
    let msg: String = r.error.chars().take(160).collect();
    println!(
        "| {case} | {} | {} | {:.3} s | {msg} |",
        r.status,
        if r.error_source.is_empty() {
            "-"
        } else {
            &r.error_source
        },
        took.as_secs_f64()
    );
}
