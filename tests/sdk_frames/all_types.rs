//! `data/testdata/all_types.golden.arrow` (Go SDK `goldenDF()`): (1) read it with arrow-rs and
//! pin its schema, metadata and values; (2) build the same frame by hand with our encoder,
//! restricted to the column kinds RestBridge produces, and compare field by field.

use std::collections::{BTreeMap, BTreeSet};

use arrow_schema::{DataType, TimeUnit};
use restbridge::frame::{Column, Field, Frame};
use serde_json::{json, Map, Value};

use crate::golden::{self, Cells, Diff, NanMode, RawFrame};
use crate::ipc;
use crate::support::{arrow as grafana, shared};

/// Path of the golden below `../shared`.
pub const ALL_TYPES: &str = "conformance/sdk-go-frames/data/testdata/all_types.golden.arrow";

/// Golden field indices whose types RestBridge produces (string, int64, float64, bool, time,
/// json, each with its nullable twin).
pub const PRODUCED: [usize; 15] = [0, 1, 8, 9, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32];

const TS: DataType = DataType::Timestamp(TimeUnit::Nanosecond, None);

/// The golden's 35 fields: name, Arrow type, nullable, tstype, metadata keys.
fn expected_schema() -> Vec<(
    &'static str,
    DataType,
    bool,
    &'static str,
    &'static [&'static str],
)> {
    const CLT: &[&str] = &["config", "labels", "tstype"];
    const CT: &[&str] = &["config", "tstype"];
    const T: &[&str] = &["tstype"];
    use DataType as D;
    vec![
        ("string_values", D::Utf8, false, "string", CLT),
        ("nullable_string_values", D::Utf8, true, "string", CLT),
        ("int8_values", D::Int8, false, "number", CT),
        ("nullable_int8_values", D::Int8, true, "number", T),
        ("int16_values", D::Int16, false, "number", T),
        ("nullable_int16_values", D::Int16, true, "number", T),
        ("int32_values", D::Int32, false, "number", T),
        ("nullable_int32_values", D::Int32, true, "number", T),
        ("int64_values", D::Int64, false, "number", T),
        ("nullable_int64_values", D::Int64, true, "number", T),
        ("uint8_values", D::UInt8, false, "number", T),
        ("nullable_uint8_values", D::UInt8, true, "number", T),
        ("uint16_values", D::UInt16, false, "number", T),
        ("nullable_uint16_values", D::UInt16, true, "number", T),
        ("uint32_values", D::UInt32, false, "number", T),
        ("nullable_uint32_values", D::UInt32, true, "number", T),
        ("uint64_values", D::UInt64, false, "number", T),
        ("nullable_uint64_values", D::UInt64, true, "number", T),
        ("float32_values", D::Float32, false, "number", T),
        ("nullable_float32_values", D::Float32, true, "number", T),
        ("float32_values_nans", D::Float32, false, "number", T),
        (
            "nullable_float32_values_nans",
            D::Float32,
            true,
            "number",
            T,
        ),
        ("float64_values", D::Float64, false, "number", T),
        ("float64_nans", D::Float64, false, "number", T),
        ("nullable_float64_values", D::Float64, true, "number", T),
        (
            "nullable_float64_values_nans",
            D::Float64,
            true,
            "number",
            T,
        ),
        ("bool_values", D::Boolean, false, "boolean", T),
        ("nullable_bool_values", D::Boolean, true, "boolean", T),
        ("timestamps", TS, false, "time", CT),
        ("timestamps", TS, false, "time", T),
        ("nullable_timestamps", TS, true, "time", T),
        ("json", D::Binary, false, "other", T),
        ("nullable_json", D::Binary, true, "other", T),
        ("enum", D::UInt16, false, "enum", CT),
        ("nullable_enum", D::UInt16, true, "enum", T),
    ]
}

/// The golden frame meta (schema metadata `meta`).
pub fn golden_meta() -> Value {
    json!({
        "typeVersion": [0, 0],
        "custom": {"Hi": "there"},
        "stats": [{"displayName": "sample", "value": 1.234}],
        "channel": "sample/channel/name",
        "executedQueryString": "SELECT * FROM table",
    })
}

