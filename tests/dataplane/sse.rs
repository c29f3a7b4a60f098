//! An alerting / server-side-expressions (SSE) shape classifier, written from
//! `../shared/protocol.md` §4.1 (order of decisions), §4.2 (frame types), §9 item 27 (edge
//! cases) and the dataplane contract summary in `../shared/conformance/dataplane/README.md`.
//! It is *not* a port of Grafana's code: it answers "what would alerting make of these frames"
//! so that our frames and the dataplane example files can be checked the same way.
//!
//! Input: the decoded frames of one query (`support::arrow::DecodedFrame`, also built from
//! frame JSON by `frame_json`). Output: [`Sse`], plus a [`Report`] with the route taken and
//! notes for things the contract calls invalid but that a reader may only warn about
//! (unsorted time, duplicate timestamps or items, numeric frames with more than one row, an
//! unknown `typeVersion`).

use std::collections::{BTreeMap, HashSet};

use arrow_schema::DataType;
use serde_json::Value;

use crate::support::arrow::{DecodedField, DecodedFrame};

/// Labels of a series or number (key → value).
pub type Labels = BTreeMap<String, String>;

/// What alerting gets out of one query's frames.
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    /// No data (alert state NoData).
    NoData,
    /// A set of series: (name, labels, number of points).
    TimeSeries {
        series: Vec<(String, Labels, usize)>,
    },
    /// A set of numbers: (labels, value; `None` = null).
    Numbers { items: Vec<(Labels, Option<f64>)> },
    /// The query fails in SSE with this message.
    Error(String),
}

impl Sse {
    /// Items found: series or numbers (0 for no data and errors).
    pub fn item_count(&self) -> usize {
        match self {
            Sse::TimeSeries { series } => series.len(),
            Sse::Numbers { items } => items.len(),
            Sse::NoData | Sse::Error(_) => 0,
        }
    }

    /// Short description for test output.
    pub fn summary(&self) -> String {
        match self {
            Sse::NoData => "NoData".to_owned(),
            Sse::TimeSeries { series } => format!("TimeSeries({} series)", series.len()),
            Sse::Numbers { items } => format!("Numbers({} items)", items.len()),
            Sse::Error(e) => format!("Error({e})"),
        }
    }
}

/// The six dataplane kinds SSE reads directly (protocol.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TimeseriesWide,
    TimeseriesMulti,
    TimeseriesLong,
    NumericWide,
    NumericMulti,
    NumericLong,
}

impl Kind {
    /// The kind of a `meta.type`, when it is one of the six.
    pub fn from_type(t: &str) -> Option<Kind> {
        Some(match t {
            "timeseries-wide" => Kind::TimeseriesWide,
            "timeseries-multi" => Kind::TimeseriesMulti,
            "timeseries-long" => Kind::TimeseriesLong,
            "numeric-wide" => Kind::NumericWide,
            "numeric-multi" => Kind::NumericMulti,
            "numeric-long" => Kind::NumericLong,
            _ => return None,
        })
    }

    /// The `meta.type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TimeseriesWide => "timeseries-wide",
            Kind::TimeseriesMulti => "timeseries-multi",
            Kind::TimeseriesLong => "timeseries-long",
            Kind::NumericWide => "numeric-wide",
            Kind::NumericMulti => "numeric-multi",
            Kind::NumericLong => "numeric-long",
        }
    }

    /// Time-series kinds give series; numeric kinds give numbers.
    pub fn is_timeseries(self) -> bool {
        matches!(
            self,
            Kind::TimeseriesWide | Kind::TimeseriesMulti | Kind::TimeseriesLong
        )
    }
}

/// Which branch of §4.1 was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// No frames at all.
    Empty,
    /// The first frame is typed with one of the six kinds and a version ≠ [0,0].
    Dataplane(Kind),
    /// Everything else.
    Legacy,
}

/// The classification with its route and notes.
#[derive(Debug, Clone)]
pub struct Report {
    pub route: Route,
    pub outcome: Sse,
    /// Contract violations a reader only warns about (never errors).
    pub notes: Vec<String>,
}

