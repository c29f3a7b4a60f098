//! Unbounded input, bounded memory: 2 GB bodies in every framing, a gzip bomb and 100 MB of
//! headers, all generated on the fly by the raw server. With `maxResponseBytes` = 1 MiB the
//! plugin must stop reading early (the server sees the connection close after a few MiB at
//! most) and its peak resident set (VmHWM) must stay far below the body size.

use serde_json::json;

use crate::harness::Fx;
use crate::raw::{Framing, Reply};
use crate::upstream::{case, run_matrix, Case, Expect};

const GIB2: u64 = 2 << 30;
const MIB: u64 = 1 << 20;
/// Peak resident set allowed for the plugin process, MiB.
const HWM_LIMIT_MIB: u64 = 200;

fn too_large() -> Expect {
    Expect::Err(
        502,
        vec!["upstream {url} response is larger than maxResponseBytes (1048576 bytes)"],
    )
}

fn stream(status: u16, framing: Framing) -> Reply {
    Reply::Stream {
        status,
        framing,
        total: GIB2,
    }
}

async fn bounded(title: &str, cases: Vec<Case>, log: &str) {
    let (fx, _server): (Fx, _) =
        run_matrix(title, cases, json!({"maxResponseBytes": MIB}), log).await;
    let hwm = fx.vm_hwm_mib();
    println!("{title}: plugin VmHWM {hwm} MiB");
    assert!(
        hwm < HWM_LIMIT_MIB,
        "{title}: VmHWM {hwm} MiB — the input was buffered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gigabyte_bodies_are_capped_without_buffering() {
    let cases = vec![
        case(
            "body_2gb_content_length",
            stream(200, Framing::ContentLength),
            too_large(),
        )
        .hits(1)
        .max_written(64 * MIB),
        case(
            "body_2gb_chunked",
            stream(200, Framing::Chunked),
            too_large(),
        )
        .hits(1)
        .max_written(64 * MIB),
        case(
            "body_2gb_until_close",
            stream(200, Framing::Close),
            too_large(),
        )
        .hits(1)
        .max_written(64 * MIB),
        case(
            "http500_2gb_body",
            stream(500, Framing::Chunked),
            Expect::Err(502, vec!["upstream {url} answered HTTP 500: [1,1,1,1,"]),
        )
        .hits(1)
        .max_written(64 * MIB),
    ];
    bounded("2 GB bodies (maxResponseBytes 1 MiB)", cases, "debug").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bomb_is_capped_after_decoding() {
    let blocks = 64 * MIB; // 64 MiB on the wire, ~69 GB expanded
    println!(
        "gzip bomb: {} MiB compressed → {:.1} GB expanded",
        blocks / MIB,
        crate::gzip::Bomb::new(blocks).expanded as f64 / 1e9
    );
    let cases = vec![case("gzip_bomb", Reply::GzipBomb { blocks }, too_large())
        .hits(1)
        .max_written(16 * MIB)];
    bounded("gzip bomb (maxResponseBytes 1 MiB)", cases, "debug").await;
}

/// Cases that are retried (connect-level errors, 503) run at `info`: see
/// `upstream::RETRIED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_headers_and_retried_huge_bodies() {
    let head_too_large = || {
        Expect::Err(
            502,
            vec![
                "upstream {url} unreachable: error sending request for url ({url})",
                "message head is too large",
            ],
        )
    };
    let cases = vec![
        case(
            "headers_100mb_many_lines",
            Reply::HugeHeaders {
                total: 100 * MIB,
                one_line: false,
            },
            head_too_large(),
        )
        .hits(4)
        .max_written(4 * 32 * MIB),
        case(
            "header_100mb_single_line",
            Reply::HugeHeaders {
                total: 100 * MIB,
                one_line: true,
            },
            head_too_large(),
        )
        .hits(4)
        .max_written(4 * 32 * MIB),
        case(
            "http503_2gb_body",
            stream(503, Framing::Close),
            Expect::Err(502, vec!["upstream {url} answered HTTP 503: [1,1,1,1,"]),
        )
        .hits(4)
        .max_written(4 * 64 * MIB),
    ];
    bounded(
        "100 MB of headers, retried 2 GB body (maxResponseBytes 1 MiB)",
        cases,
        crate::upstream::RETRIED,
    )
    .await;
}