/// Field 1's config: emoji, `filterable: false`, `min`/`max` null, links, noValue.
fn nullable_string_config() -> Map<String, Value> {
    obj(json!({
        "displayName": "Grafana ❤️ (Previous should be heart emoji) 🦥 (Previous should be sloth emoji)",
        "filterable": false,
        "decimals": 2,
        "min": null,
        "max": null,
        "links": [{
            "title": "Donate - The Sloth Conservation Foundation",
            "targetBlank": true,
            "url": "https://slothconservation.com/how-to-help/donate/"
        }],
        "noValue": "😤"
    }))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn strings(v: &[Option<&str>]) -> Vec<Option<String>> {
    v.iter().map(|s| s.map(str::to_owned)).collect()
}

/// `null` in row 2, as every nullable golden column has it.
fn null_row_2<T: Clone>(v: &[T]) -> Vec<Option<T>> {
    v.iter()
        .enumerate()
        .map(|(i, x)| (i != 2).then(|| x.clone()))
        .collect()
}

const STRINGS: [&str; 5] = [
    "Go Min",
    "JS Min (for >= 64)",
    "0 / nil / misc",
    "JS Max (for >= 64)",
    "Go Max",
];
const NULLABLE_STRINGS: [Option<&str>; 5] = [
    Some("Grafana"),
    Some("❤️"),
    None,
    Some("🦥"),
    Some("update your unicode/font if no sloth, is 2019."),
];
const INT64: [i64; 5] = [
    i64::MIN,
    -9_007_199_254_740_991,
    1,
    9_007_199_254_740_991,
    i64::MAX,
];
const F64: [f64; 5] = [
    5e-324,
    -9_007_199_254_740_991.0,
    1.0,
    9_007_199_254_740_991.0,
    f64::MAX,
];
const F64_NANS: [f64; 5] = [f64::NEG_INFINITY, f64::NAN, 0.0, f64::NAN, f64::INFINITY];
const NULLABLE_F64: [Option<f64>; 5] = [
    Some(5e-324),
    Some(-9_007_199_254_740_991.0),
    None,
    Some(f64::MAX),
    Some(9_007_199_254_740_991.0),
];
const NULLABLE_F64_NANS: [Option<f64>; 5] = [
    Some(f64::NEG_INFINITY),
    Some(0.0),
    None,
    Some(f64::NAN),
    Some(f64::INFINITY),
];
const BOOLS: [bool; 5] = [true, false, true, true, false];
/// 0, 2019-09-09T14:30:45Z, +5 s, 2^53−1 ns, i64::MAX ns.
const TIMES: [i64; 5] = [
    0,
    1_568_039_445_000_000_000,
    1_568_039_450_000_000_000,
    9_007_199_254_740_991,
    i64::MAX,
];
const JSON: [&str; 5] = [
    r#"{"a":1}"#,
    "[1,2,3]",
    r#"{"b":2}"#,
    r#"[{"c":3},{"d":4}]"#,
    r#"{"e":{"f":5}}"#,
];

fn some<T: Clone>(v: &[T]) -> Vec<Option<T>> {
    v.iter().cloned().map(Some).collect()
}

/// `goldenDF()` by hand, restricted to the column kinds RestBridge produces, with the same
/// labels, config and the meta our model can express (`executedQueryString`, `typeVersion`).
pub fn hand_built() -> Frame {
    let field = |name: &str, nullable: bool, values: Column| Field {
        name: name.to_owned(),
        labels: BTreeMap::new(),
        config: None,
        nullable,
        values,
    };
    let mut string_values = field(
        "string_values",
        false,
        Column::String(some(&STRINGS).into()),
    );
    string_values.labels = labels(&[("aLabelKey", "aLabelValue")]);
    string_values.config = Some(Map::new());
    let mut nullable_string_values = field(
        "nullable_string_values",
        true,
        Column::String(NULLABLE_STRINGS.to_vec().into()),
    );
    nullable_string_values.labels =
        labels(&[("aLabelKey", "aLabelValue"), ("bLabelKey", "bLabelValue")]);
    nullable_string_values.config = Some(nullable_string_config());
    let mut timestamps = field("timestamps", false, Column::Time(some(&TIMES)));
    timestamps.config = Some(obj(json!({"interval": 1000})));
    Frame {
        name: "many_types".into(),
        type_version: [0, 0],
        executed_query: Some("SELECT * FROM table".into()),
        fields: vec![
            string_values,
            nullable_string_values,
            field("int64_values", false, Column::Int(some(&INT64))),
            field(
                "nullable_int64_values",
                true,
                Column::Int(null_row_2(&INT64)),
            ),
            field("float64_values", false, Column::Number(some(&F64))),
            field("float64_nans", false, Column::Number(some(&F64_NANS))),
            field(
                "nullable_float64_values",
                true,
                Column::Number(NULLABLE_F64.to_vec()),
            ),
            field(
                "nullable_float64_values_nans",
                true,
                Column::Number(NULLABLE_F64_NANS.to_vec()),
            ),
            field("bool_values", false, Column::Bool(some(&BOOLS))),
            field(
                "nullable_bool_values",
                true,
                Column::Bool(null_row_2(&BOOLS)),
            ),
            timestamps,
            field("timestamps", false, Column::Time(some(&TIMES))),
            field(
                "nullable_timestamps",
                true,
                Column::Time(null_row_2(&TIMES)),
            ),
            field("json", false, Column::Json(some(&JSON).into())),
            field(
                "nullable_json",
                true,
                Column::Json(null_row_2(&JSON).into()),
            ),
        ],
        ..Frame::default()
    }
}

fn load() -> Option<RawFrame> {
    let path = shared::path(ALL_TYPES)?;
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let facts = ipc::assert_grafana_container("all_types.golden.arrow (Go)", &bytes);
    assert_eq!(facts.header_len, 8, "Go pads the leading magic to 8 bytes");
    Some(golden::read_ipc_file(&bytes))
}

fn f64_cells_match(at: &str, got: &Cells, want: &[Option<f64>]) {
    let Cells::Float64(got) = got else {
        panic!("{at}: not float64: {got:?}");
    };
    assert_eq!(got.len(), want.len(), "{at}: rows");
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = match (g, w) {
            (Some(g), Some(w)) => g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            (None, None) => true,
            _ => false,
        };
        assert!(ok, "{at}: row {r}: {g:?} ≠ {w:?}");
    }
}

