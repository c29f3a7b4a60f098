//! The load tool's lean gRPC client (`--client h2`, the default): QueryData as plain HTTP/2
//! streams with the `h2` crate, without tonic's channel (a tower buffer task per connection),
//! codec and prost decoding of every answer.
//!
//! Why: on a 2-core machine the load client shares the cores with the plugin, and the tonic
//! client spent ~50 µs of CPU per cached QueryData — as much as the plugin itself — so it,
//! not the plugin, set how many queries were queued at concurrency 16
//! (docs/benchmarks-load.md, "A lean load client"). The wire is the same: one HTTP/2
//! connection, `POST /pluginv2.Data/QueryData`, `content-type: application/grpc`,
//! `te: trailers`, length-prefixed protobuf messages, `grpc-status` in the trailers (the gRPC
//! over HTTP/2 protocol), with hyper's client window sizes (2 MiB per stream, 5 MiB per
//! connection) so flow control never stalls an answer.
//!
//! Answers are checked no less than with tonic: a hit's answer must equal, byte for byte, a
//! reference answer that was decoded and checked row by row ([`Expect::Exact`]); other
//! answers are decoded with prost and checked like the tonic client's ([`Expect::Decode`]).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use prost::Message;
use restbridge::pb::pluginv2;
use tonic::codegen::http;

/// `:path` of QueryData (pluginv2 service `Data`, protocol.md §2).
const QUERY_DATA_URI: &str = "http://plugin/pluginv2.Data/QueryData";
/// hyper's HTTP/2 client defaults, which tonic's channel uses: bytes.
const STREAM_WINDOW: u32 = 2 << 20;
const CONN_WINDOW: u32 = 5 << 20;
/// Read buffer of the connection, bytes.
const READ_BUFFER: usize = 256 << 10;

/// Opens one HTTP/2 connection over `io` and drives it on its own task; returns the handle
/// that opens streams on it (cloned once per load worker).
pub async fn handshake<T>(io: T) -> Result<h2::client::SendRequest<Bytes>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // h2 reads through an 8 KiB buffer: three recv calls per 28 KB answer. One 256 KiB
    // buffer reads several answers per call.
    let io = tokio::io::BufReader::with_capacity(READ_BUFFER, io);
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .max_frame_size(16_384)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("grpc_load: h2 connection ended: {e}");
        }
    });
    Ok(send)
}

/// One gRPC message: the 5-byte prefix (not compressed, big-endian length) and `msg`.
pub fn grpc_frame(msg: &impl Message) -> Bytes {
    let len = msg.encoded_len();
    let mut b = BytesMut::with_capacity(5 + len);
    b.extend_from_slice(&[0]);
    b.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    msg.encode(&mut b).expect("BytesMut grows");
    b.freeze()
}

/// The answer of one call: the HTTP/2 DATA payloads as received (not copied), in order.
#[derive(Debug, Default)]
pub struct Answer {
    pub chunks: Vec<Bytes>,
}

impl Answer {
    /// Total length of the body, bytes.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// True when every chunk, in order, equals the same span of `want`, and the lengths match.
    pub fn equals(&self, want: &[u8]) -> bool {
        let mut off = 0;
        for c in &self.chunks {
            match want.get(off..off + c.len()) {
                Some(w) if w == &c[..] => off += c.len(),
                _ => return false,
            }
        }
        off == want.len()
    }

    /// The whole body in one buffer (a copy).
    pub fn concat(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.len());
        for c in &self.chunks {
            body.extend_from_slice(c);
        }
        body
    }

    /// The body's single gRPC message, decoded; errors name what is wrong with the framing.
    pub fn decode(&self) -> Result<pluginv2::QueryDataResponse, String> {
        message(&self.concat())
    }
}

