//! Equivalence tests of the fast path: both paths on generated and hand-written documents,
//! for every rule shape, format and field type; and the scanner against serde_json on
//! mutated bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};

use super::*;
use crate::convert::convert;
use crate::rule::compile_standalone;

// ---------------------------------------------------------------------------------------
// Harness

fn rule(response: Value) -> Rule {
    compile_standalone(&json!({"id": "r", "request": {"url": "/x"}, "response": response}))
        .unwrap_or_else(|e| panic!("rule does not compile: {e}\n{response}"))
}

/// The DOM path's outcome as text (frames in Debug form: every value, NaN and -0.0 told
/// apart by their Debug text).
fn dom_outcome(rule: &Rule, body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Err(e) => format!("not json: {e}"),
        Ok(doc) => match convert(rule, &doc, Some("q".into())) {
            Ok(frames) => format!("{frames:#?}"),
            Err(e) => format!("error: {e}"),
        },
    }
}

fn fast_outcome(rule: &Rule, body: &[u8]) -> String {
    match try_convert(rule, body, Some("q".into())).expect("rule is eligible") {
        Ok(frames) => format!("{frames:#?}"),
        Err(FastError::NotJson(e)) => format!("not json: {e}"),
        Err(FastError::Convert(e)) => format!("error: {e}"),
    }
}

#[derive(Default, Debug)]
struct Tally {
    docs: usize,
    ok: usize,
    errors: usize,
    not_json: usize,
    /// Valid documents the fast path handed to the DOM path (mismatch errors only).
    fell_back: usize,
}

/// Runs both paths and asserts the same outcome; also that a valid document is only handed
/// to the DOM path when the outcome is a mismatch error.
fn check(rule: &Rule, body: &[u8], tally: &mut Tally) {
    let dom = dom_outcome(rule, body);
    let fast = fast_outcome(rule, body);
    if dom != fast {
        panic!(
            "outcomes differ\nbody: {}\n--- dom:\n{dom}\n--- fast:\n{fast}",
            String::from_utf8_lossy(body)
        );
    }
    tally.docs += 1;
    let plan = Plan::compile(rule).unwrap();
    let stopped = plan.run(body, Vec::new()).err();
    if dom.starts_with("not json") {
        tally.not_json += 1;
        assert_eq!(
            stopped,
            Some(Stop::Invalid),
            "{}",
            String::from_utf8_lossy(body)
        );
    } else if dom.starts_with("error") {
        tally.errors += 1;
        if stopped == Some(Stop::Fallback) {
            tally.fell_back += 1;
        }
    } else {
        tally.ok += 1;
        assert_eq!(stopped, None, "{}", String::from_utf8_lossy(body));
    }
}

fn check_text(rule: &Rule, body: &str) -> String {
    let mut t = Tally::default();
    check(rule, body.as_bytes(), &mut t);
    fast_outcome(rule, body.as_bytes())
}

// ---------------------------------------------------------------------------------------
// A small deterministic generator

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A JSON document as written: scalars as raw token text, keys as raw string literals,
/// objects may repeat keys.
#[derive(Clone, Debug)]
enum J {
    Raw(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

fn raw(t: &str) -> J {
    J::Raw(t.to_owned())
}

fn key(k: &str) -> String {
    serde_json::to_string(k).unwrap()
}

fn obj(members: Vec<(&str, J)>) -> J {
    J::Obj(members.into_iter().map(|(k, v)| (key(k), v)).collect())
}

fn ws(rng: &mut Rng, out: &mut String) {
    out.push_str(match rng.below(10) {
        0 => " ",
        1 => "\n  ",
        2 => "\t",
        3 => "\r\n",
        _ => "",
    });
}

fn write(j: &J, rng: &mut Rng, out: &mut String) {
    match j {
        J::Raw(t) => out.push_str(t),
        J::Arr(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                write(x, rng, out);
                ws(rng, out);
            }
            out.push(']');
        }
        J::Obj(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                out.push_str(k);
                ws(rng, out);
                out.push(':');
                ws(rng, out);
                write(v, rng, out);
                ws(rng, out);
            }
            out.push('}');
        }
    }
}

fn text(j: &J, rng: &mut Rng) -> String {
    let mut out = String::new();
    ws(rng, &mut out);
    write(j, rng, &mut out);
    ws(rng, &mut out);
    out
}

const NUMS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "42",
    "1.5",
    "-2.25",
    "0.1",
    "1e3",
    "1E-7",
    "2.5e+3",
    "-0.0",
    "0e0",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234",
    "0.30000000000000004",
    "1795367777.517",
    "1704067200",
    "1704067200123",
    "1704067200123456",
    "1704067200123456789",
    "1704067200.5",
    "1.0",
    "100.000",
    "3.14159265358979323846264338327950288",
    "1e22",
    "1e23",
    "-1e-22",
    "1.5e-23",
    "12345678901234567890.5",
    "5e-324",
    "1e-400",
    "1.7976931348623157e308",
    "1e308",
    "0.000001",
    "-123.456e-5",
    "2",
    "3",
];

const STRS: &[&str] = &[
    r#""abc""#,
    r#""""#,
    r#""héllo ✓ 日本""#,
    r#""a\"b""#,
    r#""back\\slash""#,
    r#""line\nbreak\ttab""#,
    r#""\u00e9t\u00e9""#,
    r#""\ud83d\ude00 smile""#,
    r#""a\/b""#,
    r#""1.5""#,
    r#"" 42 ""#,
    r#""NaN""#,
    r#""nan""#,
    r#""+Inf""#,
    r#""-Inf""#,
    r#""Infinity""#,
    r#""inf""#,
    r#""true""#,
    r#""yes""#,
    r#""No""#,
    r#""0""#,
    r#""1""#,
    r#""2024-01-01T00:00:00Z""#,
    r#""2024-01-01T01:00:00+01:00""#,
    r#""2024-07-01T12:34:56.789Z""#,
    r#""2024-07-01T12:34:56.123456789-05:30""#,
    r#""2024-01-01T00:00:00""#,
    r#""2024-03-31T02:30:00""#,
    r#""2024-01-01""#,
    r#"" 2024-01-01T00:00:00Z ""#,
    r#""2024-13-01T00:00:00Z""#,
    r#""2024-01-01T00:00:00z""#,
    r#""2024-01-01 00:00:00Z""#,
    r#""1704067200""#,
    r#""1704067200000""#,
    r#""1704067200.5""#,
    r#""2024-01-01 00:00:00""#,
    r#""2024-01-01T00:00:00\u005a""#,
    r#""9999-12-31T23:59:59Z""#,
    r#""2300-01-01T00:00:00Z""#,
    r#""-1e3""#,
    r#""12""#,
    r#""12.0""#,
    r#""9223372036854775807""#,
    r#""92233720368547758070""#,
    r#""1e400""#,
    r#""a very long string that is longer than sixty-four bytes, so the first bad value is cut…""#,
    r#""ééééééééééééééééééééééééééééééééééééééééééééééééééééééé""#,
];

