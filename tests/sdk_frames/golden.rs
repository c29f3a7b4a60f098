//! Reading the Grafana Go SDK goldens and comparing them with what our encoder writes.
//!
//! * [`read_ipc_file`] is a **permissive** Arrow IPC file reader (arrow-rs `FileReader`): unlike
//!   `support::arrow::decode` it accepts every Arrow type the goldens contain and keeps the raw
//!   field/schema metadata, so nothing is normalised before the comparison.
//! * [`rebuild`] turns a golden frame into a `restbridge::frame::Frame`, keeping the fields whose
//!   types RestBridge produces and the meta keys our model can express.
//! * [`compare`] checks a decoded encoding of ours against the golden field by field and returns
//!   the tolerated differences (each one documented in docs/conformance-sdk-frames.md); any other
//!   mismatch panics.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Cursor;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimestampNanosecondType,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use restbridge::frame::{Column, Field, Frame, Notice};
use serde_json::{Map, Value};

/// The line after which a `.txt` golden carries its `KEY=VALUE` items.
pub const TXT_MARKER: &str = "====== TEST DATA RESPONSE (arrow base64) ======";

/// Encoder bugs found by these tests: cases Grafana's Go decoder would read differently from
/// what RestBridge meant (place, what Go reads, the fix). Printed by the tests; empty means
/// none was found. Differences that do not change what Go decodes are [`Diff`]s instead.
pub const KNOWN_GAPS: &[(&str, &str)] = &[];

/// Prints [`KNOWN_GAPS`].
pub fn print_known_gaps() {
    if KNOWN_GAPS.is_empty() {
        println!("KNOWN_GAPS: none (no case where Grafana's decoder reads our frame differently)");
    }
    for (case, what) in KNOWN_GAPS {
        println!("KNOWN_GAP: {case}: {what}");
    }
}

/// Field metadata keys our encoder writes.
pub const OUR_FIELD_KEYS: [&str; 3] = ["tstype", "labels", "config"];

/// Decodes standard base64 (RFC 4648 alphabet, `=` padding). Panics on anything else.
pub fn base64_decode(text: &str) -> Vec<u8> {
    fn sextet(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("invalid base64 byte {c:#04x}"),
        }
    }
    let bytes = text.trim().as_bytes();
    assert_eq!(bytes.len() % 4, 0, "base64 length is not a multiple of 4");
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, quad) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        assert!(
            pad <= 2 && (pad == 0 || last),
            "misplaced base64 padding in quad {i}"
        );
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | sextet(c);
        }
        n <<= 6 * pad as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&three[..3 - pad]);
    }
    out
}

/// The Arrow IPC files of a `.txt` golden, in order (protocol.md §3.9). Panics on `ERROR=`
/// items (none of the goldens has one) and when the marker line is missing.
pub fn txt_frames(text: &str) -> Vec<Vec<u8>> {
    let (_, items) = text
        .split_once(TXT_MARKER)
        .expect("`.txt` golden without the TEST DATA RESPONSE marker");
    let mut frames = Vec::new();
    for line in items.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue; // the SDK's reader skips lines without `=`
        };
        match key {
            "FRAME" => frames.push(base64_decode(value)),
            other => panic!("unexpected `.txt` item {other}= (an ERROR= item?)"),
        }
    }
    frames
}

/// The values of one field as read from Arrow, typed for exact comparison.
#[derive(Debug, Clone)]
pub enum Cells {
    /// `Timestamp(Nanosecond, None)`: raw epoch ns.
    Time(Vec<Option<i64>>),
    /// `Float64` (compared bit for bit or NaN-aware, see [`NanMode`]).
    Float64(Vec<Option<f64>>),
    /// `Int64`.
    Int64(Vec<Option<i64>>),
    /// `Utf8`.
    Utf8(Vec<Option<String>>),
    /// `Boolean`.
    Bool(Vec<Option<bool>>),
    /// `Binary` (Grafana json fields).
    Binary(Vec<Option<Vec<u8>>>),
    /// Any other Arrow type (RestBridge never produces it); cells rendered as text.
    Foreign(Vec<Option<String>>),
}

