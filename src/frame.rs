//! Data frames and their wire encoding: one Arrow IPC **file** per frame with Grafana's
//! schema and field metadata (protocol.md §3).
//!
//! Types used are exactly those Grafana's Go decoder accepts (protocol.md §3.5):
//! `Timestamp(Nanosecond, None)`, `Float64`, `Int64`, `Utf8`, `Boolean`, `Binary` (json).
//! No dictionaries, no compression (protocol.md §3.1).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::RecordBatchOptions;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field as ArrowField, Schema, TimeUnit};
use serde_json::{Map, Value};

/// Schema metadata key of the frame name (protocol.md §3.2).
pub const META_NAME: &str = "name";
/// Schema metadata key of the refId (protocol.md §3.2).
pub const META_REF_ID: &str = "refId";
/// Schema metadata key of the FrameMeta JSON (protocol.md §3.2, §3.3).
pub const META_META: &str = "meta";
/// Field metadata key of the type hint (protocol.md §3.4).
pub const FIELD_TSTYPE: &str = "tstype";
/// Field metadata key of the labels JSON object (protocol.md §3.4).
pub const FIELD_LABELS: &str = "labels";
/// Field metadata key of the FieldConfig JSON (protocol.md §3.4).
pub const FIELD_CONFIG: &str = "config";

/// The values of one field; `None` is a null.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Epoch nanoseconds (UTC) → `Timestamp(ns)`.
    Time(Vec<Option<i64>>),
    /// float64.
    Number(Vec<Option<f64>>),
    /// int64.
    Int(Vec<Option<i64>>),
    /// UTF-8 strings.
    String(Vec<Option<String>>),
    /// Booleans.
    Bool(Vec<Option<bool>>),
    /// Raw JSON text per cell → Arrow `Binary`, `tstype` `other`.
    Json(Vec<Option<String>>),
}

macro_rules! each_column {
    ($col:expr, $v:ident => $body:expr) => {
        match $col {
            Column::Time($v) => $body,
            Column::Number($v) => $body,
            Column::Int($v) => $body,
            Column::String($v) => $body,
            Column::Bool($v) => $body,
            Column::Json($v) => $body,
        }
    };
}

impl Column {
    /// Number of rows.
    pub fn len(&self) -> usize {
        each_column!(self, v => v.len())
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when any cell is null.
    pub fn has_nulls(&self) -> bool {
        each_column!(self, v => v.iter().any(Option::is_none))
    }

    /// An empty column of the same kind.
    pub fn empty_like(&self) -> Column {
        match self {
            Column::Time(_) => Column::Time(Vec::new()),
            Column::Number(_) => Column::Number(Vec::new()),
            Column::Int(_) => Column::Int(Vec::new()),
            Column::String(_) => Column::String(Vec::new()),
            Column::Bool(_) => Column::Bool(Vec::new()),
            Column::Json(_) => Column::Json(Vec::new()),
        }
    }

    /// Keeps the rows at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> Column {
        fn pick<T: Clone>(v: &[Option<T>], idx: &[usize]) -> Vec<Option<T>> {
            idx.iter().map(|&i| v.get(i).cloned().flatten()).collect()
        }
        match self {
            Column::Time(v) => Column::Time(pick(v, indices)),
            Column::Number(v) => Column::Number(pick(v, indices)),
            Column::Int(v) => Column::Int(pick(v, indices)),
            Column::String(v) => Column::String(pick(v, indices)),
            Column::Bool(v) => Column::Bool(pick(v, indices)),
            Column::Json(v) => Column::Json(pick(v, indices)),
        }
    }