/// Decodes a body holding exactly one uncompressed gRPC message.
fn message(body: &[u8]) -> Result<pluginv2::QueryDataResponse, String> {
    let (head, rest) = body
        .split_first_chunk::<5>()
        .ok_or_else(|| format!("gRPC body of {} bytes", body.len()))?;
    if head[0] != 0 {
        return Err(format!("compressed gRPC message (flag {})", head[0]));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len != rest.len() {
        return Err(format!(
            "gRPC message prefix says {len} bytes, body has {}",
            rest.len()
        ));
    }
    pluginv2::QueryDataResponse::decode(rest).map_err(|e| format!("protobuf: {e}"))
}

/// `grpc-status` of a header or trailer block: `Ok(true)` when it is 0, `Ok(false)` when
/// absent, an error naming status and message otherwise.
fn grpc_ok(h: &http::HeaderMap) -> Result<bool, String> {
    match h.get("grpc-status") {
        None => Ok(false),
        Some(s) if s == "0" => Ok(true),
        Some(s) => Err(format!(
            "grpc-status {}: {}",
            s.to_str().unwrap_or("?"),
            h.get("grpc-message")
                .and_then(|m| m.to_str().ok())
                .unwrap_or("")
        )),
    }
}

/// Sends one QueryData whose request message is already framed (`body`, from
/// [`grpc_frame`]) and reads the whole answer; the time is taken by the caller.
pub async fn query_data(
    send: &mut h2::client::SendRequest<Bytes>,
    body: Bytes,
) -> Result<Answer, String> {
    std::future::poll_fn(|cx| send.poll_ready(cx))
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let req = http::Request::builder()
        .method(http::Method::POST)
        .uri(http::Uri::from_static(QUERY_DATA_URI))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, "grpc_load-h2")
        .body(())
        .map_err(|e| format!("request: {e}"))?;
    let (resp, mut tx) = send
        .send_request(req, false)
        .map_err(|e| format!("open stream: {e}"))?;
    tx.send_data(body, true)
        .map_err(|e| format!("send request: {e}"))?;
    let resp = resp.await.map_err(|e| format!("answer: {e}"))?;
    if resp.status() != http::StatusCode::OK {
        return Err(format!("HTTP status {}", resp.status()));
    }
    // A trailers-only answer (an RPC error) carries grpc-status in its headers.
    if grpc_ok(resp.headers())? {
        return Err("answer without a message".into());
    }
    let mut rx = resp.into_body();
    let mut answer = Answer::default();
    while let Some(d) = rx.data().await {
        let d = d.map_err(|e| format!("answer body: {e}"))?;
        // Gives the window back, so the plugin can keep sending (WINDOW_UPDATE).
        let _ = rx.flow_control().release_capacity(d.len());
        answer.chunks.push(d);
    }
    let trailers = rx
        .trailers()
        .await
        .map_err(|e| format!("trailers: {e}"))?
        .ok_or("answer without trailers")?;
    if !grpc_ok(&trailers)? {
        return Err("trailers without grpc-status".into());
    }
    Ok(answer)
}

/// How a call's answer is checked.
#[derive(Debug)]
pub enum Expect {
    /// Byte for byte equal to this body (5-byte prefix included), which was decoded and
    /// checked row by row first: every cached answer to one query is the same bytes.
    Exact(Bytes),
    /// Decoded: status 200 and one frame of `frame_len` bytes for refId A.
    Decode { frame_len: usize },
}

impl Expect {
    /// Checks `a`, the answer to request `i`; on `Decode`, every 500th answer is also
    /// decoded row by row against the generated `rows`.
    pub fn check(&self, a: &Answer, i: usize, rows: usize) -> Result<(), String> {
        match self {
            Expect::Exact(want) if a.equals(want) => Ok(()),
            Expect::Exact(want) => Err(format!(
                "answer of {} bytes differs from the checked one ({} bytes)",
                a.len(),
                want.len()
            )),
            Expect::Decode { frame_len } => {
                let resp = a.decode()?;
                let r = resp.responses.get("A").ok_or("no refId A")?;
                if r.status != 200 {
                    return Err(format!("status {}: {}", r.status, r.error));
                }
                if r.frames.len() != 1 {
                    return Err(format!("{} frames", r.frames.len()));
                }
                if r.frames[0].len() != *frame_len {
                    return Err(format!("frame of {} bytes", r.frames[0].len()));
                }
                if i.is_multiple_of(500) {
                    crate::verify_frame(&resp, rows)
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Times one call: request sent → trailers read.
pub async fn timed(
    send: &mut h2::client::SendRequest<Bytes>,
    body: Bytes,
    timeout: Duration,
) -> (Duration, Result<Answer, String>) {
    let t0 = Instant::now();
    let r = tokio::time::timeout(timeout, query_data(send, body)).await;
    let dt = t0.elapsed();
    (dt, r.unwrap_or_else(|_| Err("timed out".into())))
}