impl Cells {
    fn empty_for(dt: &DataType) -> Cells {
        match dt {
            DataType::Timestamp(TimeUnit::Nanosecond, None) => Cells::Time(Vec::new()),
            DataType::Float64 => Cells::Float64(Vec::new()),
            DataType::Int64 => Cells::Int64(Vec::new()),
            DataType::Utf8 => Cells::Utf8(Vec::new()),
            DataType::Boolean => Cells::Bool(Vec::new()),
            DataType::Binary => Cells::Binary(Vec::new()),
            _ => Cells::Foreign(Vec::new()),
        }
    }

    fn extend(&mut self, col: &ArrayRef) {
        fn cells<T>(col: &ArrayRef, get: impl Fn(usize) -> T) -> impl Iterator<Item = Option<T>> {
            let nulls: Vec<bool> = (0..col.len()).map(|r| col.is_null(r)).collect();
            nulls
                .into_iter()
                .enumerate()
                .map(move |(r, null)| (!null).then(|| get(r)))
        }
        match self {
            Cells::Time(v) => {
                let a = col.as_primitive::<TimestampNanosecondType>();
                v.extend(cells(col, |r| a.value(r)));
            }
            Cells::Float64(v) => {
                let a = col.as_primitive::<Float64Type>();
                v.extend(cells(col, |r| a.value(r)));
            }
            Cells::Int64(v) => {
                let a = col.as_primitive::<Int64Type>();
                v.extend(cells(col, |r| a.value(r)));
            }
            Cells::Utf8(v) => {
                let a = col.as_string::<i32>();
                v.extend(cells(col, |r| a.value(r).to_owned()));
            }
            Cells::Bool(v) => {
                let a = col.as_boolean();
                v.extend(cells(col, |r| a.value(r)));
            }
            Cells::Binary(v) => {
                let a = col.as_binary::<i32>();
                v.extend(cells(col, |r| a.value(r).to_vec()));
            }
            Cells::Foreign(v) => v.extend(cells(col, |r| render_foreign(col, r))),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Cells::Time(v) | Cells::Int64(v) => v.len(),
            Cells::Float64(v) => v.len(),
            Cells::Utf8(v) | Cells::Foreign(v) => v.len(),
            Cells::Bool(v) => v.len(),
            Cells::Binary(v) => v.len(),
        }
    }

    /// Number of null cells.
    pub fn nulls(&self) -> usize {
        match self {
            Cells::Time(v) | Cells::Int64(v) => v.iter().filter(|c| c.is_none()).count(),
            Cells::Float64(v) => v.iter().filter(|c| c.is_none()).count(),
            Cells::Utf8(v) | Cells::Foreign(v) => v.iter().filter(|c| c.is_none()).count(),
            Cells::Bool(v) => v.iter().filter(|c| c.is_none()).count(),
            Cells::Binary(v) => v.iter().filter(|c| c.is_none()).count(),
        }
    }
}

fn render_foreign(col: &ArrayRef, r: usize) -> String {
    match col.data_type() {
        DataType::Int8 => col.as_primitive::<Int8Type>().value(r).to_string(),
        DataType::Int16 => col.as_primitive::<Int16Type>().value(r).to_string(),
        DataType::Int32 => col.as_primitive::<Int32Type>().value(r).to_string(),
        DataType::UInt8 => col.as_primitive::<UInt8Type>().value(r).to_string(),
        DataType::UInt16 => col.as_primitive::<UInt16Type>().value(r).to_string(),
        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(r).to_string(),
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(r).to_string(),
        DataType::Float32 => format!("{:?}", col.as_primitive::<Float32Type>().value(r)),
        other => format!("<{other}>"),
    }
}

