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
    String(Strings),
    /// Booleans.
    Bool(Vec<Option<bool>>),
    /// Raw JSON text per cell → Arrow `Binary`, `tstype` `other`.
    Json(Strings),
}

/// The cells of a string or JSON column, laid out as Arrow lays out a `Utf8` / `Binary`
/// array (Arrow columnar format, "Variable-size Binary Layout"): every value back to back
/// in one UTF-8 buffer, the end offset of each cell in bytes, and a validity flag per cell.
/// A null cell takes no bytes. Pushing a cell copies its bytes into the buffer — no
/// allocation per cell — and encoding copies the three buffers as they are.
///
/// Two columns with the same cells compare equal (a null cell is stored one way only);
/// `Debug` prints the cells as a list of `Option<&str>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Strings {
    /// All values, back to back.
    data: String,
    /// `ends[i]` = byte offset in `data` where cell `i` ends (its start is `ends[i - 1]`,
    /// or 0).
    ends: Vec<usize>,
    /// `valid[i]` = false when cell `i` is null.
    valid: Vec<bool>,
    /// Number of null cells.
    nulls: usize,
}

impl Strings {
    /// An empty column with room for `cells` cells of `bytes` bytes in total.
    pub fn with_capacity(cells: usize, bytes: usize) -> Strings {
        Strings {
            data: String::with_capacity(bytes),
            ends: Vec::with_capacity(cells),
            valid: Vec::with_capacity(cells),
            nulls: 0,
        }
    }

    /// Makes room for `cells` more cells of `bytes` more bytes in total.
    pub fn reserve(&mut self, cells: usize, bytes: usize) {
        self.data.reserve(bytes);
        self.ends.reserve(cells);
        self.valid.reserve(cells);
    }

    /// Appends a value.
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        self.data.push_str(s);
        self.ends.push(self.data.len());
        self.valid.push(true);
    }

    /// Appends a null.
    #[inline]
    pub fn push_null(&mut self) {
        self.ends.push(self.data.len());
        self.valid.push(false);
        self.nulls += 1;
    }

    /// Appends a value or (`None`) a null.
    #[inline]
    pub fn push(&mut self, v: Option<&str>) {
        match v {
            Some(s) => self.push_str(s),
            None => self.push_null(),
        }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Number of null cells.
    pub fn null_count(&self) -> usize {
        self.nulls
    }

    /// Total bytes of the values (UTF-8).
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// Cell `i`: `None` when it is null or out of range.
    pub fn get(&self, i: usize) -> Option<&str> {
        if !*self.valid.get(i)? {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..self.ends[i])
    }

    /// The cells in order (`None` = null).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Every null cell becomes the empty string.
    pub fn fill_nulls(&mut self) {
        self.valid.iter_mut().for_each(|v| *v = true);
        self.nulls = 0;
    }

    /// The cells at `indices`, in that order (an index out of range gives a null).
    pub fn take(&self, indices: &[usize]) -> Strings {
        let mut out = Strings::with_capacity(indices.len(), 0);
        for &i in indices {
            out.push(self.get(i));
        }
        out
    }

    /// Appends the cells of `other`.
    pub fn extend_from(&mut self, other: &Strings) {
        let base = self.data.len();
        self.data.push_str(&other.data);
        self.ends.extend(other.ends.iter().map(|e| e + base));
        self.valid.extend_from_slice(&other.valid);
        self.nulls += other.nulls;
    }

    /// The Arrow offsets (`len + 1` of them, from 0), values and validity of this column.
    ///
    /// # Errors
    /// When the values exceed `i32::MAX` bytes (2 GiB), the limit of `Utf8` / `Binary`.
    fn arrow_parts(
        &self,
    ) -> Result<
        (
            arrow_buffer::OffsetBuffer<i32>,
            arrow_buffer::Buffer,
            Option<arrow_buffer::NullBuffer>,
        ),
        arrow_schema::ArrowError,
    > {
        let too_big = |_| {
            arrow_schema::ArrowError::ComputeError(format!(
                "a string field holds {} bytes, more than Arrow's 2 GiB per field",
                self.data.len()
            ))
        };
        let mut offsets = Vec::with_capacity(self.ends.len() + 1);
        offsets.push(0i32);
        for &e in &self.ends {
            offsets.push(i32::try_from(e).map_err(too_big)?);
        }
        let offsets = arrow_buffer::OffsetBuffer::new(arrow_buffer::ScalarBuffer::from(offsets));
        let values = arrow_buffer::Buffer::from(self.data.as_bytes());
        let nulls = (self.nulls > 0).then(|| arrow_buffer::NullBuffer::from(self.valid.as_slice()));
        Ok((offsets, values, nulls))
    }
}

