//! Generates the pluginv2 and go-plugin gRPC code from `proto/` with protox (no system
//! `protoc` needed). The output is included, fenced, by `src/pb.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["backend.proto", "goplugin.proto"], ["proto"])?;
    tonic_prost_build::configure()
        // Encoded frames are shared with the answer cache without copying.
        .bytes(".pluginv2.DataResponse.frames")
        // prost with an exact-size reserve before encoding (src/codec.rs).
        .codec_path("crate::codec::GrpcCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