/// One field exactly as arrow-rs reads it.
#[derive(Debug, Clone)]
pub struct RawField {
    /// Arrow field name.
    pub name: String,
    /// Arrow type.
    pub data_type: DataType,
    /// Arrow nullable flag.
    pub nullable: bool,
    /// All field metadata, verbatim.
    pub metadata: BTreeMap<String, String>,
    /// The values of every record batch, in order.
    pub cells: Cells,
}

impl RawField {
    /// The `tstype` metadata value, if any.
    pub fn tstype(&self) -> Option<&str> {
        self.metadata.get("tstype").map(String::as_str)
    }

    /// The `labels` metadata parsed as string→string (Grafana fails on anything else).
    pub fn labels(&self) -> Option<BTreeMap<String, String>> {
        self.metadata.get("labels").map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("field {}: labels {l:?} not string→string: {e}", self.name)
            })
        })
    }

    /// The `config` metadata parsed as a JSON object.
    pub fn config(&self) -> Option<Map<String, Value>> {
        self.metadata.get("config").map(|c| {
            serde_json::from_str(c)
                .unwrap_or_else(|e| panic!("field {}: config {c:?} not an object: {e}", self.name))
        })
    }

    /// What kind of field Grafana's decoder makes of it (protocol.md §3.5), e.g. `int8`,
    /// `enum`, `float64`; used to name skipped types.
    pub fn grafana_type(&self) -> String {
        match &self.data_type {
            DataType::Timestamp(_, _) => "time".to_owned(),
            DataType::Float64 => "float64".to_owned(),
            DataType::Float32 => "float32".to_owned(),
            DataType::Int8 => "int8".to_owned(),
            DataType::Int16 => "int16".to_owned(),
            DataType::Int32 => "int32".to_owned(),
            DataType::Int64 => "int64".to_owned(),
            DataType::UInt8 => "uint8".to_owned(),
            DataType::UInt16 if self.tstype() == Some("enum") => "enum".to_owned(),
            DataType::UInt16 => "uint16".to_owned(),
            DataType::UInt32 => "uint32".to_owned(),
            DataType::UInt64 => "uint64".to_owned(),
            DataType::Utf8 | DataType::Utf8View => "string".to_owned(),
            DataType::Boolean => "bool".to_owned(),
            DataType::Binary => "json".to_owned(),
            other => format!("unsupported {other}"),
        }
    }
}

/// One frame exactly as arrow-rs reads it.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// All schema metadata, verbatim.
    pub metadata: BTreeMap<String, String>,
    /// The fields.
    pub fields: Vec<RawField>,
    /// Number of record batches.
    pub batches: usize,
}

impl RawFrame {
    /// Frame name (`name` key; absent = empty, as Grafana decodes it).
    pub fn name(&self) -> &str {
        self.metadata.get("name").map_or("", String::as_str)
    }

    /// refId (`refId` key; absent = empty).
    pub fn ref_id(&self) -> &str {
        self.metadata.get("refId").map_or("", String::as_str)
    }

    /// The `meta` JSON, parsed.
    pub fn meta(&self) -> Option<Value> {
        self.metadata.get("meta").map(|m| {
            serde_json::from_str(m).unwrap_or_else(|e| panic!("meta {m:?} is not JSON: {e}"))
        })
    }

    /// Row count (all fields have the same length).
    pub fn rows(&self) -> usize {
        self.fields.first().map_or(0, |f| f.cells.len())
    }
}

/// Reads one Arrow IPC **file** with arrow-rs, accepting every Arrow type.
pub fn read_ipc_file(bytes: &[u8]) -> RawFrame {
    let reader = arrow_ipc::reader::FileReader::try_new(Cursor::new(bytes.to_vec()), None)
        .unwrap_or_else(|e| panic!("not a readable Arrow IPC file: {e}"));
    let schema = reader.schema();
    let mut fields: Vec<RawField> = schema
        .fields()
        .iter()
        .map(|f| RawField {
            name: f.name().clone(),
            data_type: f.data_type().clone(),
            nullable: f.is_nullable(),
            metadata: f
                .metadata()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cells: Cells::empty_for(f.data_type()),
        })
        .collect();
    let metadata = schema
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut batches = 0;
    for batch in reader {
        let batch = batch.unwrap_or_else(|e| panic!("record batch: {e}"));
        batches += 1;
        for (field, col) in fields.iter_mut().zip(batch.columns()) {
            field.cells.extend(col);
        }
    }
    RawFrame {
        metadata,
        fields,
        batches,
    }
}

