//! The standard proxy environment variables (`HTTP_PROXY`/`http_proxy`, `NO_PROXY`) route the
//! plugin's upstream requests, as Grafana passes them through (protocol.md §6.1).

use std::sync::{Arc, Mutex};

use restbridge::pb::pluginv2;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::support::arrow::decode;
use crate::support::plugin::{context, query, PluginProcess};

/// A minimal forward proxy on 127.0.0.1 that records request lines and answers itself.
async fn start_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let mut line = String::new();
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).await.unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body).await;
                sink.lock().unwrap().push(line.trim().to_owned());
                let payload = br#"{"via":"proxy"}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = write.write_all(head.as_bytes()).await;
                let _ = write.write_all(payload).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_requests_go_through_the_environment_proxy() {
    let (port, seen) = start_proxy().await;
    let proxy = format!("http://127.0.0.1:{port}");
    let p = PluginProcess::spawn(&[
        ("HTTP_PROXY", &proxy),
        ("http_proxy", &proxy),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ])
    .await;
    // A host name that does not resolve: only the proxy can reach it.
    let jd = json!({"rules": [{"id": "r", "request": {"url": "/data"},
        "response": {"fields": [{"name": "via", "path": "$.via"}]}}]});
    let ctx = context("px", "http://api.restbridge.invalid", &jd, &[], 1);
    let resp = p
        .data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx),
            queries: vec![query("A", "r", json!({}), 0, 1)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let a = &resp.responses["A"];
    assert_eq!(a.status, 200, "{}", a.error);
    assert_eq!(
        decode(&a.frames[0]).field("via").values,
        vec![json!("proxy")]
    );
    let lines = seen.lock().unwrap().clone();
    assert_eq!(
        lines,
        vec!["GET http://api.restbridge.invalid/data HTTP/1.1".to_owned()]
    );
}