fn rand_num(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 | 1 => (rng.pick(NUMS)).to_owned(),
        2 => ((rng.next() as i64) >> rng.below(64)).to_string(),
        3 => {
            let mut s = String::new();
            if rng.chance(30) {
                s.push('-');
            }
            let int_digits = rng.below(14);
            if int_digits == 0 {
                s.push('0');
            } else {
                s.push(char::from(b'1' + rng.below(9) as u8));
                for _ in 1..int_digits {
                    s.push(char::from(b'0' + rng.below(10) as u8));
                }
            }
            if rng.chance(70) {
                s.push('.');
                for _ in 0..1 + rng.below(12) {
                    s.push(char::from(b'0' + rng.below(10) as u8));
                }
            }
            if rng.chance(30) {
                s.push(rng.pick(&['e', 'E']));
                s.push_str(rng.pick(&["", "+", "-"]));
                s.push_str(&rng.below(30).to_string());
            }
            s
        }
        _ => format!("{}", (rng.next() % 10_000_000) as f64 / 1000.0),
    }
}

fn rand_time_str(rng: &mut Rng) -> String {
    let (m, d, h, mi, s) = (
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
    );
    let zone = rng.pick(&["Z", "+01:00", "-07:00", "", ".5Z", ".123456+02:00"]);
    format!("\"2024-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{zone}\"")
}

/// A scalar or small container, biased towards `hint` (a field type word).
fn rand_value(rng: &mut Rng, hint: &str, depth: usize) -> J {
    let roll = rng.below(100);
    if roll < 6 {
        return raw("null");
    }
    if roll < 9 && depth < 3 {
        return rand_container(rng, depth + 1);
    }
    if roll < 14 {
        return raw(rng.pick(&["true", "false"]));
    }
    if roll < 30 {
        return J::Raw(rand_num(rng));
    }
    if roll < 42 {
        return raw(rng.pick(STRS));
    }
    match hint {
        "time" => {
            if rng.chance(60) {
                J::Raw(rand_time_str(rng))
            } else {
                J::Raw(
                    (1_600_000_000u64 + rng.next() % 200_000_000)
                        .saturating_mul(rng.pick(&[1, 1000, 1_000_000]))
                        .to_string(),
                )
            }
        }
        "number" | "int" => {
            if rng.chance(20) {
                J::Raw(format!("\"{}\"", rand_num(rng)))
            } else {
                J::Raw(rand_num(rng))
            }
        }
        "bool" => raw(rng.pick(&["true", "false", "0", "1", "\"yes\"", "\"no\"", "2"])),
        _ => {
            if rng.chance(50) {
                raw(rng.pick(STRS))
            } else {
                J::Raw(key(&format!("s{}", rng.below(5))))
            }
        }
    }
}

fn rand_container(rng: &mut Rng, depth: usize) -> J {
    let n = rng.below(4);
    if rng.chance(50) {
        J::Arr((0..n).map(|_| rand_value(rng, "any", depth)).collect())
    } else {
        let keys = ["z", "a", "m", "a", "é", ""];
        J::Obj(
            (0..n)
                .map(|_| (key(rng.pick(&keys)), rand_value(rng, "any", depth)))
                .collect(),
        )
    }
}

/// Record keys and the type their values lean to.
const RECORD: &[(&str, &str)] = &[
    ("t", "time"),
    ("v", "number"),
    ("n", "int"),
    ("s", "string"),
    ("b", "bool"),
    ("j", "json"),
    ("é", "string"),
    ("k k", "number"),
];

/// One row object: the record keys (some missing, repeated, escaped), nested `m`, an
/// array `arr` and noise.
fn record(rng: &mut Rng) -> J {
    let mut members: Vec<(String, J)> = Vec::new();
    for (k, hint) in RECORD {
        if rng.chance(85) {
            let written = if rng.chance(10) {
                // The same key written with escapes.
                let mut e = String::from("\"");
                for c in k.chars() {
                    e.push_str(&format!("\\u{:04x}", c as u32));
                }
                e.push('"');
                e
            } else {
                key(k)
            };
            members.push((written, rand_value(rng, hint, 0)));
        }
        if rng.chance(4) {
            members.push((key(k), rand_value(rng, hint, 0)));
        }
    }
    if rng.chance(80) {
        let mut m = vec![
            (key("x"), rand_value(rng, "number", 1)),
            (key("y"), rand_value(rng, "string", 1)),
        ];
        if rng.chance(10) {
            m.push((key("x"), rand_value(rng, "number", 1)));
        }
        members.push((key("m"), J::Obj(m)));
        if rng.chance(5) {
            // A repeated `m` without `y`: only its `x` counts.
            members.push((key("m"), obj(vec![("x", rand_value(rng, "number", 1))])));
        }
    }
    if rng.chance(70) {
        let n = rng.below(4);
        members.push((
            key("arr"),
            J::Arr((0..n).map(|_| rand_value(rng, "time", 1)).collect()),
        ));
    }
    if rng.chance(30) {
        members.push((key("noise"), rand_container(rng, 0)));
    }
    // Shuffle a little.
    for i in (1..members.len()).rev() {
        if rng.chance(30) {
            let j = rng.below(i + 1);
            members.swap(i, j);
        }
    }
    if rng.chance(3) {
        return rand_value(rng, "any", 0);
    }
    J::Obj(members)
}

fn records(rng: &mut Rng, max: usize) -> J {
    let n = rng.below(max + 1);
    J::Arr((0..n).map(|_| record(rng)).collect())
}