/// Our `Column` for a golden field, or `Err(grafana type)` when RestBridge never produces it.
pub fn column_of(f: &RawField) -> Result<Column, String> {
    Ok(match &f.cells {
        Cells::Time(v) => Column::Time(v.clone()),
        Cells::Float64(v) => Column::Number(v.clone()),
        Cells::Int64(v) => Column::Int(v.clone()),
        Cells::Utf8(v) => Column::String(v.iter().map(Option::as_deref).collect()),
        Cells::Bool(v) => Column::Bool(v.clone()),
        Cells::Binary(v) => Column::Json(
            v.iter()
                .map(|c| {
                    c.as_ref().map(|b| {
                        String::from_utf8(b.clone()).unwrap_or_else(|e| {
                            panic!("field {}: json cell is not UTF-8: {e}", f.name)
                        })
                    })
                })
                .collect(),
        ),
        Cells::Foreign(_) => return Err(f.grafana_type()),
    })
}

/// `preferredVisualisationType` values our model holds (`&'static str`), protocol.md §3.3.
fn static_visualisation(v: &str) -> Option<&'static str> {
    ["graph", "table", "logs", "trace", "nodeGraph", "flamegraph"]
        .into_iter()
        .find(|&k| k == v)
}

fn static_severity(v: &str) -> Option<&'static str> {
    ["info", "warning", "error"].into_iter().find(|&k| k == v)
}

/// A golden frame re-expressed in our model.
#[derive(Debug)]
pub struct Rebuilt {
    /// The frame our encoder gets.
    pub frame: Frame,
    /// The golden's refId (passed to `encode`).
    pub ref_id: String,
    /// Golden field indices that were kept, in order (ours field i = golden field kept[i]).
    pub kept: Vec<usize>,
    /// Golden fields left out: (index, name, Grafana type).
    pub skipped: Vec<(usize, String, String)>,
    /// Golden meta keys (or notice keys) our model cannot express.
    pub meta_not_expressible: Vec<String>,
}

/// Re-expresses a golden frame with RestBridge's frame model.
pub fn rebuild(g: &RawFrame) -> Rebuilt {
    let mut frame = Frame {
        name: g.name().to_owned(),
        ..Frame::default()
    };
    let mut meta_not_expressible = Vec::new();
    if let Some(meta) = g.meta() {
        let obj = meta.as_object().expect("meta is a JSON object");
        for (k, v) in obj {
            match (k.as_str(), v) {
                ("type", Value::String(t)) => frame.frame_type = t.clone(),
                ("typeVersion", Value::Array(a)) if a.len() == 2 => {
                    let n = |x: &Value| {
                        u32::try_from(x.as_u64().expect("typeVersion int")).expect("u32")
                    };
                    frame.type_version = [n(&a[0]), n(&a[1])];
                }
                ("executedQueryString", Value::String(q)) => {
                    frame.executed_query = Some(q.clone());
                }
                ("preferredVisualisationType", Value::String(p))
                    if static_visualisation(p).is_some() =>
                {
                    frame.preferred_visualisation = static_visualisation(p);
                }
                ("notices", Value::Array(list)) => {
                    for n in list {
                        let n = n.as_object().expect("notice object");
                        for key in n.keys() {
                            if key != "severity" && key != "text" {
                                meta_not_expressible.push(format!("notices[].{key}"));
                            }
                        }
                        let sev = n
                            .get("severity")
                            .map_or("info", |s| s.as_str().expect("severity is a string"));
                        frame.notices.push(Notice {
                            severity: static_severity(sev)
                                .unwrap_or_else(|| panic!("severity {sev} fails Go decoding")),
                            text: n
                                .get("text")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        });
                    }
                }
                _ => meta_not_expressible.push(k.clone()),
            }
        }
    }
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    for (i, f) in g.fields.iter().enumerate() {
        match column_of(f) {
            Ok(values) => {
                kept.push(i);
                frame.fields.push(Field {
                    name: f.name.clone(),
                    labels: f.labels().unwrap_or_default(),
                    config: f.config(),
                    nullable: f.nullable,
                    values,
                });
            }
            Err(ty) => skipped.push((i, f.name.clone(), ty)),
        }
    }
    Rebuilt {
        frame,
        ref_id: g.ref_id().to_owned(),
        kept,
        skipped,
        meta_not_expressible,
    }
}

