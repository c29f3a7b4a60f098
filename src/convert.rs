//! JSON response → typed columns → shaped frames (config.md §2 "Extraction semantics", §5).
//!
//! Three levels: frame nodes (`response.frames`), rows (`response.rows`, relative to the
//! frame node) and fields (relative to the row; or, with no `rows`, whole columns relative to
//! the frame node). Values that do not convert become nulls plus one notice per field.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::frame::{Column, Field, Frame, Notice, Strings};
use crate::rule::{FieldSource, FieldSpec, NodePath, ResponseSpec, Rule, ZoneSpec};
use crate::settings::{FieldType, FormatConfig};
use crate::timeparse::to_epoch_ns;

/// Why a response could not be turned into frames.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The response does not fit the rule (several values for a row field, ragged columns,
    /// a frame node that is not an object for `labelsFrom`, ...): status 502, downstream.
    #[error("rule '{rule}': {message}")]
    Mismatch {
        /// Rule id.
        rule: String,
        /// What did not fit, naming the field and row.
        message: String,
    },
    /// The rule forces a shape the fields cannot have (config.md §5): status 400.
    #[error("rule '{rule}': {message}")]
    Shape {
        /// Rule id.
        rule: String,
        /// Why the shape is impossible.
        message: String,
    },
}

/// One selected node with the member name / position it was selected under.
struct Node<'a> {
    key: Option<&'a str>,
    index: usize,
    value: &'a Value,
}

fn select_nodes<'a>(path: &NodePath, root: &'a Value) -> Vec<Node<'a>> {
    match path {
        NodePath::Plain(p) => p
            .select(root)
            .into_iter()
            .enumerate()
            .map(|(index, value)| Node {
                key: None,
                index,
                value,
            })
            .collect(),
        NodePath::Members(parent) => {
            let mut out = Vec::new();
            for node in parent.select(root) {
                match node {
                    Value::Object(map) => {
                        for (k, v) in map {
                            out.push(Node {
                                key: Some(k.as_str()),
                                index: out.len(),
                                value: v,
                            })
                        }
                    }
                    Value::Array(items) => {
                        for v in items {
                            out.push(Node {
                                key: None,
                                index: out.len(),
                                value: v,
                            })
                        }
                    }
                    _ => {}
                }
            }
            out
        }
    }
}

/// Conversion failures of one field: count and first bad value (for the notice).
#[derive(Default)]
pub(crate) struct BadValues {
    pub(crate) count: usize,
    pub(crate) first: Option<String>,
}

impl BadValues {
    /// Counts one value that did not convert; the first one is kept (as compact JSON, cut
    /// at 64 bytes) for the notice.
    pub(crate) fn record(&mut self, v: Option<&Value>) {
        self.count += 1;
        if self.first.is_none() {
            let mut text = v.map(Value::to_string).unwrap_or_default();
            if text.len() > 64 {
                let mut cut = 64;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push('…');
            }
            self.first = Some(text);
        }
    }

    /// Adds the failures of a later frame node (its first bad value counts only when this
    /// one has none yet).
    pub(crate) fn merge(&mut self, later: BadValues) {
        self.count += later.count;
        if self.first.is_none() {
            self.first = later.first;
        }
    }
}

/// The typed table of one frame node.
pub(crate) struct NodeTable {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) columns: Vec<Column>,
}

/// Turns a parsed JSON document into the frames of `rule` (name = rule id).
///
/// `executed_query` goes into the first frame's `meta.executedQueryString`.
///
/// # Errors
/// [`ConvertError::Mismatch`] when the document does not fit the rule, and
/// [`ConvertError::Shape`] when a forced `format` is impossible.
pub fn convert(
    rule: &Rule,
    doc: &Value,
    executed_query: Option<String>,
) -> Result<Vec<Frame>, ConvertError> {
    convert_pages(rule, &[doc], executed_query, Vec::new())
}