/// Row-relative field paths of a record.
const ROW_PATHS: &[&str] = &[
    "$.t", "$['v']", "$.n", "$[\"s\"]", "$.b", "$.j", "$.é", "$['k k']", "$.m.x", "$['m'].y",
    "$.arr[0]", "$.arr[1]", "$", "@key", "@index",
];

const TYPES: &[&str] = &["time", "number", "int", "string", "bool", "json"];

const FORMATS: &[&str] = &[
    "auto",
    "table",
    "timeseries",
    "timeseries-wide",
    "numeric",
    "numeric-wide",
    "logs",
];

fn time_extras(rng: &mut Rng, field: &mut serde_json::Map<String, Value>) {
    if rng.chance(40) {
        let f = rng.pick(&[
            "auto",
            "rfc3339",
            "epoch_s",
            "epoch_ms",
            "epoch_ns",
            "%Y-%m-%d %H:%M:%S",
        ]);
        field.insert("format".into(), json!(f));
    }
    if rng.chance(30) {
        let z = rng.pick(&[
            "Europe/Berlin",
            "America/New_York",
            "UTC",
            "${__response.tz}",
            "${__response.meta.zone}",
        ]);
        field.insert("timezone".into(), json!(z));
    }
}

/// Fields from `paths` with random types (the first usually a time, the second a number,
/// so the typed formats come up).
/// Row-relative wildcard paths: `type: json` only (always a list).
const ROW_LIST_PATHS: &[&str] = &[
    "$.arr[*]",
    "$.m.*",
    "$.noise[*]",
    "$.noise.*.a",
    "$[*]",
    "$.j[*][0]",
];

fn rand_fields(rng: &mut Rng, paths: &[&str]) -> Vec<Value> {
    rand_fields_with(rng, paths, &[])
}

fn rand_fields_with(rng: &mut Rng, paths: &[&str], list_paths: &[&str]) -> Vec<Value> {
    let n = 1 + rng.below(5);
    let mut out = Vec::new();
    for i in 0..n {
        let mut path = rng.pick(paths);
        let kind = match i {
            0 if rng.chance(70) => "time",
            1 if rng.chance(70) => "number",
            _ => rng.pick(TYPES),
        };
        if kind == "json" && !list_paths.is_empty() && rng.chance(50) {
            path = rng.pick(list_paths);
        }
        let mut f = serde_json::Map::new();
        f.insert("name".into(), json!(format!("f{i}")));
        f.insert("path".into(), json!(path));
        f.insert("type".into(), json!(kind));
        if kind == "time" {
            time_extras(rng, &mut f);
        }
        out.push(Value::Object(f));
    }
    out
}

fn response(rng: &mut Rng, mut shape: Value, fields: Vec<Value>) -> Value {
    let format = match rng.below(10) {
        0..=3 => "auto",
        4 | 5 => "table",
        _ => rng.pick(FORMATS),
    };
    shape["fields"] = Value::Array(fields.clone());
    shape["format"] = json!(format);
    if rng.chance(30) {
        let strings: Vec<&Value> = fields.iter().filter(|f| f["type"] == "string").collect();
        if let Some(f) = strings.first() {
            shape["seriesBy"] = json!([f["name"]]);
        }
    }
    shape
}

/// A root object around `inner` at `key`, maybe with a zone and noise (and `key` repeated).
fn wrap(rng: &mut Rng, key_name: &str, inner: J) -> J {
    let mut members = Vec::new();
    if rng.chance(30) {
        members.push((
            key("tz"),
            raw(rng.pick(&["\"Europe/Berlin\"", "\"Nowhere/City\"", "5"])),
        ));
    }
    if rng.chance(10) {
        members.push((key(key_name), rand_value(rng, "any", 0)));
    }
    members.push((key(key_name), inner));
    if rng.chance(20) {
        members.push((key("meta"), obj(vec![("zone", raw("\"Asia/Tokyo\""))])));
    }
    if rng.chance(20) {
        members.push((key("noise"), rand_container(rng, 0)));
    }
    J::Obj(members)
}