/// (1) The golden as arrow-rs reads it: frame metadata, all 35 fields' schema and metadata, and
/// the values of the fields whose types RestBridge produces (plus the other integer columns).
#[test]
fn golden_all_types_reads_as_documented() {
    let Some(g) = load() else { return };
    assert_eq!(g.batches, 1);
    assert_eq!(g.rows(), 5);
    assert_eq!(
        g.metadata.keys().map(String::as_str).collect::<Vec<_>>(),
        ["meta", "name", "refId"]
    );
    assert_eq!(g.name(), "many_types");
    assert_eq!(g.ref_id(), "A");
    assert_eq!(g.meta(), Some(golden_meta()));

    let schema = expected_schema();
    assert_eq!(g.fields.len(), 35);
    for (i, (f, (name, dt, nullable, tstype, keys))) in g.fields.iter().zip(&schema).enumerate() {
        let at = format!("golden field #{i} {name}");
        assert_eq!(f.name, *name, "{at}: name");
        assert_eq!(&f.data_type, dt, "{at}: type");
        assert_eq!(f.nullable, *nullable, "{at}: nullable");
        assert_eq!(f.tstype(), Some(*tstype), "{at}: tstype");
        assert_eq!(
            f.metadata.keys().map(String::as_str).collect::<Vec<_>>(),
            *keys,
            "{at}: metadata keys"
        );
        assert_eq!(f.cells.len(), 5, "{at}: rows");
        assert_eq!(f.cells.nulls(), usize::from(*nullable), "{at}: null count");
        if !matches!(i, 0 | 1) {
            assert_eq!(f.labels(), None, "{at}: labels");
        }
        if !matches!(i, 0 | 1 | 2 | 28 | 33) {
            assert_eq!(f.config(), None, "{at}: config");
        }
    }
    let f = &g.fields;
    // Labels and config.
    assert_eq!(f[0].labels(), Some(labels(&[("aLabelKey", "aLabelValue")])));
    assert_eq!(
        f[0].config(),
        Some(Map::new()),
        "Go writes an empty config as {{}}"
    );
    assert_eq!(
        f[1].labels(),
        Some(labels(&[
            ("aLabelKey", "aLabelValue"),
            ("bLabelKey", "bLabelValue")
        ]))
    );
    assert_eq!(f[1].config(), Some(nullable_string_config()));
    assert_eq!(f[2].config(), Some(obj(json!({"min": 0, "max": 1}))));
    assert_eq!(f[28].config(), Some(obj(json!({"interval": 1000}))));
    assert_eq!(
        f[33].config(),
        Some(obj(
            json!({"type": {"enum": {"text": ["", "ONE", "TWO", "THREE"]}}})
        ))
    );

    // Values of the kinds RestBridge produces.
    let expect = |i: usize, want: Cells| match (&f[i].cells, &want) {
        (Cells::Float64(_), Cells::Float64(w)) => f64_cells_match(&f[i].name, &f[i].cells, w),
        (got, _) => assert_eq!(format!("{got:?}"), format!("{want:?}"), "field #{i}"),
    };
    expect(0, Cells::Utf8(some(&STRINGS.map(str::to_owned))));
    expect(1, Cells::Utf8(strings(&NULLABLE_STRINGS)));
    // The emoji are exact bytes: ❤ + VS16, and U+1F9A5.
    let Cells::Utf8(v) = &f[1].cells else {
        unreachable!()
    };
    assert_eq!(
        v[1].as_deref().map(str::as_bytes),
        Some("\u{2764}\u{fe0f}".as_bytes())
    );
    assert_eq!(v[3].as_deref(), Some("\u{1f9a5}"));
    expect(8, Cells::Int64(some(&INT64)));
    expect(9, Cells::Int64(null_row_2(&INT64)));
    expect(22, Cells::Float64(some(&F64)));
    expect(23, Cells::Float64(some(&F64_NANS)));
    expect(24, Cells::Float64(NULLABLE_F64.to_vec()));
    expect(25, Cells::Float64(NULLABLE_F64_NANS.to_vec()));
    // Go's NaN is math.NaN() = 0x7FF8000000000001 (not Rust's f64::NAN = 0x7FF8000000000000).
    let Cells::Float64(nans) = &f[23].cells else {
        unreachable!()
    };
    assert_eq!(nans[1].map(f64::to_bits), Some(0x7ff8_0000_0000_0001));
    expect(26, Cells::Bool(some(&BOOLS)));
    expect(27, Cells::Bool(null_row_2(&BOOLS)));
    expect(28, Cells::Time(some(&TIMES)));
    expect(29, Cells::Time(some(&TIMES)));
    expect(30, Cells::Time(null_row_2(&TIMES)));
    let json_bytes: Vec<Vec<u8>> = JSON.iter().map(|s| s.as_bytes().to_vec()).collect();
    expect(31, Cells::Binary(some(&json_bytes)));
    expect(32, Cells::Binary(null_row_2(&json_bytes)));
    // Every json cell is valid JSON text.
    for i in [31, 32] {
        let Cells::Binary(v) = &f[i].cells else {
            unreachable!()
        };
        for cell in v.iter().flatten() {
            serde_json::from_slice::<Value>(cell).expect("json cell parses");
        }
    }
    // The kinds we never produce, as text (not compared with our encoder).
    let text =
        |v: &[&str]| -> Vec<Option<String>> { v.iter().map(|s| Some((*s).to_owned())).collect() };
    let nullable_text = |v: &[&str]| -> Vec<Option<String>> {
        v.iter()
            .enumerate()
            .map(|(i, s)| (i != 2).then(|| (*s).to_owned()))
            .collect()
    };
    let foreign = [
        (2, text(&["-128", "-128", "0", "127", "127"])),
        (3, nullable_text(&["-128", "-128", "", "127", "127"])),
        (
            6,
            text(&[
                "-2147483648",
                "-2147483648",
                "1",
                "2147483647",
                "2147483647",
            ]),
        ),
        (
            16,
            text(&["0", "0", "1", "9007199254740991", "18446744073709551615"]),
        ),
        (
            17,
            nullable_text(&["0", "0", "", "9007199254740991", "18446744073709551615"]),
        ),
        (20, text(&["NaN", "inf", "1.0", "-inf", "0.0"])),
        (33, text(&["1", "2", "2", "1", "1"])),
        (34, nullable_text(&["1", "2", "", "3", "0"])),
    ];
    for (i, want) in foreign {
        match &f[i].cells {
            Cells::Foreign(got) => assert_eq!(got, &want, "field #{i} {}", f[i].name),
            other => panic!("field #{i}: {other:?}"),
        }
    }
}