/// How float64 cells are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NanMode {
    /// Bit for bit (the frame was rebuilt from the golden's own values).
    Bits,
    /// NaN equals any NaN (a hand-built frame uses `f64::NAN`, Go uses `math.NaN()`, whose
    /// payload differs; Grafana reads both as NaN). Everything else is still bit for bit.
    AnyNan,
}

/// A difference between a golden and our encoding that Grafana's decoder does not care about
/// or that comes from our deliberately smaller meta model.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Diff {
    /// A golden meta key (or notice key) our frame model has no place for.
    MetaKeyNotExpressible(String),
    /// The golden has a `meta` key; ours has none (all it held was unexpressible or default).
    MetaOmitted,
    /// The golden meta has no `typeVersion` (older SDK); ours writes `[0,0]`.
    TypeVersionAdded,
    /// A golden notice has no `severity` (decoded as info); ours writes `"info"`.
    NoticeSeverityAdded,
    /// The golden field has no `tstype` (older SDK); ours writes one.
    TstypeAdded,
    /// The golden field has the legacy field-level `name` key; ours does not write it.
    LegacyNameKeyNotWritten,
    /// The golden field has `config` = `{}`; ours omits an empty config.
    EmptyConfigOmitted,
    /// The golden field has `labels` = `{}`; ours omits empty labels.
    EmptyLabelsOmitted,
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diff::MetaKeyNotExpressible(k) => write!(f, "meta key `{k}` not expressible"),
            Diff::MetaOmitted => f.write_str("meta omitted (nothing expressible left)"),
            Diff::TypeVersionAdded => f.write_str("typeVersion [0,0] added"),
            Diff::NoticeSeverityAdded => f.write_str("notice severity \"info\" written"),
            Diff::TstypeAdded => f.write_str("tstype written (golden has none)"),
            Diff::LegacyNameKeyNotWritten => f.write_str("legacy field `name` key not written"),
            Diff::EmptyConfigOmitted => f.write_str("empty config `{}` omitted"),
            Diff::EmptyLabelsOmitted => f.write_str("empty labels `{}` omitted"),
        }
    }
}

/// The `tstype` Grafana's Go encoder writes for an Arrow type we produce (protocol.md §3.5).
pub fn expected_tstype(dt: &DataType) -> &'static str {
    match dt {
        DataType::Timestamp(TimeUnit::Nanosecond, None) => "time",
        DataType::Float64 | DataType::Int64 => "number",
        DataType::Utf8 => "string",
        DataType::Boolean => "boolean",
        DataType::Binary => "other",
        other => panic!("RestBridge does not produce {other}"),
    }
}