/// (rule response, document) for family `fam`.
fn case(rng: &mut Rng, fam: usize) -> (Value, J) {
    match fam {
        // rows $[*] over a root array.
        0 => {
            let fields = rand_fields_with(rng, ROW_PATHS, ROW_LIST_PATHS);
            (
                response(rng, json!({"rows": "$[*]"}), fields),
                records(rng, 12),
            )
        }
        // rows deeper, the container maybe repeated.
        1 => {
            let fields = rand_fields_with(rng, ROW_PATHS, ROW_LIST_PATHS);
            let items = records(rng, 10);
            let doc = wrap(rng, "data", obj(vec![("items", items)]));
            (
                response(rng, json!({"rows": "$.data.items[*]"}), fields),
                doc,
            )
        }
        // rows from an object's members (key order, repeated keys).
        2 => {
            let fields = rand_fields_with(rng, ROW_PATHS, ROW_LIST_PATHS);
            let n = rng.below(8);
            let names = ["SE3", "SE1", "NO2", "a", "é", "B", "SE1", ""];
            let areas = J::Obj(
                (0..n)
                    .map(|_| (key(rng.pick(&names)), record(rng)))
                    .collect(),
            );
            let path = rng.pick(&["$.areas.*", "$.areas[*]", "$['areas'][*]"]);
            (
                response(rng, json!({"rows": path}), fields),
                wrap(rng, "areas", areas),
            )
        }
        // Prometheus-like: frames, labelsFrom, labels, rows of pairs, a ^ field.
        3 => {
            let n = rng.below(5);
            let results = J::Arr(
                (0..n)
                    .map(|_| {
                        let metric = J::Obj(
                            (0..rng.below(4))
                                .map(|_| {
                                    (
                                        key(rng.pick(&["job", "instance", "le", "job"])),
                                        rand_value(rng, "string", 2),
                                    )
                                })
                                .collect(),
                        );
                        let m = rng.below(6);
                        let values = J::Arr(
                            (0..m)
                                .map(|_| {
                                    J::Arr(vec![
                                        rand_value(rng, "time", 2),
                                        J::Raw(format!("\"{}\"", rand_num(rng))),
                                    ])
                                })
                                .collect(),
                        );
                        let mut members = vec![
                            (key("metric"), metric),
                            (key("values"), values),
                            (key("start"), rand_value(rng, "time", 1)),
                        ];
                        if rng.chance(20) {
                            members.push((key("metric"), rand_value(rng, "any", 1)));
                        }
                        if rng.chance(50) {
                            members.push((key("name"), rand_value(rng, "string", 1)));
                        }
                        J::Obj(members)
                    })
                    .collect(),
            );
            let paths = [
                "$[0]",
                "$[1]",
                "$[2]",
                "^.start",
                "^['name']",
                "@index",
                "@key",
            ];
            let fields = rand_fields(rng, &paths);
            let mut shape = json!({"frames": "$.data.result[*]", "rows": "$.values[*]"});
            if rng.chance(70) {
                shape["labelsFrom"] = json!("$.metric");
            }
            if rng.chance(50) {
                shape["labels"] = json!({"name": "$.name", "start": "$.start", "all": "$.values"});
            }
            let doc = wrap(rng, "data", obj(vec![("result", results)]));
            (response(rng, shape, fields), doc)
        }
        // Column mode over parallel arrays (ragged sometimes).
        4 => {
            let n = rng.below(8);
            let col = |rng: &mut Rng, hint: &str, n: usize| {
                J::Arr((0..n).map(|_| rand_value(rng, hint, 1)).collect())
            };
            let n2 = if rng.chance(10) { n + 1 } else { n };
            let hourly = obj(vec![
                ("time", col(rng, "time", n)),
                ("t", col(rng, "number", n)),
                ("u", col(rng, "int", n2)),
                ("first", col(rng, "number", 2)),
                (
                    "w",
                    J::Obj(
                        (0..n)
                            .map(|i| (key(&format!("k{}", n - i)), rand_value(rng, "string", 1)))
                            .collect(),
                    ),
                ),
            ]);
            let paths = [
                "$.hourly.time[*]",
                "$.hourly.t[*]",
                "$.hourly.u[*]",
                "$.hourly.w.*",
                "$.hourly.first[0]",
                "@index",
                "@key",
                "^.hourly.first[1]",
            ];
            let fields = rand_fields(rng, &paths);
            (
                response(rng, json!({}), fields),
                wrap(rng, "hourly", hourly),
            )
        }
        // Column mode through a wildcard with suffixes ($.data[*].x).
        5 => {
            let paths = [
                "$.data[*].t",
                "$.data[*]['v']",
                "$.data[*].m.x",
                "$.data[*].arr[0]",
                "$.data[*]",
                "$.data.*.n",
                "@index",
            ];
            let fields = rand_fields(rng, &paths);
            let data = if rng.chance(80) {
                records(rng, 8)
            } else {
                J::Obj(
                    (0..rng.below(5))
                        .map(|_| (key(rng.pick(&["b", "a", "b", "c"])), record(rng)))
                        .collect(),
                )
            };
            (response(rng, json!({}), fields), wrap(rng, "data", data))
        }
        // Frames from an object's members, rows $[*].
        6 => {
            let fields = rand_fields_with(rng, ROW_PATHS, ROW_LIST_PATHS);
            let n = rng.below(4);
            let groups = J::Obj(
                (0..n)
                    .map(|_| (key(rng.pick(&["g1", "g0", "g1", "x"])), records(rng, 4)))
                    .collect(),
            );
            (
                response(rng, json!({"frames": "$.groups.*", "rows": "$[*]"}), fields),
                wrap(rng, "groups", groups),
            )
        }
        // A single frame node by path, labels, rows.
        7 => {
            let fields = rand_fields_with(rng, ROW_PATHS, ROW_LIST_PATHS);
            let result = obj(vec![
                ("name", rand_value(rng, "string", 1)),
                ("rows", records(rng, 6)),
                ("host", rand_value(rng, "string", 1)),
            ]);
            let shape = json!({"frames": "$.result", "rows": "$.rows[*]",
                "labels": {"name": "$.name", "host": "$['host']"}});
            (response(rng, shape, fields), wrap(rng, "result", result))
        }
        // One row by path.
        8 => {
            let fields = rand_fields_with(rng, ROW_PATHS, ROW_LIST_PATHS);
            let current = record(rng);
            (
                response(rng, json!({"rows": "$.current"}), fields),
                wrap(rng, "current", current),
            )
        }
        // Column mode without wildcards: one row from the root object.
        9 => {
            let paths = ["$.t", "$.v", "$.m.x", "$.arr[0]", "$.s", "@index", "@key"];
            let fields = rand_fields(rng, &paths);
            (response(rng, json!({}), fields), record(rng))
        }
        // Frames over a root array, column mode inside.
        _ => {
            let n = rng.below(4);
            let nodes = J::Arr(
                (0..n)
                    .map(|_| {
                        obj(vec![
                            ("name", rand_value(rng, "string", 1)),
                            ("rows", records(rng, 4)),
                        ])
                    })
                    .collect(),
            );
            let paths = ["$.rows[*].v", "$.rows[*].t", "@index", "@key", "^.name"];
            let fields = rand_fields(rng, &paths);
            let shape = json!({"frames": "$[*]", "labels": {"name": "$.name"}});
            (response(rng, shape, fields), nodes)
        }
    }
}

const FAMILIES: usize = 11;

#[test]
fn generated_documents_give_identical_frames() {
    let mut rng = Rng(0x5EED);
    let mut tally = Tally::default();
    let mut rules = 0;
    for round in 0..400 {
        for fam in 0..FAMILIES {
            let (resp, _) = case(&mut rng, fam);
            let Ok(r) = std::panic::catch_unwind(|| rule(resp.clone())) else {
                panic!("round {round} family {fam}: bad rule {resp}");
            };
            assert!(is_eligible(&r), "family {fam} not eligible: {resp}");
            rules += 1;
            for _ in 0..6 {
                let (_, doc) = case(&mut rng, fam);
                let body = text(&doc, &mut rng);
                check(&r, body.as_bytes(), &mut tally);
            }
        }
    }
    eprintln!("generated: {rules} rules, {tally:?}");
    assert!(tally.ok > 12_000, "{tally:?}");
    assert!(tally.errors > 1_000 && tally.fell_back > 100, "{tally:?}");
}

