//! Decodes our frames with arrow-rs's IPC **file** reader and checks them against the rules
//! Grafana's Go decoder enforces (protocol.md §3): file format, allowed types, metadata JSON
//! shapes, and no nulls in non-nullable fields.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::Array;
use arrow_schema::{DataType, TimeUnit};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct DecodedField {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    pub tstype: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub config: Option<Value>,
    /// Values as JSON: numbers, strings, bools, null; times as i64 epoch ns.
    pub values: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct DecodedFrame {
    pub name: String,
    pub ref_id: String,
    pub meta: Option<Value>,
    pub fields: Vec<DecodedField>,
}

impl DecodedFrame {
    pub fn field(&self, name: &str) -> &DecodedField {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no field {name} in {:?}",
                    self.fields.iter().map(|f| &f.name).collect::<Vec<_>>()
                )
            })
    }

    pub fn meta_type(&self) -> Option<&str> {
        self.meta.as_ref()?.get("type")?.as_str()
    }

    pub fn rows(&self) -> usize {
        self.fields.first().map_or(0, |f| f.values.len())
    }
}

/// Decodes one frame, panicking with a clear message on anything Grafana would reject.
pub fn decode(bytes: &[u8]) -> DecodedFrame {
    assert!(
        bytes.starts_with(b"ARROW1"),
        "not an Arrow IPC file (magic missing)"
    );
    let reader = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
        .expect("Arrow IPC file");
    let schema = reader.schema();
    let md = schema.metadata();
    let meta = md.get("meta").map(|m| {
        assert!(
            !m.is_empty(),
            "empty meta string fails Go decoding (protocol.md §9 item 26)"
        );
        let v: Value = serde_json::from_str(m).expect("meta is JSON");
        let tv = v.get("typeVersion").expect("typeVersion present");
        let arr = tv.as_array().expect("typeVersion is an array");
        assert_eq!(arr.len(), 2, "typeVersion has two numbers");
        assert!(
            arr.iter().all(|x| x.as_u64().is_some()),
            "typeVersion non-negative ints"
        );
        if let Some(notices) = v.get("notices") {
            for n in notices.as_array().expect("notices array") {
                let sev = n.get("severity").and_then(Value::as_str).unwrap_or("info");
                assert!(
                    matches!(sev, "info" | "warning" | "error"),
                    "bad severity {sev}"
                );
            }
        }
        v
    });
    let mut fields: Vec<DecodedField> = schema
        .fields()
        .iter()
        .map(|f| {
            let fm = f.metadata();
            let labels = fm
                .get("labels")
                .map(|l| {
                    serde_json::from_str::<BTreeMap<String, String>>(l)
                        .expect("labels: string→string JSON")
                })
                .unwrap_or_default();
            let config = fm.get("config").map(|c| {
                let v: Value = serde_json::from_str(c).expect("config JSON");
                assert!(v.is_object(), "config is an object");
                v
            });
            match f.data_type() {
                DataType::Timestamp(TimeUnit::Nanosecond, None)
                | DataType::Float64
                | DataType::Int64
                | DataType::Utf8
                | DataType::Boolean
                | DataType::Binary => {}
                other => panic!(
                    "field {}: Arrow type {other:?} is not one Grafana decodes here",
                    f.name()
                ),
            }
            DecodedField {
                name: f.name().clone(),
                data_type: f.data_type().clone(),
                nullable: f.is_nullable(),
                tstype: fm.get("tstype").cloned(),
                labels,
                config,
                values: Vec::new(),
            }
        })
        .collect();
    for batch in reader {
        let batch = batch.expect("record batch");
        for (i, col) in batch.columns().iter().enumerate() {
            let f = &mut fields[i];
            if !f.nullable {
                assert_eq!(
                    col.null_count(),
                    0,
                    "field {} is non-nullable but has nulls",
                    f.name
                );
            }
            for r in 0..col.len() {
                let v = if col.is_null(r) {
                    Value::Null
                } else {
                    match col.data_type() {
                        DataType::Timestamp(..) => {
                            Value::from(col.as_primitive::<TimestampNanosecondType>().value(r))
                        }
                        DataType::Float64 => {
                            let x = col.as_primitive::<Float64Type>().value(r);
                            serde_json::Number::from_f64(x)
                                .map_or_else(|| Value::String(x.to_string()), Value::Number)
                        }
                        DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(r)),
                        DataType::Utf8 => Value::from(col.as_string::<i32>().value(r)),
                        DataType::Boolean => Value::from(col.as_boolean().value(r)),
                        DataType::Binary => Value::from(
                            String::from_utf8_lossy(col.as_binary::<i32>().value(r)).into_owned(),
                        ),
                        _ => unreachable!(),
                    }
                };
                f.values.push(v);
            }
        }
    }
    DecodedFrame {
        name: md.get("name").cloned().unwrap_or_default(),
        ref_id: md.get("refId").cloned().unwrap_or_default(),
        meta,
        fields,
    }
}
