//! `pluginv2.Data/QueryData` answered without copying the encoded frames.
//!
//! tonic encodes a response message into one contiguous buffer, so every cached Arrow frame
//! (~28 KB for 1,000 rows) was copied once more per answer before the kernel copied it into
//! the socket. [`DataService`] wraps the generated `DataServer`: for a QueryData call with an
//! uncompressed request it decodes the request itself, runs the same handler
//! ([`crate::pb::pluginv2::data_server::Data::query_data`]) and writes the gRPC response
//! message as a list of chunks — the small protobuf fields in one buffer, each frame of
//! [`INLINE_FRAME_BYTES`] or more as its own reference-counted `Bytes` — which h2 hands to
//! the kernel as they are (vectored writes). The bytes on the wire are exactly what prost and
//! tonic produce (tested), with the same status trailers. Any other call, and a compressed
//! request, goes to the generated server unchanged.
//!
//! gRPC framing (gRPC over HTTP/2, "Length-Prefixed-Message"): a 1-byte compressed flag, a
//! 4-byte big-endian length, the message; success is the trailer `grpc-status: 0`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::Status;

use crate::pb::pluginv2::data_server::{Data, DataServer};
use crate::pb::pluginv2::{DataResponse, QueryDataRequest, QueryDataResponse};
use crate::server::{Plugin, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

/// The HTTP/2 path of QueryData (gRPC over HTTP/2: `/{package}.{service}/{method}`).
pub const QUERY_DATA_PATH: &str = "/pluginv2.Data/QueryData";

/// Frames at least this long (bytes) are passed on as their own chunk; shorter ones are
/// copied into the surrounding buffer (a chunk costs an iovec and a DATA-frame boundary).
pub const INLINE_FRAME_BYTES: usize = 4096;

/// The `pluginv2.Data` service: QueryData answered here (request decoded, the handler run,
/// the answer written by [`encode_chunks`]), everything else by the generated server
/// (`inner`).
#[derive(Debug, Clone)]
pub struct DataService {
    inner: DataServer<Plugin>,
    plugin: Plugin,
}

impl DataService {
    /// Wraps `inner` (configured with its message size limits); QueryData calls run
    /// `plugin`'s handler.
    pub fn new(inner: DataServer<Plugin>, plugin: Plugin) -> DataService {
        DataService { inner, plugin }
    }
}

impl NamedService for DataService {
    const NAME: &'static str = "pluginv2.Data";
}

impl Service<http::Request<Body>> for DataService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let compressed = req
            .headers()
            .get("grpc-encoding")
            .is_some_and(|e| e.as_bytes() != b"identity");
        if req.uri().path() != QUERY_DATA_PATH || compressed {
            return self.inner.call(req);
        }
        let plugin = self.plugin.clone();
        Box::pin(async move { Ok(query_data(plugin, req).await) })
    }
}

/// One QueryData call: request body → [`QueryDataRequest`] → handler → chunked response.
/// Protocol errors become the gRPC status tonic would give (malformed message: INTERNAL,
/// too large: OUT_OF_RANGE).
async fn query_data(plugin: Plugin, req: http::Request<Body>) -> http::Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_REQUEST_BYTES + 5)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return status_response(Status::out_of_range(format!(
                "Error, decoded message length too large: the limit is: {MAX_REQUEST_BYTES} bytes"
            )))
        }
        Err(e) => return status_response(Status::cancelled(format!("request body: {e}"))),
    };
    let message = match unframe(body) {
        Ok(m) => m,
        Err(s) => return status_response(s),
    };
    let request = match QueryDataRequest::decode(message) {
        Ok(r) => r,
        Err(e) => return status_response(Status::internal(e.to_string())),
    };
    let metadata = tonic::metadata::MetadataMap::from_headers(parts.headers);
    let request = tonic::Request::from_parts(metadata, parts.extensions, request);
    match Data::query_data(&plugin, request).await {
        Ok(resp) => {
            let (metadata, message, _) = resp.into_parts();
            match encode_chunks(message) {
                Ok(chunks) => {
                    let mut headers = metadata.into_headers();
                    headers.insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/grpc"),
                    );
                    let mut trailers = http::HeaderMap::with_capacity(1);
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let mut response =
                        http::Response::new(Body::new(Chunks::new(chunks, trailers)));
                    *response.headers_mut() = headers;
                    response
                }
                Err(s) => status_response(s),
            }
        }
        Err(s) => status_response(s),
    }
}