/// Like [`convert`] for the pages of one paginated query (config.md §2.1): rows of all pages
/// are merged before shaping — without `frames` every page's rows join one table; with
/// `frames`, frame nodes of later pages with the same labels as an earlier one join it.
/// `notices` (e.g. "stopped after maxPages") are added to the first frame.
///
/// # Errors
/// As [`convert`].
pub fn convert_pages(
    rule: &Rule,
    docs: &[&Value],
    executed_query: Option<String>,
    mut notices: Vec<Notice>,
) -> Result<Vec<Frame>, ConvertError> {
    let spec = &rule.response;
    let mismatch = |message: String| ConvertError::Mismatch {
        rule: rule.id.clone(),
        message,
    };
    let Some(first_doc) = docs.first() else {
        return Ok(Vec::new());
    };
    let zones = resolve_zones_by(spec, &mut notices, |p| {
        p.select_one(first_doc).ok().flatten()
    });
    let mut bad: Vec<BadValues> = spec.fields.iter().map(|_| BadValues::default()).collect();
    let mut tables: Vec<NodeTable> = Vec::new();
    for (page, doc) in docs.iter().enumerate() {
        let frame_nodes = match &spec.frames {
            None => vec![Node {
                key: None,
                index: 0,
                value: doc,
            }],
            Some(p) => select_nodes(p, doc),
        };
        for node in &frame_nodes {
            let labels = node_labels(spec, node.value).map_err(&mismatch)?;
            let columns = match &spec.rows {
                Some(rows_path) => {
                    let rows = select_nodes(rows_path, node.value);
                    row_mode(spec, node.value, &rows, &zones, &mut bad).map_err(&mismatch)?
                }
                None => column_mode(spec, node, &zones, &mut bad).map_err(&mismatch)?,
            };
            let table = NodeTable { labels, columns };
            let earlier = (page > 0)
                .then(|| tables.iter_mut().find(|t| t.labels == table.labels))
                .flatten();
            match earlier {
                Some(t) => {
                    for (a, b) in t.columns.iter_mut().zip(&table.columns) {
                        a.append(b);
                    }
                }
                None => tables.push(table),
            }
        }
    }
    finish(rule, tables, &bad, notices, executed_query)
}

/// The end of a conversion, shared with the fast path (`convert_fast`): one notice per field
/// with bad values, then shaping, then `executedQueryString` and the notices on the first
/// frame (an empty frame carries them when there are no frames).
///
/// # Errors
/// [`ConvertError::Shape`] when a forced `format` is impossible.
pub(crate) fn finish(
    rule: &Rule,
    tables: Vec<NodeTable>,
    bad: &[BadValues],
    mut notices: Vec<Notice>,
    executed_query: Option<String>,
) -> Result<Vec<Frame>, ConvertError> {
    let spec = &rule.response;
    for (f, b) in spec.fields.iter().zip(bad) {
        if b.count > 0 {
            notices.push(Notice {
                severity: "warning",
                text: format!(
                    "field '{}': {} value(s) could not be read as {} and are null (first: {})",
                    f.name,
                    b.count,
                    type_word(f.kind),
                    b.first.as_deref().unwrap_or("?")
                ),
            });
        }
    }
    let mut frames = shape(rule, tables, &mut notices)?;
    if frames.is_empty() && !notices.is_empty() {
        frames.push(Frame {
            name: rule.id.clone(),
            ..Frame::default()
        });
    }
    if let Some(first) = frames.first_mut() {
        first.executed_query = executed_query;
        first.notices.append(&mut notices);
    }
    Ok(frames)
}

/// How many rows one page holds (for pagination's stop conditions): the rows of every
/// frame node, or the frame nodes when there is no `rows`, or the first field's column length
/// in column mode.
pub fn count_rows(rule: &Rule, doc: &Value) -> usize {
    let spec = &rule.response;
    let nodes = match &spec.frames {
        None => vec![Node {
            key: None,
            index: 0,
            value: doc,
        }],
        Some(p) => select_nodes(p, doc),
    };
    match (&spec.rows, &spec.frames) {
        (Some(rows), _) => nodes
            .iter()
            .map(|n| select_nodes(rows, n.value).len())
            .sum(),
        (None, Some(_)) => nodes.len(),
        (None, None) => spec
            .fields
            .iter()
            .find_map(|f| match &f.source {
                FieldSource::Path(p) => Some(p.select(doc).len()),
                _ => None,
            })
            .unwrap_or(0),
    }
}

fn type_word(k: FieldType) -> &'static str {
    match k {
        FieldType::Time => "time",
        FieldType::Number => "number",
        FieldType::Int => "int",
        FieldType::String => "string",
        FieldType::Bool => "bool",
        FieldType::Json => "json",
    }
}

/// Zones per field: fixed, or read once from the response (`${__response.PATH}`);
/// `select` gives the value a zone path selects (none when it selects nothing or several).
pub(crate) fn resolve_zones_by<'v>(
    spec: &ResponseSpec,
    notices: &mut Vec<Notice>,
    mut select: impl FnMut(&crate::jsonpath::JsonPath) -> Option<&'v Value>,
) -> Vec<jiff::tz::TimeZone> {
    spec.fields
        .iter()
        .map(|f| match &f.zone {
            ZoneSpec::Fixed(z) => z.clone(),
            ZoneSpec::FromResponse(p) => {
                let name = select(p).and_then(Value::as_str);
                match name.map(jiff::tz::TimeZone::get) {
                    Some(Ok(z)) => z,
                    _ => {
                        notices.push(Notice {
                            severity: "warning",
                            text: format!(
                                "field '{}': the response has no known time zone at {}; using UTC",
                                f.name,
                                p.as_str()
                            ),
                        });
                        jiff::tz::TimeZone::UTC
                    }
                }
            }
        })
        .collect()
}

