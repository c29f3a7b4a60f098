//! Second cache tier for Grafana HA: two plugin processes (two Grafana replicas) share
//! answers through a real Redis (Debian `redis-server`); Redis down → the plugin keeps working
//! on its local cache and logs one warning.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use restbridge::pb::pluginv2;
use serde_json::json;

use crate::support::plugin::{context, query, PluginProcess};
use crate::support::stub::{Route, Stub};

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Option<Redis> {
        let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("RESTBRIDGE_REQUIRE_SERVERS").is_none(),
                "redis-server not installed, and RESTBRIDGE_REQUIRE_SERVERS is set"
            );
            eprintln!("skipping: redis-server not installed (apt-get install redis-server)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Redis { child, port })
    }

    fn stop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

async fn ask(p: &PluginProcess, ctx: &pluginv2::PluginContext, q: &str) -> pluginv2::DataResponse {
    p.data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            queries: vec![query("A", "items", json!({"q": q}), 0, 1)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .responses
        .remove("A")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_answers_and_survive_redis_going_down() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let up = Stub::start(vec![("/items", Route::json(r#"[{"v":1},{"v":2}]"#))]).await;
    let jd = json!({
        "cache": {"ttlSeconds": 60, "redis": {"url": format!("redis://127.0.0.1:{}/", redis.port), "keyPrefix": "rbtest:"}},
        "rules": [{"id": "items", "request": {"url": "/items", "query": {"q": "${q}"}},
                   "params": [{"name": "q"}],
                   "response": {"rows": "$[*]", "fields": [{"name": "v", "path": "$.v", "type": "number"}]}}]
    });
    let ctx = context("ha", &up.url(), &jd, &[], 1);
    let replica_a = PluginProcess::spawn(&[]).await;
    let replica_b = PluginProcess::spawn(&[]).await;
    assert_eq!(ask(&replica_a, &ctx, "x").await.status, 200);
    assert_eq!(up.hits(), 1);
    let b = ask(&replica_b, &ctx, "x").await;
    assert_eq!(b.status, 200, "{}", b.error);
    assert_eq!(b.frames.len(), 1);
    assert_eq!(
        up.hits(),
        1,
        "the second replica was answered from Redis, not the upstream"
    );

    // Redis goes down: both keep working (local cache + upstream), one warning each.
    redis.stop();
    assert_eq!(
        ask(&replica_a, &ctx, "x").await.status,
        200,
        "local cache still answers"
    );
    for q in ["y", "z", "w"] {
        let r = ask(&replica_b, &ctx, q).await;
        assert_eq!(r.status, 200, "{}", r.error);
    }
    assert_eq!(up.hits(), 4);
    std::thread::sleep(Duration::from_millis(200));
    let warnings = replica_b
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("Redis cache tier unavailable"))
        .count();
    assert_eq!(warnings, 1, "one warning, not one per query");
}
