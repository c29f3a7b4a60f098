//! Answers through the plugin's gathered connection writes (`src/conn.rs`) as an HTTP/2
//! client with small flow-control windows receives them: HTTP/2's default 64 KiB windows
//! (RFC 9113 §6.9.2; grpc-go starts there), a reader slower than the plugin, a stream
//! stalled on its window while another answer goes through. A raw `h2` client, so the test
//! sets the windows itself and sees every DATA frame as it arrives.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use restbridge::pb::pluginv2;
use serde_json::json;
use tonic::codegen::http;

use crate::support::arrow::decode;
use crate::support::plugin::{context, query, PluginProcess};
use crate::support::stub::{Route, Stub};

const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z in ms
/// Rows of the large answer: ~0.6 MB of Arrow, ~40 DATA frames of 16 KiB.
const BIG_ROWS: usize = 20_000;
/// HTTP/2's initial window (RFC 9113 §6.9.2), bytes.
const DEFAULT_WINDOW: usize = 65_535;
/// Upper bound for anything that should take milliseconds.
const LIMIT: Duration = Duration::from_secs(30);

fn big_body() -> String {
    let mut s = String::with_capacity(BIG_ROWS * 48);
    s.push('[');
    for i in 0..BIG_ROWS {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"t":{},"v":{},"s":"row-{i}"}}"#,
            T0 + i as i64 * 1000,
            i as f64 * 0.5
        ));
    }
    s.push(']');
    s
}

/// The stub upstream, the plugin (with `env`) and a datasource with the `big` and `small`
/// rules.
async fn setup(env: &[(&str, &str)]) -> (Stub, PluginProcess, pluginv2::PluginContext) {
    let stub = Stub::start(vec![
        ("/big", Route::json(&big_body())),
        ("/small", Route::json(r#"[{"s":"one"}]"#)),
    ])
    .await;
    let rules = json!({"rules": [
        {"id": "big", "request": {"url": "/big"},
         "response": {"rows": "$[*]", "fields": [
            {"name": "t", "path": "$.t", "type": "time", "format": "epoch_ms"},
            {"name": "v", "path": "$.v", "type": "number"},
            {"name": "s", "path": "$.s"}]}},
        {"id": "small", "request": {"url": "/small"},
         "response": {"rows": "$[*]", "fields": [{"name": "s", "path": "$.s"}]}}
    ]});
    let ctx = context("writes", &stub.url(), &rules, &[], 1);
    let plugin = PluginProcess::spawn(env).await;
    (stub, plugin, ctx)
}

/// One HTTP/2 connection to the plugin's handshake address with the given windows (bytes).
async fn connect(
    plugin: &PluginProcess,
    stream_window: u32,
    conn_window: u32,
) -> h2::client::SendRequest<Bytes> {
    let parts: Vec<&str> = plugin.handshake.trim().split('|').collect();
    let mut b = h2::client::Builder::new();
    b.initial_window_size(stream_window)
        .initial_connection_window_size(conn_window);
    let send = match parts[2] {
        "unix" => {
            let io = tokio::net::UnixStream::connect(parts[3]).await.unwrap();
            let (send, conn) = b.handshake::<_, Bytes>(io).await.unwrap();
            tokio::spawn(conn);
            send
        }
        "tcp" => {
            let io = tokio::net::TcpStream::connect(parts[3]).await.unwrap();
            let (send, conn) = b.handshake::<_, Bytes>(io).await.unwrap();
            tokio::spawn(conn);
            send
        }
        other => panic!("unknown network {other} in {}", plugin.handshake),
    };
    send.ready().await.unwrap()
}

/// Opens a QueryData stream for `q`; returns the answer's body stream.
async fn open(
    send: &mut h2::client::SendRequest<Bytes>,
    ctx: &pluginv2::PluginContext,
    q: pluginv2::DataQuery,
) -> h2::RecvStream {
    let msg = pluginv2::QueryDataRequest {
        plugin_context: Some(ctx.clone()),
        queries: vec![q],
        ..Default::default()
    };
    let mut body = BytesMut::new();
    body.put_u8(0);
    body.put_u32(u32::try_from(msg.encoded_len()).unwrap());
    msg.encode(&mut body).unwrap();
    let req = http::Request::builder()
        .method(http::Method::POST)
        .uri("http://plugin/pluginv2.Data/QueryData")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (resp, mut tx) = send.send_request(req, false).unwrap();
    tx.send_data(body.freeze(), true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body()
}

/// Reads the rest of `rx` (after `got`), giving the window back per DATA frame and pausing
/// every `pause_every` frames; checks `grpc-status: 0` and returns the decoded message.
async fn finish(
    mut rx: h2::RecvStream,
    mut got: Vec<u8>,
    pause_every: usize,
) -> pluginv2::QueryDataResponse {
    let mut frames = 0usize;
    while let Some(d) = rx.data().await {
        let d = d.unwrap();
        rx.flow_control().release_capacity(d.len()).unwrap();
        got.extend_from_slice(&d);
        frames += 1;
        if pause_every > 0 && frames.is_multiple_of(pause_every) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let trailers = rx.trailers().await.unwrap().expect("trailers");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.to_str().unwrap()),
        Some("0"),
        "{trailers:?}"
    );
    assert!(got.len() >= 5, "answer of {} bytes", got.len());
    let len = u32::from_be_bytes([got[1], got[2], got[3], got[4]]) as usize;
    assert_eq!((got[0], len), (0, got.len() - 5), "gRPC message prefix");
    pluginv2::QueryDataResponse::decode(&got[5..]).unwrap()
}

fn check_big(resp: &pluginv2::QueryDataResponse) {
    let a = &resp.responses["A"];
    assert_eq!(a.status, 200, "{}", a.error);
    assert_eq!(a.frames.len(), 1);
    let f = decode(&a.frames[0]);
    assert_eq!(f.rows(), BIG_ROWS);
    for i in [0, 1, 4_095, 16_384, BIG_ROWS - 1] {
        assert_eq!(
            f.field("t").values[i],
            json!((T0 + i as i64 * 1000) * 1_000_000),
            "row {i}"
        );
        assert_eq!(f.field("v").values[i], json!(i as f64 * 0.5), "row {i}");
        assert_eq!(f.field("s").values[i], json!(format!("row-{i}")), "row {i}");
    }
}

/// Three large answers at once to a client with 64 KiB stream and connection windows that
/// reads slower than the plugin writes: every answer arrives whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_arrive_whole_through_default_windows_and_a_slow_reader() {
    let (_stub, plugin, ctx) = setup(&[]).await;
    let w = DEFAULT_WINDOW as u32;
    let send = connect(&plugin, w, w).await;
    let mut readers = Vec::new();
    for k in 0..3 {
        let mut send = send.clone();
        let ctx = ctx.clone();
        readers.push(tokio::spawn(async move {
            let q = query("A", "big", json!({}), T0, T0 + 3_600_000 + k);
            let rx = open(&mut send, &ctx, q).await;
            finish(rx, Vec::new(), 4).await
        }));
    }
    for r in readers {
        let resp = tokio::time::timeout(LIMIT, r)
            .await
            .expect("answers within 30 s")
            .unwrap();
        check_big(&resp);
    }
}

/// A large answer whose stream window (64 KiB) the reader does not give back: the plugin
/// must still put the whole window on the wire — the last frame then is a DATA frame of an
/// unfinished answer, the case where `src/conn.rs` holds a flush — and another answer on
/// the same connection must go through while that stream waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stalled_on_its_window_holds_back_neither_its_bytes_nor_other_answers() {
    stalled_stream(&[]).await;
}

