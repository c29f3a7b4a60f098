//! Conversion benchmark (issue 6, benchmark 1): a generated array of objects × 10 fields
//! (numbers, strings, RFC 3339 times, nulls) → Arrow IPC frames, against
//! `serde_json::from_slice::<Value>` alone on the same bytes, in the same run.
//!
//! Cases: (a) the bare serde_json DOM parse, (b) the DOM path (parse + `convert`),
//! (c) the fast path (`convert_fast::try_convert`) plus Arrow IPC encoding of the frames,
//! (d) the DOM path plus encoding, and (e) the fast path without encoding. DOM drops are left
//! out of the timings (the pipeline drops large documents off the async workers), which
//! favours (a) and (b). Sizes: 200,000 rows (~50 MB) and 1,000 rows (~250 kB, a cache-hit
//! size). Run: `cargo bench --bench conversion`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use restbridge::convert::convert;
use restbridge::convert_fast::try_convert;
use restbridge::frame::Frame;
use restbridge::rule::{compile_standalone, Rule};
use serde_json::{json, Value};

#[path = "common/rows.rs"]
mod rows;

/// A deterministic document: `rows` objects × 10 fields; about 250 bytes per row.
fn document(rows: usize) -> Vec<u8> {
    let mut seed: u64 = 0x1234_5678;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const STATUS: [&str; 4] = ["ok", "warning", "critical", "unknown"];
    const WORDS: [&str; 8] = [
        "disk",
        "latency",
        "above",
        "threshold",
        "on",
        "node",
        "restarted",
        "é-check",
    ];
    let mut out = String::with_capacity(rows * 260);
    out.push('[');
    for i in 0..rows {
        if i > 0 {
            out.push(',');
        }
        let r = next();
        let secs = 1_704_067_200 + i as u64 * 15;
        let t = jiff::Timestamp::from_second(secs as i64).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let updated = jiff::Timestamp::from_second(secs as i64 + (r % 3600) as i64)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(2)));
        let value = (r % 1_000_000) as f64 / 1000.0;
        let ratio = if r % 10 == 0 {
            "null".to_owned()
        } else {
            format!("{}", (r % 10_000) as f64 / 10_000.0)
        };
        let words: Vec<&str> = (0..5)
            .map(|k| WORDS[((r >> (k * 3)) % 8) as usize])
            .collect();
        out.push_str(&format!(
            "{{\"time\":\"{t}\",\"value\":{value},\"count\":{count},\"name\":\"sensor-{name:05}\",\
             \"status\":\"{status}\",\"ratio\":{ratio},\"updated\":\"{updated}\",\
             \"host\":\"host-{host:02}.example.com\",\"latency_ms\":{latency},\
             \"message\":\"{message}\"}}",
            count = r % 100_000,
            name = i % 50_000,
            status = STATUS[(r >> 20) as usize % 4],
            updated = updated.strftime("%Y-%m-%dT%H:%M:%S.%3f%:z"),
            host = (r >> 24) % 64,
            latency = if r % 7 == 0 {
                "null".to_owned()
            } else {
                ((r >> 8) % 5000).to_string()
            },
            message = words.join(" "),
        ));
    }
    out.push(']');
    out.into_bytes()
}

fn rule() -> Rule {
    let raw = json!({"id": "bench", "request": {"url": "/x"}, "response": {
    "rows": "$[*]",
    "format": "table",
    "fields": [
        {"name": "time", "path": "$.time", "type": "time"},
        {"name": "value", "path": "$.value", "type": "number"},
        {"name": "count", "path": "$.count", "type": "int"},
        {"name": "name", "path": "$.name"},
        {"name": "status", "path": "$.status"},
        {"name": "ratio", "path": "$.ratio", "type": "number"},
        {"name": "updated", "path": "$.updated", "type": "time"},
        {"name": "host", "path": "$.host"},
        {"name": "latency", "path": "$['latency_ms']", "type": "number"},
        {"name": "message", "path": "$.message"}
    ]}});
    compile(raw)
}

/// The body and rule of `grpc_load`'s `cold` scenario: 1,000 objects
/// `{"time": RFC 3339, "value": number, "host": string}` read as a table.
fn cold_body() -> (Vec<u8>, Rule) {
    let rule = compile(
        json!({"id": "rows", "request": {"url": "/rows"}, "response": {
        "rows": "$[*]",
        "format": "table",
        "fields": [
            {"name": "time", "path": "$.time", "type": "time"},
            {"name": "value", "path": "$.value", "type": "number"},
            {"name": "host", "path": "$.host", "type": "string"}
        ]}}),
    );
    (rows::rows_json(1000).into_bytes(), rule)
}

/// A bench rule, compiled (a bench with a broken rule stops here).
fn compile(raw: Value) -> Rule {
    match compile_standalone(&raw) {
        Ok(r) => r,
        Err(e) => panic!("bench rule: {e}"),
    }
}

fn encode(frames: &[Frame]) -> usize {
    frames
        .iter()
        .map(|f| match f.encode("A") {
            Ok(b) => b.len(),
            Err(e) => panic!("encode: {e}"),
        })
        .sum()
}