/// Truncations and byte flips of generated documents: both paths reject (or accept) them
/// alike, with serde_json's message.
#[test]
fn mutated_documents_give_identical_outcomes() {
    let mut rng = Rng(42);
    let mut tally = Tally::default();
    for _ in 0..3000 {
        let fam = rng.below(FAMILIES);
        let (resp, doc) = case(&mut rng, fam);
        let r = rule(resp);
        let body = text(&doc, &mut rng).into_bytes();
        let mutated = mutate(&mut rng, &body);
        check(&r, &mutated, &mut tally);
    }
    eprintln!("mutated: {tally:?}");
    assert!(tally.not_json > 1000, "{tally:?}");
}

// ---------------------------------------------------------------------------------------
// The scanner against serde_json

/// The scanner's verdict on a whole document.
fn scanner_accepts(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let mut sc = Sc::new(text);
    sc.ws();
    if sc.skip().is_err() {
        return false;
    }
    sc.ws();
    sc.pos == body.len()
}

const NOISE: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b",", b":", b"\"", b"\\", b" ", b"0", b"-", b"+", b".", b"e", b"E",
    b"t", b"n", b"u", b"\\u", b"\\ud800", b"\\udc00", b"\x01", b"\x7f", b"\xff", b"\xc3", b"\xe9",
    b"1e400", b"9", b"\n", b"x",
];

fn mutate(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    for _ in 0..1 + rng.below(2) {
        let at = if out.is_empty() {
            0
        } else {
            rng.below(out.len() + 1)
        };
        match rng.below(5) {
            0 => out.truncate(at),
            1 if at < out.len() => {
                out.remove(at);
            }
            2 if at < out.len() => out[at] = rng.pick(NOISE)[0],
            _ => {
                let ins = rng.pick(NOISE);
                out.splice(at..at, ins.iter().copied());
            }
        }
    }
    out
}

#[test]
fn scanner_accepts_exactly_what_serde_json_accepts() {
    let fixed: Vec<Vec<u8>> = [
        "",
        " ",
        "null",
        " null ",
        "nul",
        "nullx",
        "true",
        "tru",
        "false",
        "[]",
        "{}",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{1:2}",
        "{\"a\" 1}",
        "{\"a\":}",
        "[1 2]",
        "[1] x",
        "[1],",
        "01",
        "-",
        "-01",
        "1.",
        ".5",
        "1e",
        "1e+",
        "1.0e-",
        "+1",
        "-0",
        "-0.0e-0",
        "1e309",
        "-1e309",
        "1e308",
        "1.8e308",
        "1.7976931348623157e308",
        "17976931348623157e292",
        "1e-400",
        "0e999999999999",
        "1e99999999999",
        "1e-99999999999",
        "123456789012345678901234567890e280",
        "1234567890123456789012345678901234567890e270",
        "0.000000000000000000000000000000000000001e330",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\ud800\\n\"",
        "\"\\ud800x\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\\uDE00\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"a\tb\"",
        "\"a\nb\"",
        "\"\\\"",
        "\"abc",
        "\u{feff}[]",
        "[\"é\"]",
        "\"\\/\"",
        "[1]\n",
        "\t{\"a\" :\r\n1 }",
        "{\"a\":1}{}",
        "[1e5, 2E-3, -0.5e+2]",
        "[0.1.2]",
        "[1e5e5]",
        "[--1]",
        "[-]",
        "[1,,2]",
        "[true false]",
        "{\"a\":1 \"b\":2}",
        "{\"a\":1,\"a\":2}",
        "[[[]]]",
        "[{}]",
        "{\"\":\"\"}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([
        b"[\"\xff\"]".to_vec(),
        b"[\"\xc3\"]".to_vec(),
        b"[1]\xff".to_vec(),
        b"\xc3\xa9".to_vec(),
        format!("{}1{}", "[".repeat(127), "]".repeat(127)).into_bytes(),
        format!("{}1{}", "[".repeat(128), "]".repeat(128)).into_bytes(),
        format!(
            "{}{}",
            "{\"a\":".repeat(127),
            "1".to_owned() + &"}".repeat(127)
        )
        .into_bytes(),
        format!(
            "{}{}",
            "{\"a\":".repeat(128),
            "1".to_owned() + &"}".repeat(128)
        )
        .into_bytes(),
        format!("[{}]", "9".repeat(400)).into_bytes(),
        format!("[{}]", "9".repeat(300)).into_bytes(),
        format!("[0.{}1]", "0".repeat(400)).into_bytes(),
        format!("[{}.5e-300]", "9".repeat(310)).into_bytes(),
    ])
    .collect();
    let mut checked = 0usize;
    for body in &fixed {
        let serde_ok = serde_json::from_slice::<Value>(body).is_ok();
        assert_eq!(
            scanner_accepts(body),
            serde_ok,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        checked += 1;
    }
    let mut rng = Rng(7);
    let mut rejected = 0usize;
    for _ in 0..60_000 {
        let fam = rng.below(FAMILIES);
        let (_, doc) = case(&mut rng, fam);
        let body = text(&doc, &mut rng).into_bytes();
        let mutated = if rng.chance(90) {
            mutate(&mut rng, &body)
        } else {
            body
        };
        let serde_ok = serde_json::from_slice::<Value>(&mutated).is_ok();
        assert_eq!(
            scanner_accepts(&mutated),
            serde_ok,
            "{:?}",
            String::from_utf8_lossy(&mutated)
        );
        rejected += usize::from(!serde_ok);
        checked += 1;
    }
    // Numbers alone: the exact-value formula and the range checks.
    for _ in 0..100_000 {
        let n = rand_num(&mut rng);
        let body = format!("[{n}]");
        let serde = serde_json::from_str::<Value>(&body);
        assert_eq!(scanner_accepts(body.as_bytes()), serde.is_ok(), "{body}");
        if let Ok(Value::Array(v)) = serde {
            let mut sc = Sc::new(&n);
            let leaf = sc.leaf().unwrap();
            let mine = leaf_value(&n, leaf).unwrap();
            assert_eq!(format!("{mine:?}"), format!("{:?}", v[0]), "{n}");
            if let Kind::Num(num) = leaf.kind() {
                if num.exact() {
                    let dom = crate::convert::to_f64(&v[0]).map(f64::to_bits);
                    assert_eq!(Some(exact_f64(num).to_bits()), dom, "{n}");
                }
            }
            if let (Value::Number(a), Value::Number(b)) = (&mine, &v[0]) {
                assert_eq!(
                    a.as_f64().map(f64::to_bits),
                    b.as_f64().map(f64::to_bits),
                    "{n}"
                );
            }
        }
        checked += 1;
    }
    eprintln!("scanner: {checked} documents checked, {rejected} mutated ones rejected");
    assert!(rejected > 20_000);
}

