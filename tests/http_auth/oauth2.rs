//! OAuth2 client credentials (RFC 6749 §4.4) against a token endpoint of our own: the token
//! is requested once and shared, sent as `Bearer`, refreshed 30 s before it expires and once
//! after a 401; the client secret is never shown.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::common::{
    assert_no_secrets, column, error_with, frames_ok, last_hour, query_many, query_one, unique,
    FnStub, Reply, Req,
};
use crate::support::plugin::{context, query, PluginProcess};

struct Auth {
    secret: String,
    nonce: String,
    expires_in: u64,
    issued: AtomicU64,
    revoked: Mutex<HashSet<String>>,
    reject_all: AtomicBool,
}

impl Auth {
    fn new(secret: &str, expires_in: u64) -> Arc<Auth> {
        Arc::new(Auth {
            secret: secret.to_owned(),
            nonce: unique("at"),
            expires_in,
            issued: AtomicU64::new(0),
            revoked: Mutex::new(HashSet::new()),
            reject_all: AtomicBool::new(false),
        })
    }

    fn token(&self, n: u64) -> String {
        format!("{}-{n}", self.nonce)
    }

    fn handle(&self, r: &Req) -> Reply {
        match r.path.as_str() {
            "/oauth/token" => {
                let form = r.form();
                if form.get("client_secret") != Some(&self.secret)
                    || form.get("grant_type").map(String::as_str) != Some("client_credentials")
                {
                    // Echo the request like a chatty server would: the error path must mask it.
                    return Reply::json(
                        401,
                        &json!({"error": "invalid_client",
                                "request": String::from_utf8_lossy(&r.body)}),
                    );
                }
                let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
                Reply::json(
                    200,
                    &json!({"access_token": self.token(n), "token_type": "Bearer",
                            "expires_in": self.expires_in}),
                )
            }
            "/api/data" => {
                let auth = r.header("authorization").unwrap_or_default();
                let token = auth.strip_prefix("Bearer ").unwrap_or_default();
                let valid =
                    (1..=self.issued.load(Ordering::SeqCst)).any(|n| self.token(n) == token);
                if !valid
                    || self.reject_all.load(Ordering::SeqCst)
                    || self.revoked.lock().unwrap().contains(token)
                {
                    return Reply::json(
                        401,
                        &json!({"error": format!("token {token} is not valid")}),
                    );
                }
                let n: u64 = token.rsplit('-').next().unwrap().parse().unwrap();
                Reply::json(200, &json!({"token_no": n}))
            }
            _ => Reply::json(404, &json!({})),
        }
    }
}

async fn server(auth: &Arc<Auth>) -> FnStub {
    let a = auth.clone();
    FnStub::serve([127, 0, 0, 1], move |r| a.handle(r)).await
}

fn jd() -> serde_json::Value {
    json!({
        "auth": {"type": "oauth2", "tokenUrl": "/oauth/token", "clientId": "restbridge",
                 "scopes": ["read", "write"], "endpointParams": {"audience": "metrics"}},
        "rules": [{"id": "data", "request": {"url": "/api/data", "query": {"q": "${q}"}},
                   "params": [{"name": "q", "default": "0"}],
                   "cache": {"ttlSeconds": 0},
                   "response": {"fields": [{"name": "token_no", "path": "$.token_no", "type": "int"}]}}]
    })
}

