//! Every secret key gets a unique value; a stub checks each arrives exactly where configured
//! and, on its error routes, echoes every credential back in status lines, non-JSON bodies
//! and 4xx/5xx bodies. None of the values may appear in stderr, error messages, CheckHealth
//! messages, decoded frames or `executedQueryString`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{
    assert_no_secrets, check_health, error_with, executed, frame_texts, frames_ok, query_one,
    unique, with_basic_auth, FnStub, Reply, Req, HEALTH_ERROR,
};
use crate::servers::b64;
use crate::support::plugin::{context, PluginProcess};

struct Secrets {
    basic: String,
    header: String,
    api_key: String,
    extra: String,
    bearer: String,
    client_secret: String,
    login_password: String,
    tls_key: String,
}

impl Secrets {
    fn new() -> Secrets {
        Secrets {
            basic: unique("S-basic pw/+&="),
            header: unique("S-header"),
            api_key: unique("S-apikey&x=1"),
            extra: unique("S-extra/x ?"),
            bearer: unique("S-bearer"),
            client_secret: unique("S-client secret&"),
            login_password: unique("S-login\"pw"),
            tls_key: unique("S-tlskey"),
        }
    }

    fn all(&self) -> Vec<String> {
        let raw = [
            &self.basic,
            &self.header,
            &self.api_key,
            &self.extra,
            &self.bearer,
            &self.client_secret,
            &self.login_password,
            &self.tls_key,
        ];
        let mut out = Vec::new();
        for s in raw {
            out.push(s.clone());
            let form: String = form_urlencoded::byte_serialize(s.as_bytes()).collect();
            out.push(form);
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
}

/// The echo of everything credential-like in a request, secrets first (so they fit in the
/// 512-byte snippet).
fn echo(r: &Req) -> String {
    let h = |n: &str| r.header(n).unwrap_or_default().to_owned();
    format!(
        "query={} x-custom={} x-extra={} authorization={} x-auth={} body={}",
        r.query,
        h("x-custom"),
        h("x-extra"),
        h("authorization"),
        h("x-auth"),
        String::from_utf8_lossy(&r.body)
    )
}

fn handler(s: &Arc<Secrets>, r: &Req) -> Reply {
    let q = r.query_pairs();
    match r.path.as_str() {
        "/oauth/token" => {
            if r.form().get("client_secret") == Some(&s.client_secret) {
                Reply::json(
                    200,
                    &json!({"access_token": "oauth-access-1", "expires_in": 3600}),
                )
            } else {
                Reply::json(401, &json!({"error": echo(r)}))
            }
        }
        "/login" => {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if body["password"] == json!(s.login_password) {
                Reply::json(200, &json!({"session": {"token": "login-token-1"}}))
            } else {
                Reply::json(401, &json!({"error": echo(r)}))
            }
        }
        "/ok" => {
            // Each credential must arrive exactly as configured, wherever the ds put it.
            let mut bad = Vec::new();
            let auth = r.header("authorization").unwrap_or_default();
            match q.get("ds").map(String::as_str) {
                Some("a") => {
                    let basic = format!("Basic {}", b64(format!("grafana:{}", s.basic).as_bytes()));
                    if auth != basic {
                        bad.push("basic");
                    }
                    if r.header("x-custom") != Some(s.header.as_str()) {
                        bad.push("header");
                    }
                    if q.get("api_key") != Some(&s.api_key) {
                        bad.push("apiKey");
                    }
                    if q.get("extra") != Some(&s.extra) || r.header("x-extra") != Some(&s.extra) {
                        bad.push("extra");
                    }
                    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                    if body["extra"] != json!(s.extra) {
                        bad.push("extra body");
                    }
                }
                Some("b") if auth != format!("Bearer {}", s.bearer) => bad.push("bearer"),
                Some("c") if auth != "Bearer oauth-access-1" => bad.push("oauth2"),
                Some("d") if r.header("x-auth") != Some("Token login-token-1") => bad.push("login"),
                _ => {}
            }
            if bad.is_empty() {
                Reply::json(200, &json!({"ok": true, "n": 1}))
            } else {
                Reply::json(403, &json!({"wrong": bad}))
            }
        }
        "/fail" => Reply::text(500, &echo(r)),
        "/denied" => Reply::text(403, &echo(r)),
        "/notjson" => Reply::text(200, &echo(r)),
        "/slow" => {
            let mut reply = Reply::json(200, &json!({"ok": true}));
            reply.delay = Duration::from_secs(3);
            reply
        }
        _ => Reply::text(404, &echo(r)),
    }
}

/// The same rules for every datasource; `ds` tells the stub which credentials to expect.
fn rules(ds: &str, extra: bool) -> Value {
    let mut query = json!({"ds": ds});
    let mut headers = json!({});
    let mut body = Value::Null;
    if extra {
        query["extra"] = json!("${__secure.extraSecret}");
        headers["X-Extra"] = json!("${__secure.extraSecret}");
        body = json!({"extra": "${__secure.extraSecret}"});
    }
    let rule = |id: &str, path: &str| {
        let mut r = json!({"id": id, "request": {"url": path, "query": query, "headers": headers},
            "cache": {"ttlSeconds": 0}, "timeout": 1,
            "response": {"fields": [{"name": "ok", "path": "$.ok", "type": "bool"},
                                    {"name": "n", "path": "$.n", "type": "int"}]}});
        if !body.is_null() {
            r["request"]["method"] = json!("POST");
            r["request"]["body"] = body.clone();
        }
        r
    };
    json!([
        rule("ok", "/ok"),
        rule("fail", "/fail"),
        rule("denied", "/denied"),
        rule("notjson", "/notjson"),
        rule("slow", "/slow"),
        // Connection refused, with the secrets in the URL.
        rule("refused", "http://127.0.0.1:9/x")
    ])
}

fn ds(rules: Value, auth: Option<Value>) -> Value {
    let mut jd = json!({"allowedHosts": ["127.0.0.1:9"], "healthCheck": {"rule": "fail"},
                        "rules": rules});
    if let Some(a) = auth {
        jd["auth"] = a;
    }
    jd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_leaks_anywhere() {
    let s = Arc::new(Secrets::new());
    let h = s.clone();
    let stub = FnStub::serve([127, 0, 0, 1], move |r| handler(&h, r)).await;
    let url = stub.url();
    let p = PluginProcess::spawn(&[]).await;

    let mut jd_a = ds(
        rules("a", true),
        Some(json!({"type": "apiKey", "in": "query", "name": "api_key"})),
    );
    jd_a["httpHeaderName1"] = json!("X-Custom");
    let a = with_basic_auth(
        context(
            "sec-a",
            &url,
            &jd_a,
            &[
                ("basicAuthPassword", &s.basic),
                ("httpHeaderValue1", &s.header),
                ("apiKey", &s.api_key),
                ("extraSecret", &s.extra),
                // Configured but unused TLS material is secret too.
                ("tlsClientKey", &s.tls_key),
            ],
            1,
        ),
        "grafana",
    );
    let b = context(
        "sec-b",
        &url,
        &ds(rules("b", false), Some(json!({"type": "bearer"}))),
        &[("bearerToken", &s.bearer)],
        1,
    );
    let c = context(
        "sec-c",
        &url,
        &ds(
            rules("c", false),
            Some(json!({"type": "oauth2", "tokenUrl": "/oauth/token", "clientId": "rb"})),
        ),
        &[("clientSecret", &s.client_secret)],
        1,
    );
    let d = context(
        "sec-d",
        &url,
        &ds(
            rules("d", false),
            Some(json!({"type": "login", "url": "/login",
                        "body": {"user": "admin", "password": "${__secure.loginPassword}"},
                        "tokenPath": "$.session.token", "header": "X-Auth", "prefix": "Token "})),
        ),
        &[("loginPassword", &s.login_password)],
        1,
    );

    let mut texts: Vec<String> = Vec::new();
    let mut frame_count = 0;
    for (name, ctx) in [("a", &a), ("b", &b), ("c", &c), ("d", &d)] {
        let f = frames_ok(&query_one(&p, ctx, "ok", json!({})).await);
        assert_eq!(f[0].field("ok").values, vec![json!(true)], "ds {name}");
        frame_count += f.len();
        texts.extend(frame_texts(&f));
        texts.push(executed(&f));
        for (rule, status) in [
            ("fail", 502),
            ("denied", 403),
            ("notjson", 502),
            ("slow", 504),
            ("refused", 502),
        ] {
            let err = error_with(&query_one(&p, ctx, rule, json!({})).await, status);
            texts.push(err);
        }
        let (status, msg) = check_health(&p, ctx).await;
        assert_eq!(status, HEALTH_ERROR, "{msg}");
        texts.push(msg);
    }
    // The masks are really there (the echoes reached the messages).
    let joined = texts.join("\n");
    assert!(joined.contains("api_key=***"), "{joined}");
    assert!(joined.contains("x-custom=***"), "{joined}");
    assert!(joined.contains("authorization=***"), "{joined}");
    let a_eqs = texts
        .iter()
        .find(|t| t.contains("ds=a"))
        .cloned()
        .unwrap_or_default();
    let secrets = s.all();
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets("errors, health messages, frames", &texts, &refs);
    let stderr = p.stderr_lines();
    assert_no_secrets("stderr", &stderr, &refs);
    let metrics = crate::common::metrics_text(&p, &a).await;
    assert!(metrics.contains("restbridge_queries_total"), "{metrics}");
    assert_no_secrets("CollectMetrics", &[metrics], &refs);
    println!(
        "proved: {} secret values (raw, form-, percent- and JSON-encoded) used by basic auth, \
         custom header, apiKey(query), ${{__secure}} in query/header/body, bearer, oauth2, login \
         and an unused tlsClientKey arrived exactly (stub checked) and appear in none of {} \
         messages/frame texts ({frame_count} frames), {} stderr lines nor the metrics; e.g. \
         {a_eqs}",
        refs.len(),
        texts.len(),
        stderr.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_header_echo_is_masked() {
    let s = Arc::new(Secrets::new());
    let h = s.clone();
    let stub = FnStub::serve([127, 0, 0, 1], move |r| handler(&h, r)).await;
    let p = PluginProcess::spawn(&[]).await;
    let a = with_basic_auth(
        context(
            "sec-basic",
            &stub.url(),
            &ds(rules("a", false), None),
            &[("basicAuthPassword", &s.basic)],
            1,
        ),
        "grafana",
    );
    let err = error_with(&query_one(&p, &a, "fail", json!({})).await, 502);
    let encoded = b64(format!("grafana:{}", s.basic).as_bytes());
    assert!(
        !err.contains(&encoded),
        "base64(user:password) leaked in the error: {err}"
    );
}
