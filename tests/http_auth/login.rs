//! `auth: {type: login}`: log in once (token from the JSON answer, or a `Set-Cookie`), reuse
//! it, log in again once after a 401 or when `ttlSeconds` is over.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{
    assert_no_secrets, column, error_with, frames_ok, query_one, unique, FnStub, Reply, Req,
};
use crate::support::plugin::{context, PluginProcess};

struct Site {
    password: String,
    logins: AtomicU64,
    expire_all: AtomicBool,
}

impl Site {
    fn handle(&self, r: &Req) -> Reply {
        let current = format!("tok{}", self.logins.load(Ordering::SeqCst));
        match r.path.as_str() {
            "/login" => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                if body != json!({"username": "admin", "password": self.password}) {
                    return Reply::json(401, &json!({"error": "bad login"}));
                }
                let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
                self.expire_all.store(false, Ordering::SeqCst);
                Reply::json(200, &json!({"data": {"token": format!("tok{n}")}}))
                    .header("Set-Cookie", &format!("sid=tok{n}; Path=/; HttpOnly"))
                    .header("Set-Cookie", "theme=dark; Path=/")
            }
            "/api/items" => {
                let by_header = r.header("x-session") == Some(&format!("Session {current}"));
                let by_cookie = r.header("cookie") == Some(&format!("sid={current}"));
                if self.expire_all.load(Ordering::SeqCst) || !(by_header || by_cookie) {
                    return Reply::json(401, &json!({"error": "session expired"}));
                }
                Reply::json(200, &json!({"login": self.logins.load(Ordering::SeqCst)}))
            }
            _ => Reply::json(404, &json!({})),
        }
    }
}

fn jd(auth: Value) -> Value {
    json!({"auth": auth,
           "rules": [{"id": "items", "request": {"url": "/api/items", "query": {"q": "${q}"}},
                      "params": [{"name": "q", "default": "0"}], "cache": {"ttlSeconds": 0},
                      "response": {"fields": [{"name": "login", "path": "$.login", "type": "int"}]}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_token_and_cookie_are_reused_and_renewed() {
    let password = unique("login-pw");
    let site = Arc::new(Site {
        password: password.clone(),
        logins: AtomicU64::new(0),
        expire_all: AtomicBool::new(false),
    });
    let s = site.clone();
    let stub = FnStub::serve([127, 0, 0, 1], move |r| s.handle(r)).await;
    let p = PluginProcess::spawn(&[]).await;
    let body = json!({"username": "admin", "password": "${__secure.password}"});
    let token_ctx = context(
        "login-token",
        &stub.url(),
        &jd(json!({"type": "login", "url": "/login", "body": body,
                   "tokenPath": "$.data.token", "header": "X-Session", "prefix": "Session "})),
        &[("password", &password)],
        1,
    );
    for q in ["1", "2", "3"] {
        let f = frames_ok(&query_one(&p, &token_ctx, "items", json!({"q": q})).await);
        assert_eq!(column(&f, "login"), vec![json!(1)]);
    }
    assert_eq!(stub.hits("/login"), 1, "one login for three queries");
    // The session ends server-side: 401 → one new login → retry succeeds.
    site.expire_all.store(true, Ordering::SeqCst);
    let f = frames_ok(&query_one(&p, &token_ctx, "items", json!({"q": "4"})).await);
    assert_eq!(column(&f, "login"), vec![json!(2)]);
    assert_eq!(stub.hits("/login"), 2);

    // Cookie mode with ttlSeconds 2: reused within two seconds, renewed after them.
    let cookie_ctx = context(
        "login-cookie",
        &stub.url(),
        &jd(
            json!({"type": "login", "url": "/login", "body": body, "cookie": "sid",
                   "ttlSeconds": 2}),
        ),
        &[("password", &password)],
        1,
    );
    let f = frames_ok(&query_one(&p, &cookie_ctx, "items", json!({"q": "5"})).await);
    assert_eq!(column(&f, "login"), vec![json!(3)]);
    frames_ok(&query_one(&p, &cookie_ctx, "items", json!({"q": "6"})).await);
    assert_eq!(stub.hits("/login"), 3);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let f = frames_ok(&query_one(&p, &cookie_ctx, "items", json!({"q": "7"})).await);
    assert_eq!(column(&f, "login"), vec![json!(4)]);
    assert_eq!(stub.hits("/login"), 4);
    let cookies: Vec<String> = stub
        .seen()
        .iter()
        .filter(|r| r.path == "/api/items")
        .filter_map(|r| r.header("cookie").map(str::to_owned))
        .collect();
    assert!(
        cookies.iter().all(|c| c.starts_with("sid=tok")),
        "{cookies:?}"
    );

    // A wrong password: the login's 401 is reported, no API call.
    let bad = context(
        "login-bad",
        &stub.url(),
        &jd(json!({"type": "login", "url": "/login", "body": body,
                   "tokenPath": "$.data.token"})),
        &[("password", "nope-wrong")],
        1,
    );
    let before = stub.hits("/api/items");
    let err = error_with(&query_one(&p, &bad, "items", json!({})).await, 401);
    assert_eq!(stub.hits("/api/items"), before);
    // A login URL off the allowed hosts is refused at compile time.
    let foreign = context(
        "login-foreign",
        &stub.url(),
        &jd(
            json!({"type": "login", "url": "http://127.0.0.2:9/login", "body": body,
                   "tokenPath": "$.data.token"}),
        ),
        &[("password", &password)],
        1,
    );
    let cfg = error_with(&query_one(&p, &foreign, "items", json!({})).await, 400);
    assert!(cfg.contains("auth.url"), "{cfg}");
    let mut texts = p.stderr_lines();
    texts.extend([err.clone(), cfg.clone()]);
    assert_no_secrets("errors and stderr", &texts, &[&password, "nope-wrong"]);
    println!(
        "proved: login with tokenPath+header+prefix — 1 login for 3 queries, 401 → one \
         re-login; cookie mode with ttlSeconds 2 — reused, renewed after 2.1 s, only the named \
         cookie sent ({cookies:?}); wrong password → 401 ({err}); login URL off-host → 400 ({cfg})"
    );
}