    /// Appends `other` when it is of the same kind; returns false otherwise.
    pub fn append(&mut self, other: &Column) -> bool {
        match (self, other) {
            (Column::Time(a), Column::Time(b)) => a.extend_from_slice(b),
            (Column::Number(a), Column::Number(b)) => a.extend_from_slice(b),
            (Column::Int(a), Column::Int(b)) => a.extend_from_slice(b),
            (Column::String(a), Column::String(b)) => a.extend_from_slice(b),
            (Column::Bool(a), Column::Bool(b)) => a.extend_from_slice(b),
            (Column::Json(a), Column::Json(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
    }

    /// Grafana's `tstype` for this column (protocol.md §3.4).
    pub fn tstype(&self) -> &'static str {
        match self {
            Column::Time(_) => "time",
            Column::Number(_) | Column::Int(_) => "number",
            Column::String(_) => "string",
            Column::Bool(_) => "boolean",
            Column::Json(_) => "other",
        }
    }

    /// Short type name for messages and the text rendering (`time`, `float64`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Column::Time(_) => "time",
            Column::Number(_) => "float64",
            Column::Int(_) => "int64",
            Column::String(_) => "string",
            Column::Bool(_) => "bool",
            Column::Json(_) => "json",
        }
    }
}

/// One field of a frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Field name (may repeat within a frame).
    pub name: String,
    /// Labels (string → string), written as the `labels` metadata JSON object.
    pub labels: BTreeMap<String, String>,
    /// FieldConfig JSON object (unit, displayName, ...), if any.
    pub config: Option<Map<String, Value>>,
    /// Declared Arrow nullability; must be true when any value is null (protocol.md §3.6).
    pub nullable: bool,
    /// The values.
    pub values: Column,
}

impl Field {
    /// A field with no labels or config, nullable when the values have a null.
    pub fn new(name: impl Into<String>, values: Column) -> Field {
        let nullable = values.has_nulls();
        Field {
            name: name.into(),
            labels: BTreeMap::new(),
            config: None,
            nullable,
            values,
        }
    }
}

/// A frame notice (protocol.md §3.3 Notice): severity is `info`, `warning` or `error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// `info` | `warning` | `error`.
    pub severity: &'static str,
    /// Human text.
    pub text: String,
}

/// A data frame (protocol.md §3).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    /// Frame name (`name` schema metadata).
    pub name: String,
    /// Dataplane type (`meta.type`), e.g. `timeseries-multi`; empty = untyped.
    pub frame_type: String,
    /// `meta.typeVersion`; `[0,1]` for dataplane types, `[0,0]` otherwise.
    pub type_version: [u32; 2],
    /// `meta.executedQueryString` (secrets masked by the caller).
    pub executed_query: Option<String>,
    /// `meta.preferredVisualisationType`, e.g. `logs`.
    pub preferred_visualisation: Option<&'static str>,
    /// `meta.notices`.
    pub notices: Vec<Notice>,
    /// The fields, in order.
    pub fields: Vec<Field>,
}

/// Why a frame could not be encoded (always a bug of ours: status 500, errorSource plugin).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fields of one frame have different lengths.
    #[error("frame '{frame}': field '{field}' has {len} rows, expected {expected}")]
    Ragged {
        /// Frame name.
        frame: String,
        /// Field name.
        field: String,
        /// Its length.
        len: usize,
        /// The first field's length.
        expected: usize,
    },
    /// A field has nulls but is declared non-nullable.
    #[error("frame '{frame}': field '{field}' has nulls but is declared non-nullable")]
    NullInNonNullable {
        /// Frame name.
        frame: String,
        /// Field name.
        field: String,
    },
    /// The Arrow writer failed.
    #[error("arrow encoding failed: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

impl Frame {
    /// Number of rows (0 for a frame without fields).
    pub fn rows(&self) -> usize {
        self.fields.first().map_or(0, |f| f.values.len())
    }

    /// A cheap estimate of the encoded size in bytes: 8 bytes per cell, plus the string
    /// bytes of string and JSON columns (sampled from the first 64 cells). For deciding
    /// whether encoding is worth moving off the async worker, not for accounting.
    pub fn approx_bytes(&self) -> usize {
        self.fields
            .iter()
            .map(|f| {
                let n = f.values.len();
                let strings = match &f.values {
                    Column::String(v) | Column::Json(v) => {
                        let sample = &v[..v.len().min(64)];
                        let bytes: usize = sample.iter().flatten().map(String::len).sum();
                        bytes.saturating_mul(n) / sample.len().max(1)
                    }
                    _ => 0,
                };
                n.saturating_mul(8).saturating_add(strings)
            })
            .sum()
    }