/// (2) Our encoder, fed the hand-built equivalent of `goldenDF()` restricted to the kinds we
/// produce, must decode (arrow-rs) to the golden's schema metadata, types, nullability, tstype,
/// labels, config and values, field by field.
#[test]
fn our_encoding_of_all_types_matches_golden() {
    let frame = hand_built();
    // The meta we can express: executedQueryString + typeVersion [0,0].
    assert_eq!(
        frame.meta_json(),
        Some(json!({"executedQueryString": "SELECT * FROM table", "typeVersion": [0, 0]}))
    );
    let bytes = frame.encode("A").expect("encode");
    let facts = ipc::assert_grafana_container("our many_types", &bytes);
    println!(
        "our many_types: {} bytes, first message at {} (Go: 8)",
        bytes.len(),
        facts.header_len
    );
    // Grafana's decoder rules (support::arrow::decode panics on anything Go would reject).
    let checked = grafana::decode(&bytes);
    assert_eq!(checked.name, "many_types");
    assert_eq!(checked.ref_id, "A");
    assert_eq!(checked.fields.len(), PRODUCED.len());

    let Some(g) = load() else { return };
    let kept: Vec<usize> = g
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| golden::column_of(f).is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(kept, PRODUCED, "golden fields of the kinds we produce");
    let ours = golden::read_ipc_file(&bytes);
    let found = golden::compare(
        "all_types.golden.arrow vs hand-built",
        &g,
        &kept,
        &ours,
        NanMode::AnyNan,
    );
    for d in &found {
        println!("tolerated: {}: {}", d.place, d.diff);
    }
    let kinds: BTreeSet<Diff> = found.iter().map(|d| d.diff.clone()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            Diff::MetaKeyNotExpressible("channel".into()),
            Diff::MetaKeyNotExpressible("custom".into()),
            Diff::MetaKeyNotExpressible("stats".into()),
            Diff::EmptyConfigOmitted,
        ]),
        "the only differences from the golden"
    );
    // The hand-built frame and the generic rebuild of the golden are the same frame, except
    // for Go's NaN payload and the `{}` config we carry but do not write.
    let rebuilt = golden::rebuild(&g);
    assert_eq!(rebuilt.kept, PRODUCED);
    assert_eq!(rebuilt.frame.fields.len(), frame.fields.len());
    for (r, h) in rebuilt.frame.fields.iter().zip(&frame.fields) {
        assert_eq!(
            (
                &r.name,
                &r.labels,
                &r.config,
                r.nullable,
                r.values.type_name()
            ),
            (
                &h.name,
                &h.labels,
                &h.config,
                h.nullable,
                h.values.type_name()
            )
        );
    }
    assert_eq!(rebuilt.frame.executed_query, frame.executed_query);
    assert_eq!(rebuilt.frame.type_version, frame.type_version);
}
