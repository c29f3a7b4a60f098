//! Reads the SDK's frame JSON (protocol.md §3.8: `schema.fields[].type/typeInfo/labels`,
//! `data.values` column-major, times in epoch ms plus optional `data.nanos`, non-finite floats
//! in `data.entities`) into the same `DecodedFrame` the Arrow reader produces, so the
//! classifier sees example files and our frames alike.
//!
//! The Go type in `typeInfo.frame` decides the field type (it is what the Go reader uses);
//! `type` is only the fallback. Disagreements are reported as quirks.

use std::collections::BTreeMap;

use arrow_schema::{DataType, TimeUnit};
use serde_json::Value;

use crate::support::arrow::{DecodedField, DecodedFrame};

/// A frame JSON array (or a single frame object) → decoded frames, plus quirks found.
pub fn decode_frames(doc: &Value) -> Result<(Vec<DecodedFrame>, Vec<String>), String> {
    let mut quirks = Vec::new();
    let frames = match doc {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, f)| decode_frame(f, &mut quirks).map_err(|e| format!("frame {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        Value::Object(_) => vec![decode_frame(doc, &mut quirks)?],
        _ => return Err("frame JSON must be an array of frames or a frame".to_owned()),
    };
    Ok((frames, quirks))
}

/// Arrow type and nullability for a Go type name (`float64`, `*time.Time`, ...).
fn go_type(name: &str) -> Option<(DataType, bool)> {
    let (nullable, base) = match name.strip_prefix('*') {
        Some(b) => (true, b),
        None => (false, name),
    };
    let dt = match base {
        "time.Time" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        "float64" => DataType::Float64,
        "float32" => DataType::Float32,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" | "enum" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "string" => DataType::Utf8,
        "bool" => DataType::Boolean,
        "json.RawMessage" => DataType::Binary,
        _ => return None,
    };
    Some((dt, nullable))
}

/// Fallback when `typeInfo` is missing: the JSON `type`.
fn json_type(t: &str) -> Option<DataType> {
    Some(match t {
        "time" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        "number" => DataType::Float64,
        "string" => DataType::Utf8,
        "boolean" => DataType::Boolean,
        "other" => DataType::Binary,
        "enum" => DataType::UInt16,
        _ => return None,
    })
}

fn tstype_of(dt: &DataType) -> &'static str {
    match dt {
        DataType::Timestamp(..) => "time",
        DataType::Utf8 => "string",
        DataType::Boolean => "boolean",
        DataType::Binary => "other",
        _ => "number",
    }
}

fn decode_frame(v: &Value, quirks: &mut Vec<String>) -> Result<DecodedFrame, String> {
    let schema = v.get("schema").ok_or("no 'schema'")?;
    let text = |k: &str| {
        schema
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let meta = schema.get("meta").cloned();
    let data = v.get("data");
    let columns: &[Value] = data
        .and_then(|d| d.get("values"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let nanos = data.and_then(|d| d.get("nanos")).and_then(Value::as_array);
    let entities = data
        .and_then(|d| d.get("entities"))
        .and_then(Value::as_array);
    let schema_fields: &[Value] = schema
        .get("fields")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let mut fields = Vec::with_capacity(schema_fields.len());
    for (i, sf) in schema_fields.iter().enumerate() {
        let name = sf
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let jtype = sf.get("type").and_then(Value::as_str).unwrap_or_default();
        let info = sf.get("typeInfo");
        let go = info.and_then(|t| t.get("frame")).and_then(Value::as_str);
        let (data_type, mut nullable) = match go.and_then(go_type) {
            Some(x) => x,
            None => (
                json_type(jtype).ok_or_else(|| format!("field {i}: unknown type '{jtype}'"))?,
                false,
            ),
        };
        if info
            .and_then(|t| t.get("nullable"))
            .and_then(Value::as_bool)
            == Some(true)
        {
            nullable = true;
        }
        if !jtype.is_empty() && jtype != "enum" && tstype_of(&data_type) != jtype {
            quirks.push(format!(
                "field {i} '{name}': type '{jtype}' but typeInfo.frame '{}' (typeInfo wins)",
                go.unwrap_or("?")
            ));
        }
        let labels = match sf.get("labels") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(format!("field {i}: label '{k}' is not a string")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(format!("field {i}: labels is not an object")),
        };
        let config = sf.get("config").filter(|c| !c.is_null()).cloned();
        let mut values: Vec<Value> = match columns.get(i) {
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(format!("field {i}: data.values[{i}] is not an array")),
            None => {
                if !columns.is_empty() {
                    return Err(format!("field {i}: no data.values[{i}]"));
                }
                quirks.push(format!(
                    "field {i} '{name}': data.values is empty; read as 0 rows"
                ));
                Vec::new()
            }
        };
        if matches!(data_type, DataType::Timestamp(..)) {
            let ns_col = nanos.and_then(|n| n.get(i)).and_then(Value::as_array);
            for (r, cell) in values.iter_mut().enumerate() {
                if cell.is_null() {
                    continue;
                }
                let ms = cell
                    .as_i64()
                    .ok_or_else(|| format!("field {i} row {r}: time is not epoch ms"))?;
                let extra = ns_col
                    .and_then(|n| n.get(r))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                *cell = Value::from(ms * 1_000_000 + extra);
            }
        }
        if let Some(Value::Object(ent)) = entities.and_then(|e| e.get(i)) {
            for (key, text) in [("NaN", "NaN"), ("Inf", "inf"), ("NegInf", "-inf")] {
                for idx in ent.get(key).and_then(Value::as_array).into_iter().flatten() {
                    if let Some(cell) = idx
                        .as_u64()
                        .and_then(|r| values.get_mut(usize::try_from(r).ok()?))
                    {
                        *cell = Value::String(text.to_owned());
                    }
                }
            }
        }
        let is_enum = jtype == "enum" || go.is_some_and(|g| g.trim_start_matches('*') == "enum");
        let tstype = if is_enum {
            "enum"
        } else {
            tstype_of(&data_type)
        };
        fields.push(DecodedField {
            name,
            tstype: Some(tstype.to_owned()),
            data_type,
            nullable,
            labels,
            config,
            values,
        });
    }
    if let Some(f0) = fields.first() {
        let n = f0.values.len();
        if let Some(f) = fields.iter().find(|f| f.values.len() != n) {
            return Err(format!(
                "field '{}' has {} values, the first field {n}",
                f.name,
                f.values.len()
            ));
        }
    }
    Ok(DecodedFrame {
        name: text("name"),
        ref_id: text("refId"),
        meta,
        fields,
    })
}
