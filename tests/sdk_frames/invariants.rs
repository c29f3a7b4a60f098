//! (4) Invariants of everything our encoder writes, against protocol.md §3: an IPC **file**
//! (`ARROW1` at both ends), no dictionaries, no compression, only the §3.5 types with the
//! matching `tstype`, `name`/`refId` always present, `meta` JSON with `typeVersion` as an array
//! of two non-negative integers and notice severities `info`/`warning`/`error`.

use std::collections::BTreeMap;

use arrow_schema::DataType;
use restbridge::frame::{Column, Field, Frame, Notice};
use serde_json::{json, Map, Value};

use crate::all_types;
use crate::golden;
use crate::ipc;
use crate::support::{arrow as grafana, shared};

/// Checks one encoding of ours; returns the number of fields checked.
fn check_our_output(what: &str, frame: &Frame, ref_id: &str) -> usize {
    let bytes = frame
        .encode(ref_id)
        .unwrap_or_else(|e| panic!("{what}: encode: {e}"));
    // Container.
    assert_eq!(
        &bytes[..8],
        b"ARROW1\0\0",
        "{what}: leading magic + padding"
    );
    assert_eq!(
        &bytes[bytes.len() - 6..],
        b"ARROW1",
        "{what}: trailing magic"
    );
    ipc::assert_grafana_container(what, &bytes);
    // Grafana's decoder rules, as the it-suite reader applies them.
    let decoded = grafana::decode(&bytes);
    assert_eq!(decoded.name, frame.name, "{what}: name");
    assert_eq!(decoded.ref_id, ref_id, "{what}: refId");
    // Raw metadata.
    let raw = golden::read_ipc_file(&bytes);
    let keys: Vec<&str> = raw.metadata.keys().map(String::as_str).collect();
    let want_keys: &[&str] = if frame.meta_json().is_some() {
        &["meta", "name", "refId"]
    } else {
        &["name", "refId"]
    };
    assert_eq!(keys, want_keys, "{what}: schema metadata keys");
    if let Some(text) = raw.metadata.get("meta") {
        assert!(!text.is_empty(), "{what}: empty meta fails Go decoding");
        let meta: Value = serde_json::from_str(text).expect("meta JSON");
        let obj = meta.as_object().expect("meta object");
        let tv = obj
            .get("typeVersion")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{what}: typeVersion missing or not an array"));
        assert_eq!(tv.len(), 2, "{what}: typeVersion has two parts");
        let parts: Vec<u32> = tv
            .iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or_else(|| panic!("{what}: typeVersion part {x} not a u32"))
            })
            .collect();
        assert_eq!(parts, frame.type_version, "{what}: typeVersion");
        for n in obj
            .get("notices")
            .map_or(&[][..], |n| n.as_array().expect("notices array"))
        {
            let sev = n.get("severity").and_then(Value::as_str);
            assert!(
                matches!(sev, Some("info" | "warning" | "error")),
                "{what}: notice severity {sev:?}"
            );
            assert!(
                n.get("text").is_some_and(Value::is_string),
                "{what}: notice text"
            );
            assert!(
                n.get("inspect").is_none_or(Value::is_u64),
                "{what}: inspect int"
            );
        }
        if let Some(p) = obj.get("preferredVisualisationType") {
            let p = p.as_str().expect("string");
            assert!(
                ["graph", "table", "logs", "trace", "nodeGraph", "flamegraph"].contains(&p),
                "{what}: preferredVisualisationType {p}"
            );
        }
        assert_eq!(
            Some(&meta),
            frame.meta_json().as_ref(),
            "{what}: meta = meta_json()"
        );
    }
    // Fields.
    assert_eq!(raw.fields.len(), frame.fields.len(), "{what}: fields");
    for (f, ours) in raw.fields.iter().zip(&frame.fields) {
        let at = format!("{what} / {}", f.name);
        assert!(
            matches!(
                f.data_type,
                DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None)
                    | DataType::Float64
                    | DataType::Int64
                    | DataType::Utf8
                    | DataType::Boolean
                    | DataType::Binary
            ),
            "{at}: type {}",
            f.data_type
        );
        assert_eq!(
            f.tstype(),
            Some(golden::expected_tstype(&f.data_type)),
            "{at}: tstype"
        );
        assert_eq!(f.nullable, ours.nullable, "{at}: nullable flag");
        if !f.nullable {
            assert_eq!(f.cells.nulls(), 0, "{at}: nulls in a non-nullable field");
        }
        for (k, v) in &f.metadata {
            assert!(
                golden::OUR_FIELD_KEYS.contains(&k.as_str()),
                "{at}: key {k}"
            );
            assert!(!v.is_empty(), "{at}: empty {k} fails Go decoding");
        }
        assert_eq!(f.labels().unwrap_or_default(), ours.labels, "{at}: labels");
        if let Some(c) = f.config() {
            assert!(!c.is_empty(), "{at}: we do not write an empty config");
        }
        assert_eq!(f.cells.len(), ours.values.len(), "{at}: rows");
        if let golden::Cells::Binary(cells) = &f.cells {
            for cell in cells.iter().flatten() {
                serde_json::from_slice::<Value>(cell)
                    .unwrap_or_else(|e| panic!("{at}: json cell is not JSON: {e}"));
            }
        }
    }
    raw.fields.len()
}