fn scalar_label(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn node_labels(spec: &ResponseSpec, node: &Value) -> Result<BTreeMap<String, String>, String> {
    let labels_from = spec
        .labels_from
        .as_ref()
        .map_or(Ok(None), |p| p.select_one(node));
    let labels: Vec<_> = spec
        .labels
        .iter()
        .map(|(_, p)| p.select_one(node))
        .collect();
    build_labels(spec, labels_from, &labels)
}

/// The labels of one frame node from what `labelsFrom` and each `labels` path selected
/// (`Err(n)`: `n` nodes); a message when they do not fit.
pub(crate) fn build_labels(
    spec: &ResponseSpec,
    labels_from: Result<Option<&Value>, usize>,
    selected: &[Result<Option<&Value>, usize>],
) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    if let Some(p) = &spec.labels_from {
        match labels_from {
            Ok(Some(Value::Object(map))) => {
                for (k, v) in map {
                    if let Some(s) = scalar_label(v) {
                        labels.insert(k.clone(), s);
                    }
                }
            }
            Ok(None) | Ok(Some(Value::Null)) => {}
            Ok(Some(other)) => {
                return Err(format!(
                    "'labelsFrom' {} selected {}, expected an object",
                    p.as_str(),
                    crate::settings::json_kind(other)
                ))
            }
            Err(n) => {
                return Err(format!(
                    "'labelsFrom' {} selected {n} nodes, expected one object",
                    p.as_str()
                ))
            }
        }
    }
    for ((name, p), sel) in spec.labels.iter().zip(selected) {
        match *sel {
            Ok(Some(v)) => {
                if let Some(s) = scalar_label(v) {
                    labels.insert(name.clone(), s);
                }
            }
            Ok(None) => {}
            Err(n) => {
                return Err(format!(
                    "label '{name}' path {} selected {n} values, expected one",
                    p.as_str()
                ))
            }
        }
    }
    Ok(labels)
}

pub(crate) fn empty_column(kind: FieldType, capacity: usize) -> Column {
    match kind {
        FieldType::Time => Column::Time(Vec::with_capacity(capacity)),
        FieldType::Number => Column::Number(Vec::with_capacity(capacity)),
        FieldType::Int => Column::Int(Vec::with_capacity(capacity)),
        FieldType::String => Column::String(Strings::with_capacity(capacity, 0)),
        FieldType::Bool => Column::Bool(Vec::with_capacity(capacity)),
        FieldType::Json => Column::Json(Strings::with_capacity(capacity, 0)),
    }
}

/// Appends one JSON value to a typed column; a non-null value that does not convert is
/// recorded in `bad` and stored as null.
pub(crate) fn push_value(
    col: &mut Column,
    spec: &FieldSpec,
    zone: &jiff::tz::TimeZone,
    v: Option<&Value>,
    bad: &mut BadValues,
) {
    let v = match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    let ok = match (col, v) {
        (Column::Time(c), v) => push_conv(c, v, |x| to_epoch_ns(x, &spec.time_format, zone)),
        (Column::Number(c), v) => push_conv(c, v, to_f64),
        (Column::Int(c), v) => push_conv(c, v, to_i64),
        (Column::String(c), v) => {
            match v {
                None => c.push_null(),
                Some(Value::String(s)) => c.push_str(s),
                Some(other) => c.push_str(&other.to_string()),
            }
            true
        }
        (Column::Bool(c), v) => push_conv(c, v, to_bool),
        (Column::Json(c), v) => {
            match v {
                None => c.push_null(),
                Some(x) => c.push_str(&x.to_string()),
            }
            true
        }
    };
    if !ok {
        bad.record(v);
    }
}

/// Pushes `f(v)`; returns false when a non-null value failed to convert.
fn push_conv<T>(
    c: &mut Vec<Option<T>>,
    v: Option<&Value>,
    f: impl Fn(&Value) -> Option<T>,
) -> bool {
    match v {
        None => {
            c.push(None);
            true
        }
        Some(v) => {
            let out = f(v);
            let ok = out.is_some();
            c.push(out);
            ok
        }
    }
}