    /// The FrameMeta JSON object (protocol.md §3.3), or `None` when there is nothing to say.
    pub fn meta_json(&self) -> Option<Value> {
        let mut m = Map::new();
        if !self.frame_type.is_empty() {
            m.insert("type".into(), Value::String(self.frame_type.clone()));
        }
        if let Some(q) = &self.executed_query {
            m.insert("executedQueryString".into(), Value::String(q.clone()));
        }
        if let Some(v) = self.preferred_visualisation {
            m.insert("preferredVisualisationType".into(), Value::String(v.into()));
        }
        if !self.notices.is_empty() {
            let notices = self
                .notices
                .iter()
                .map(|n| serde_json::json!({"severity": n.severity, "text": n.text}))
                .collect();
            m.insert("notices".into(), Value::Array(notices));
        }
        if m.is_empty() && self.type_version == [0, 0] {
            return None;
        }
        m.insert(
            "typeVersion".into(),
            serde_json::json!([self.type_version[0], self.type_version[1]]),
        );
        Some(Value::Object(m))
    }

    /// Encodes the frame as one Arrow IPC file (protocol.md §3.1) with schema metadata
    /// `name`, `refId`, `meta` and field metadata `tstype`, `labels`, `config`.
    ///
    /// # Errors
    /// [`FrameError`] for ragged fields, nulls in a non-nullable field, or an Arrow failure.
    pub fn encode(&self, ref_id: &str) -> Result<Vec<u8>, FrameError> {
        let rows = self.rows();
        let mut arrow_fields = Vec::with_capacity(self.fields.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            if f.values.len() != rows {
                return Err(FrameError::Ragged {
                    frame: self.name.clone(),
                    field: f.name.clone(),
                    len: f.values.len(),
                    expected: rows,
                });
            }
            if !f.nullable && f.values.has_nulls() {
                return Err(FrameError::NullInNonNullable {
                    frame: self.name.clone(),
                    field: f.name.clone(),
                });
            }
            let mut md = HashMap::new();
            md.insert(FIELD_TSTYPE.to_owned(), f.values.tstype().to_owned());
            if !f.labels.is_empty() {
                md.insert(FIELD_LABELS.to_owned(), json_text(&f.labels));
            }
            if let Some(c) = f.config.as_ref().filter(|c| !c.is_empty()) {
                md.insert(FIELD_CONFIG.to_owned(), json_text(c));
            }
            let (dt, array) = to_arrow(&f.values);
            arrow_fields.push(ArrowField::new(&f.name, dt, f.nullable).with_metadata(md));
            arrays.push(array);
        }
        let mut md = HashMap::new();
        md.insert(META_NAME.to_owned(), self.name.clone());
        md.insert(META_REF_ID.to_owned(), ref_id.to_owned());
        if let Some(meta) = self.meta_json() {
            md.insert(META_META.to_owned(), meta.to_string());
        }
        let schema = Arc::new(Schema::new_with_metadata(arrow_fields, md));
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = RecordBatch::try_new_with_options(schema.clone(), arrays, &options)?;
        // Sized up front (cells + strings + schema and footer): one allocation instead of a
        // doubling series of reallocations and copies.
        let capacity = self
            .approx_bytes()
            .saturating_add(self.fields.len() * 256 + 4096);
        let mut writer =
            arrow_ipc::writer::FileWriter::try_new(Vec::with_capacity(capacity), &schema)?;
        writer.write(&batch)?;
        writer.finish()?;
        Ok(writer.into_inner()?)
    }
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".to_owned())
}