fn bearer_tokens(stub: &FnStub) -> Vec<String> {
    stub.seen()
        .iter()
        .filter(|r| r.path == "/api/data")
        .map(|r| r.header("authorization").unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requested_once_for_many_queries_and_sent_as_bearer() {
    let secret = unique("client secret/+&=");
    let auth = Auth::new(&secret, 3600);
    let stub = server(&auth).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "oauth-once",
        &stub.url(),
        &jd(),
        &[("clientSecret", &secret)],
        1,
    );
    // A first query compiles the datasource (see the KNOWN GAP test below for why), then three
    // queries in one request (run concurrently) and three more one by one.
    let f = frames_ok(&query_one(&p, &ctx, "data", json!({"q": "first"})).await);
    assert_eq!(column(&f, "token_no"), vec![json!(1)]);
    let (from, to) = last_hour();
    let qs = (0..3)
        .map(|i| {
            query(
                &format!("Q{i}"),
                "data",
                json!({"q": i.to_string()}),
                from,
                to,
            )
        })
        .collect();
    let resp = query_many(&p, &ctx, &[], qs).await;
    for r in resp.values() {
        assert_eq!(column(&frames_ok(r), "token_no"), vec![json!(1)]);
    }
    for i in 3..6 {
        let f = frames_ok(&query_one(&p, &ctx, "data", json!({"q": i.to_string()})).await);
        assert_eq!(column(&f, "token_no"), vec![json!(1)]);
    }
    assert_eq!(
        stub.hits("/oauth/token"),
        1,
        "one token request for seven queries"
    );
    assert_eq!(stub.hits("/api/data"), 7);
    let expected = format!("Bearer {}", auth.token(1));
    assert!(bearer_tokens(&stub).iter().all(|t| *t == expected));
    let token_req = stub
        .seen()
        .into_iter()
        .find(|r| r.path == "/oauth/token")
        .unwrap();
    let form = token_req.form();
    assert_eq!(token_req.method, "POST");
    assert_eq!(
        token_req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], "restbridge");
    assert_eq!(form["client_secret"], secret);
    assert_eq!(form["scope"], "read write");
    assert_eq!(form["audience"], "metrics");
    assert_no_secrets("stderr", &p.stderr_lines(), &[&secret, &auth.token(1)]);
    println!(
        "proved: oauth2 client credentials — 1 token request (form grant_type, client_id, \
         client_secret, scope 'read write', audience) for 7 queries (3 concurrent), each sent \
         'Authorization: Bearer <token>'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_request_with_concurrent_queries_asks_for_one_token() {
    let secret = unique("cs");
    let auth = Auth::new(&secret, 3600);
    let stub = server(&auth).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "oauth-first",
        &stub.url(),
        &jd(),
        &[("clientSecret", &secret)],
        1,
    );
    let (from, to) = last_hour();
    let qs = (0..4)
        .map(|i| {
            query(
                &format!("Q{i}"),
                "data",
                json!({"q": i.to_string()}),
                from,
                to,
            )
        })
        .collect();
    let resp = query_many(&p, &ctx, &[], qs).await;
    for r in resp.values() {
        frames_ok(r);
    }
    assert_eq!(
        stub.hits("/oauth/token"),
        1,
        "4 concurrent queries of a new datasource version asked for {} tokens",
        stub.hits("/oauth/token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_token_is_refreshed_before_expiry() {
    let secret = unique("cs");
    // 32 s lifetime: usable for 2 s, since the plugin renews 30 s before expiry.
    let auth = Auth::new(&secret, 32);
    let stub = server(&auth).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "oauth-exp",
        &stub.url(),
        &jd(),
        &[("clientSecret", &secret)],
        1,
    );
    let a = frames_ok(&query_one(&p, &ctx, "data", json!({"q": "a"})).await);
    let b = frames_ok(&query_one(&p, &ctx, "data", json!({"q": "b"})).await);
    assert_eq!(column(&a, "token_no"), vec![json!(1)]);
    assert_eq!(column(&b, "token_no"), vec![json!(1)]);
    assert_eq!(stub.hits("/oauth/token"), 1);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let c = frames_ok(&query_one(&p, &ctx, "data", json!({"q": "c"})).await);
    assert_eq!(column(&c, "token_no"), vec![json!(2)]);
    assert_eq!(stub.hits("/oauth/token"), 2);
    // A token with expires_in ≤ 30 is renewed on every use.
    let auth30 = Auth::new(&secret, 30);
    let stub30 = server(&auth30).await;
    let ctx30 = context(
        "oauth-30",
        &stub30.url(),
        &jd(),
        &[("clientSecret", &secret)],
        1,
    );
    for q in ["x", "y"] {
        frames_ok(&query_one(&p, &ctx30, "data", json!({"q": q})).await);
    }
    assert_eq!(stub30.hits("/oauth/token"), 2);
    println!(
        "proved: expires_in 32 → two queries share token 1, after 2.2 s (inside the 30 s \
         margin) token 2 is fetched and used; expires_in 30 → renewed per query"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_refreshes_the_token_once_and_retries() {
    let secret = unique("cs");
    let auth = Auth::new(&secret, 3600);
    let stub = server(&auth).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "oauth-401",
        &stub.url(),
        &jd(),
        &[("clientSecret", &secret)],
        1,
    );
    frames_ok(&query_one(&p, &ctx, "data", json!({"q": "1"})).await);
    // The server revokes token 1: the next query gets 401, renews, retries, succeeds.
    auth.revoked.lock().unwrap().insert(auth.token(1));
    let f = frames_ok(&query_one(&p, &ctx, "data", json!({"q": "2"})).await);
    assert_eq!(column(&f, "token_no"), vec![json!(2)]);
    assert_eq!(stub.hits("/oauth/token"), 2);
    assert_eq!(stub.hits("/api/data"), 3);
    // Every token rejected: exactly one renewal per query, then the 401 is reported.
    auth.reject_all.store(true, Ordering::SeqCst);
    let err = error_with(&query_one(&p, &ctx, "data", json!({"q": "3"})).await, 401);
    assert_eq!(stub.hits("/oauth/token"), 3, "one renewal, not a loop");
    assert_eq!(stub.hits("/api/data"), 5);
    let seen = bearer_tokens(&stub);
    assert_eq!(seen[3], format!("Bearer {}", auth.token(2)));
    assert_eq!(seen[4], format!("Bearer {}", auth.token(3)));
    assert!(err.contains("HTTP 401"), "{err}");
    assert_no_secrets("the 401 error", &[&err], &[&secret]);
    println!(
        "proved: revoked token → 401 → one renewal + retry → 200 (token 2); all tokens \
         rejected → one renewal, then 401 downstream ({err})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_token_echoed_in_an_error_body_is_masked() {
    let secret = unique("cs");
    let auth = Auth::new(&secret, 3600);
    let stub = server(&auth).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "oauth-echo",
        &stub.url(),
        &jd(),
        &[("clientSecret", &secret)],
        1,
    );
    auth.reject_all.store(true, Ordering::SeqCst);
    let err = error_with(&query_one(&p, &ctx, "data", json!({"q": "1"})).await, 401);
    assert_no_secrets("the 401 error", &[&err], &[&auth.token(1), &auth.token(2)]);
    println!("proved: access tokens echoed in the upstream 401 body are masked: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_is_never_shown() {
    let secret = unique("client secret/+&=%");
    let wrong = unique("wrong secret/+&=");
    let auth = Auth::new(&secret, 3600);
    let stub = server(&auth).await;
    let p = PluginProcess::spawn(&[]).await;
    // The token endpoint rejects the wrong secret and echoes the whole form body back.
    let ctx = context(
        "oauth-wrong",
        &stub.url(),
        &jd(),
        &[("clientSecret", &wrong)],
        1,
    );
    let err = error_with(&query_one(&p, &ctx, "data", json!({"q": "1"})).await, 401);
    assert!(err.contains("invalid_client"), "{err}");
    assert!(err.contains("client_secret=***"), "{err}");
    let enc: String = form_urlencoded::byte_serialize(wrong.as_bytes()).collect();
    assert_no_secrets("the token error", &[&err], &[&wrong, &enc]);
    assert_eq!(stub.hits("/api/data"), 0, "no API call without a token");
    // An unreachable token endpoint.
    let dead = json!({"auth": {"type": "oauth2", "tokenUrl": "http://127.0.0.1:9/token",
                               "clientId": "x"},
                      "allowedHosts": ["127.0.0.1:9"],
                      "rules": jd()["rules"].clone()});
    let ctx = context(
        "oauth-dead",
        &stub.url(),
        &dead,
        &[("clientSecret", &secret)],
        1,
    );
    let dead_err = error_with(&query_one(&p, &ctx, "data", json!({"q": "1"})).await, 502);
    // Missing secret: a settings error naming the key.
    let ctx = context("oauth-nosecret", &stub.url(), &jd(), &[], 1);
    let cfg = error_with(&query_one(&p, &ctx, "data", json!({})).await, 400);
    assert!(cfg.contains("clientSecret"), "{cfg}");
    let senc: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let mut texts = p.stderr_lines();
    texts.extend([err.clone(), dead_err.clone(), cfg]);
    assert_no_secrets("errors and stderr", &texts, &[&wrong, &enc, &secret, &senc]);
    println!(
        "proved: token endpoint 401 echoing the form → error shows client_secret=*** ({err}); \
         unreachable token URL → 502 ({dead_err}); missing clientSecret → 400; the secret \
         (raw and form-encoded) in no error or log line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_is_sent_only_to_allowed_hosts() {
    let secret = unique("cs");
    let auth = Auth::new(&secret, 3600);
    let api = server(&auth).await;
    let a = auth.clone();
    let foreign = FnStub::serve([127, 0, 0, 2], move |r| a.handle(r)).await;
    let p = PluginProcess::spawn(&[]).await;
    let mut jd = jd();
    jd["auth"]["tokenUrl"] = json!(format!("{}/oauth/token", foreign.url()));
    let ctx = context(
        "oauth-foreign",
        &api.url(),
        &jd,
        &[("clientSecret", &secret)],
        1,
    );
    let r = query_one(&p, &ctx, "data", json!({"q": "1"})).await;
    assert_eq!(
        foreign.hits("/oauth/token"),
        0,
        "clientSecret was sent to {} which is not an allowed host",
        foreign.url()
    );
    let err = error_with(&r, 400);
    assert!(err.contains("tokenUrl"), "{err}");
}