/// Classifies one query's frames.
pub fn classify(frames: &[DecodedFrame]) -> Sse {
    classify_report(frames).outcome
}

/// `meta.type` (empty when absent) and `meta.typeVersion` (`[0,0]` when absent).
pub fn type_of(frame: &DecodedFrame) -> (&str, [u64; 2]) {
    let Some(meta) = frame.meta.as_ref() else {
        return ("", [0, 0]);
    };
    let ty = meta.get("type").and_then(Value::as_str).unwrap_or("");
    let ver = match meta.get("typeVersion").and_then(Value::as_array) {
        Some(a) if a.len() == 2 => [a[0].as_u64().unwrap_or(0), a[1].as_u64().unwrap_or(0)],
        _ => [0, 0],
    };
    (ty, ver)
}

/// Classifies one query's frames, following protocol.md §4.1 in order.
pub fn classify_report(frames: &[DecodedFrame]) -> Report {
    let mut notes = Vec::new();
    // 1. No frames → no data.
    let Some(first) = frames.first() else {
        return Report {
            route: Route::Empty,
            outcome: Sse::NoData,
            notes,
        };
    };
    // 2. Dataplane path: first frame typed (non-empty type, version ≠ [0,0]) with a kind SSE
    //    knows; any other type falls through to the legacy path.
    let (ty, ver) = type_of(first);
    let kind = if !ty.is_empty() && ver != [0, 0] {
        Kind::from_type(ty)
    } else {
        None
    };
    let (route, result) = match kind {
        Some(kind) => {
            if ver != [0, 1] {
                notes.push(format!(
                    "unknown typeVersion [{}, {}] for {ty}: read as [0, 1] with a warning",
                    ver[0], ver[1]
                ));
            }
            (Route::Dataplane(kind), dataplane(kind, frames, &mut notes))
        }
        // 3. Legacy path.
        None => (Route::Legacy, legacy(frames, &mut notes)),
    };
    let outcome = match result {
        Ok(Sse::TimeSeries { series }) if series.is_empty() => Sse::NoData,
        Ok(Sse::Numbers { items }) if items.is_empty() => Sse::NoData,
        Ok(o) => o,
        Err(e) => Sse::Error(e),
    };
    Report {
        route,
        outcome,
        notes,
    }
}

// ---------------------------------------------------------------------------------------
// Field helpers

/// What a field is for shape purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Time,
    Number,
    Bool,
    String,
    /// json / binary / enum / anything else.
    Other,
}

/// The class of a decoded field, from its Arrow type (protocol.md §3.5).
pub fn class(f: &DecodedField) -> Class {
    if f.tstype.as_deref() == Some("enum") {
        return Class::Other;
    }
    match &f.data_type {
        DataType::Timestamp(..) => Class::Time,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64 => Class::Number,
        DataType::Boolean => Class::Bool,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Class::String,
        _ => Class::Other,
    }
}

/// Dataplane value fields: numeric or bool.
fn is_value(f: &DecodedField) -> bool {
    matches!(class(f), Class::Number | Class::Bool)
}

fn rows(frame: &DecodedFrame) -> usize {
    frame.fields.first().map_or(0, |f| f.values.len())
}

/// A cell as a number: JSON numbers, bools as 1/0, the decoder's text for non-finite floats
/// (`NaN`, `inf`, `-inf`); null and anything else → `None`.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
}

fn field_name(f: &DecodedField) -> String {
    if f.name.is_empty() {
        "(no name)".to_owned()
    } else {
        f.name.clone()
    }
}