/// The same over loopback TCP (`RESTBRIDGE_GRPC_NETWORK=tcp`), whose connections are
/// wrapped the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_over_tcp_holds_back_neither_its_bytes_nor_other_answers() {
    stalled_stream(&[("RESTBRIDGE_GRPC_NETWORK", "tcp")]).await;
}

async fn stalled_stream(env: &[(&str, &str)]) {
    let (_stub, plugin, ctx) = setup(env).await;
    let network = plugin
        .handshake
        .split('|')
        .nth(2)
        .unwrap_or_default()
        .to_owned();
    let want = env
        .iter()
        .find(|(k, _)| *k == "RESTBRIDGE_GRPC_NETWORK")
        .map_or("unix", |(_, v)| v);
    assert_eq!(network, want, "handshake {}", plugin.handshake);
    let mut send = connect(&plugin, DEFAULT_WINDOW as u32, 16 << 20).await;
    let mut big = open(
        &mut send,
        &ctx,
        query("A", "big", json!({}), T0, T0 + 3_600_000),
    )
    .await;
    // Read, without giving the window back, until the plugin has sent all of it.
    let mut got = Vec::new();
    while got.len() < DEFAULT_WINDOW {
        let d = tokio::time::timeout(LIMIT, big.data())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of the window's {DEFAULT_WINDOW} bytes arrived in 30 s",
                    got.len()
                )
            })
            .expect("the answer ended early")
            .unwrap();
        got.extend_from_slice(&d);
    }
    assert_eq!(got.len(), DEFAULT_WINDOW, "more than the window was sent");
    // The big stream now waits for its window; a small answer must not.
    let small = open(
        &mut send,
        &ctx,
        query("A", "small", json!({}), T0, T0 + 3_600_000),
    )
    .await;
    let resp = tokio::time::timeout(LIMIT, finish(small, Vec::new(), 0))
        .await
        .expect("the small answer within 30 s while the big one waits");
    let a = &resp.responses["A"];
    assert_eq!(a.status, 200, "{}", a.error);
    assert_eq!(decode(&a.frames[0]).field("s").values, vec![json!("one")]);
    // Give the window back: the rest of the big answer follows.
    big.flow_control().release_capacity(got.len()).unwrap();
    let resp = tokio::time::timeout(LIMIT, finish(big, got, 0))
        .await
        .expect("the rest of the big answer within 30 s");
    check_big(&resp);
}
