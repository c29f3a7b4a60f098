//! json-server 0.17.4 (npm): `_page`/`_limit` (type page), `_start`/`_limit` (type offset)
//! and its `Link: <…>; rel="next"` header (type link), against a generated db.json of 23
//! readings. Upstream requests are counted from json-server's own access log (it logs
//! `GET /readings?_page=1&_limit=5 200 …` per request).

use serde_json::{json, Value};

use crate::common::{executed, frames, ints, notices, one_frame, run_one};
use crate::servers::{find_in_path, require, servers_dir, Server, TempDir};
use crate::support::plugin::{context, PluginProcess};

/// Readings in db.json.
const N: i64 = 23;

struct JsonServer {
    server: Server,
    _dir: TempDir,
}

/// Starts json-server on a db.json with readings 1..=23, or `None` (skip) when absent.
fn start() -> Option<JsonServer> {
    let bin = require(
        "json-server 0.17.4",
        Some(servers_dir().join("json-server/node_modules/json-server/lib/cli/bin.js")),
    )?;
    let node = require("node", find_in_path("node"))?;
    let dir = TempDir::new("json-server");
    let readings: Vec<Value> = (1..=N)
        .map(|i| {
            json!({"id": i, "ts": 1_704_067_200_000_i64 + i * 60_000,
                   "value": 20.0 + i as f64 * 0.5, "sensor": if i % 2 == 1 { "a" } else { "b" }})
        })
        .collect();
    let db = dir.path.join("db.json");
    std::fs::write(&db, json!({"readings": readings}).to_string()).unwrap();
    let server = Server::start(
        "json-server",
        &dir.path,
        0,
        "/readings?_limit=1",
        |port, _| {
            let mut c = std::process::Command::new(&node);
            c.arg(&bin)
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--read-only",
                ])
                .arg(&db);
            c
        },
    );
    Some(JsonServer { server, _dir: dir })
}

fn fields() -> Value {
    json!([
        {"name": "id", "path": "$.id", "type": "int"},
        {"name": "ts", "path": "$.ts", "type": "time", "format": "epoch_ms"},
        {"name": "value", "path": "$.value", "type": "number"},
        {"name": "sensor", "path": "$.sensor", "type": "string"}
    ])
}

fn rule(id: &str, query: Value, pagination: Value, ttl: u64) -> Value {
    json!({
        "id": id,
        "request": {"url": "/readings", "query": query, "pagination": pagination},
        "params": [{"name": "sensor", "default": "", "pattern": "[ab]?"}],
        "cache": {"ttlSeconds": ttl},
        "response": {"rows": "$[*]", "fields": fields(), "format": "table"}
    })
}

fn json_data() -> Value {
    json!({"rules": [
        rule("page", json!({}),
             json!({"type": "page", "param": "_page", "sizeParam": "_limit", "size": 5}), 0),
        rule("page_sensor", json!({"sensor": "${sensor}"}),
             json!({"type": "page", "param": "_page", "sizeParam": "_limit", "size": 5}), 0),
        rule("page_max2", json!({}),
             json!({"type": "page", "param": "_page", "sizeParam": "_limit", "size": 5, "maxPages": 2}), 0),
        rule("link", json!({"_page": "1", "_limit": "5"}), json!({"type": "link"}), 0),
        rule("offset", json!({}),
             json!({"type": "offset", "param": "_start", "sizeParam": "_limit", "size": 5}), 0),
        rule("page_cached", json!({}),
             json!({"type": "page", "param": "_page", "sizeParam": "_limit", "size": 5}), 300),
        rule("page_cached_max2", json!({}),
             json!({"type": "page", "param": "_page", "sizeParam": "_limit", "size": 5, "maxPages": 2}), 300)
    ]})
}