/// Time values of a time-series index: nulls are an error; unsorted and (when
/// `no_duplicates`) repeated timestamps are noted.
fn time_index(
    what: &str,
    f: &DecodedField,
    no_duplicates: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<i64>, String> {
    let mut out = Vec::with_capacity(f.values.len());
    for (r, v) in f.values.iter().enumerate() {
        match v.as_i64() {
            Some(t) => out.push(t),
            None => {
                return Err(format!(
                    "{what}: time field '{}' has a null (or non-time) value at row {r}; \
                     time series need a time value on every row",
                    field_name(f)
                ))
            }
        }
    }
    if !f.labels.is_empty() {
        notes.push(format!(
            "{what}: the time field '{}' has labels (the contract says it must not)",
            field_name(f)
        ));
    }
    if out.windows(2).any(|w| w[0] > w[1]) {
        notes.push(format!(
            "{what}: time field '{}' is not sorted ascending",
            field_name(f)
        ));
    }
    if no_duplicates {
        let mut seen = HashSet::new();
        let dups = out.iter().filter(|t| !seen.insert(**t)).count();
        if dups > 0 {
            notes.push(format!(
                "{what}: time field '{}' has {dups} duplicate timestamp(s)",
                field_name(f)
            ));
        }
    }
    Ok(out)
}

/// Labels of row `r` from string dimension columns. A null is an error: Grafana's reader
/// panics on a null label value (protocol.md §9 item 27).
fn row_labels(what: &str, dims: &[&DecodedField], r: usize) -> Result<Labels, String> {
    let mut labels = Labels::new();
    for d in dims {
        match d.values.get(r) {
            Some(Value::String(s)) => {
                labels.insert(d.name.clone(), s.clone());
            }
            _ => {
                return Err(format!(
                    "{what}: null label value in string column '{}' at row {r} \
                     (Grafana's reader panics on a null label)",
                    field_name(d)
                ))
            }
        }
    }
    Ok(labels)
}

/// Notes items sharing both name and dimensions (allowed to draw only a warning).
fn note_duplicates<'a>(
    what: &str,
    ids: impl Iterator<Item = (&'a str, &'a Labels)>,
    notes: &mut Vec<String>,
) {
    let mut seen = HashSet::new();
    for (name, labels) in ids {
        if !seen.insert((name, labels)) {
            notes.push(format!(
                "{what}: duplicate item '{name}' {labels:?} (same name and dimensions)"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Dataplane path

fn dataplane(kind: Kind, frames: &[DecodedFrame], notes: &mut Vec<String>) -> Result<Sse, String> {
    let ty = kind.as_str();
    let typed: Vec<(usize, &DecodedFrame)> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| type_of(f).0 == ty)
        .collect();
    // No data: one typed frame with no fields. It must not sit next to typed data.
    if typed.iter().any(|(_, f)| f.fields.is_empty()) {
        if typed.len() == 1 {
            return Ok(Sse::NoData);
        }
        return Err(format!(
            "{ty}: a field-less (no-data) frame next to other {ty} frames; the contract says \
             no data must never be sent next to real data"
        ));
    }
    let first = &frames[0];
    match kind {
        Kind::TimeseriesWide | Kind::TimeseriesLong | Kind::NumericWide | Kind::NumericLong => {
            if typed.len() > 1 {
                notes.push(format!(
                    "{ty}: {} typed frames; the format has one frame, the others are ignored",
                    typed.len()
                ));
            }
        }
        Kind::TimeseriesMulti | Kind::NumericMulti => {}
    }
    match kind {
        Kind::TimeseriesWide => timeseries_wide(first, notes),
        Kind::TimeseriesMulti => timeseries_multi(&typed, notes),
        Kind::TimeseriesLong => timeseries_long(first, notes),
        Kind::NumericWide => numeric_wide(first, notes),
        Kind::NumericMulti => {
            // protocol.md §9 item 27: numeric-multi needs every frame typed.
            if let Some(i) = (0..frames.len()).find(|i| !typed.iter().any(|(j, _)| j == i)) {
                return Err(format!(
                    "numeric-multi: frame {i} is not typed numeric-multi (every frame of a \
                     numeric-multi response must carry the type)"
                ));
            }
            numeric_multi(&typed, notes)
        }
        Kind::NumericLong => numeric_long(first, notes),
    }
}

/// One frame: first time field = index; every numeric/bool field (with labels) a series;
/// strings and later time fields are remainder.
fn timeseries_wide(frame: &DecodedFrame, notes: &mut Vec<String>) -> Result<Sse, String> {
    let what = "timeseries-wide";
    let time = frame
        .fields
        .iter()
        .find(|f| class(f) == Class::Time)
        .ok_or_else(|| format!("{what}: no time field"))?;
    let values: Vec<&DecodedField> = frame.fields.iter().filter(|f| is_value(f)).collect();
    if values.is_empty() {
        return Err(format!("{what}: no value field (numeric or bool)"));
    }
    let t = time_index(what, time, true, notes)?;
    let series: Vec<(String, Labels, usize)> = values
        .iter()
        .map(|f| (f.name.clone(), f.labels.clone(), t.len()))
        .collect();
    note_duplicates(what, series.iter().map(|(n, l, _)| (n.as_str(), l)), notes);
    Ok(Sse::TimeSeries { series })
}

/// One series per typed frame: its first time field and first value field; untyped frames
/// and extra fields are remainder.
fn timeseries_multi(
    typed: &[(usize, &DecodedFrame)],
    notes: &mut Vec<String>,
) -> Result<Sse, String> {
    let mut series = Vec::with_capacity(typed.len());
    for (i, frame) in typed {
        let what = format!("timeseries-multi frame {i}");
        let time = frame
            .fields
            .iter()
            .find(|f| class(f) == Class::Time)
            .ok_or_else(|| format!("{what}: no time field"))?;
        let value = frame
            .fields
            .iter()
            .find(|f| is_value(f))
            .ok_or_else(|| format!("{what}: no value field (numeric or bool)"))?;
        let t = time_index(&what, time, true, notes)?;
        series.push((value.name.clone(), value.labels.clone(), t.len()));
    }
    note_duplicates(
        "timeseries-multi",
        series.iter().map(|(n, l, _)| (n.as_str(), l)),
        notes,
    );
    Ok(Sse::TimeSeries { series })
}

/// SQL-table shape: first time field (sorted, duplicates allowed), value fields named after
/// their series, string columns as dimensions; rows grouped by the dimension values.
fn timeseries_long(frame: &DecodedFrame, notes: &mut Vec<String>) -> Result<Sse, String> {
    let what = "timeseries-long";
    let time = frame
        .fields
        .iter()
        .find(|f| class(f) == Class::Time)
        .ok_or_else(|| format!("{what}: no time field"))?;
    let values: Vec<&DecodedField> = frame.fields.iter().filter(|f| is_value(f)).collect();
    if values.is_empty() {
        return Err(format!("{what}: no value field (numeric or bool)"));
    }
    let dims: Vec<&DecodedField> = frame
        .fields
        .iter()
        .filter(|f| class(f) == Class::String)
        .collect();
    let t = time_index(what, time, false, notes)?;
    let mut groups: Vec<(Labels, Vec<i64>)> = Vec::new();
    for (r, ts) in t.iter().enumerate() {
        let labels = row_labels(what, &dims, r)?;
        match groups.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, g)) => g.push(*ts),
            None => groups.push((labels, vec![*ts])),
        }
    }
    let mut series = Vec::new();
    for v in &values {
        for (labels, ts) in &groups {
            let mut seen = HashSet::new();
            if ts.iter().any(|t| !seen.insert(*t)) {
                notes.push(format!(
                    "{what}: series '{}' {labels:?} has duplicate timestamps",
                    field_name(v)
                ));
            }
            series.push((v.name.clone(), labels.clone(), ts.len()));
        }
    }
    Ok(Sse::TimeSeries { series })
}

/// The value of a numeric item: the single row, or null (0 rows; more than 1 row is noted).
fn single_value(what: &str, f: &DecodedField, notes: &mut Vec<String>) -> Option<f64> {
    match f.values.len() {
        1 => number(&f.values[0]),
        0 => None,
        n => {
            notes.push(format!(
                "{what}: field '{}' has {n} rows; numeric frames need 0 or 1 row, the value \
                 is read as null",
                field_name(f)
            ));
            None
        }
    }
}

/// One frame, 0 or 1 row: every value field (with its labels) one item.
fn numeric_wide(frame: &DecodedFrame, notes: &mut Vec<String>) -> Result<Sse, String> {
    let what = "numeric-wide";
    let values: Vec<&DecodedField> = frame.fields.iter().filter(|f| is_value(f)).collect();
    let items: Vec<(Labels, Option<f64>)> = values
        .iter()
        .map(|f| (f.labels.clone(), single_value(what, f, notes)))
        .collect();
    note_duplicates(
        what,
        values.iter().map(|f| (f.name.as_str(), &f.labels)),
        notes,
    );
    Ok(Sse::Numbers { items })
}

/// One item per typed frame: its first value field with labels, 0 or 1 row.
fn numeric_multi(typed: &[(usize, &DecodedFrame)], notes: &mut Vec<String>) -> Result<Sse, String> {
    let mut items = Vec::with_capacity(typed.len());
    let mut ids = Vec::with_capacity(typed.len());
    for (i, frame) in typed {
        let what = format!("numeric-multi frame {i}");
        let value = frame
            .fields
            .iter()
            .find(|f| is_value(f))
            .ok_or_else(|| format!("{what}: no value field (numeric or bool)"))?;
        items.push((value.labels.clone(), single_value(&what, value, notes)));
        ids.push((value.name.as_str(), &value.labels));
    }
    note_duplicates("numeric-multi", ids.into_iter(), notes);
    Ok(Sse::Numbers { items })
}

/// SQL-table shape: string columns are dimensions, each (value column × row) one item.
fn numeric_long(frame: &DecodedFrame, notes: &mut Vec<String>) -> Result<Sse, String> {
    let what = "numeric-long";
    let values: Vec<&DecodedField> = frame.fields.iter().filter(|f| is_value(f)).collect();
    let dims: Vec<&DecodedField> = frame
        .fields
        .iter()
        .filter(|f| class(f) == Class::String)
        .collect();
    let n = rows(frame);
    if n > 1 && dims.is_empty() && !values.is_empty() {
        return Err(format!(
            "{what}: {n} rows but no string dimension column; string fields are required when \
             there is more than one row"
        ));
    }
    let mut items = Vec::with_capacity(n * values.len());
    let mut ids: Vec<(String, Labels)> = Vec::with_capacity(n * values.len());
    for r in 0..n {
        let labels = row_labels(what, &dims, r)?;
        for v in &values {
            items.push((labels.clone(), v.values.get(r).and_then(number)));
            ids.push((v.name.clone(), labels.clone()));
        }
    }
    note_duplicates(what, ids.iter().map(|(n, l)| (n.as_str(), l)), notes);
    Ok(Sse::Numbers { items })
}

// ---------------------------------------------------------------------------------------
// Legacy path (protocol.md §4.1 step 3)

fn legacy(frames: &[DecodedFrame], notes: &mut Vec<String>) -> Result<Sse, String> {
    // Exactly one frame with zero fields → no data.
    if let [only] = frames {
        if only.fields.is_empty() {
            return Ok(Sse::NoData);
        }
        // One frame, no time field, exactly one numeric field, otherwise only strings →
        // number set: one number per row, labels from the string columns.
        let classes: Vec<Class> = only.fields.iter().map(class).collect();
        let numeric = classes.iter().filter(|c| **c == Class::Number).count();
        let no_time = !classes.contains(&Class::Time);
        let rest_strings = classes
            .iter()
            .all(|c| matches!(c, Class::Number | Class::String));
        if no_time && numeric == 1 && rest_strings {
            let value = only
                .fields
                .iter()
                .find(|f| class(f) == Class::Number)
                .ok_or("unreachable")?;
            let dims: Vec<&DecodedField> = only
                .fields
                .iter()
                .filter(|f| class(f) == Class::String)
                .collect();
            let mut items = Vec::with_capacity(value.values.len());
            for (r, v) in value.values.iter().enumerate() {
                items.push((row_labels("number set", &dims, r)?, number(v)));
            }
            return Ok(Sse::Numbers { items });
        }
    }
    // Otherwise every frame must be wide: time field + ≥1 numeric field, no strings/bools.
    let mut series = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let wide_err = |why: String| format!("input data must be a wide series (frame {i}: {why})");
        if let Some(f) = frame
            .fields
            .iter()
            .find(|f| matches!(class(f), Class::String | Class::Bool | Class::Other))
        {
            let c = class(f);
            return Err(wide_err(format!(
                "field '{}' is {c:?}; strings and bools make a long frame",
                field_name(f)
            )));
        }
        let time = frame
            .fields
            .iter()
            .find(|f| class(f) == Class::Time)
            .ok_or_else(|| wide_err("no time field".to_owned()))?;
        let values: Vec<&DecodedField> = frame
            .fields
            .iter()
            .filter(|f| class(f) == Class::Number)
            .collect();
        if values.is_empty() {
            return Err(wide_err("no numeric field".to_owned()));
        }
        let t = time_index(&format!("legacy frame {i}"), time, true, notes)?;
        for v in values {
            series.push((v.name.clone(), v.labels.clone(), t.len()));
        }
    }
    Ok(Sse::TimeSeries { series })
}