// ---------------------------------------------------------------------------------------
// Hand-written cases

#[test]
fn hand_written_cases() {
    let row_rule = |fields: Value, format: &str| {
        rule(json!({"rows": "$[*]", "format": format, "fields": fields}))
    };
    let all_types = json!([
        {"name": "t", "path": "$.t", "type": "time"},
        {"name": "v", "path": "$.v", "type": "number"},
        {"name": "n", "path": "$.n", "type": "int"},
        {"name": "s", "path": "$.s"},
        {"name": "b", "path": "$.b", "type": "bool"},
        {"name": "j", "path": "$.j", "type": "json"}]);
    let docs = [
        "[]",
        " [ ] ",
        "{}",
        "null",
        "[{}]",
        "[null, 1, \"x\", [], {}]",
        r#"[{"t": "2024-01-01T00:00:00Z", "v": "NaN", "n": 9007199254740993, "s": "a\u0000b", "b": "yes", "j": {"b": 1, "a": [1, 2.50]}}]"#,
        r#"[{"t": 1704067200, "v": "+Inf", "n": "12", "s": 1.50, "b": 1, "j": "x"}]"#,
        r#"[{"t": "1704067200.5", "v": "-Inf", "n": 12.0, "s": -0, "b": 0, "j": -0.0}]"#,
        r#"[{"t": "2024-01-01", "v": " 1.5 ", "n": 1e3, "s": true, "b": "TRUE", "j": null}]"#,
        r#"[{"t": "bogus", "v": "abc", "n": 1.5, "s": {"z": 1, "a": 2, "z": 3}, "b": 2, "j": [1, {"y": 1, "x": 2}]}]"#,
        r#"[{"t": 1, "t": "2024-01-01T00:00:00Z", "v": 1, "v": null}]"#,
        r#"[{"v": 18446744073709551616, "n": 18446744073709551615}, {"v": -9223372036854775809, "n": -9223372036854775808}]"#,
        r#"[{"v": 1e-400, "n": -0}, {"v": 5e-324, "n": 9.2e18}, {"v": 0.1e1, "n": 9.3e18}]"#,
        r#"[{"\u0074": "2024-01-01T00:00:00Z", "\u0076": 1}]"#,
        r#"[{"s": "\ud83d\ude00", "j": "\u00e9\/\""}]"#,
        "[{\"v\": 1}] x",
        "[{\"v\": 1}],",
        "[{\"v\": 1e400}]",
        "[{\"v\": \"\\ud800\"}]",
        "<html>",
        "",
    ];
    let mut count = 0;
    for format in FORMATS {
        let r = row_rule(all_types.clone(), format);
        for d in docs {
            check_text(&r, d);
            count += 1;
        }
        let r = row_rule(
            json!([{"name": "t", "path": "$.t", "type": "time"},
                   {"name": "v", "path": "$.v", "type": "number"},
                   {"name": "s", "path": "$.s"}]),
            format,
        );
        for d in docs {
            check_text(&r, d);
            count += 1;
        }
    }
    // Rows from an object: key order, repeated keys, @key and @index.
    let r = rule(json!({"rows": "$.areas.*", "fields": [
        {"name": "area", "path": "@key"},
        {"name": "i", "path": "@index", "type": "int"},
        {"name": "price", "path": "$.price", "type": "number"}]}));
    let out = check_text(
        &r,
        r#"{"areas": {"SE4": {"price": "2.5"}, "SE3": {"price": 1.25}, "SE4": {"price": "x"}, "A": 1}}"#,
    );
    assert!(
        out.contains("\"A\"") && out.contains("first: \\\"x\\\""),
        "{out}"
    );
    // A repeated rows container keeps only the last one.
    let r = rule(
        json!({"rows": "$.data[*]", "fields": [{"name": "v", "path": "$.v", "type": "number"}]}),
    );
    let out = check_text(
        &r,
        r#"{"data": [{"v": 1}, {"v": "bad"}], "data": [{"v": 2}]}"#,
    );
    assert!(!out.contains("bad"), "{out}");
    check_text(&r, r#"{"data": [{"v": 1}], "data": 5}"#);
    check_text(&r, r#"{"data": {"b": {"v": 1}, "a": {"v": 2}}}"#);
    // Deep nesting inside skipped and selected values.
    let deep = format!(
        "{{\"data\": [{{\"v\": 1, \"x\": {}1{}}}]}}",
        "[".repeat(120),
        "]".repeat(120)
    );
    check_text(&r, &deep);
    let too_deep = format!(
        "{{\"data\": [{{\"v\": 1, \"x\": {}1{}}}]}}",
        "[".repeat(130),
        "]".repeat(130)
    );
    assert!(check_text(&r, &too_deep).starts_with("not json"));
    // Column mode: parallel arrays, ragged arrays (the DOM path's error), @key/@index.
    let r = rule(json!({"fields": [
        {"name": "time", "path": "$.hourly.time[*]", "type": "time"},
        {"name": "temp", "path": "$.hourly.t[*]", "type": "number"},
        {"name": "i", "path": "@index", "type": "int"}]}));
    check_text(
        &r,
        r#"{"hourly": {"time": ["2024-01-01T00:00Z", "2024-01-01T01:00Z"], "t": [1.5, null]}}"#,
    );
    let out = check_text(
        &r,
        r#"{"hourly": {"time": ["2024-01-01T00:00Z"], "t": [1, 2]}}"#,
    );
    assert!(out.contains("has 1 values but field 'temp' has 2"), "{out}");
    check_text(&r, r#"{"hourly": {"time": [], "t": []}}"#);
    check_text(&r, r#"{"hourly": 3}"#);
    // labelsFrom that is not an object: the DOM path's error.
    let r = rule(
        json!({"frames": "$.result[*]", "rows": "$.values[*]", "labelsFrom": "$.metric",
        "fields": [{"name": "t", "path": "$[0]", "type": "time"},
                   {"name": "v", "path": "$[1]", "type": "number"}]}),
    );
    let out = check_text(&r, r#"{"result": [{"metric": 5, "values": [[1, "2"]]}]}"#);
    assert!(out.contains("expected an object"), "{out}");
    let out = check_text(
        &r,
        r#"{"result": [{"metric": {"b": 1, "a": "x", "c": null, "d": true, "e": [1]}, "values": [[1704067200, "2"], [1704067100, "NaN"], [null, "1"]]}]}"#,
    );
    assert!(out.contains("timeseries-multi"), "{out}");
    // The zone read from the response, found or not.
    let r = rule(json!({"rows": "$.rows[*]", "fields": [
        {"name": "t", "path": "$.t", "type": "time", "timezone": "${__response.tz}"},
        {"name": "v", "path": "$.v", "type": "number"}]}));
    check_text(
        &r,
        r#"{"rows": [{"t": "2024-07-01T02:00:00", "v": 1}], "tz": "Europe/Berlin"}"#,
    );
    check_text(
        &r,
        r#"{"rows": [{"t": "2024-07-01T02:00:00", "v": 1}], "tz": "Mars/Base"}"#,
    );
    check_text(&r, r#"{"rows": [{"t": "2024-07-01T02:00:00", "v": 1}]}"#);
    check_text(
        &r,
        r#"{"rows": [{"t": "2024-07-01T02:00:00", "v": 1}], "tz": "Europe/Berlin"} ]"#,
    );
    count += 16;
    eprintln!("hand-written: {count} documents");
}

/// Flat rows compare each key with the one the previous row had at that place, quotes
/// included (`Names::quoted_at`): keys that only look like it must still be read and looked
/// up. Names of 1, 6, 14 (the longest compared this way) and 15 bytes.
#[test]
fn learned_key_order_is_only_a_guess() {
    let r = rule(json!({"rows": "$[*]", "format": "table", "fields": [
        {"name": "a", "path": "$.a", "type": "number"},
        {"name": "b", "path": "$.bbbbbb"},
        {"name": "c", "path": "$.cccccccccccccc", "type": "int"},
        {"name": "d", "path": "$['ddddddddddddddd']"}]}));
    let learned = r#"{"a": 1, "bbbbbb": "x", "cccccccccccccc": 2, "ddddddddddddddd": "y"}"#;
    let rows = [
        // Prefixes and extensions of the learned names.
        r#"{"a2": 9, "bbbbb": "no", "ccccccccccccccc": 9, "dddddddddddddd": "no"}"#,
        r#"{"": 9, "bbbbbbb": "no", "ccccccccccccc": 9, "dddddddddddddddd": "no"}"#,
        // The learned names written with escapes, or with whitespace before the colon.
        r#"{"\u0061": 3, "bbbbb\u0062": "e", "cccccccccccccc" : 4, "ddddddddddddddd"
            : "f"}"#,
        // Another order, a repeated key (the last value wins), a missing one.
        r#"{"ddddddddddddddd": "g", "a": 5, "a": 6, "cccccccccccccc": 7}"#,
        // Keys with a quote or a backslash right after the learned name.
        r#"{"a\"": 9, "bbbbbb\\": "no", "cccccccccccccc\"": 9}"#,
    ];
    let body = format!("[{learned}, {}, {learned}]", rows.join(", "));
    let out: String = check_text(&r, &body)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    for want in [
        "Some(3.0,)",
        "Some(\"e\",)",
        "Some(4,)",
        "Some(\"f\",)",
        "Some(6.0,)",
        "Some(7,)",
    ] {
        assert!(out.contains(want), "{want} missing in {out}");
    }
    assert!(
        !out.contains("Some(\"no\",)") && !out.contains("Some(9"),
        "{out}"
    );
    // A body that ends inside a learned key, or right after it.
    for cut in [learned.len() + 4, learned.len() + 6, learned.len() + 7] {
        let body = format!("[{learned}, {learned}]");
        check_text(&r, &body[..cut]);
    }
    // One row per learned-order change, many rows: the columns were reserved after the
    // first row (`reserve_rows`) and must hold every row.
    let many: Vec<&str> = (0..2_000)
        .map(|i| if i % 3 == 0 { learned } else { rows[i % 5] })
        .collect();
    check_text(&r, &format!("[{}]", many.join(",")));
}

#[test]
fn ineligible_rules_give_none() {
    let fields = json!([{"name": "v", "path": "$.v", "type": "number"}]);
    for response in [
        json!({"rows": "$..items[*]", "fields": fields}),
        json!({"rows": "$.data[?@.v > 1]", "fields": fields}),
        json!({"rows": "$[*]", "fields": [{"name": "v", "path": "$.v[*]", "type": "string"}]}),
        json!({"rows": "$[*]", "fields": [{"name": "v", "path": "$.v[*][*]", "type": "json"}]}),
        json!({"rows": "$[*]", "fields": [{"name": "v", "path": "$[-1]", "type": "number"}]}),
        json!({"rows": "$[*]", "fields": [{"name": "v", "path": "$..v", "type": "number"}]}),
        json!({"rows": "$[*].items", "fields": fields}),
        json!({"rows": "$[0:2]", "fields": fields}),
        json!({"frames": "$.a[*].b[*]", "rows": "$[*]", "fields": fields}),
        json!({"rows": "$[*]", "labels": {"x": "$[*].v"}, "fields": fields}),
        json!({"rows": "$[*]", "labelsFrom": "$..m", "fields": fields}),
        json!({"rows": "$.data[*]", "labels": {"x": "$.data[0].v"}, "fields": fields}),
        json!({"frames": "$.x.*", "rows": "$[*]", "labelsFrom": "$.m", "fields": fields}),
        json!({"fields": [{"name": "v", "path": "$.a[*].b[*]", "type": "number"}]}),
        json!({"rows": "$[*]", "fields": [
            {"name": "t", "path": "$.t", "type": "time", "timezone": "${__response.zones[*]}"}]}),
    ] {
        let r = rule(response.clone());
        assert!(try_convert(&r, b"[]", None).is_none(), "{response}");
        assert!(!is_eligible(&r));
    }
    for response in [
        json!({"rows": "$[*]", "fields": fields}),
        json!({"rows": "$.*", "fields": fields}),
        json!({"rows": "$['a b'][0].c[*]", "fields": fields}),
        json!({"rows": "$.one", "fields": fields}),
        json!({"frames": "$.x", "rows": "$[*]", "fields": fields}),
        json!({"frames": "$.x.*", "rows": "$.items[*]", "labelsFrom": "$.m", "fields": fields}),
        json!({"rows": "$.data[*]", "labels": {"x": "$.data"}, "fields": fields}),
        json!({"fields": [{"name": "v", "path": "$.a[*].b", "type": "number"}]}),
        json!({"rows": "$[*]", "fields": [{"name": "v", "path": "$.v[*].x", "type": "json"}]}),
    ] {
        let r = rule(response.clone());
        assert!(is_eligible(&r), "{response}");
    }
}

#[test]
fn paths_parse_like_the_plain_subset() {
    assert_eq!(parse_path("$"), Some(vec![]));
    assert_eq!(
        parse_path("$.a['b c'][\"d\"][0].*[*]"),
        Some(vec![
            Seg::Name("a".into()),
            Seg::Name("b c".into()),
            Seg::Name("d".into()),
            Seg::Index(0),
            Seg::Wild,
            Seg::Wild
        ])
    );
    assert_eq!(parse_path("$.é_1"), Some(vec![Seg::Name("é_1".into())]));
    for no in [
        "$[-1]",
        "$[01]",
        "$..a",
        "$.a-b",
        "$[ 0 ]",
        "$['a\\'b']",
        "@.a",
        "$.",
        "$[1:2]",
    ] {
        assert_eq!(parse_path(no), None, "{no}");
    }
}

#[test]
fn strict_rfc3339_agrees_with_jiff() {
    let mut rng = Rng(3339);
    let mut decided = 0;
    let mut cache = DateCache::default();
    for n in 0..200_000 {
        let year = rng.pick(&[1899, 1900, 1970, 2000, 2023, 2024, 2100, 2200, 2201, 9999]);
        let month = rng.below(14);
        let day = rng.below(33);
        let (h, mi, s) = (rng.below(26), rng.below(62), rng.below(62));
        let frac = rng.pick(&[
            "",
            ".",
            ".5",
            ".123",
            ".123456789",
            ".1234567891",
            ".123456789012345678901234567890",
            ",5",
        ]);
        let zone = rng.pick(&[
            "Z", "z", "+00:00", "-00:00", "+01:00", "-07:30", "+23:59", "+24:00", "+1:00", "+0100",
            "", " ",
        ]);
        let sep = if n % 50 == 0 { "t" } else { "T" };
        let text = format!("{year:04}-{month:02}-{day:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{zone}");
        let jiff = text
            .parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| i64::try_from(t.as_nanosecond()).ok());
        // A shared cache (consecutive strings often share the date) and a fresh one.
        let mine = rfc3339_strict(text.as_bytes(), &mut cache);
        assert_eq!(
            mine,
            rfc3339_strict(text.as_bytes(), &mut DateCache::default())
        );
        if let Some(mine) = mine {
            assert_eq!(Some(mine), jiff, "{text}");
            decided += 1;
        }
    }
    assert!(decided > 10_000, "{decided}");
}

#[test]
fn string_stops_find_the_first_stop_byte() {
    let mut rng = Rng(8);
    let alphabet = b"ab\"\\\x01\x1f\x20\x7f\x80\xff~!0";
    for _ in 0..100_000 {
        let word: [u8; 8] = std::array::from_fn(|_| alphabet[rng.below(alphabet.len())]);
        let expected = word.iter().position(|&c| STRING_STOP[usize::from(c)]);
        let stops = string_stops(u64::from_le_bytes(word));
        let got = (stops != 0).then(|| (stops.trailing_zeros() / 8) as usize);
        assert_eq!(got, expected, "{word:?}");
    }
}

/// The rules of `config-examples/*.yaml` (real APIs): how many the fast path takes, and
/// both paths on every document of `demo-data/` and `tests/real_payloads` bodies we can
/// find, for every rule.
#[test]
fn config_example_rules() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("config-examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut docs: Vec<Vec<u8>> = Vec::new();
    for dir in ["demo-data"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                docs.push(std::fs::read(p).unwrap());
            }
        }
    }
    let (mut rules, mut eligible) = (0, Vec::new());
    let mut tally = Tally::default();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let loaded = crate::provisioning::parse(&text, &|_| None).unwrap();
        for ds in &loaded.datasources {
            let Ok(jd) = crate::settings::JsonData::parse(&ds.settings.json_data) else {
                continue;
            };
            for raw in &jd.rules {
                let Ok(r) = compile_standalone(raw) else {
                    continue;
                };
                rules += 1;
                if is_eligible(&r) {
                    eligible.push(r.id.clone());
                    for d in &docs {
                        check(&r, d, &mut tally);
                    }
                }
            }
        }
    }
    eprintln!(
        "config examples: {} of {rules} rules eligible ({eligible:?}); demo-data: {tally:?}",
        eligible.len()
    );
    assert_eq!(eligible.len(), rules);
}

/// A captured value keeps every kind, flag and number exactly, in four 8-byte words (an
/// `Option` of it too): the layout that keeps captures free of store-forwarding stalls.
#[test]
fn leaves_keep_their_kind_in_plain_words() {
    assert_eq!(std::mem::size_of::<Leaf>(), 32);
    assert_eq!(std::mem::size_of::<Option<Leaf>>(), 32);
    let kinds = [
        Kind::Null,
        Kind::Bool(false),
        Kind::Bool(true),
        Kind::Str { escaped: false },
        Kind::Str { escaped: true },
        Kind::Obj,
        Kind::Arr,
        Kind::Num(Num::new(true, u64::MAX, -400, false, true)),
        Kind::Num(Num::new(false, 0, 400, true, false)),
        Kind::Num(Num::new(true, 12_345, 0, true, true)),
    ];
    for kind in kinds {
        let leaf = Leaf::new(3, 9, kind);
        assert_eq!((leaf.start, leaf.end), (3, 9));
        // Kind has no PartialEq: its Debug text names every variant and field.
        assert_eq!(format!("{:?}", leaf.kind()), format!("{kind:?}"));
    }
    for bits in 0..8u8 {
        let (neg, int, exact) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
        let n = Num::new(neg, 7, -2, int, exact);
        assert_eq!(
            (n.neg(), n.int(), n.exact(), n.sig, n.exp),
            (neg, int, exact, 7, -2)
        );
    }
}
