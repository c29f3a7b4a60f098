//! Datasette (pip): 1.0a41 with signed API tokens (`Authorization: Bearer dstok_…`, auth
//! type bearer + secure `bearerToken` from `datasette create-token`), cursor pagination
//! (`next` → `_next`), `_shape=array` + `Link` (type link), `_extra=count` for `totalPath`;
//! 0.65.5's older shape (`rows` as arrays, `filtered_table_rows_count`). Upstream requests
//! are counted from uvicorn's access log (`"GET /ts/readings.json?… HTTP/1.1" 200 OK`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::{executed, frames, ints, notices, one_frame, run_one};
use crate::servers::{require, servers_dir, Server, TempDir};
use crate::support::plugin::{context, PluginProcess};

/// Rows in the `readings` table (ids 1..=23).
const N: i64 = 23;
/// `DATASETTE_SECRET` of the 1.0a server (signs the API tokens).
const SIGNING_SECRET: &str = "paging-test-signing-secret";

struct Datasette {
    server: Server,
    bin: PathBuf,
    dir: TempDir,
}

impl Datasette {
    /// A fresh signed API token for actor `grafana` (`datasette create-token`).
    fn token(&self) -> String {
        let out = Command::new(&self.bin)
            .args(["create-token", "grafana", "--secret", SIGNING_SECRET])
            .current_dir(&self.dir.path)
            .output()
            .unwrap();
        assert!(out.status.success(), "create-token: {out:?}");
        let t = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(t.starts_with("dstok_"), "{t}");
        t
    }

    /// Table requests logged by uvicorn (path and query only).
    fn requests(&self, expected: usize) -> Vec<String> {
        self.server
            .settled("GET /ts/readings.json", expected)
            .into_iter()
            .filter_map(|l| l.split('"').nth(1).map(str::to_owned))
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect()
    }
}

/// Starts datasette `version` on `ts.db` (table `readings`, ids 1..=23). With `auth`, the
/// instance only lets actor `grafana` in (`allow: {id: grafana}`) and signs tokens with
/// [`SIGNING_SECRET`].
fn start(version: &str, auth: bool) -> Option<Datasette> {
    let bin = require(
        &format!("datasette {version}"),
        Some(servers_dir().join(format!("datasette-{version}/bin/datasette"))),
    )?;
    let python = bin.with_file_name("python");
    let dir = TempDir::new(&format!("datasette-{version}"));
    let db = dir.path.join("ts.db");
    let out = Command::new(&python)
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1])\n\
             c.execute('create table readings (id integer primary key, ts_ms integer, value real, sensor text)')\n\
             c.executemany('insert into readings values (?, ?, ?, ?)',\n\
               [(i, 1704067200000 + i * 60000, 20 + i * 0.5, 'a' if i % 2 else 'b') for i in range(1, 24)])\n\
             c.commit()\n",
        )
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "creating ts.db: {out:?}");
    let config = dir.path.join("datasette.yaml");
    std::fs::write(&config, "allow:\n  id: grafana\n").unwrap();
    let server = Server::start(
        &format!("datasette-{version}"),
        &dir.path,
        0,
        "/-/versions.json",
        |port, _| {
            let mut c = Command::new(&bin);
            c.arg("serve")
                .arg(&db)
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .env("PYTHONUNBUFFERED", "1")
                .current_dir(&dir.path);
            if auth {
                c.arg("-c")
                    .arg(&config)
                    .env("DATASETTE_SECRET", SIGNING_SECRET);
            }
            c
        },
    );
    Some(Datasette { server, bin, dir })
}

fn object_fields() -> Value {
    json!([
        {"name": "id", "path": "$.id", "type": "int"},
        {"name": "ts", "path": "$.ts_ms", "type": "time", "format": "epoch_ms"},
        {"name": "value", "path": "$.value", "type": "number"},
        {"name": "sensor", "path": "$.sensor", "type": "string"}
    ])
}