// ---------------------------------------------------------------------------------------
// Unit tests of the classifier on hand-built frames (no ../shared needed).

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::TimeUnit;
    use serde_json::json;

    fn field(name: &str, dt: DataType, values: Vec<Value>) -> DecodedField {
        DecodedField {
            name: name.to_owned(),
            data_type: dt,
            nullable: true,
            tstype: None,
            labels: Labels::new(),
            config: None,
            values,
        }
    }

    fn time(values: Vec<i64>) -> DecodedField {
        let mut f = field(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            values.into_iter().map(Value::from).collect(),
        );
        f.nullable = false;
        f
    }

    fn frame(ty: Option<(&str, [u64; 2])>, fields: Vec<DecodedField>) -> DecodedFrame {
        DecodedFrame {
            name: String::new(),
            ref_id: "A".to_owned(),
            meta: ty.map(|(t, v)| json!({"type": t, "typeVersion": v})),
            fields,
        }
    }

    fn labelled(mut f: DecodedField, k: &str, v: &str) -> DecodedField {
        f.labels.insert(k.to_owned(), v.to_owned());
        f
    }

    #[test]
    fn no_frames_is_no_data() {
        let r = classify_report(&[]);
        assert_eq!(r.route, Route::Empty);
        assert_eq!(r.outcome, Sse::NoData);
    }

    #[test]
    fn legacy_single_fieldless_frame_is_no_data() {
        assert_eq!(classify(&[frame(None, vec![])]), Sse::NoData);
    }

    #[test]
    fn legacy_number_set_and_its_null_label() {
        let f = frame(
            None,
            vec![
                field("host", DataType::Utf8, vec![json!("a"), json!("b")]),
                field("v", DataType::Float64, vec![json!(1.5), Value::Null]),
            ],
        );
        let Sse::Numbers { items } = classify(std::slice::from_ref(&f)) else {
            panic!("number set expected")
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].0.get("host").map(String::as_str), Some("a"));
        assert_eq!(items[0].1, Some(1.5));
        assert_eq!(items[1].1, None);
        let mut bad = f;
        bad.fields[0].values[1] = Value::Null;
        match classify(&[bad]) {
            Sse::Error(e) => assert!(e.contains("null label"), "{e}"),
            other => panic!("expected a null-label error, got {other:?}"),
        }
    }

    #[test]
    fn legacy_wide_and_long() {
        let wide = frame(
            None,
            vec![
                time(vec![1, 2]),
                labelled(
                    field("v", DataType::Float64, vec![json!(1), json!(2)]),
                    "h",
                    "a",
                ),
                field("w", DataType::Int64, vec![json!(1), json!(2)]),
            ],
        );
        let Sse::TimeSeries { series } = classify(&[wide.clone(), wide.clone()]) else {
            panic!("wide series expected")
        };
        assert_eq!(series.len(), 4);
        let mut long = wide;
        long.fields
            .push(field("s", DataType::Utf8, vec![json!("x"), json!("y")]));
        match classify(&[long]) {
            Sse::Error(e) => assert!(e.contains("input data must be a wide series"), "{e}"),
            other => panic!("expected the wide-series error, got {other:?}"),
        }
        let boolean = frame(
            None,
            vec![
                time(vec![1]),
                field("v", DataType::Float64, vec![json!(1)]),
                field("up", DataType::Boolean, vec![json!(true)]),
            ],
        );
        assert!(matches!(classify(&[boolean]), Sse::Error(e) if e.contains("wide series")));
    }

    #[test]
    fn untyped_or_unsupported_types_take_the_legacy_path() {
        let fields = vec![
            time(vec![1, 2]),
            field("v", DataType::Float64, vec![json!(1), json!(2)]),
            field("s", DataType::Utf8, vec![json!("x"), json!("y")]),
        ];
        for ty in [
            Some(("timeseries-wide", [0, 0])),
            Some(("table", [0, 1])),
            Some(("log-lines", [0, 0])),
            Some(("timeseries-many", [0, 1])),
            Some(("", [0, 1])),
            None,
        ] {
            let r = classify_report(&[frame(ty, fields.clone())]);
            assert_eq!(r.route, Route::Legacy, "{ty:?}");
            assert!(matches!(r.outcome, Sse::Error(ref e) if e.contains("wide series")));
        }
        // The same frame typed timeseries-wide [0,1] is read, the string is remainder.
        let r = classify_report(&[frame(Some(("timeseries-wide", [0, 1])), fields)]);
        assert_eq!(r.route, Route::Dataplane(Kind::TimeseriesWide));
        assert_eq!(r.outcome.item_count(), 1);
    }

    #[test]
    fn timeseries_long_groups_and_rejects_null_labels() {
        let f = frame(
            Some(("timeseries-long", [0, 1])),
            vec![
                time(vec![1, 1, 2, 2]),
                field("cpu", DataType::Float64, vec![json!(1); 4]),
                field("mem", DataType::Float64, vec![json!(1); 4]),
                field(
                    "host",
                    DataType::Utf8,
                    vec![json!("a"), json!("b"), json!("a"), json!("b")],
                ),
            ],
        );
        let Sse::TimeSeries { series } = classify(std::slice::from_ref(&f)) else {
            panic!("series expected")
        };
        assert_eq!(series.len(), 4);
        assert!(series.iter().all(|(_, _, n)| *n == 2));
        let mut bad = f;
        bad.fields[3].values[2] = Value::Null;
        assert!(matches!(classify(&[bad]), Sse::Error(e) if e.contains("null label")));
    }

    #[test]
    fn numeric_long_rules() {
        let ok = frame(
            Some(("numeric-long", [0, 1])),
            vec![
                field("v", DataType::Int64, vec![json!(3), json!(4)]),
                field("host", DataType::Utf8, vec![json!("a"), json!("b")]),
            ],
        );
        assert_eq!(classify(&[ok]).item_count(), 2);
        let one_row = frame(
            Some(("numeric-long", [0, 1])),
            vec![field("v", DataType::Float64, vec![json!(3)])],
        );
        assert_eq!(classify(&[one_row]).item_count(), 1);
        let no_dims = frame(
            Some(("numeric-long", [0, 1])),
            vec![field("v", DataType::Float64, vec![json!(3), json!(4)])],
        );
        assert!(matches!(classify(&[no_dims]), Sse::Error(e) if e.contains("string dimension")));
    }

    #[test]
    fn numeric_multi_needs_every_frame_typed() {
        let typed = frame(
            Some(("numeric-multi", [0, 1])),
            vec![labelled(
                field("v", DataType::Float64, vec![json!(1)]),
                "h",
                "a",
            )],
        );
        let mut untyped = typed.clone();
        untyped.meta = None;
        assert_eq!(classify(&[typed.clone(), typed.clone()]).item_count(), 2);
        assert!(matches!(classify(&[typed, untyped]), Sse::Error(e) if e.contains("typed")));
    }

    #[test]
    fn zero_items_are_no_data_and_empty_items_are_items() {
        let long0 = frame(
            Some(("numeric-long", [0, 1])),
            vec![
                field("v", DataType::Float64, vec![]),
                field("h", DataType::Utf8, vec![]),
            ],
        );
        assert_eq!(classify(&[long0]), Sse::NoData);
        let multi0 = frame(
            Some(("timeseries-multi", [0, 1])),
            vec![time(vec![]), field("v", DataType::Float64, vec![])],
        );
        assert_eq!(
            classify(&[multi0]),
            Sse::TimeSeries {
                series: vec![("v".to_owned(), Labels::new(), 0)]
            }
        );
    }
}