/// One Arrow array per column, built in one pass from the cells (no intermediate copy of
/// the column; string values sized up front).
fn to_arrow(c: &Column) -> (DataType, ArrayRef) {
    match c {
        Column::Time(v) => (
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            Arc::new(primitive::<arrow_array::types::TimestampNanosecondType>(v)),
        ),
        Column::Number(v) => (
            DataType::Float64,
            Arc::new(primitive::<arrow_array::types::Float64Type>(v)),
        ),
        Column::Int(v) => (
            DataType::Int64,
            Arc::new(primitive::<arrow_array::types::Int64Type>(v)),
        ),
        Column::String(v) => {
            let bytes = v.iter().flatten().map(String::len).sum();
            let mut b = arrow_array::builder::StringBuilder::with_capacity(v.len(), bytes);
            for s in v {
                b.append_option(s.as_deref());
            }
            (DataType::Utf8, Arc::new(b.finish()))
        }
        Column::Bool(v) => (
            DataType::Boolean,
            Arc::new(v.iter().copied().collect::<BooleanArray>()),
        ),
        Column::Json(v) => {
            let bytes = v.iter().flatten().map(String::len).sum();
            let mut b = arrow_array::builder::BinaryBuilder::with_capacity(v.len(), bytes);
            for s in v {
                b.append_option(s.as_deref().map(str::as_bytes));
            }
            (DataType::Binary, Arc::new(b.finish()))
        }
    }
}

/// A primitive array from optional cells: without a validity bitmap when no cell is null.
fn primitive<T: arrow_array::ArrowPrimitiveType>(
    v: &[Option<T::Native>],
) -> arrow_array::PrimitiveArray<T> {
    if v.iter().all(Option::is_some) {
        arrow_array::PrimitiveArray::<T>::from_iter_values(v.iter().map(|x| x.unwrap_or_default()))
    } else {
        v.iter().copied().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow_array::Array;

    fn sample() -> Frame {
        let mut value = Field::new("value", Column::Number(vec![Some(1.5), None]));
        value.labels.insert("host".into(), "a".into());
        let mut cfg = Map::new();
        cfg.insert("unit".into(), Value::String("celsius".into()));
        value.config = Some(cfg);
        Frame {
            name: "r1".into(),
            frame_type: "timeseries-multi".into(),
            type_version: [0, 1],
            executed_query: Some("http://x/y".into()),
            fields: vec![
                Field::new("time", Column::Time(vec![Some(1), Some(2)])),
                value,
            ],
            ..Frame::default()
        }
    }

    #[test]
    fn encodes_an_ipc_file_with_grafana_metadata() {
        let bytes = sample().encode("A").unwrap();
        assert_eq!(&bytes[..6], b"ARROW1");
        assert_eq!(&bytes[bytes.len() - 6..], b"ARROW1");
        let reader =
            arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        let schema = reader.schema();
        assert_eq!(schema.metadata()["name"], "r1");
        assert_eq!(schema.metadata()["refId"], "A");
        let meta: Value = serde_json::from_str(&schema.metadata()["meta"]).unwrap();
        assert_eq!(meta["type"], "timeseries-multi");
        assert_eq!(meta["typeVersion"], serde_json::json!([0, 1]));
        assert_eq!(meta["executedQueryString"], "http://x/y");
        let time = schema.field(0);
        assert_eq!(
            time.data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, None)
        );
        assert!(!time.is_nullable());
        assert_eq!(time.metadata()["tstype"], "time");
        let value = schema.field(1);
        assert!(value.is_nullable());
        assert_eq!(value.metadata()["labels"], r#"{"host":"a"}"#);
        assert_eq!(value.metadata()["config"], r#"{"unit":"celsius"}"#);
        let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 1);
        let v = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .unwrap();
        assert_eq!(v.value(0), 1.5);
        assert!(v.is_null(1));
    }

    #[test]
    fn null_in_non_nullable_is_refused() {
        let mut f = sample();
        f.fields[1].nullable = false;
        assert!(matches!(
            f.encode("A"),
            Err(FrameError::NullInNonNullable { .. })
        ));
    }

    #[test]
    fn empty_frame_encodes() {
        let f = Frame {
            name: "x".into(),
            ..Frame::default()
        };
        let bytes = f.encode("B").unwrap();
        let reader =
            arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        assert_eq!(reader.schema().fields().len(), 0);
        assert!(reader.schema().metadata().get("meta").is_none());
    }
}
