//! Cases no real server here shows (or cannot count), against programmable stubs on
//! 127.0.0.1 ([`FnStub`]): pagination in a POST body (`in: body`), `totalPath` with no other
//! stop condition, relative and off-host `Link` URLs, the `cookie` login mode, and the
//! exact login/re-login counts around a 401.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::common::{frames, ints, notices, one_frame, run, run_one, strings, FnStub, Req, Resp};
use crate::support::plugin::{context, PluginProcess};

fn item_fields() -> Value {
    json!([
        {"name": "id", "path": "$.id", "type": "int"},
        {"name": "name", "path": "$.name", "type": "string"}
    ])
}

fn items(ids: impl Iterator<Item = i64>) -> Value {
    Value::Array(
        ids.map(|i| json!({"id": i, "name": format!("item-{i}")}))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_number_in_a_post_body() {
    // POST /search {"query": …, "page": N, "size": S} → items of that page (8 in all).
    let stub = FnStub::start(|r: &Req| {
        let b = r.json();
        let page = b["page"].as_i64().unwrap_or(0);
        let size = b["size"].as_i64().unwrap_or(0);
        if r.method != "POST" || b["query"] != "temp*" || page < 1 || size < 1 {
            return Resp::json(&json!({"error": "bad request"})).status(400);
        }
        let ids = ((page - 1) * size + 1..=page * size).filter(|i| *i <= 8);
        Resp::json(&json!({"hits": items(ids)}))
    })
    .await;
    let jd = json!({"rules": [{
        "id": "search",
        "request": {"method": "POST", "url": "/search", "body": {"query": "${q}", "size": 1},
                    "pagination": {"type": "page", "in": "body", "param": "page",
                                   "sizeParam": "size", "size": 3}},
        "params": [{"name": "q", "default": "temp*"}],
        "cache": {"ttlSeconds": 0},
        "response": {"rows": "$.hits[*]", "fields": item_fields(), "format": "table"}
    }]});
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("stub-body", &stub.url(), &jd, &[], 1);

    let f = one_frame(&run_one(&plugin, &ctx, "search", json!({})).await);
    assert_eq!(ints(&f, "id"), (1..=8).collect::<Vec<_>>());
    let bodies: Vec<Value> = stub.seen_at("/search").iter().map(Req::json).collect();
    assert_eq!(
        bodies,
        vec![
            json!({"query": "temp*", "size": 3, "page": 1}),
            json!({"query": "temp*", "size": 3, "page": 2}),
            json!({"query": "temp*", "size": 3, "page": 3})
        ],
        "page and size set as top-level JSON numbers, other fields kept"
    );
    assert!(stub
        .seen()
        .iter()
        .all(|r| r.method == "POST" && r.query.is_empty()));
    println!("proved: in: body → POST bodies {bodies:?}; 8 rows in 3 requests (short page stops)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_in_a_post_body() {
    // POST /scan {"cursor": C} → 3 items and the next cursor (an opaque string).
    let stub = FnStub::start(|r: &Req| {
        let b = r.json();
        let (ids, next) = match b.get("cursor").and_then(Value::as_str) {
            None => (1..=3, json!("c-2")),
            Some("c-2") => (4..=6, json!("c-3")),
            Some("c-3") => (7..=7, json!("")),
            Some(_) => return Resp::json(&json!({"error": "bad cursor"})).status(400),
        };
        Resp::json(&json!({"data": items(ids), "meta": {"next": next}}))
    })
    .await;
    let jd = json!({"rules": [{
        "id": "scan",
        "request": {"method": "POST", "url": "/scan", "body": {"filter": "all"},
                    "pagination": {"type": "cursor", "in": "body", "param": "cursor",
                                   "cursorPath": "$.meta.next"}},
        "cache": {"ttlSeconds": 0},
        "response": {"rows": "$.data[*]", "fields": item_fields(), "format": "table"}
    }]});
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("stub-cursor-body", &stub.url(), &jd, &[], 1);

    let f = one_frame(&run_one(&plugin, &ctx, "scan", json!({})).await);
    assert_eq!(ints(&f, "id"), (1..=7).collect::<Vec<_>>());
    let bodies: Vec<Value> = stub.seen().iter().map(Req::json).collect();
    assert_eq!(
        bodies,
        vec![
            json!({"filter": "all"}),
            json!({"filter": "all", "cursor": "c-2"}),
            json!({"filter": "all", "cursor": "c-3"})
        ]
    );
    println!("proved: cursor in: body → first body untouched, then the cursor from $.meta.next; an empty cursor stops: {bodies:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_path_is_the_only_stop_condition() {
    // Every page has 4 items and there is never an empty page; the answer says total 10.
    let stub = FnStub::start(|r: &Req| {
        let page: i64 = r.q("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        Resp::json(&json!({"total": 10, "items": items((page - 1) * 4 + 1..=page * 4)}))
    })
    .await;
    let rule = |id: &str, total: Option<&str>| {
        let mut p = json!({"type": "page", "maxPages": 6});
        if let Some(t) = total {
            p["totalPath"] = json!(t);
        }
        json!({"id": id, "request": {"url": "/items", "pagination": p},
               "cache": {"ttlSeconds": 0},
               "response": {"rows": "$.items[*]", "fields": item_fields(), "format": "table"}})
    };
    let jd = json!({"rules": [rule("total", Some("$.total")), rule("endless", None)]});
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("stub-total", &stub.url(), &jd, &[], 1);

    let fr = frames(&run_one(&plugin, &ctx, "total", json!({})).await);
    assert_eq!(
        stub.seen().len(),
        3,
        "4 + 4 + 4 rows ≥ total 10 after page 3"
    );
    assert_eq!(ints(&fr[0], "id"), (1..=12).collect::<Vec<_>>());
    assert!(notices(&fr).is_empty(), "{:?}", notices(&fr));
    let pages: Vec<String> = stub
        .seen()
        .iter()
        .filter_map(|r| r.q("page").map(str::to_owned))
        .collect();
    assert_eq!(
        pages,
        ["1", "2", "3"],
        "type page defaults: param page, start 1"
    );

    let fr = frames(&run_one(&plugin, &ctx, "endless", json!({})).await);
    assert_eq!(
        stub.seen().len(),
        9,
        "without totalPath: maxPages (6) pages"
    );
    assert!(notices(&fr).iter().any(|t| t.contains("maxPages (6)")));
    println!("proved: totalPath $.total = 10 stopped after 3 pages (12 rows, rows of the last page kept); without it maxPages 6 ended with the notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_urls_relative_and_off_host() {
    let other =
        FnStub::start(|_r: &Req| Resp::json(&json!([{"id": 99, "name": "elsewhere"}]))).await;
    let other_url = other.url();
    // /rel: relative next links; /off: page 1 links to another host:port.
    let stub = FnStub::start(move |r: &Req| {
        let page: i64 = r.q("p").and_then(|p| p.parse().ok()).unwrap_or(1);
        match r.path.as_str() {
            "/v1/rel" => {
                let body = json!([{"id": page, "name": format!("p{page}")}]);
                let resp = Resp::json(&body);
                if page < 3 {
                    resp.header(
                        "Link",
                        &format!(
                            "<rel?p={}>; rel=\"next\", </v1/rel?p=1>; rel=\"first\"",
                            page + 1
                        ),
                    )
                } else {
                    resp
                }
            }
            "/v1/off" => Resp::json(&json!([{"id": 1, "name": "here"}]))
                .header("Link", &format!("<{other_url}/steal?p=2>; rel=\"next\"")),
            _ => Resp::json(&json!({})).status(404),
        }
    })
    .await;
    let rule = |id: &str, path: &str| {
        json!({"id": id, "request": {"url": path, "pagination": {"type": "link"}},
               "cache": {"ttlSeconds": 0},
               "response": {"rows": "$[*]", "fields": item_fields(), "format": "table"}})
    };
    let jd = json!({"rules": [rule("rel", "/v1/rel"), rule("off", "/v1/off")]});
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("stub-link", &stub.url(), &jd, &[], 1);

    let f = one_frame(&run_one(&plugin, &ctx, "rel", json!({})).await);
    assert_eq!(ints(&f, "id"), vec![1, 2, 3]);
    let paths: Vec<String> = stub
        .seen_at("/v1/rel")
        .iter()
        .map(|r| {
            format!(
                "{}?{}",
                r.path,
                r.q("p").map(|p| format!("p={p}")).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(paths, ["/v1/rel?", "/v1/rel?p=2", "/v1/rel?p=3"]);
    println!(
        "proved: relative Link targets (`<rel?p=2>`) resolve against the request URL: {paths:?}"
    );

    let resp = run_one(&plugin, &ctx, "off", json!({})).await;
    assert_eq!(resp.status, 400, "{}", resp.error);
    assert!(resp.error.contains("allowedHosts"), "{}", resp.error);
    assert!(
        other.seen().is_empty(),
        "nothing was sent to the other host"
    );
    println!(
        "proved: a Link to another host:port is refused before any request ({}): {}",
        resp.status, resp.error
    );

    // Listing that host in allowedHosts lets the link through.
    let mut jd2 = jd.clone();
    jd2["allowedHosts"] = json!([other.host_port()]);
    let ctx2 = context("stub-link-allowed", &stub.url(), &jd2, &[], 1);
    let f = one_frame(&run_one(&plugin, &ctx2, "off", json!({})).await);
    assert_eq!(ints(&f, "id"), vec![1, 99]);
    assert_eq!(other.seen().len(), 1);
    println!(
        "proved: with allowedHosts [{}] the same Link is followed",
        other.host_port()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cookie_login_mode() {
    let logins = Arc::new(AtomicUsize::new(0));
    let l2 = logins.clone();
    let stub = FnStub::start(move |r: &Req| match r.path.as_str() {
        "/api/login" => {
            let n = l2.fetch_add(1, Ordering::SeqCst) + 1;
            let b = r.json();
            if b["user"] != "grafana" || b["password"] != "cookie-pw-77" {
                return Resp::json(&json!({"error": "bad login"})).status(403);
            }
            Resp::json(&json!({"ok": true}))
                .header("Set-Cookie", "theme=dark; Path=/")
                .header(
                    "Set-Cookie",
                    &format!("SESSIONID=sess-{n}; Path=/; HttpOnly"),
                )
        }
        "/api/data" => {
            let cookie = r.header("cookie").unwrap_or("");
            let current = format!("SESSIONID=sess-{}", l2.load(Ordering::SeqCst));
            if cookie != current {
                return Resp::json(&json!({"error": "no session"})).status(401);
            }
            Resp::json(&json!({"rows": items(1..=2)}))
        }
        _ => Resp::json(&json!({})).status(404),
    })
    .await;
    let jd = json!({
        "auth": {"type": "login", "url": "/api/login",
                 "body": {"user": "grafana", "password": "${__secure.loginPassword}"},
                 "cookie": "SESSIONID"},
        "rules": [{"id": "data", "request": {"url": "/api/data"}, "cache": {"ttlSeconds": 0},
                   "response": {"rows": "$.rows[*]", "fields": item_fields(), "format": "table"}}]
    });
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "stub-cookie",
        &stub.url(),
        &jd,
        &[("loginPassword", "cookie-pw-77")],
        1,
    );

    for _ in 0..3 {
        let f = one_frame(&run_one(&plugin, &ctx, "data", json!({})).await);
        assert_eq!(strings(&f, "name"), ["item-1", "item-2"]);
    }
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    let data = stub.seen_at("/api/data");
    assert_eq!(data.len(), 3);
    assert!(
        data.iter()
            .all(|r| r.header("cookie") == Some("SESSIONID=sess-1")),
        "{data:?}"
    );
    let login = &stub.seen_at("/api/login")[0];
    assert_eq!(login.method, "POST");
    assert_eq!(login.header("content-type"), Some("application/json"));
    println!("proved: cookie: SESSIONID → the Set-Cookie value (of two cookies) sent as `Cookie: SESSIONID=sess-1`, 1 login for 3 queries");

    // The server forgets the session (a new login elsewhere bumps it): 401 → one re-login.
    logins.fetch_add(1, Ordering::SeqCst);
    let f = one_frame(&run_one(&plugin, &ctx, "data", json!({})).await);
    assert_eq!(f.rows(), 2);
    assert_eq!(
        logins.load(Ordering::SeqCst),
        3,
        "one re-login after the 401"
    );
    let last = stub.seen_at("/api/data");
    assert_eq!(last.len(), 5, "the 401 and the retry");
    assert_eq!(last[4].header("cookie"), Some("SESSIONID=sess-3"));
    println!("proved: a 401 with the cookie → one new login → the retry carries the new cookie");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_counts_reuse_and_a_single_relogin() {
    // Token login with a prefix; /data accepts only the newest token, unless `reject_all`.
    let logins = Arc::new(AtomicUsize::new(0));
    let reject_all = Arc::new(AtomicUsize::new(0));
    let (l2, r2) = (logins.clone(), reject_all.clone());
    let stub = FnStub::start(move |r: &Req| match r.path.as_str() {
        "/auth" => {
            let n = l2.fetch_add(1, Ordering::SeqCst) + 1;
            Resp::json(&json!({"data": {"access": format!("tok-{n}")}}))
        }
        "/data" => {
            let want = format!("Token tok-{}", l2.load(Ordering::SeqCst));
            if r2.load(Ordering::SeqCst) == 1 || r.header("x-auth") != Some(want.as_str()) {
                return Resp::json(&json!({"error": "expired"})).status(401);
            }
            Resp::json(&json!({"rows": items(1..=1)}))
        }
        _ => Resp::json(&json!({})).status(404),
    })
    .await;
    let jd = json!({
        "auth": {"type": "login", "url": "/auth", "body": {"key": "${__secure.loginPassword}"},
                 "tokenPath": "$.data.access", "header": "X-Auth", "prefix": "Token "},
        "rules": [{"id": "data", "request": {"url": "/data"}, "cache": {"ttlSeconds": 0},
                   "response": {"rows": "$.rows[*]", "fields": item_fields(), "format": "table"}}]
    });
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "stub-login",
        &stub.url(),
        &jd,
        &[("loginPassword", "k-1")],
        1,
    );

    let ids: Vec<String> = (0..10).map(|i| format!("Q{i}")).collect();
    let qs: Vec<(&str, &str, Value)> = ids
        .iter()
        .map(|r| (r.as_str(), "data", json!({})))
        .collect();
    // Warm up the instance so the count is about the token provider (see the etcd gap test).
    one_frame(&run_one(&plugin, &ctx, "data", json!({})).await);
    let answers = run(&plugin, &ctx, &qs).await;
    assert!(answers.values().all(|a| a.error.is_empty()));
    assert_eq!(logins.load(Ordering::SeqCst), 1, "11 queries, 1 login");
    assert!(stub
        .seen_at("/data")
        .iter()
        .all(|r| r.header("x-auth") == Some("Token tok-1")));
    println!("proved: header X-Auth + prefix \"Token \" from tokenPath $.data.access; 11 queries (10 concurrent) → 1 login");

    // Every token refused: exactly one re-login and one retry, then the 401 is the answer.
    reject_all.store(1, Ordering::SeqCst);
    let before = stub.seen_at("/data").len();
    let resp = run_one(&plugin, &ctx, "data", json!({})).await;
    assert_eq!(resp.status, 401, "{}", resp.error);
    assert_eq!(logins.load(Ordering::SeqCst), 2, "one re-login, no loop");
    assert_eq!(
        stub.seen_at("/data").len() - before,
        2,
        "the request and one retry"
    );
    assert!(
        !resp.error.contains("tok-2"),
        "token masked: {}",
        resp.error
    );
    println!("proved: when the new token is refused too, the query fails with 401 after exactly 1 re-login + 1 retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_with_login_survives_a_401_mid_way() {
    // /list?page=N (3 items per page, 8 in all) needs the newest token; page 3 is the first
    // request after the server rotated its tokens.
    let logins = Arc::new(AtomicUsize::new(0));
    let l2 = logins.clone();
    let stub = FnStub::start(move |r: &Req| match r.path.as_str() {
        "/login" => {
            let n = l2.fetch_add(1, Ordering::SeqCst) + 1;
            Resp::json(&json!({"token": format!("t{n}")}))
        }
        "/list" => {
            let page: i64 = r.q("page").and_then(|p| p.parse().ok()).unwrap_or(0);
            let mut current = l2.load(Ordering::SeqCst);
            if page == 3 && current == 1 {
                l2.store(2, Ordering::SeqCst); // rotated elsewhere: t1 is no longer valid
                current = 2;
            }
            if r.header("authorization") != Some(format!("Bearer t{current}").as_str()) {
                return Resp::json(&json!({"error": "token expired"})).status(401);
            }
            Resp::json(
                &json!({"items": items(((page - 1) * 3 + 1..=page * 3).filter(|i| *i <= 8))}),
            )
        }
        _ => Resp::json(&json!({})).status(404),
    })
    .await;
    let jd = json!({
        "auth": {"type": "login", "url": "/login", "method": "GET",
                 "tokenPath": "$.token", "prefix": "Bearer "},
        "rules": [{"id": "list",
                   "request": {"url": "/list", "pagination": {"type": "page", "size": 3}},
                   "cache": {"ttlSeconds": 0},
                   "response": {"rows": "$.items[*]", "fields": item_fields(), "format": "table"}}]
    });
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("stub-login-paging", &stub.url(), &jd, &[], 1);

    let f = one_frame(&run_one(&plugin, &ctx, "list", json!({})).await);
    assert_eq!(ints(&f, "id"), (1..=8).collect::<Vec<_>>());
    let trail: Vec<String> = stub
        .seen()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.method,
                r.path,
                r.q("page").map_or_else(
                    || r.header("authorization").unwrap_or("-").to_owned(),
                    |p| { format!("page={p} {}", r.header("authorization").unwrap_or("-")) }
                )
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            "GET /login -",
            "GET /list page=1 Bearer t1",
            "GET /list page=2 Bearer t1",
            "GET /list page=3 Bearer t1",
            "GET /login -",
            "GET /list page=3 Bearer t3",
        ]
        .map(str::to_owned)
        .to_vec(),
        "page 3 answered 401 → one login (GET, no body) → page 3 again with the new token"
    );
    println!("proved: login + pagination: a 401 on page 3 re-logged in once and continued, 8 rows in one frame: {trail:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_in_a_body_is_sent_as_received() {
    // Opaque cursors that happen to be digits, with a leading zero.
    let stub = FnStub::start(|r: &Req| {
        let (ids, next) = match r.json().get("cursor") {
            None => (1..=2, json!("0012")),
            Some(c) if c == &json!("0012") => (3..=4, json!("")),
            Some(_) => return Resp::json(&json!({"error": "unknown cursor"})).status(400),
        };
        Resp::json(&json!({"data": items(ids), "next": next}))
    })
    .await;
    let jd = json!({"rules": [{
        "id": "scan",
        "request": {"method": "POST", "url": "/scan", "body": {"filter": "all"},
                    "pagination": {"type": "cursor", "in": "body", "param": "cursor",
                                   "cursorPath": "$.next"}},
        "cache": {"ttlSeconds": 0},
        "response": {"rows": "$.data[*]", "fields": item_fields(), "format": "table"}
    }]});
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("stub-cursor-digits", &stub.url(), &jd, &[], 1);
    let resp = run_one(&plugin, &ctx, "scan", json!({})).await;
    let sent: Vec<Value> = stub.seen().iter().map(Req::json).collect();
    println!("bodies sent: {sent:?}");
    assert_eq!(
        sent.get(1),
        Some(&json!({"filter": "all", "cursor": "0012"}))
    );
    assert_eq!(ints(&one_frame(&resp), "id"), vec![1, 2, 3, 4]);
}