/// A trailers-only gRPC error response.
fn status_response(s: Status) -> http::Response<Body> {
    s.into_http()
}

/// The one message of a unary request body (gRPC "Length-Prefixed-Message").
///
/// # Errors
/// INTERNAL for a compressed flag (no `grpc-encoding` was given), a short body or a length
/// that does not match the body.
pub fn unframe(body: Bytes) -> Result<Bytes, Status> {
    if body.len() < 5 {
        return Err(Status::internal(
            "protocol error: the request carries no message",
        ));
    }
    if body[0] != 0 {
        return Err(Status::internal(
            "protocol error: received a compressed message without a grpc-encoding",
        ));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() - 5 != len {
        return Err(Status::internal(format!(
            "protocol error: a unary request of one {len}-byte message carries {} bytes",
            body.len() - 5
        )));
    }
    Ok(body.slice(5..))
}

/// `resp` as a gRPC message (5-byte prefix + protobuf), in chunks whose concatenation is
/// byte for byte prost's encoding: map entries in the map's order, defaults skipped as prost
/// skips them, each frame of [`INLINE_FRAME_BYTES`] or more a chunk of its own (not copied).
///
/// # Errors
/// OUT_OF_RANGE when the message exceeds [`MAX_RESPONSE_BYTES`] (as tonic's limit).
pub fn encode_chunks(resp: QueryDataResponse) -> Result<Vec<Bytes>, Status> {
    let total = resp.encoded_len();
    if total > MAX_RESPONSE_BYTES || u32::try_from(total).is_err() {
        return Err(Status::out_of_range(format!(
            "Error, encoded message length too large: found {total} bytes, the limit is: \
             {MAX_RESPONSE_BYTES} bytes"
        )));
    }
    let default = DataResponse::default();
    let mut chunks = Vec::new();
    // The small parts of the message: everything but large frames (those count only here).
    let small = 5 + total
        - resp
            .responses
            .values()
            .flat_map(|r| &r.frames)
            .filter(|f| f.len() >= INLINE_FRAME_BYTES)
            .map(Bytes::len)
            .sum::<usize>();
    let mut buf = BytesMut::with_capacity(small);
    buf.put_u8(0);
    buf.put_u32(total as u32);
    for (key, value) in resp.responses {
        let skip_key = key.is_empty();
        let skip_value = value == default;
        let key_len = if skip_key {
            0
        } else {
            prost::encoding::string::encoded_len(1, &key)
        };
        let value_len = value.encoded_len();
        let entry_len = key_len
            + if skip_value {
                0
            } else {
                1 + encoded_len_varint(value_len as u64) + value_len
            };
        encode_key(1, WireType::LengthDelimited, &mut buf);
        encode_varint(entry_len as u64, &mut buf);
        if !skip_key {
            prost::encoding::string::encode(1, &key, &mut buf);
        }
        if skip_value {
            continue;
        }
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(value_len as u64, &mut buf);
        let DataResponse {
            frames,
            error,
            json_meta,
            status,
            error_source,
            format,
        } = value;
        for frame in frames {
            encode_key(1, WireType::LengthDelimited, &mut buf);
            encode_varint(frame.len() as u64, &mut buf);
            if frame.len() >= INLINE_FRAME_BYTES {
                chunks.push(buf.split().freeze());
                chunks.push(frame);
            } else {
                buf.extend_from_slice(&frame);
            }
        }
        // Fields 2–6 in field order, defaults skipped: prost's encoding of the rest.
        let rest = DataResponse {
            frames: Vec::new(),
            error,
            json_meta,
            status,
            error_source,
            format,
        };
        rest.encode_raw(&mut buf);
    }
    if !buf.is_empty() {
        chunks.push(buf.freeze());
    }
    Ok(chunks)
}

/// A response body: the chunks as DATA frames, then the trailers.
#[derive(Debug)]
struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    trailers: Option<http::HeaderMap>,
}