fn dom_frames(rule: &Rule, body: &[u8]) -> (Vec<Frame>, Value) {
    let doc: Value = match serde_json::from_slice(body) {
        Ok(d) => d,
        Err(e) => panic!("parse: {e}"),
    };
    match convert(rule, &doc, Some("q".into())) {
        Ok(frames) => (frames, doc),
        Err(e) => panic!("convert: {e}"),
    }
}

fn fast_frames(rule: &Rule, body: &[u8]) -> Vec<Frame> {
    match try_convert(rule, body, Some("q".into())) {
        Some(Ok(frames)) => frames,
        Some(Err(e)) => panic!("fast: {e}"),
        None => panic!("the bench rule is not eligible for the fast path"),
    }
}

fn bench_size(c: &mut Criterion, label: &str, rows: usize, big: bool) {
    let body = document(rows);
    let rule = rule();
    // The two paths agree on this document (the unit tests check that in general).
    let (dom, _) = dom_frames(&rule, &body);
    assert_eq!(fast_frames(&rule, &body), dom);
    eprintln!(
        "{label}: {rows} rows, {} bytes, {} frame(s) of {} rows, {} IPC bytes",
        body.len(),
        dom.len(),
        dom.first().map_or(0, Frame::rows),
        encode(&dom)
    );

    let mut g = c.benchmark_group(format!("conversion_{label}"));
    g.throughput(Throughput::Bytes(body.len() as u64));
    if big {
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(25));
    } else {
        g.sample_size(30)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
    }
    g.bench_function("a_serde_json_dom_parse", |b| {
        b.iter_batched(
            || (),
            |()| serde_json::from_slice::<Value>(black_box(&body)).ok(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("b_dom_parse_convert", |b| {
        b.iter_batched(
            || (),
            |()| dom_frames(&rule, black_box(&body)),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("c_fast_convert_encode", |b| {
        b.iter_batched(
            || (),
            |()| {
                let frames = fast_frames(&rule, black_box(&body));
                black_box(encode(&frames));
                frames
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("d_dom_parse_convert_encode", |b| {
        b.iter_batched(
            || (),
            |()| {
                let out = dom_frames(&rule, black_box(&body));
                black_box(encode(&out.0));
                out
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("e_fast_convert", |b| {
        b.iter_batched(
            || (),
            |()| fast_frames(&rule, black_box(&body)),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// CPU time of this thread (not affected by other processes on a busy machine).
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall and thread-CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (w, c) = (std::time::Instant::now(), cpu_now());
    let out = f();
    (out, w.elapsed(), cpu_now() - c)
}

/// `CONVERSION_PHASES=N`: no criterion; N runs on the 50 MB document, each timing the bare
/// serde_json parse, the fast conversion and the encoding (wall and thread CPU time), e.g. on
/// a busy machine or under `perf record`.
fn phases(runs: usize) {
    // `CONVERSION_ONLY=cold_body`: the cold-path body of `grpc_load` (1,000 rows of time,
    // value, host; ~62 kB) converted and encoded, a deterministic target for callgrind.
    if std::env::var("CONVERSION_ONLY").as_deref() == Ok("cold_body") {
        let (body, rule) = cold_body();
        for _ in 0..runs {
            black_box(encode(&fast_frames(&rule, &body)));
        }
        return;
    }
    let body = document(200_000);
    let rule = rule();
    // `CONVERSION_ONLY=parse|fast|fast_encode`: run just that (for `perf stat` comparisons).
    match std::env::var("CONVERSION_ONLY").as_deref() {
        Ok("parse") => {
            for _ in 0..runs {
                black_box(serde_json::from_slice::<Value>(&body).ok());
            }
            return;
        }
        Ok("fast") => {
            for _ in 0..runs {
                black_box(fast_frames(&rule, &body));
            }
            return;
        }
        Ok("fast_encode") => {
            for _ in 0..runs {
                black_box(encode(&fast_frames(&rule, &body)));
            }
            return;
        }
        _ => {}
    }
    for _ in 0..runs {
        let (doc, pw, pc) = timed(|| serde_json::from_slice::<Value>(&body).ok());
        drop(doc);
        let (frames, fw, fc) = timed(|| fast_frames(&rule, &body));
        let (bytes, ew, ec) = timed(|| encode(&frames));
        drop(frames);
        eprintln!(
            "cpu: parse {pc:.1?}, fast {fc:.1?} + encode {ec:.1?} = {:.2}x | wall: parse \
             {pw:.1?}, fast {fw:.1?} + encode {ew:.1?} ({bytes} IPC bytes)",
            (fc + ec).as_secs_f64() / pc.as_secs_f64()
        );
    }
}

fn conversion(c: &mut Criterion) {
    if let Some(runs) = std::env::var("CONVERSION_PHASES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        phases(runs);
        return;
    }
    bench_size(c, "50MB", 200_000, true);
    bench_size(c, "1000rows", 1_000, false);
}

criterion_group!(benches, conversion);
criterion_main!(benches);