/// Request lines json-server logged for /readings (minus the readiness probe).
fn requests(js: &JsonServer, expected: usize) -> Vec<String> {
    js.server
        .settled("GET /readings?", expected + 1)
        .into_iter()
        .filter(|l| !l.contains("GET /readings?_limit=1 "))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_type_merges_all_pages_into_one_frame() {
    let Some(js) = start() else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("js-page", &js.server.url(), &json_data(), &[], 1);

    let resp = run_one(&plugin, &ctx, "page", json!({})).await;
    let fr = frames(&resp);
    assert_eq!(fr.len(), 1, "rows of all pages merge into one frame");
    let f = &fr[0];
    assert_eq!(ints(f, "id"), (1..=N).collect::<Vec<_>>());
    assert!(
        notices(&fr).is_empty(),
        "no maxPages notice: {:?}",
        notices(&fr)
    );
    let reqs = requests(&js, 5);
    assert_eq!(
        reqs,
        (1..=5)
            .map(|p| format!("/readings?_page={p}&_limit=5"))
            .collect::<Vec<_>>(),
        "5 upstream requests, _page 1..5 with _limit=5; the short 5th page (3 rows) stops"
    );
    println!(
        "proved: type page (_page/_limit, size 5) read 23 rows from 5 real json-server pages \
         into one frame, stopping at the short page; executedQueryString {}",
        executed(&fr)
    );

    // A rule's own query parameters stay on every page: 12 readings of sensor a → 5, 5, 2.
    let resp = run_one(&plugin, &ctx, "page_sensor", json!({"sensor": "a"})).await;
    let f = one_frame(&resp);
    assert_eq!(
        ints(&f, "id"),
        (1..=N).filter(|i| i % 2 == 1).collect::<Vec<_>>()
    );
    let reqs = requests(&js, 8);
    assert_eq!(reqs.len(), 8, "{reqs:?}");
    assert!(reqs[5..].iter().all(|r| r.contains("sensor=a")), "{reqs:?}");
    println!("proved: the rule's query (sensor=a) is kept on each page: 12 rows in 3 requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pages_stops_and_adds_a_notice() {
    let Some(js) = start() else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("js-max", &js.server.url(), &json_data(), &[], 1);

    let resp = run_one(&plugin, &ctx, "page_max2", json!({})).await;
    let fr = frames(&resp);
    assert_eq!(ints(&fr[0], "id"), (1..=10).collect::<Vec<_>>());
    let n = notices(&fr);
    assert!(
        n.iter().any(|t| t.contains("maxPages (2)")),
        "a maxPages notice on the frame: {n:?}"
    );
    assert_eq!(requests(&js, 2).len(), 2);
    println!("proved: maxPages 2 → 10 of 23 rows, 2 requests, frame notice {n:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_type_follows_json_servers_link_header() {
    let Some(js) = start() else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("js-link", &js.server.url(), &json_data(), &[], 1);

    let resp = run_one(&plugin, &ctx, "link", json!({})).await;
    let f = one_frame(&resp);
    assert_eq!(ints(&f, "id"), (1..=N).collect::<Vec<_>>());
    let reqs = requests(&js, 5);
    assert_eq!(reqs.len(), 5, "page 5 has no rel=\"next\" link: {reqs:?}");
    assert!(
        reqs.iter()
            .enumerate()
            .all(|(i, r)| r.contains(&format!("_page={}", i + 1))),
        "{reqs:?}"
    );
    println!(
        "proved: type link followed json-server's Link rel=\"next\" through 5 pages: {reqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_type_uses_start_and_limit() {
    let Some(js) = start() else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("js-offset", &js.server.url(), &json_data(), &[], 1);

    let resp = run_one(&plugin, &ctx, "offset", json!({})).await;
    let f = one_frame(&resp);
    assert_eq!(ints(&f, "id"), (1..=N).collect::<Vec<_>>());
    let reqs = requests(&js, 5);
    assert_eq!(
        reqs,
        [0, 5, 10, 15, 20]
            .iter()
            .map(|o| format!("/readings?_start={o}&_limit=5"))
            .collect::<Vec<_>>()
    );
    println!("proved: type offset (_start 0,5,..,20 + _limit 5) read all 23 rows in 5 requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_goes_through_the_cache() {
    let Some(js) = start() else { return };
    let plugin = PluginProcess::spawn(&[]).await;
    let ctx = context("js-cache", &js.server.url(), &json_data(), &[], 1);

    let first = one_frame(&run_one(&plugin, &ctx, "page_cached", json!({})).await);
    assert_eq!(requests(&js, 5).len(), 5);
    let second = one_frame(&run_one(&plugin, &ctx, "page_cached", json!({})).await);
    assert_eq!(ints(&second, "id"), ints(&first, "id"));
    assert_eq!(
        requests(&js, 5).len(),
        5,
        "the second query is answered from the cache"
    );
    // Another rule whose first two pages are the same upstream requests: served from the
    // per-page cache (the answer cache is per rule), so still no upstream request.
    let fr = frames(&run_one(&plugin, &ctx, "page_cached_max2", json!({})).await);
    assert_eq!(ints(&fr[0], "id"), (1..=10).collect::<Vec<_>>());
    assert!(notices(&fr).iter().any(|t| t.contains("maxPages (2)")));
    assert_eq!(
        requests(&js, 5).len(),
        5,
        "pages 1 and 2 came from the page cache"
    );
    // `page` (ttl 0) fetches the same URLs but never caches: 5 more requests.
    one_frame(&run_one(&plugin, &ctx, "page", json!({})).await);
    assert_eq!(requests(&js, 10).len(), 10);
    println!("proved: with cache ttl 300 a repeated paginated query, and another rule needing pages 1-2 of the same URLs, made 0 upstream requests (each page is cached); with ttl 0 the same query made 5 again");
}