impl Chunks {
    fn new(chunks: Vec<Bytes>, trailers: http::HeaderMap) -> Chunks {
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Chunks {
            chunks: chunks.into(),
            remaining,
            trailers: Some(trailers),
        }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if let Some(chunk) = this.chunks.pop_front() {
            this.remaining -= chunk.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn response(sizes: &[&[usize]]) -> QueryDataResponse {
        let mut r = QueryDataResponse::default();
        for (i, frames) in sizes.iter().enumerate() {
            r.responses.insert(
                format!("R{i}"),
                DataResponse {
                    frames: frames
                        .iter()
                        .map(|&n| Bytes::from(vec![(i + n) as u8; n]))
                        .collect(),
                    status: if i % 2 == 0 { 200 } else { 502 },
                    error: if i % 2 == 0 {
                        String::new()
                    } else {
                        format!("error {i}")
                    },
                    error_source: if i % 2 == 0 {
                        String::new()
                    } else {
                        "downstream".into()
                    },
                    json_meta: if i == 3 { b"{}".to_vec() } else { Vec::new() },
                    format: 0,
                },
            );
        }
        r
    }

    #[test]
    fn chunks_are_prosts_encoding_and_big_frames_are_not_copied() {
        let cases: Vec<QueryDataResponse> = vec![
            QueryDataResponse::default(),
            response(&[&[]]),
            response(&[&[28_034]]),
            response(&[&[10, 4095, 4096, 70_000, 0], &[], &[1, 2], &[300_000, 5]]),
            {
                // An empty refId and a default answer: prost skips both, so must we.
                let mut r = response(&[&[5000]]);
                r.responses.insert(String::new(), DataResponse::default());
                r.responses.insert("D".into(), DataResponse::default());
                r
            },
        ];
        for resp in cases {
            let mut expected = vec![0u8];
            expected.extend_from_slice(&(resp.encoded_len() as u32).to_be_bytes());
            resp.encode(&mut expected).unwrap();
            let big: Vec<Bytes> = resp
                .responses
                .values()
                .flat_map(|r| r.frames.clone())
                .filter(|f| f.len() >= INLINE_FRAME_BYTES)
                .collect();
            let chunks = encode_chunks(resp.clone()).unwrap();
            assert_eq!(chunks.concat(), expected, "{resp:?}");
            // Every big frame is one of the chunks, the very same bytes (no copy).
            for f in &big {
                assert!(
                    chunks
                        .iter()
                        .any(|c| c.as_ptr() == f.as_ptr() && c.len() == f.len()),
                    "a {}-byte frame was copied",
                    f.len()
                );
            }
            // And the whole message decodes back to the response.
            let back = QueryDataResponse::decode(&expected[5..]).unwrap();
            assert_eq!(back, resp);
        }
    }

    #[test]
    fn unframe_takes_exactly_one_uncompressed_message() {
        let msg = |flag: u8, len: u32, body: &[u8]| {
            let mut v = vec![flag];
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(body);
            Bytes::from(v)
        };
        assert_eq!(
            unframe(msg(0, 3, b"abc")).unwrap(),
            Bytes::from_static(b"abc")
        );
        assert_eq!(unframe(msg(0, 0, b"")).unwrap(), Bytes::new());
        for (bad, why) in [
            (msg(1, 3, b"abc"), "compressed"),
            (msg(0, 4, b"abc"), "carries 3 bytes"),
            (msg(0, 2, b"abc"), "carries 3 bytes"),
            (Bytes::from_static(b"\0\0\0"), "no message"),
        ] {
            let e = unframe(bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Internal);
            assert!(e.message().contains(why), "{}", e.message());
        }
    }

    #[test]
    fn body_yields_the_chunks_then_the_trailers() {
        use futures_util::FutureExt;
        use http_body::Body as _;
        let mut t = http::HeaderMap::new();
        t.insert("grpc-status", http::HeaderValue::from_static("0"));
        let parts = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cde")];
        let mut body = Chunks::new(parts, t);
        assert_eq!(body.size_hint().exact(), Some(5));
        let mut data = Vec::new();
        let mut trailers = None;
        while let Some(frame) = body.frame().now_or_never().flatten() {
            let frame = frame.unwrap();
            match frame.into_data() {
                Ok(d) => data.extend_from_slice(&d),
                Err(f) => trailers = f.into_trailers().ok(),
            }
        }
        assert_eq!(data, b"abcde");
        assert_eq!(trailers.unwrap()["grpc-status"], "0");
        assert!(body.is_end_stream());
    }
}
