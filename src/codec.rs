//! The gRPC message codec of every generated service (`build.rs` `codec_path`): protobuf via
//! prost, like `tonic_prost::ProstCodec`, except that the encoder reserves the message's exact
//! encoded size before writing it.
//!
//! Why: tonic's encode buffer starts at 8 KiB and prost writes into it piece by piece, so a
//! `QueryDataResponse` carrying a 28 KB Arrow frame was copied through 8 → 16 → 32 → 64 KiB
//! reallocations (and a 50 MB frame through a dozen), each touching fresh pages. One
//! `reserve(encoded_len)` makes it a single allocation and a single copy of the frame bytes
//! (docs/benchmarks-load.md, "Where a hit's CPU goes"). The plugin's QueryData answers no
//! longer pass through this encoder: `crate::grpc_data` writes them as chunks without
//! copying the frames; the other services' messages, and every message a client built from
//! this crate sends, still do.
//!
//! The decoder of a `QueryDataResponse` (the client side: the load tool, tests) starts its
//! receive buffer at [`RESPONSE_DECODE_BUFFER`] instead of tonic's 8 KiB, so that a typical
//! answer is not copied through buffer growth as its HTTP/2 DATA frames arrive. Requests
//! (the plugin's side) keep tonic's default.

use std::any::TypeId;
use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// Initial receive buffer of a `QueryDataResponse` decoder, bytes (tonic's default is 8 KiB).
/// A larger answer still grows the buffer, as before.
pub const RESPONSE_DECODE_BUFFER: usize = 64 << 10;

/// A [`Codec`] for `application/grpc+proto` with prost messages: encodes `T`, decodes `U`.
#[derive(Debug)]
pub struct GrpcCodec<T, U>(PhantomData<fn(T) -> U>);

impl<T, U> GrpcCodec<T, U> {
    /// A codec (stateless).
    pub fn new() -> Self {
        GrpcCodec(PhantomData)
    }
}

impl<T, U> Default for GrpcCodec<T, U> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, U> Clone for GrpcCodec<T, U> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T, U> Codec for GrpcCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ExactEncoder<T>;
    type Decoder = PlainDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ExactEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        PlainDecoder(PhantomData)
    }
}

/// Encodes a prost message after reserving its exact encoded length (one allocation).
#[derive(Debug)]
pub struct ExactEncoder<T>(PhantomData<fn(T)>);

impl<T: Message> Encoder for ExactEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.reserve(item.encoded_len());
        item.encode(buf)
            .map_err(|e| Status::internal(format!("cannot encode the gRPC message: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// Decodes a prost message; a malformed message is gRPC `INTERNAL` (as in tonic-prost).
#[derive(Debug)]
pub struct PlainDecoder<U>(PhantomData<fn() -> U>);

impl<U: Message + Default + 'static> Decoder for PlainDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        if TypeId::of::<U>() == TypeId::of::<crate::pb::pluginv2::QueryDataResponse>() {
            // The yield threshold only matters when encoding: tonic's default, 32 KiB.
            BufferSettings::new(RESPONSE_DECODE_BUFFER, 32 << 10)
        } else {
            BufferSettings::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::pb::pluginv2::{DataResponse, QueryDataResponse};

    #[test]
    fn encoded_len_matches_what_is_written() {
        let mut resp = QueryDataResponse::default();
        resp.responses.insert(
            "A".into(),
            DataResponse {
                frames: vec![bytes::Bytes::from(vec![7u8; 30_000])],
                status: 200,
                ..Default::default()
            },
        );
        let mut v = Vec::new();
        resp.encode(&mut v).unwrap();
        assert_eq!(v.len(), resp.encoded_len());
        let back = QueryDataResponse::decode(v.as_slice()).unwrap();
        assert_eq!(back, resp);
    }
}