/// Rules for datasette 1.0a41's shape: `{"ok", "next", "next_url", "rows": [{…}], …}`.
fn rules_1_0() -> Value {
    json!([
        {"id": "cursor",
         "request": {"url": "/ts/readings.json", "query": {"_size": "5"},
                     "pagination": {"type": "cursor", "cursorPath": "$.next", "param": "_next"}},
         "cache": {"ttlSeconds": 0},
         "response": {"rows": "$.rows[*]", "fields": object_fields(), "format": "table"}},
        {"id": "cursor_max3",
         "request": {"url": "/ts/readings.json", "query": {"_size": "5"},
                     "pagination": {"type": "cursor", "cursorPath": "$.next", "param": "_next", "maxPages": 3}},
         "cache": {"ttlSeconds": 0},
         "response": {"rows": "$.rows[*]", "fields": object_fields(), "format": "table"}},
        {"id": "array_link",
         "request": {"url": "/ts/readings.json", "query": {"_size": "5", "_shape": "array"},
                     "pagination": {"type": "link"}},
         "cache": {"ttlSeconds": 0},
         "response": {"rows": "$[*]", "fields": object_fields(), "format": "table"}},
        // Datasette's `_next` on an integer-primary-key table is "rows after this id"; with
        // ids 1..=23 that is an offset, so type offset walks the same pages.
        {"id": "total",
         "request": {"url": "/ts/readings.json",
                     "query": {"id__lte": "20", "_extra": "count"},
                     "pagination": {"type": "offset", "param": "_next", "sizeParam": "_size",
                                    "size": 5, "totalPath": "$.count"}},
         "cache": {"ttlSeconds": 0},
         "response": {"rows": "$.rows[*]", "fields": object_fields(), "format": "table"}},
        {"id": "no_total",
         "request": {"url": "/ts/readings.json",
                     "query": {"id__lte": "20", "_extra": "count"},
                     "pagination": {"type": "offset", "param": "_next", "sizeParam": "_size", "size": 5}},
         "cache": {"ttlSeconds": 0},
         "response": {"rows": "$.rows[*]", "fields": object_fields(), "format": "table"}}
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasette_1_0_bearer_token_and_cursor_pagination() {
    let Some(ds) = start("1.0a41", true) else {
        return;
    };
    let token = ds.token();
    let plugin = PluginProcess::spawn(&[]).await;
    let jd = json!({"auth": {"type": "bearer"}, "rules": rules_1_0()});
    let ctx = context(
        "ds1-bearer",
        &ds.server.url(),
        &jd,
        &[("bearerToken", &token)],
        1,
    );

    let resp = run_one(&plugin, &ctx, "cursor", json!({})).await;
    let fr = frames(&resp);
    assert_eq!(fr.len(), 1);
    assert_eq!(ints(&fr[0], "id"), (1..=N).collect::<Vec<_>>());
    assert!(notices(&fr).is_empty(), "{:?}", notices(&fr));
    let reqs = ds.requests(5);
    let mut expected = vec!["/ts/readings.json?_size=5".to_owned()];
    expected.extend([5, 10, 15, 20].map(|n| format!("/ts/readings.json?_size=5&_next={n}")));
    assert_eq!(
        reqs, expected,
        "cursor from $.next sent as _next; null next stops"
    );
    assert!(
        !executed(&fr).contains(&token) && !format!("{:?}", fr[0].meta).contains(&token),
        "the token never appears in frame metadata"
    );
    assert!(
        !plugin.stderr_lines().iter().any(|l| l.contains(&token)),
        "the token never appears in the plugin's (debug) log"
    );
    println!(
        "proved: datasette 1.0a41 accepted the bearer token from `datasette create-token`; \
         type cursor (cursorPath $.next → _next) read 23 rows in 5 requests {reqs:?}"
    );

    let resp = run_one(&plugin, &ctx, "cursor_max3", json!({})).await;
    let fr = frames(&resp);
    assert_eq!(ints(&fr[0], "id"), (1..=15).collect::<Vec<_>>());
    assert!(notices(&fr).iter().any(|t| t.contains("maxPages (3)")));
    println!("proved: cursor pagination with maxPages 3 → 15 rows + the maxPages notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasette_1_0_missing_token_is_403_bad_token_is_401() {
    let Some(ds) = start("1.0a41", true) else {
        return;
    };
    let plugin = PluginProcess::spawn(&[]).await;

    let no_auth = json!({"rules": rules_1_0()});
    let ctx = context("ds1-none", &ds.server.url(), &no_auth, &[], 1);
    let resp = run_one(&plugin, &ctx, "cursor", json!({})).await;
    assert_eq!(resp.status, 403, "{}", resp.error);
    assert_eq!(resp.error_source, "downstream");
    println!(
        "proved: no token → datasette 403 → status 403, errorSource downstream: {}",
        resp.error
    );

    let bad = "dstok_this-is-not-a-valid-signature";
    let jd = json!({"auth": {"type": "bearer"}, "rules": rules_1_0()});
    let ctx = context("ds1-bad", &ds.server.url(), &jd, &[("bearerToken", bad)], 1);
    let resp = run_one(&plugin, &ctx, "cursor", json!({})).await;
    assert_eq!(resp.status, 401, "{}", resp.error);
    assert_eq!(resp.error_source, "downstream");
    assert!(!resp.error.contains(bad), "token masked: {}", resp.error);
    assert!(resp.error.contains("Invalid token"), "{}", resp.error);
    println!(
        "proved: bad token → datasette 401 → status 401 (token masked): {}",
        resp.error
    );
    // Neither got past the first page.
    assert_eq!(ds.requests(2).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasette_1_0_shape_array_follows_link_header() {
    let Some(ds) = start("1.0a41", true) else {
        return;
    };
    let token = ds.token();
    let plugin = PluginProcess::spawn(&[]).await;
    let jd = json!({"auth": {"type": "bearer"}, "rules": rules_1_0()});
    let ctx = context(
        "ds1-link",
        &ds.server.url(),
        &jd,
        &[("bearerToken", &token)],
        1,
    );

    let f = one_frame(&run_one(&plugin, &ctx, "array_link", json!({})).await);
    assert_eq!(ints(&f, "id"), (1..=N).collect::<Vec<_>>());
    let reqs = ds.requests(5);
    assert_eq!(reqs.len(), 5, "{reqs:?}");
    assert!(
        reqs[1..]
            .iter()
            .all(|r| r.contains("_shape=array") && r.contains("_next=")),
        "{reqs:?}"
    );
    println!("proved: `_shape=array` bare arrays + type link (Link rel=\"next\") → 23 rows, 5 requests {reqs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasette_1_0_total_path_stops_without_an_extra_request() {
    let Some(ds) = start("1.0a41", true) else {
        return;
    };
    let token = ds.token();
    let plugin = PluginProcess::spawn(&[]).await;
    let jd = json!({"auth": {"type": "bearer"}, "rules": rules_1_0()});
    let ctx = context(
        "ds1-total",
        &ds.server.url(),
        &jd,
        &[("bearerToken", &token)],
        1,
    );

    let f = one_frame(&run_one(&plugin, &ctx, "total", json!({})).await);
    assert_eq!(ints(&f, "id"), (1..=20).collect::<Vec<_>>());
    let with_total = ds.requests(4);
    assert_eq!(
        with_total.len(),
        4,
        "count 20 reached after 4 full pages: {with_total:?}"
    );

    let f = one_frame(&run_one(&plugin, &ctx, "no_total", json!({})).await);
    assert_eq!(ints(&f, "id"), (1..=20).collect::<Vec<_>>());
    let all = ds.requests(9);
    assert_eq!(
        all.len() - with_total.len(),
        5,
        "without totalPath a 5th (empty) page is fetched: {all:?}"
    );
    println!(
        "proved: totalPath $.count (datasette `_extra=count` = 20) stopped after 4 full pages; \
         without it the plugin needed a 5th, empty page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasette_0_65_cursor_with_array_rows_and_total() {
    let Some(ds) = start("0.65.5", false) else {
        return;
    };
    let plugin = PluginProcess::spawn(&[]).await;
    // 0.65 shape: {"columns": [...], "rows": [[id, ts_ms, value, sensor], ...],
    //              "filtered_table_rows_count": 23, "next": "5", "next_url": ...}
    let array_fields = json!([
        {"name": "id", "path": "$[0]", "type": "int"},
        {"name": "ts", "path": "$[1]", "type": "time", "format": "epoch_ms"},
        {"name": "value", "path": "$[2]", "type": "number"},
        {"name": "sensor", "path": "$[3]", "type": "string"}
    ]);
    let jd = json!({"rules": [
        {"id": "cursor",
         "request": {"url": "/ts/readings.json", "query": {"_size": "5", "sensor": "${sensor}"},
                     "pagination": {"type": "cursor", "cursorPath": "$.next", "param": "_next"}},
         "params": [{"name": "sensor", "default": "a", "options": ["a", "b"]}],
         "cache": {"ttlSeconds": 0},
         "response": {"rows": "$.rows[*]", "fields": array_fields, "format": "table"}},
        {"id": "total",
         "request": {"url": "/ts/readings.json", "query": {"id__lte": "20"},
                     "pagination": {"type": "offset", "param": "_next", "sizeParam": "_size",
                                    "size": 5, "totalPath": "$.filtered_table_rows_count"}},
         "cache": {"ttlSeconds": 0},
         "response": {"rows": "$.rows[*]", "fields": array_fields, "format": "table"}}
    ]});
    let ctx = context("ds065", &ds.server.url(), &jd, &[], 1);

    let f = one_frame(&run_one(&plugin, &ctx, "cursor", json!({"sensor": "b"})).await);
    let want: Vec<i64> = (1..=N).filter(|i| i % 2 == 0).collect();
    assert_eq!(ints(&f, "id"), want);
    let reqs = ds.requests(3);
    assert_eq!(reqs.len(), 3, "11 rows of sensor b in pages of 5: {reqs:?}");
    println!("proved: datasette 0.65.5 (rows as arrays) cursor pagination: 11 rows in 3 requests {reqs:?}");

    let f = one_frame(&run_one(&plugin, &ctx, "total", json!({})).await);
    assert_eq!(ints(&f, "id"), (1..=20).collect::<Vec<_>>());
    assert_eq!(
        ds.requests(7).len(),
        7,
        "4 more requests: totalPath stopped at 20"
    );
    println!("proved: totalPath $.filtered_table_rows_count (0.65.5) stopped after 4 pages of 5");
}