impl std::fmt::Debug for Strings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<Option<S>> for Strings {
    fn from_iter<I: IntoIterator<Item = Option<S>>>(iter: I) -> Strings {
        let iter = iter.into_iter();
        let mut out = Strings::with_capacity(iter.size_hint().0, 0);
        for v in iter {
            out.push(v.as_ref().map(AsRef::as_ref));
        }
        out
    }
}

impl<S: AsRef<str>> From<Vec<Option<S>>> for Strings {
    fn from(v: Vec<Option<S>>) -> Strings {
        v.into_iter().collect()
    }
}

macro_rules! each_vec_column {
    ($col:expr, $v:ident => $body:expr, $s:ident => $strings:expr) => {
        match $col {
            Column::Time($v) => $body,
            Column::Number($v) => $body,
            Column::Int($v) => $body,
            Column::Bool($v) => $body,
            Column::String($s) | Column::Json($s) => $strings,
        }
    };
}

impl Column {
    /// Number of rows.
    pub fn len(&self) -> usize {
        each_vec_column!(self, v => v.len(), s => s.len())
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when any cell is null.
    pub fn has_nulls(&self) -> bool {
        each_vec_column!(self, v => v.iter().any(Option::is_none), s => s.null_count() > 0)
    }

    /// Makes room for `rows` more rows; a string or JSON column also for as many bytes
    /// per row as its cells hold on average so far.
    pub fn reserve(&mut self, rows: usize) {
        match self {
            Column::Time(v) | Column::Int(v) => v.reserve(rows),
            Column::Number(v) => v.reserve(rows),
            Column::Bool(v) => v.reserve(rows),
            Column::String(s) | Column::Json(s) => {
                let per_cell = s.byte_len().div_ceil(s.len().max(1));
                s.reserve(rows, rows.saturating_mul(per_cell));
            }
        }
    }

    /// An empty column of the same kind.
    pub fn empty_like(&self) -> Column {
        match self {
            Column::Time(_) => Column::Time(Vec::new()),
            Column::Number(_) => Column::Number(Vec::new()),
            Column::Int(_) => Column::Int(Vec::new()),
            Column::String(_) => Column::String(Strings::default()),
            Column::Bool(_) => Column::Bool(Vec::new()),
            Column::Json(_) => Column::Json(Strings::default()),
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
            Column::String(v) => Column::String(v.take(indices)),
            Column::Bool(v) => Column::Bool(pick(v, indices)),
            Column::Json(v) => Column::Json(v.take(indices)),
        }
    }

    /// Appends `other` when it is of the same kind; returns false otherwise.
    pub fn append(&mut self, other: &Column) -> bool {
        match (self, other) {
            (Column::Time(a), Column::Time(b)) => a.extend_from_slice(b),
            (Column::Number(a), Column::Number(b)) => a.extend_from_slice(b),
            (Column::Int(a), Column::Int(b)) => a.extend_from_slice(b),
            (Column::String(a), Column::String(b)) => a.extend_from(b),
            (Column::Bool(a), Column::Bool(b)) => a.extend_from_slice(b),
            (Column::Json(a), Column::Json(b)) => a.extend_from(b),
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
    /// bytes of string and JSON columns. For deciding
    /// whether encoding is worth moving off the async worker, not for accounting.
    pub fn approx_bytes(&self) -> usize {
        self.fields
            .iter()
            .map(|f| {
                let n = f.values.len();
                let strings = match &f.values {
                    Column::String(v) | Column::Json(v) => v.byte_len(),
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
            let (dt, array) = to_arrow(&f.values)?;
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

/// One Arrow array per column, built in one pass from the cells (string and JSON columns
/// are already in Arrow's layout: their buffers are copied whole).
///
/// # Errors
/// A string or JSON field over 2 GiB (Arrow's `Utf8` / `Binary` limit), or buffers Arrow
/// rejects (a bug of ours).
fn to_arrow(c: &Column) -> Result<(DataType, ArrayRef), arrow_schema::ArrowError> {
    Ok(match c {
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
            let (offsets, values, nulls) = v.arrow_parts()?;
            (
                DataType::Utf8,
                Arc::new(arrow_array::StringArray::try_new(offsets, values, nulls)?),
            )
        }
        Column::Bool(v) => (
            DataType::Boolean,
            Arc::new(v.iter().copied().collect::<BooleanArray>()),
        ),
        Column::Json(v) => {
            let (offsets, values, nulls) = v.arrow_parts()?;
            (
                DataType::Binary,
                Arc::new(arrow_array::BinaryArray::try_new(offsets, values, nulls)?),
            )
        }
    })
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
    fn reserve_makes_room_and_keeps_cells() {
        let mut s = Column::String(Strings::from(vec![Some("abcd"), None]));
        s.reserve(100);
        let Column::String(inner) = &s else {
            panic!("kind changed")
        };
        assert!(inner.ends.capacity() >= 102 && inner.valid.capacity() >= 102);
        // Two bytes per cell on average so far: 200 more bytes.
        assert!(inner.data.capacity() >= 204, "{}", inner.data.capacity());
        assert_eq!(inner.iter().collect::<Vec<_>>(), [Some("abcd"), None]);
        let mut t = Column::Time(vec![Some(1), None]);
        t.reserve(10);
        let Column::Time(v) = &t else {
            panic!("kind changed")
        };
        assert!(v.capacity() >= 12);
        assert_eq!(v, &[Some(1), None]);
    }

    #[test]
    fn strings_keep_cells_nulls_and_order_through_take_and_extend() {
        let mut s = Strings::with_capacity(4, 8);
        s.push_str("ab");
        s.push_null();
        s.push_str("");
        s.push(Some("❤️"));
        assert_eq!(s.len(), 4);
        assert_eq!(s.null_count(), 1);
        assert_eq!(s.byte_len(), 2 + "❤️".len());
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [Some("ab"), None, Some(""), Some("❤️")]
        );
        assert_eq!(s.get(4), None, "out of range");
        // An empty string is a value, not a null.
        assert_ne!(s.get(2), s.get(1));

        let picked = s.take(&[3, 1, 0, 9]);
        assert_eq!(
            picked.iter().collect::<Vec<_>>(),
            [Some("❤️"), None, Some("ab"), None]
        );
        assert_eq!(picked.null_count(), 2);

        let mut joined: Strings = vec![Some("x")].into();
        joined.extend_from(&s);
        assert_eq!(
            joined.iter().collect::<Vec<_>>(),
            [Some("x"), Some("ab"), None, Some(""), Some("❤️")]
        );
        assert_eq!(joined.null_count(), 1);
        // Built cell by cell or collected: the same column.
        let collected: Strings = joined.iter().collect();
        assert_eq!(collected, joined);

        joined.fill_nulls();
        assert_eq!(joined.null_count(), 0);
        assert_eq!(joined.get(2), Some(""));
    }

    #[test]
    fn string_and_json_columns_encode_as_utf8_and_binary_with_their_nulls() {
        let frame = Frame {
            name: "s".into(),
            fields: vec![
                Field::new(
                    "text",
                    Column::String(vec![Some("a"), None, Some(""), Some("é")].into()),
                ),
                Field::new(
                    "doc",
                    Column::Json(vec![Some("[1]"), Some("{}"), None, Some("null")].into()),
                ),
                Field::new(
                    "dense",
                    Column::String(vec![Some("x"), Some("yz"), Some(""), Some("w")].into()),
                ),
            ],
            ..Frame::default()
        };
        let bytes = frame.encode("A").unwrap();
        let mut reader =
            arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        let batch = reader.next().unwrap().unwrap();
        let text = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        let cells: Vec<Option<&str>> = text.iter().collect();
        assert_eq!(cells, [Some("a"), None, Some(""), Some("é")]);
        assert!(batch.schema().field(0).is_nullable());
        let doc = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::BinaryArray>()
            .unwrap();
        let cells: Vec<Option<&[u8]>> = doc.iter().collect();
        assert_eq!(
            cells,
            [
                Some(&b"[1]"[..]),
                Some(&b"{}"[..]),
                None,
                Some(&b"null"[..])
            ]
        );
        assert_eq!(batch.schema().field(1).metadata()["tstype"], "other");
        let dense = batch.column(2);
        assert_eq!(dense.null_count(), 0);
        assert!(dense.nulls().is_none(), "no validity bitmap without nulls");
        assert!(!batch.schema().field(2).is_nullable());
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