/// The meta our encoder must write for a golden meta: the golden's keys restricted to those
/// our model expresses, with Go's decode defaults applied (missing `typeVersion` = `[0,0]`,
/// missing notice severity = `info`), and `None` when nothing but a `[0,0]` version is left.
pub fn expected_meta(golden: Option<&Value>) -> (Option<Value>, BTreeSet<Diff>) {
    let mut diffs = BTreeSet::new();
    let Some(golden) = golden else {
        return (None, diffs);
    };
    let obj = golden.as_object().expect("meta object");
    let mut exp = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "type" if v.as_str().is_some_and(|t| !t.is_empty()) => {
                exp.insert(k.clone(), v.clone());
            }
            "executedQueryString" => {
                exp.insert(k.clone(), v.clone());
            }
            "preferredVisualisationType" if v.as_str().and_then(static_visualisation).is_some() => {
                exp.insert(k.clone(), v.clone());
            }
            "notices" => {
                let list = v.as_array().expect("notices array");
                let normalised = list
                    .iter()
                    .map(|n| {
                        let sev = n.get("severity").cloned().unwrap_or_else(|| {
                            diffs.insert(Diff::NoticeSeverityAdded);
                            Value::from("info")
                        });
                        let text = n.get("text").cloned().unwrap_or_else(|| Value::from(""));
                        for key in n.as_object().expect("notice").keys() {
                            if key != "severity" && key != "text" {
                                diffs.insert(Diff::MetaKeyNotExpressible(format!(
                                    "notices[].{key}"
                                )));
                            }
                        }
                        serde_json::json!({"severity": sev, "text": text})
                    })
                    .collect();
                if !list.is_empty() {
                    exp.insert(k.clone(), Value::Array(normalised));
                }
            }
            "typeVersion" => {}
            _ => {
                diffs.insert(Diff::MetaKeyNotExpressible(k.clone()));
            }
        }
    }
    let tv = obj
        .get("typeVersion")
        .cloned()
        .unwrap_or_else(|| serde_json::json!([0, 0]));
    if exp.is_empty() && tv == serde_json::json!([0, 0]) {
        diffs.insert(Diff::MetaOmitted);
        return (None, diffs);
    }
    if !obj.contains_key("typeVersion") {
        diffs.insert(Diff::TypeVersionAdded);
    }
    exp.insert("typeVersion".into(), tv);
    (Some(Value::Object(exp)), diffs)
}

/// One tolerated difference with its place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    /// `file / frame` or `file / frame / field #i name`.
    pub place: String,
    /// What differs.
    pub diff: Diff,
}