fn one_of_each(rows_with_null: bool) -> Vec<Field> {
    let n = |v: i64| (!rows_with_null || v != 1).then_some(v);
    let mut value = Field::new(
        "value",
        Column::Number(vec![Some(1.5), n(1).map(|_| f64::NAN), Some(-0.0)]),
    );
    value.labels = BTreeMap::from([("host".into(), "a".into()), ("ü".into(), "ß 🦥".into())]);
    value.config = Some(Map::from_iter([
        ("unit".to_owned(), json!("percent")),
        ("min".to_owned(), Value::Null),
    ]));
    vec![
        Field::new("time", Column::Time(vec![Some(0), Some(1), Some(i64::MAX)])),
        value,
        Field::new("count", Column::Int(vec![Some(i64::MIN), n(1), Some(0)])),
        Field::new(
            "text",
            Column::String(vec![Some(""), n(1).map(|_| "x"), Some("❤️")].into()),
        ),
        Field::new(
            "flag",
            Column::Bool(vec![Some(true), n(1).map(|_| false), Some(false)]),
        ),
        Field::new(
            "doc",
            Column::Json(vec![Some("{}"), n(1).map(|_| "[1]"), Some("null")].into()),
        ),
    ]
}

/// Frames that exercise every branch of `meta_json()` and every column kind.
fn synthetic() -> Vec<(&'static str, Frame, &'static str)> {
    vec![
        (
            "empty frame (no fields)",
            Frame {
                name: "x".into(),
                ..Frame::default()
            },
            "B",
        ),
        (
            "unnamed, no refId",
            Frame {
                fields: one_of_each(false),
                ..Frame::default()
            },
            "",
        ),
        (
            "zero rows",
            Frame {
                name: "z".into(),
                fields: one_of_each(false)
                    .into_iter()
                    .map(|f| Field {
                        values: f.values.empty_like(),
                        ..f
                    })
                    .collect(),
                ..Frame::default()
            },
            "A",
        ),
        (
            "nulls in every kind",
            Frame {
                name: "n".into(),
                fields: one_of_each(true),
                ..Frame::default()
            },
            "A",
        ),
        (
            "typed, notices of every severity, logs",
            Frame {
                name: "t".into(),
                frame_type: "timeseries-multi".into(),
                type_version: [0, 1],
                executed_query: Some("GET http://x/y".into()),
                preferred_visualisation: Some("logs"),
                notices: ["info", "warning", "error"]
                    .into_iter()
                    .map(|severity| Notice {
                        severity,
                        text: format!("a {severity} notice"),
                    })
                    .collect(),
                fields: one_of_each(false),
            },
            "A",
        ),
        (
            "typeVersion only",
            Frame {
                name: "v".into(),
                type_version: [0, 1],
                ..Frame::default()
            },
            "A",
        ),
        (
            "labels without config, empty config map",
            Frame {
                name: "l".into(),
                fields: vec![Field {
                    name: "v".into(),
                    labels: BTreeMap::from([("k".into(), "v".into())]),
                    config: Some(Map::new()),
                    nullable: true,
                    values: Column::Number(vec![Some(1.0)]),
                }],
                ..Frame::default()
            },
            "A",
        ),
        ("hand-built many_types", all_types::hand_built(), "A"),
    ]
}

#[test]
fn our_output_keeps_protocol_invariants() {
    let mut frames = 0;
    let mut fields = 0;
    for (what, frame, ref_id) in synthetic() {
        fields += check_our_output(what, &frame, ref_id);
        frames += 1;
    }
    // meta_json(): omitted when there is nothing to say, typeVersion always when written.
    assert_eq!(Frame::default().meta_json(), None);
    assert_eq!(
        Frame {
            type_version: [0, 1],
            ..Frame::default()
        }
        .meta_json(),
        Some(json!({"typeVersion": [0, 1]}))
    );
    // Every golden re-expressed in our model, when the data is present.
    let mut golden_frames = Vec::new();
    if let Some(p) = shared::path(all_types::ALL_TYPES) {
        golden_frames.push(("all_types".to_owned(), std::fs::read(p).expect("read")));
    }
    if let Some(dir) = shared::path("conformance/sdk-go-frames/experimental/testdata") {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        names.sort();
        for p in names {
            let text = std::fs::read_to_string(&p).expect("read");
            for (i, b) in golden::txt_frames(&text).into_iter().enumerate() {
                let name = p.file_name().expect("name").to_string_lossy();
                golden_frames.push((format!("{name} #{i}"), b));
            }
        }
    }
    for (what, bytes) in &golden_frames {
        let rebuilt = golden::rebuild(&golden::read_ipc_file(bytes));
        fields += check_our_output(what, &rebuilt.frame, &rebuilt.ref_id);
        frames += 1;
    }
    println!("invariants: {frames} encodings of ours checked, {fields} fields");
    golden::print_known_gaps();
    assert!(frames >= synthetic().len());
}

/// `Notice::severity` and `Frame::preferred_visualisation` are `&'static str`, so the type does
/// not stop an invalid value; check every literal the crate assigns to them (protocol.md §3.3:
/// any other severity makes Grafana's decoder fail the whole response).
#[test]
fn source_literals_for_severity_and_visualisation_are_valid() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let severity = regex::Regex::new(r#"severity:\s*"([^"]*)""#).expect("regex");
    let vis =
        regex::Regex::new(r#"preferred_visualisation\s*=\s*Some\("([^"]*)"\)"#).expect("regex");
    let mut seen = 0;
    for entry in std::fs::read_dir(&src).expect("src") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for c in severity.captures_iter(&text) {
            seen += 1;
            assert!(
                matches!(&c[1], "info" | "warning" | "error"),
                "{}: severity {:?}",
                path.display(),
                &c[1]
            );
        }
        for c in vis.captures_iter(&text) {
            seen += 1;
            assert!(
                ["graph", "table", "logs", "trace", "nodeGraph", "flamegraph"].contains(&&c[1]),
                "{}: preferredVisualisationType {:?}",
                path.display(),
                &c[1]
            );
        }
    }
    assert!(seen > 0, "no severity/visualisation literal found in src");
}