/// JSON number or numeric string (`"0.077495"`, `"NaN"`, `"+Inf"`) → f64 (config.md §4).
pub fn to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => str_to_f64(s),
        _ => None,
    }
}

/// The string rule of [`to_f64`].
pub(crate) fn str_to_f64(s: &str) -> Option<f64> {
    let t = s.trim();
    match t {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "inf" | "+inf" | "Infinity" => Some(f64::INFINITY),
        "-Inf" | "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

/// JSON integer (or an integral float / numeric string) → i64, exact beyond 2^53.
pub fn to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
        }),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>().ok().or_else(|| {
                let f: f64 = t.parse().ok()?;
                (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
            })
        }
        _ => None,
    }
}

fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Builds a JSON array value from several selected nodes (for `type: json`).
fn json_of_many(values: &[&Value]) -> Value {
    Value::Array(values.iter().map(|v| (*v).clone()).collect())
}

fn row_mode(
    spec: &ResponseSpec,
    frame_node: &Value,
    rows: &[Node<'_>],
    zones: &[jiff::tz::TimeZone],
    bad: &mut [BadValues],
) -> Result<Vec<Column>, String> {
    let mut columns: Vec<Column> = spec
        .fields
        .iter()
        .map(|f| empty_column(f.kind, rows.len()))
        .collect();
    let mut scratch = Vec::new();
    for (i, f) in spec.fields.iter().enumerate() {
        // A json field with a non-singular path is always a list (also for 0 or 1 match).
        let always_list = f.kind == FieldType::Json
            && matches!(&f.source, FieldSource::Path(p) if !p.is_singular());
        let frame_value = match &f.source {
            FieldSource::Frame(p) => frame_value(f, p, frame_node)?,
            _ => None,
        };
        for row in rows {
            let owned;
            let value: Option<&Value> = match &f.source {
                FieldSource::Frame(_) => frame_value.as_ref(),
                FieldSource::Key => {
                    owned = row.key.map(|k| Value::String(k.to_owned()));
                    owned.as_ref()
                }
                FieldSource::Index => {
                    owned = Some(Value::from(row.index));
                    owned.as_ref()
                }
                FieldSource::Path(p) => {
                    scratch.clear();
                    scratch.extend(p.select(row.value));
                    match scratch.len() {
                        _ if always_list => {
                            owned = Some(json_of_many(&scratch));
                            owned.as_ref()
                        }
                        0 => None,
                        1 => scratch.first().copied(),
                        n if f.kind == FieldType::Json => {
                            owned = Some(json_of_many(&scratch));
                            let _ = n;
                            owned.as_ref()
                        }
                        n => {
                            return Err(format!(
                                "field '{}' path {} selected {n} values in row {}, expected one \
                                 (use type json to keep them as a list)",
                                f.name,
                                p.as_str(),
                                row.index
                            ))
                        }
                    }
                }
            };
            push_value(&mut columns[i], f, &zones[i], value, &mut bad[i]);
        }
    }
    Ok(columns)
}

/// The value of a `^PATH` field on the frame node (cloned once per frame node).
fn frame_value(
    f: &FieldSpec,
    p: &crate::jsonpath::JsonPath,
    frame_node: &Value,
) -> Result<Option<Value>, String> {
    match p.select_one(frame_node) {
        Ok(v) => Ok(v.cloned()),
        Err(_) if f.kind == FieldType::Json => Ok(Some(json_of_many(&p.select(frame_node)))),
        Err(n) => Err(format!(
            "field '{}' path ^{} selected {n} values on the frame node, expected one",
            f.name,
            p.as_str().trim_start_matches('$')
        )),
    }
}

fn column_mode(
    spec: &ResponseSpec,
    node: &Node<'_>,
    zones: &[jiff::tz::TimeZone],
    bad: &mut [BadValues],
) -> Result<Vec<Column>, String> {
    let selected: Vec<Option<Vec<&Value>>> = spec
        .fields
        .iter()
        .map(|f| match &f.source {
            FieldSource::Path(p) => Some(p.select(node.value)),
            _ => None,
        })
        .collect();
    let mut len: Option<(usize, &str)> = None;
    for (f, sel) in spec.fields.iter().zip(&selected) {
        if let Some(values) = sel {
            match len {
                None => len = Some((values.len(), &f.name)),
                Some((l, other)) if l != values.len() => {
                    return Err(format!(
                        "column mode: field '{other}' has {l} values but field '{}' has {} \
                         (all field paths must select the same number of values)",
                        f.name,
                        values.len()
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let rows = len.map_or(1, |(l, _)| l);
    let mut columns = Vec::with_capacity(spec.fields.len());
    for (i, (f, sel)) in spec.fields.iter().zip(selected).enumerate() {
        let mut col = empty_column(f.kind, rows);
        match sel {
            Some(values) => {
                for v in values {
                    push_value(&mut col, f, &zones[i], Some(v), &mut bad[i]);
                }
            }
            None => {
                let v = match &f.source {
                    FieldSource::Key => node.key.map(|k| Value::String(k.to_owned())),
                    FieldSource::Frame(p) => frame_value(f, p, node.value)?,
                    _ => Some(Value::from(node.index)),
                };
                for _ in 0..rows {
                    push_value(&mut col, f, &zones[i], v.as_ref(), &mut bad[i]);
                }
            }
        }
        columns.push(col);
    }
    Ok(columns)
}

/// What the frames will look like (config.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    TimeSeries,
    TimeSeriesWide,
    Numeric,
    NumericWide,
    Table,
    Logs,
}

/// Indices of the string fields that become labels in a time series.
fn choose_shape(rule: &Rule) -> Result<(Shape, Vec<usize>), ConvertError> {
    let spec = &rule.response;
    let shape_err = |message: String| ConvertError::Shape {
        rule: rule.id.clone(),
        message,
    };
    let kinds: Vec<FieldType> = spec.fields.iter().map(|f| f.kind).collect();
    let times = kinds.iter().filter(|k| **k == FieldType::Time).count();
    let numbers = kinds
        .iter()
        .filter(|k| matches!(k, FieldType::Number | FieldType::Int))
        .count();
    let strings: Vec<usize> = (0..kinds.len())
        .filter(|i| kinds[*i] == FieldType::String)
        .collect();
    let others = kinds
        .iter()
        .filter(|k| matches!(k, FieldType::Bool | FieldType::Json))
        .count();
    let strings_all_series = strings.iter().all(|i| spec.series_by.contains(i));
    Ok(match spec.format {
        FormatConfig::Table => (Shape::Table, Vec::new()),
        FormatConfig::Auto => {
            if times == 1 && numbers >= 1 && others == 0 && strings_all_series {
                (Shape::TimeSeries, spec.series_by.clone())
            } else if times == 0 && numbers >= 1 && others == 0 {
                (Shape::Numeric, Vec::new())
            } else {
                (Shape::Table, Vec::new())
            }
        }
        FormatConfig::Timeseries | FormatConfig::TimeseriesWide => {
            if times != 1 || numbers == 0 {
                return Err(shape_err(format!(
                    "format timeseries needs exactly one time field and at least one number or \
                     int field; the rule has {times} time and {numbers} numeric field(s)"
                )));
            }
            if let Some(f) = spec
                .fields
                .iter()
                .find(|f| matches!(f.kind, FieldType::Bool | FieldType::Json))
            {
                return Err(shape_err(format!(
                    "format timeseries cannot carry field '{}' of type {}",
                    f.name,
                    type_word(f.kind)
                )));
            }
            let shape = if spec.format == FormatConfig::TimeseriesWide {
                Shape::TimeSeriesWide
            } else {
                Shape::TimeSeries
            };
            (shape, strings)
        }
        FormatConfig::Numeric | FormatConfig::NumericWide => {
            if numbers == 0 || times > 0 || others > 0 {
                return Err(shape_err(format!(
                    "format numeric needs number/int fields plus string dimensions only; \
                     the rule has {numbers} numeric, {times} time and {others} bool/json field(s)"
                )));
            }
            let shape = if spec.format == FormatConfig::NumericWide {
                Shape::NumericWide
            } else {
                Shape::Numeric
            };
            (shape, Vec::new())
        }
        FormatConfig::Logs => {
            if times != 1 || strings.is_empty() {
                return Err(shape_err(
                    "format logs needs exactly one time field and a string field (the body)"
                        .to_owned(),
                ));
            }
            (Shape::Logs, Vec::new())
        }
    })
}

fn shape(
    rule: &Rule,
    tables: Vec<NodeTable>,
    notices: &mut Vec<Notice>,
) -> Result<Vec<Frame>, ConvertError> {
    let (shape, label_fields) = choose_shape(rule)?;
    Ok(match shape {
        Shape::TimeSeries => time_series(rule, tables, &label_fields, notices),
        Shape::TimeSeriesWide => {
            let multi = time_series(rule, tables, &label_fields, notices);
            vec![widen_time_series(rule, multi, notices)]
        }
        Shape::Numeric => vec![numeric_long(rule, tables, notices)],
        Shape::NumericWide => vec![widen_numeric(rule, numeric_long(rule, tables, notices))],
        Shape::Table => vec![merged(rule, tables, "", [0, 0], false)],
        Shape::Logs => vec![logs(rule, tables, notices)],
    })
}

/// `numeric-long`: one row per item. Items must be told apart by their string dimensions
/// (dataplane contract); with several rows and no string field, a `row` dimension (the row
/// index) is added with a notice.
fn numeric_long(rule: &Rule, tables: Vec<NodeTable>, notices: &mut Vec<Notice>) -> Frame {
    let mut frame = merged(rule, tables, "numeric-long", [0, 1], true);
    let rows = frame.rows();
    if rows > 1
        && !frame
            .fields
            .iter()
            .any(|f| matches!(f.values, Column::String(_)))
    {
        let index = Column::String((0..rows).map(|i| Some(i.to_string())).collect());
        frame.fields.insert(0, Field::new("row", index));
        notices.push(Notice {
            severity: "warning",
            text: format!(
                "{rows} numbers and no string field to tell them apart: added the field 'row' \
                 (the row index) as their dimension; add a string field (e.g. path '@key' or \
                 an id) to name them"
            ),
        });
    }
    frame
}

fn field_from_spec(spec: &FieldSpec, values: Column) -> Field {
    let mut f = Field::new(spec.name.clone(), values);
    f.config = spec.config.clone();
    f
}

/// `timeseries-multi`: one frame per series — a series is one label set (frame node labels
/// plus `seriesBy`/label fields) × value field, gathered across all frame nodes — sorted by
/// time, rows without a time dropped, labels on the value field (config.md §5).
fn time_series(
    rule: &Rule,
    tables: Vec<NodeTable>,
    label_fields: &[usize],
    notices: &mut Vec<Notice>,
) -> Vec<Frame> {
    let spec = &rule.response;
    let Some(time_idx) = spec.fields.iter().position(|f| f.kind == FieldType::Time) else {
        return Vec::new();
    };
    let value_idx: Vec<usize> = (0..spec.fields.len())
        .filter(|i| matches!(spec.fields[*i].kind, FieldType::Number | FieldType::Int))
        .collect();
    let mut dropped = 0usize;
    let mut duplicates = 0usize;
    // Group (table, row) pairs by label set, in order of first appearance.
    let mut groups: Vec<(Labels, Vec<(usize, usize)>)> = Vec::new();
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for (ti, table) in tables.iter().enumerate() {
        let Column::Time(times) = &table.columns[time_idx] else {
            continue;
        };
        if times.is_empty() && !index.contains_key(&table.labels) {
            index.insert(table.labels.clone(), groups.len());
            groups.push((table.labels.clone(), Vec::new()));
        }
        for (row, t) in times.iter().enumerate() {
            if t.is_none() {
                dropped += 1;
                continue;
            }
            let mut labels = table.labels.clone();
            for &li in label_fields {
                if let Column::String(s) = &table.columns[li] {
                    let v = s.get(row).unwrap_or_default().to_owned();
                    labels.insert(spec.fields[li].name.clone(), v);
                }
            }
            match index.get(&labels) {
                Some(&g) => groups[g].1.push((ti, row)),
                None => {
                    index.insert(labels.clone(), groups.len());
                    groups.push((labels, vec![(ti, row)]));
                }
            }
        }
    }
    let time_at = |(t, r): (usize, usize)| match &tables[t].columns[time_idx] {
        Column::Time(v) => v.get(r).copied().flatten(),
        _ => None,
    };
    let mut frames = Vec::new();
    for (labels, mut rows) in groups {
        rows.sort_by_key(|&p| time_at(p));
        // Dataplane forbids duplicate timestamps within a series: keep the last row of each
        // timestamp (the sort is stable, so "last" is the API's order).
        let before = rows.len();
        let mut deduped: Vec<(usize, usize)> = Vec::with_capacity(rows.len());
        for p in rows {
            match deduped.last_mut() {
                Some(last) if time_at(*last) == time_at(p) => *last = p,
                _ => deduped.push(p),
            }
        }
        duplicates += before - deduped.len();
        let time_col = gather(&tables, time_idx, &deduped);
        for &vi in &value_idx {
            let mut value = field_from_spec(&spec.fields[vi], gather(&tables, vi, &deduped));
            value.labels = labels.clone();
            value.nullable = true;
            let mut time = field_from_spec(&spec.fields[time_idx], time_col.clone());
            time.nullable = false;
            frames.push(Frame {
                name: rule.id.clone(),
                frame_type: "timeseries-multi".into(),
                type_version: [0, 1],
                fields: vec![time, value],
                ..Frame::default()
            });
        }
    }
    if dropped > 0 {
        notices.push(Notice {
            severity: "warning",
            text: format!(
                "{dropped} row(s) without a valid time in field '{}' were dropped",
                spec.fields[time_idx].name
            ),
        });
    }
    if duplicates > 0 {
        notices.push(Notice {
            severity: "warning",
            text: format!(
                "{duplicates} row(s) repeated a timestamp within a series; the last value was kept"
            ),
        });
    }
    frames
}

/// A label set.
type Labels = BTreeMap<String, String>;

/// Column `col` of the (table, row) pairs, in that order.
fn gather(tables: &[NodeTable], col: usize, pairs: &[(usize, usize)]) -> Column {
    let mut out = match tables.first().and_then(|t| t.columns.get(col)) {
        Some(c) => c.empty_like(),
        None => return Column::Number(Vec::new()),
    };
    // Runs of pairs from the same table are taken at once.
    let mut start = 0;
    while start < pairs.len() {
        let t = pairs[start].0;
        let mut end = start;
        while end < pairs.len() && pairs[end].0 == t {
            end += 1;
        }
        let rows: Vec<usize> = pairs[start..end].iter().map(|p| p.1).collect();
        out.append(&tables[t].columns[col].take(&rows));
        start = end;
    }
    out
}

/// `timeseries-wide`: the series of `timeseries-multi` joined on time into one frame — one
/// shared, sorted, non-null time field and one nullable value field (with its labels) per
/// series; a series without a point at a time has a null there. Duplicate timestamps within
/// one series keep the last value, with a notice (dataplane forbids duplicates).
fn widen_time_series(rule: &Rule, multi: Vec<Frame>, notices: &mut Vec<Notice>) -> Frame {
    let mut times: Vec<i64> = multi
        .iter()
        .filter_map(|f| match f.fields.first().map(|x| &x.values) {
            Some(Column::Time(t)) => Some(t.iter().flatten().copied().collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    let index: std::collections::HashMap<i64, usize> =
        times.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let mut time_name = "time".to_owned();
    let mut time_config = None;
    let mut fields = Vec::with_capacity(multi.len() + 1);
    let mut duplicates = 0usize;
    for frame in multi {
        let mut it = frame.fields.into_iter();
        let (Some(time), Some(mut value)) = (it.next(), it.next()) else {
            continue;
        };
        time_name.clone_from(&time.name);
        time_config = time.config.clone();
        let Column::Time(ts) = &time.values else {
            continue;
        };
        let slots: Vec<usize> = ts
            .iter()
            .map(|t| t.and_then(|t| index.get(&t).copied()).unwrap_or(0))
            .collect();
        let mut seen = vec![false; times.len()];
        for &s in &slots {
            if std::mem::replace(&mut seen[s], true) {
                duplicates += 1;
            }
        }
        value.values = match &value.values {
            Column::Number(v) => {
                let mut out = vec![None; times.len()];
                for (s, x) in slots.iter().zip(v) {
                    out[*s] = *x;
                }
                Column::Number(out)
            }
            Column::Int(v) => {
                let mut out = vec![None; times.len()];
                for (s, x) in slots.iter().zip(v) {
                    out[*s] = *x;
                }
                Column::Int(out)
            }
            other => other.clone(),
        };
        value.nullable = true;
        fields.push(value);
    }
    if duplicates > 0 {
        notices.push(Notice {
            severity: "warning",
            text: format!(
                "{duplicates} duplicate timestamp(s) within a series; the last value was kept"
            ),
        });
    }
    let mut time = Field::new(
        time_name,
        Column::Time(times.into_iter().map(Some).collect()),
    );
    time.config = time_config;
    time.nullable = false;
    fields.insert(0, time);
    Frame {
        name: rule.id.clone(),
        frame_type: "timeseries-wide".into(),
        type_version: [0, 1],
        fields,
        ..Frame::default()
    }
}

/// `numeric-wide`: one frame with one row; every (item × numeric field) of the
/// `numeric-long` frame becomes a field named after the numeric field, labelled with that
/// item's string dimensions.
fn widen_numeric(rule: &Rule, long: Frame) -> Frame {
    let rows = long.rows();
    let dims: Vec<&Field> = long
        .fields
        .iter()
        .filter(|f| matches!(f.values, Column::String(_)))
        .collect();
    let mut fields = Vec::new();
    for r in 0..rows {
        let labels: BTreeMap<String, String> = dims
            .iter()
            .map(|d| (d.name.clone(), crate::render::cell(&d.values, r)))
            .collect();
        for f in long
            .fields
            .iter()
            .filter(|f| matches!(f.values, Column::Number(_) | Column::Int(_)))
        {
            let mut field = f.clone();
            field.values = f.values.take(&[r]);
            field.labels = labels.clone();
            field.nullable = true;
            fields.push(field);
        }
    }
    Frame {
        name: rule.id.clone(),
        frame_type: "numeric-wide".into(),
        type_version: [0, 1],
        fields,
        ..Frame::default()
    }
}

/// One frame with the rows of every frame node; node labels become leading string columns.
/// `dims_non_null`: string columns get `""` for nulls (numeric-long dimensions are used as
/// alert labels, and a null there breaks Grafana's reader: protocol.md §9 item 27).
fn merged(
    rule: &Rule,
    tables: Vec<NodeTable>,
    frame_type: &str,
    type_version: [u32; 2],
    dims_non_null: bool,
) -> Frame {
    let spec = &rule.response;
    let label_keys: BTreeSet<String> = tables
        .iter()
        .flat_map(|t| t.labels.keys().cloned())
        .collect();
    let label_keys: Vec<String> = label_keys
        .into_iter()
        .filter(|k| !spec.fields.iter().any(|f| &f.name == k))
        .collect();
    let mut label_cols: Vec<Strings> = vec![Strings::default(); label_keys.len()];
    let mut cols: Vec<Column> = spec
        .fields
        .iter()
        .map(|f| empty_column(f.kind, 0))
        .collect();
    for t in tables {
        let rows = t.columns.first().map_or(0, Column::len);
        for (k, col) in label_keys.iter().zip(label_cols.iter_mut()) {
            let v = t.labels.get(k).map(String::as_str);
            for _ in 0..rows {
                col.push(v);
            }
        }
        for (c, src) in cols.iter_mut().zip(t.columns) {
            // Moving the first table's column gives the same values as copying it.
            if c.is_empty() && std::mem::discriminant(c) == std::mem::discriminant(&src) {
                *c = src;
            } else {
                c.append(&src);
            }
        }
    }
    let mut fields = Vec::with_capacity(label_keys.len() + cols.len());
    for (k, mut col) in label_keys.into_iter().zip(label_cols) {
        if dims_non_null {
            col.fill_nulls();
        }
        fields.push(Field::new(k, Column::String(col)));
    }
    for (f, mut col) in spec.fields.iter().zip(cols) {
        if dims_non_null {
            if let Column::String(v) = &mut col {
                v.fill_nulls();
            }
        }
        let mut field = field_from_spec(f, col);
        if !dims_non_null || !matches!(field.values, Column::String(_)) {
            field.nullable = true;
        }
        fields.push(field);
    }
    Frame {
        name: rule.id.clone(),
        frame_type: frame_type.to_owned(),
        type_version,
        fields,
        ..Frame::default()
    }
}

/// `log-lines`: the time field (non-null, rows without time dropped) then the body (the
/// field named `body`, else the first string field), then the other fields.
fn logs(rule: &Rule, tables: Vec<NodeTable>, notices: &mut Vec<Notice>) -> Frame {
    let mut frame = merged(rule, tables, "log-lines", [0, 0], false);
    let time_pos = frame
        .fields
        .iter()
        .position(|f| matches!(f.values, Column::Time(_)));
    if let Some(tp) = time_pos {
        let keep: Vec<usize> = match &frame.fields[tp].values {
            Column::Time(t) => (0..t.len()).filter(|i| t[*i].is_some()).collect(),
            _ => Vec::new(),
        };
        let dropped = frame.rows() - keep.len();
        if dropped > 0 {
            for f in &mut frame.fields {
                f.values = f.values.take(&keep);
            }
            notices.push(Notice {
                severity: "warning",
                text: format!("{dropped} log line(s) without a valid time were dropped"),
            });
        }
        let time = frame.fields.remove(tp);
        frame.fields.insert(
            0,
            Field {
                nullable: false,
                ..time
            },
        );
        let body_pos = frame
            .fields
            .iter()
            .position(|f| f.name == "body" && matches!(f.values, Column::String(_)))
            .or_else(|| {
                frame
                    .fields
                    .iter()
                    .skip(1)
                    .position(|f| matches!(f.values, Column::String(_)))
                    .map(|p| p + 1)
            });
        if let Some(bp) = body_pos {
            let body = frame.fields.remove(bp);
            frame.fields.insert(1, body);
        }
    }
    frame.preferred_visualisation = Some("logs");
    frame
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
