//! The classifier against Grafana's dataplane example frames
//! (`../shared/conformance/dataplane/examples/data`, frame JSON).
//!
//! * Every upstream file (all `valid: true`) must classify on the dataplane path to its kind
//!   with `itemCount` items, or NoData when `noData` (zero items also mean NoData: §9 item 27).
//! * Upstream has no invalid examples, so invalid ones are derived here by mutating valid
//!   files in memory. Each must be rejected (SSE error) where the contract says the data
//!   cannot be read, or be read with a note where the contract allows only a warning.
//! * A few untyped variants check the fall-through to the legacy path.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::frame_json::decode_frames;
use crate::sse::{classify_report, Kind, Labels, Report, Route, Sse};
use crate::support::shared;

/// Under `../shared`.
pub const ROOT: &str = "conformance/dataplane/examples/data";

/// Loads one example (path relative to [`ROOT`]); `None` (with the skip notice) without
/// `../shared`.
pub fn load(rel: &str) -> Option<Value> {
    let p = shared::path(&format!("{ROOT}/{rel}"))?;
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn classify_doc(doc: &Value) -> Result<(Report, Vec<String>), String> {
    let (frames, quirks) = decode_frames(doc)?;
    Ok((classify_report(&frames), quirks))
}

/// Checks one upstream example; returns a one-line summary.
fn check_example(rel: &str, doc: &Value) -> Result<String, String> {
    let (frames, _) = decode_frames(doc)?;
    let meta = frames
        .first()
        .and_then(|f| f.meta.as_ref())
        .ok_or("first frame has no meta")?;
    let ty = meta.get("type").and_then(Value::as_str).unwrap_or_default();
    let kind = Kind::from_type(ty).ok_or_else(|| format!("meta.type '{ty}' is not a kind"))?;
    let (kind_dir, format_dir) = ty.split_once('-').ok_or("type without '-'")?;
    if !rel.starts_with(&format!("{kind_dir}/{format_dir}/v0.1/")) {
        return Err(format!("path does not match meta.type {ty}"));
    }
    if meta.get("typeVersion") != Some(&json!([0, 1])) {
        return Err(format!(
            "typeVersion {:?}, expected [0,1]",
            meta.get("typeVersion")
        ));
    }
    let info = meta
        .pointer("/custom/exampleInfo")
        .ok_or("no meta.custom.exampleInfo")?;
    let valid = info.get("valid").and_then(Value::as_bool).unwrap_or(true);
    let no_data = info.get("noData").and_then(Value::as_bool).unwrap_or(false);
    let item_count = info
        .get("itemCount")
        .and_then(Value::as_u64)
        .ok_or("no itemCount")?;
    let report = classify_report(&frames);
    let got = report.outcome.summary();
    if !valid {
        // None upstream; kept so that invalid files added later are checked too.
        return match report.outcome {
            Sse::Error(_) => Ok(format!("invalid, rejected: {got}")),
            _ => Err(format!("invalid example accepted: {got}")),
        };
    }
    if report.route != Route::Dataplane(kind) {
        return Err(format!(
            "route {:?}, expected the dataplane path",
            report.route
        ));
    }
    if !report.notes.is_empty() {
        return Err(format!("valid example drew notes: {:?}", report.notes));
    }
    let ok = if no_data || item_count == 0 {
        report.outcome == Sse::NoData
    } else {
        let right_kind = match &report.outcome {
            Sse::TimeSeries { .. } => kind.is_timeseries(),
            Sse::Numbers { .. } => !kind.is_timeseries(),
            _ => false,
        };
        right_kind && report.outcome.item_count() as u64 == item_count
    };
    if !ok {
        return Err(format!(
            "expected {} with {item_count} items (noData {no_data}), got {got}",
            if kind.is_timeseries() {
                "TimeSeries"
            } else {
                "Numbers"
            }
        ));
    }
    Ok(format!(
        "{ty}: {got} (itemCount {item_count}, noData {no_data})"
    ))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Exact contents for a few examples (names, labels, lengths, values).
fn spot_checks() -> Vec<(&'static str, Sse)> {
    vec![
        (
            "timeseries/multi/v0.1/extended_valid/timeseries-multi_two-items-by-dimension-unaligned-time-with-remainder-string.json",
            Sse::TimeSeries {
                series: vec![
                    ("slothCount".into(), labels(&[("city", "LGA")]), 2),
                    ("slothCount".into(), labels(&[("city", "MIA")]), 3),
                ],
            },
        ),
        (
            "timeseries/long/v0.1/basic_valid/timeseries-long_four-items-by-name-and-dimension.json",
            Sse::TimeSeries {
                series: vec![
                    ("slothCount".into(), labels(&[("city", "LGA")]), 2),
                    ("slothCount".into(), labels(&[("city", "MIA")]), 2),
                    ("sleepHoursPerSlothPerDay".into(), labels(&[("city", "LGA")]), 2),
                    ("sleepHoursPerSlothPerDay".into(), labels(&[("city", "MIA")]), 2),
                ],
            },
        ),
        (
            "numeric/long/v0.1/basic_valid/numeric-long_four-items-by-name-and-dimension-two-labels.json",
            Sse::Numbers {
                items: vec![
                    (labels(&[("animal", "cat"), ("city", "LGA")]), Some(4.0)),
                    (labels(&[("animal", "cat"), ("city", "LGA")]), Some(23.5)),
                    (labels(&[("animal", "sloth"), ("city", "MIA")]), Some(7.5)),
                    (labels(&[("animal", "sloth"), ("city", "MIA")]), Some(23.2)),
                ],
            },
        ),
        (
            "numeric/wide/v0.1/basic_valid/numeric-wide_two-items-by-dimension.json",
            Sse::Numbers {
                items: vec![
                    (labels(&[("city", "LGA")]), Some(4.0)),
                    (labels(&[("city", "MIA")]), Some(7.5)),
                ],
            },
        ),
        (
            "numeric/wide/v0.1/basic_valid/numeric-wide_two-empty-items.json",
            Sse::Numbers {
                items: vec![
                    (labels(&[("city", "LGA")]), None),
                    (labels(&[("city", "MIA")]), None),
                ],
            },
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// Derived (invalid / untyped) variants

const TSW1: &str =
    "timeseries/wide/v0.1/basic_valid/timeseries-wide_one-item-with-name-and-labels.json";
const TSW2: &str = "timeseries/wide/v0.1/basic_valid/timeseries-wide_two-items-by-dimension.json";
const TSWS: &str =
    "timeseries/wide/v0.1/extended_valid/timeseries-wide_one-item-with-remainder-string.json";
const TSM: &str =
    "timeseries/multi/v0.1/basic_valid/timeseries-multi_two-items-by-dimension-unaligned-time.json";
const TSL: &str = "timeseries/long/v0.1/basic_valid/timeseries-long_two-items-by-dimension.json";
const NL: &str = "numeric/long/v0.1/basic_valid/numeric-long_two-items-by-dimension.json";
const NLND: &str = "numeric/long/v0.1/basic_valid/numeric-long_no-data.json";
const NM: &str = "numeric/multi/v0.1/basic_valid/numeric-multi_two-items-by-dimension.json";
const NW: &str = "numeric/wide/v0.1/basic_valid/numeric-wide_two-items-by-dimension.json";

/// What a derived variant must give.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Invalid, unreadable: an SSE error containing this text.
    Reject(&'static str),
    /// Invalid, but the contract allows only a warning: read (this many items) with a note
    /// containing the text.
    Note(&'static str, usize),
    /// Untyped variant, legacy path: this many items (0 = NoData).
    Legacy(usize),
}

struct Derived {
    id: &'static str,
    file: &'static str,
    mutate: fn(&mut Value),
    expect: Expect,
}

fn fields(doc: &mut Value, frame: usize) -> &mut Vec<Value> {
    doc[frame]["schema"]["fields"]
        .as_array_mut()
        .expect("schema.fields")
}

fn column(doc: &mut Value, frame: usize, field: usize) -> &mut Vec<Value> {
    doc[frame]["data"]["values"][field]
        .as_array_mut()
        .expect("data.values column")
}

fn drop_field(doc: &mut Value, frame: usize, field: usize) {
    fields(doc, frame).remove(field);
    doc[frame]["data"]["values"]
        .as_array_mut()
        .expect("data.values")
        .remove(field);
}

fn set_meta(doc: &mut Value, frame: usize, key: &str, v: Value) {
    doc[frame]["schema"]["meta"][key] = v;
}

fn derived() -> Vec<Derived> {
    vec![
        // --- rejected: the data cannot be read as the declared kind
        Derived {
            id: "wide-without-value-field",
            file: TSW1,
            mutate: |d| drop_field(d, 0, 1),
            expect: Expect::Reject("no value field"),
        },
        Derived {
            id: "wide-without-time-field",
            file: TSW1,
            mutate: |d| drop_field(d, 0, 0),
            expect: Expect::Reject("no time field"),
        },
        Derived {
            id: "wide-null-time",
            file: TSW1,
            mutate: |d| column(d, 0, 0)[1] = Value::Null,
            expect: Expect::Reject("null"),
        },
        Derived {
            id: "multi-frame-without-time-field",
            file: TSM,
            mutate: |d| drop_field(d, 1, 0),
            expect: Expect::Reject("frame 1: no time field"),
        },
        Derived {
            id: "multi-no-data-frame-next-to-data",
            file: TSM,
            mutate: |d| {
                d.as_array_mut().expect("frames").push(json!({
                    "schema": {"meta": {"type": "timeseries-multi", "typeVersion": [0, 1]},
                               "fields": []},
                    "data": {"values": []}
                }));
            },
            expect: Expect::Reject("no-data"),
        },
        Derived {
            id: "long-null-time",
            file: TSL,
            mutate: |d| column(d, 0, 0)[0] = Value::Null,
            expect: Expect::Reject("null"),
        },
        Derived {
            id: "long-null-dimension",
            file: TSL,
            mutate: |d| column(d, 0, 2)[1] = Value::Null,
            expect: Expect::Reject("null label"),
        },
        Derived {
            id: "numeric-long-null-dimension",
            file: NL,
            mutate: |d| column(d, 0, 1)[0] = Value::Null,
            expect: Expect::Reject("null label"),
        },
        Derived {
            id: "numeric-long-two-rows-no-dimension",
            file: NL,
            mutate: |d| drop_field(d, 0, 1),
            expect: Expect::Reject("string dimension"),
        },
        Derived {
            id: "numeric-multi-untyped-frame",
            file: NM,
            mutate: |d| {
                d[1]["schema"]
                    .as_object_mut()
                    .expect("schema")
                    .remove("meta");
            },
            expect: Expect::Reject("not typed"),
        },
        Derived {
            id: "untyped-long-is-not-wide",
            file: TSL,
            mutate: |d| set_meta(d, 0, "typeVersion", json!([0, 0])),
            expect: Expect::Reject("input data must be a wide series"),
        },
        Derived {
            id: "untyped-numeric-wide-is-not-wide",
            file: NW,
            mutate: |d| set_meta(d, 0, "typeVersion", json!([0, 0])),
            expect: Expect::Reject("input data must be a wide series"),
        },
        Derived {
            id: "timeseries-many-remainder-string-is-long",
            file: TSWS,
            mutate: |d| set_meta(d, 0, "type", json!("timeseries-many")),
            expect: Expect::Reject("input data must be a wide series"),
        },
        // --- read, with a warning only
        Derived {
            id: "wide-unsorted-time",
            file: TSW2,
            mutate: |d| {
                for col in d[0]["data"]["values"].as_array_mut().expect("values") {
                    col.as_array_mut().expect("column").reverse();
                }
            },
            expect: Expect::Note("not sorted", 2),
        },
        Derived {
            id: "multi-duplicate-timestamp",
            file: TSM,
            mutate: |d| {
                let c = column(d, 1, 0);
                c[1] = c[0].clone();
            },
            expect: Expect::Note("duplicate timestamp", 2),
        },
        Derived {
            id: "numeric-wide-duplicate-items",
            file: NW,
            mutate: |d| {
                let l = fields(d, 0)[0]["labels"].clone();
                fields(d, 0)[1]["labels"] = l;
            },
            expect: Expect::Note("duplicate item", 2),
        },
        Derived {
            id: "numeric-multi-two-rows",
            file: NM,
            mutate: |d| column(d, 0, 0).push(json!(1)),
            expect: Expect::Note("rows", 2),
        },
        Derived {
            id: "unknown-type-version",
            file: TSW1,
            mutate: |d| set_meta(d, 0, "typeVersion", json!([0, 2])),
            expect: Expect::Note("typeVersion", 1),
        },
        // --- untyped variants of valid data: legacy path
        Derived {
            id: "numeric-long-untyped-is-number-set",
            file: NL,
            mutate: |d| set_meta(d, 0, "typeVersion", json!([0, 0])),
            expect: Expect::Legacy(2),
        },
        Derived {
            id: "wide-typed-table-is-legacy-wide",
            file: TSW2,
            mutate: |d| set_meta(d, 0, "type", json!("table")),
            expect: Expect::Legacy(2),
        },
        Derived {
            id: "multi-without-meta-is-legacy-wide",
            file: TSM,
            mutate: |d| {
                for f in d.as_array_mut().expect("frames") {
                    f["schema"].as_object_mut().expect("schema").remove("meta");
                }
            },
            expect: Expect::Legacy(2),
        },
        Derived {
            id: "no-data-untyped-is-no-data",
            file: NLND,
            mutate: |d| set_meta(d, 0, "typeVersion", json!([0, 0])),
            expect: Expect::Legacy(0),
        },
    ]
}

fn check_derived(case: &Derived, doc: &Value) -> Result<String, String> {
    let mut doc = doc.clone();
    (case.mutate)(&mut doc);
    let (report, _) = classify_doc(&doc)?;
    let got = report.outcome.summary();
    match case.expect {
        Expect::Reject(text) => match &report.outcome {
            Sse::Error(e) if e.contains(text) => Ok(format!("rejected: {e}")),
            _ => Err(format!("expected an error containing '{text}', got {got}")),
        },
        Expect::Note(text, n) => {
            let noted = report.notes.iter().any(|x| x.contains(text));
            let read = !matches!(report.outcome, Sse::Error(_))
                && report.outcome.item_count() == n
                && matches!(report.route, Route::Dataplane(_));
            if noted && read {
                Ok(format!("read with a warning: {got}; {:?}", report.notes))
            } else {
                Err(format!(
                    "expected {n} items with a note containing '{text}', got {got}, notes {:?}",
                    report.notes
                ))
            }
        }
        Expect::Legacy(n) => {
            let ok = report.route == Route::Legacy
                && if n == 0 {
                    report.outcome == Sse::NoData
                } else {
                    !matches!(report.outcome, Sse::Error(_)) && report.outcome.item_count() == n
                };
            if ok {
                Ok(format!("legacy path: {got}"))
            } else {
                Err(format!(
                    "expected the legacy path with {n} items, got {:?} {got}",
                    report.route
                ))
            }
        }
    }
}

#[test]
fn dataplane_examples_classify() {
    let Some(root) = shared::path(ROOT) else {
        return;
    };
    let mut files = Vec::new();
    json_files(&root, &mut files);
    let mut failures = Vec::new();
    let mut quirks_all = Vec::new();
    let (mut valid, mut invalid) = (0usize, 0usize);
    for p in &files {
        let rel = p
            .strip_prefix(&root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(p).expect("read"))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        if let Ok((_, quirks)) = decode_frames(&doc) {
            quirks_all.extend(quirks.into_iter().map(|q| format!("{rel}: {q}")));
        }
        let is_valid = doc
            .pointer("/0/schema/meta/custom/exampleInfo/valid")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        if is_valid {
            valid += 1;
        } else {
            invalid += 1;
        }
        match check_example(&rel, &doc) {
            Ok(s) => println!("  ok   {rel}: {s}"),
            Err(e) => failures.push(format!("{rel}: {e}")),
        }
    }
    for (rel, want) in spot_checks() {
        let doc = load(rel).expect("example present");
        match classify_doc(&doc) {
            Ok((r, _)) if r.outcome == want => println!("  ok   spot check {rel}"),
            Ok((r, _)) => failures.push(format!(
                "{rel}: spot check expected {want:?}, got {:?}",
                r.outcome
            )),
            Err(e) => failures.push(format!("{rel}: {e}")),
        }
    }
    let (mut rejected, mut warned, mut legacy) = (0usize, 0usize, 0usize);
    for case in derived() {
        let doc = load(case.file).expect("example present");
        match case.expect {
            Expect::Reject(_) => rejected += 1,
            Expect::Note(..) => warned += 1,
            Expect::Legacy(_) => legacy += 1,
        }
        match check_derived(&case, &doc) {
            Ok(s) => println!("  ok   derived {}: {s}", case.id),
            Err(e) => failures.push(format!("derived {} (from {}): {e}", case.id, case.file)),
        }
    }
    let invalid_total = invalid + rejected + warned;
    println!(
        "dataplane examples: {} checked (valid {valid}, invalid {invalid_total})",
        valid + invalid_total
    );
    println!(
        "  upstream files {} (valid {valid}, invalid {invalid}); derived invalid \
         {} (rejected {rejected}, read with a warning {warned}); untyped legacy-path \
         variants {legacy}",
        files.len(),
        rejected + warned
    );
    for q in &quirks_all {
        println!("  upstream quirk: {q}");
    }
    assert_eq!(files.len(), 32, "expected the 32 upstream example files");
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}