/// Compares a decoded encoding of ours with the golden: schema metadata (`name`, `refId`,
/// `meta`), then for ours field i against golden field `kept[i]`: name, Arrow type,
/// nullability, `tstype`, labels, config (parsed JSON), the set of metadata keys, and every
/// value. Panics on any mismatch that is not a [`Diff`]; returns the tolerated ones.
pub fn compare(
    place: &str,
    golden: &RawFrame,
    kept: &[usize],
    ours: &RawFrame,
    nan: NanMode,
) -> Vec<Found> {
    let mut found = Vec::new();
    // Schema (frame) metadata.
    for key in golden.metadata.keys() {
        assert!(
            matches!(key.as_str(), "name" | "refId" | "meta"),
            "{place}: golden schema metadata key {key} unknown to protocol.md §3.2"
        );
    }
    for key in ours.metadata.keys() {
        assert!(
            matches!(key.as_str(), "name" | "refId" | "meta"),
            "{place}: our schema metadata has extra key {key}"
        );
    }
    assert!(
        ours.metadata.contains_key("name"),
        "{place}: we must always write name"
    );
    assert!(
        ours.metadata.contains_key("refId"),
        "{place}: we must always write refId"
    );
    assert_eq!(ours.name(), golden.name(), "{place}: frame name");
    assert_eq!(ours.ref_id(), golden.ref_id(), "{place}: refId");
    let (exp_meta, meta_diffs) = expected_meta(golden.meta().as_ref());
    assert_eq!(ours.meta(), exp_meta, "{place}: meta JSON (keys we write)");
    found.extend(meta_diffs.into_iter().map(|diff| Found {
        place: place.to_owned(),
        diff,
    }));
    // Fields.
    assert_eq!(ours.fields.len(), kept.len(), "{place}: field count");
    assert_eq!(ours.rows(), golden.rows(), "{place}: row count");
    for (o, &gi) in ours.fields.iter().zip(kept) {
        let g = &golden.fields[gi];
        let at = format!("{place} / field #{gi} {}", g.name);
        let mut diff = |d: Diff| {
            found.push(Found {
                place: at.clone(),
                diff: d,
            })
        };
        assert_eq!(o.name, g.name, "{at}: name");
        assert_eq!(o.data_type, g.data_type, "{at}: Arrow type");
        assert_eq!(o.nullable, g.nullable, "{at}: nullable flag");
        // tstype: ours always; equal to the golden's when it has one.
        let ts = expected_tstype(&o.data_type);
        assert_eq!(o.tstype(), Some(ts), "{at}: our tstype");
        match g.tstype() {
            Some(gt) => assert_eq!(gt, ts, "{at}: tstype"),
            None => diff(Diff::TstypeAdded),
        }
        // labels (parsed; absent ≡ {} for Grafana).
        let (gl, ol) = (g.labels(), o.labels());
        assert_eq!(
            ol.clone().unwrap_or_default(),
            gl.clone().unwrap_or_default(),
            "{at}: labels"
        );
        if gl.is_some_and(|l| l.is_empty()) && ol.is_none() {
            diff(Diff::EmptyLabelsOmitted);
        }
        // config (parsed JSON; an empty object may be omitted by us).
        match (g.config(), o.config()) {
            (Some(gc), None) if gc.is_empty() => diff(Diff::EmptyConfigOmitted),
            (gc, oc) => assert_eq!(oc, gc, "{at}: config JSON"),
        }
        // The metadata key sets.
        for key in o.metadata.keys() {
            assert!(
                OUR_FIELD_KEYS.contains(&key.as_str()),
                "{at}: we wrote unexpected field metadata key {key}"
            );
        }
        for (key, value) in &g.metadata {
            if OUR_FIELD_KEYS.contains(&key.as_str()) {
                continue;
            }
            assert_eq!(
                key, "name",
                "{at}: golden field metadata key {key} is unknown"
            );
            assert_eq!(value, &g.name, "{at}: legacy name key holds the field name");
            diff(Diff::LegacyNameKeyNotWritten);
        }
        assert_cells(&at, &g.cells, &o.cells, nan);
    }
    found
}

fn f64_same(a: f64, b: f64, nan: NanMode) -> bool {
    a.to_bits() == b.to_bits() || (nan == NanMode::AnyNan && a.is_nan() && b.is_nan())
}

/// Asserts two value lists are equal (nulls in the same rows, values exactly equal).
pub fn assert_cells(at: &str, golden: &Cells, ours: &Cells, nan: NanMode) {
    match (golden, ours) {
        (Cells::Time(g), Cells::Time(o)) | (Cells::Int64(g), Cells::Int64(o)) => {
            assert_eq!(o, g, "{at}: values");
        }
        (Cells::Utf8(g), Cells::Utf8(o)) => assert_eq!(o, g, "{at}: values"),
        (Cells::Bool(g), Cells::Bool(o)) => assert_eq!(o, g, "{at}: values"),
        (Cells::Binary(g), Cells::Binary(o)) => assert_eq!(o, g, "{at}: values"),
        (Cells::Float64(g), Cells::Float64(o)) => {
            assert_eq!(o.len(), g.len(), "{at}: row count");
            for (r, (gv, ov)) in g.iter().zip(o).enumerate() {
                let same = match (gv, ov) {
                    (Some(a), Some(b)) => f64_same(*a, *b, nan),
                    (None, None) => true,
                    _ => false,
                };
                assert!(same, "{at}: row {r}: ours {ov:?} ≠ golden {gv:?}");
            }
        }
        _ => panic!("{at}: value kinds differ: {golden:?} vs {ours:?}"),
    }
}
