//! Infinity query model → RestBridge rule (the mapping of
//! `../shared/conformance/infinity-golden/README.md`, "Replaying a golden as a rows JSONPath +
//! field JSONPath + type rule"), plus the golden-file reader.
//!
//! Nothing here looks at a golden's *expected* frame: the rule is built from the Infinity query
//! (`meta.custom.query`) and the input document only, the way an admin would write it.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Golden files (`.jsonc`)
// ---------------------------------------------------------------------------------------------

/// What the comment header says about one frame (used to cross-check the JSON part).
#[derive(Debug, PartialEq, Eq)]
pub struct HeaderFrame {
    pub name: String,
    pub fields: usize,
    pub rows: usize,
}

/// A parsed golden: the `DataResponse` JSON and the frames its comment header describes.
#[derive(Debug)]
pub struct GoldenFile {
    pub response: Value,
    pub header: Vec<HeaderFrame>,
}

const MACHINE_GENERATED: &str = "This was machine generated.  Do not edit.";

/// Parses a golden: every line whose first non-blank characters are `//` is the header, the
/// rest is one JSON object (README "The golden format").
pub fn parse_golden(text: &str) -> Result<GoldenFile, String> {
    let mut json_text = String::with_capacity(text.len());
    let mut header = Vec::new();
    let mut marks = 0;
    let mut name: Option<String> = None;
    for line in text.lines() {
        let Some(comment) = line.trim_start().strip_prefix("//") else {
            json_text.push_str(line);
            json_text.push('\n');
            continue;
        };
        let c = comment.trim();
        if c.contains(MACHINE_GENERATED) {
            marks += 1;
        } else if let Some(n) = c.strip_prefix("Name:").filter(|_| name.is_none()) {
            // Only the frame-level `Name:` (field cells are `| Name: ... |`, never at the start).
            name = Some(n.trim().to_owned());
        } else if let Some(dims) = c.strip_prefix("Dimensions:") {
            // `Dimensions: 2 Fields by 3 Rows`
            let words: Vec<&str> = dims.split_whitespace().collect();
            let (Some(f), Some(r)) = (words.first(), words.get(3)) else {
                return Err(format!("bad Dimensions line: {c}"));
            };
            header.push(HeaderFrame {
                name: name.take().unwrap_or_default(),
                fields: f.parse().map_err(|_| format!("bad field count in: {c}"))?,
                rows: r.parse().map_err(|_| format!("bad row count in: {c}"))?,
            });
        }
    }
    if marks != 2 {
        return Err(format!(
            "expected the 'machine generated' line twice in the header, found it {marks} times"
        ));
    }
    let response: Value =
        serde_json::from_str(&json_text).map_err(|e| format!("golden JSON: {e}"))?;
    Ok(GoldenFile { response, header })
}

/// One field of a golden frame.
#[derive(Debug, Clone)]
pub struct GoldenField {
    pub name: String,
    /// `number` | `string` | `time` | `boolean` | `other`.
    pub ty: String,
    /// Go storage type: `float64`, `string`, `time.Time`, ...
    pub frame_ty: String,
    pub nullable: bool,
    pub labels: Option<Value>,
    pub config: Option<Value>,
    pub values: Vec<Value>,
}

/// One golden frame.
#[derive(Debug, Clone)]
pub struct GoldenFrame {
    pub name: String,
    pub ref_id: Option<String>,
    pub meta: Value,
    pub fields: Vec<GoldenField>,
}

impl GoldenFrame {
    pub fn rows(&self) -> usize {
        self.fields.first().map_or(0, |f| f.values.len())
    }
}

/// The frames of a golden response, checked against the header.
pub fn golden_frames(g: &GoldenFile) -> Result<Vec<GoldenFrame>, String> {
    let r = &g.response;
    if r.get("status") != Some(&json!(200)) || r.get("error").is_some() {
        return Err(format!(
            "golden is not a 200 response: status {:?}, error {:?}",
            r.get("status"),
            r.get("error")
        ));
    }
    let frames = r["frames"].as_array().ok_or("golden has no frames array")?;
    let mut out = Vec::with_capacity(frames.len());
    for (i, fr) in frames.iter().enumerate() {
        let schema = &fr["schema"];
        let specs = schema["fields"]
            .as_array()
            .ok_or(format!("frame {i}: no schema.fields"))?;
        let values = fr["data"]["values"]
            .as_array()
            .ok_or(format!("frame {i}: no data.values"))?;
        if specs.len() != values.len() {
            return Err(format!(
                "frame {i}: {} fields but {} value columns",
                specs.len(),
                values.len()
            ));
        }
        let mut fields = Vec::with_capacity(specs.len());
        for (s, v) in specs.iter().zip(values) {
            fields.push(GoldenField {
                name: s["name"].as_str().unwrap_or_default().to_owned(),
                ty: s["type"].as_str().unwrap_or_default().to_owned(),
                frame_ty: s["typeInfo"]["frame"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                nullable: s["typeInfo"]["nullable"].as_bool().unwrap_or(false),
                labels: s.get("labels").cloned(),
                config: s.get("config").cloned(),
                values: v
                    .as_array()
                    .ok_or(format!("frame {i}: a value column is not an array"))?
                    .clone(),
            });
        }
        let frame = GoldenFrame {
            name: schema["name"].as_str().unwrap_or_default().to_owned(),
            ref_id: schema
                .get("refId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            meta: schema.get("meta").cloned().unwrap_or(Value::Null),
            fields,
        };
        if let Some(f) = frame.fields.iter().find(|f| f.values.len() != frame.rows()) {
            return Err(format!("frame {i}: field '{}' is ragged", f.name));
        }
        let described = HeaderFrame {
            name: frame.name.clone(),
            fields: frame.fields.len(),
            rows: frame.rows(),
        };
        if g.header.get(i) != Some(&described) {
            return Err(format!(
                "frame {i}: header says {:?}, JSON has {described:?}",
                g.header.get(i)
            ));
        }
        out.push(frame);
    }
    if g.header.len() != out.len() {
        return Err(format!(
            "header describes {} frames, JSON has {}",
            g.header.len(),
            out.len()
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Key order of JSON objects
// ---------------------------------------------------------------------------------------------

/// The shape of a JSON document with object members in **document order** (`serde_json::Value`
/// sorts keys in this build). Auto fields are listed in the order the API sends them, as an
/// admin writing the rule would; Infinity sorts them by name instead.
#[derive(Debug)]
pub enum Skel {
    Leaf,
    Array(Vec<Skel>),
    Object(Vec<(String, Skel)>),
}

struct SkelVisitor;

impl<'de> Visitor<'de> for SkelVisitor {
    type Value = Skel;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skel, E> {
        Ok(Skel::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skel, E> {
        Ok(Skel::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skel, E> {
        Ok(Skel::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skel, E> {
        Ok(Skel::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skel, E> {
        Ok(Skel::Leaf)
    }
    fn visit_unit<E>(self) -> Result<Skel, E> {
        Ok(Skel::Leaf)
    }
    fn visit_none<E>(self) -> Result<Skel, E> {
        Ok(Skel::Leaf)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skel, A::Error> {
        let mut items = Vec::new();
        while let Some(x) = seq.next_element::<Skel>()? {
            items.push(x);
        }
        Ok(Skel::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skel, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Skel>()? {
            members.push((k, v));
        }
        Ok(Skel::Object(members))
    }
}

impl<'de> Deserialize<'de> for Skel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skel, D::Error> {
        d.deserialize_any(SkelVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// GJSON / JSONata-style paths → JSONPath
// ---------------------------------------------------------------------------------------------

/// One path step of a GJSON path (`properties.rows`, `td.1.#content`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Splits a plain dotted GJSON path into steps; `None` when it uses anything beyond plain keys
/// and indices (GJSON queries `#(...)`, wildcards, modifiers, pipes, escapes) — those are not
/// mapped.
pub fn gjson_steps(path: &str) -> Option<Vec<Step>> {
    if path.is_empty() {
        return Some(Vec::new());
    }
    path.split('.')
        .map(|seg| {
            if seg.is_empty()
                || seg == "#"
                || seg.starts_with('@')
                || seg.contains(['*', '?', '|', '(', ')', '\\', '[', ']', '$', ' ', '='])
            {
                None
            } else if seg.bytes().all(|b| b.is_ascii_digit()) {
                seg.parse().ok().map(Step::Index)
            } else {
                Some(Step::Key(seg.to_owned()))
            }
        })
        .collect()
}

/// `root_selector` → steps: empty or `$` is the document; a GJSON path (`users.user`) or a
/// JSONPath-looking plain path (`$.root.row`, which Infinity evaluates with JSONata) maps to
/// its keys. `None` = a JSONata expression (function call, operators, ...) — not translatable.
pub fn root_steps(root: &str) -> Option<Vec<Step>> {
    let r = root.trim();
    match r {
        "" | "$" => Some(Vec::new()),
        _ => gjson_steps(r.strip_prefix("$.").unwrap_or(r)),
    }
}

/// Steps → an RFC 9535 JSONPath (`$.properties.rows`, `$.td[1]['#content']`).
pub fn jsonpath(steps: &[Step]) -> String {
    let mut p = String::from("$");
    for s in steps {
        match s {
            Step::Index(i) => p.push_str(&format!("[{i}]")),
            Step::Key(k) => {
                let mut chars = k.chars();
                let plain = chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
                if plain {
                    p.push('.');
                    p.push_str(k);
                } else {
                    let esc = k.replace('\\', "\\\\").replace('\'', "\\'");
                    p.push_str(&format!("['{esc}']"));
                }
            }
        }
    }
    p
}

fn step_value<'a>(v: &'a Value, s: &Step) -> Option<&'a Value> {
    match (s, v) {
        (Step::Key(k), Value::Object(m)) => m.get(k),
        (Step::Index(i), Value::Array(a)) => a.get(*i),
        _ => None,
    }
}

fn walk<'a>(v: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(v, |v, s| step_value(v, s))
}

fn step_skel<'a>(v: &'a Skel, s: &Step) -> Option<&'a Skel> {
    match (s, v) {
        (Step::Key(k), Skel::Object(m)) => m.iter().find(|(n, _)| n == k).map(|(_, x)| x),
        (Step::Index(i), Skel::Array(a)) => a.get(*i),
        _ => None,
    }
}

/// Go reference-time layout (`20060102`, `2006-01-02T15:04:05Z07:00`) → strftime (jiff).
///
/// # Errors
/// A layout element that has no strftime counterpart here.
pub fn go_layout_to_strftime(layout: &str) -> Result<String, String> {
    // Longest first, as Go's layout scanner does.
    const TOKENS: &[(&str, &str)] = &[
        ("January", "%B"),
        ("Monday", "%A"),
        ("Z07:00", "%:z"),
        ("-07:00", "%:z"),
        (".000000000", "%.9f"),
        (".000000", "%.6f"),
        (".000", "%.3f"),
        ("-0700", "%z"),
        ("2006", "%Y"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("01", "%m"),
        ("02", "%d"),
        ("_2", "%e"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("PM", "%p"),
        ("pm", "%P"),
        ("1", "%-m"),
        ("2", "%-d"),
        ("3", "%-I"),
        ("4", "%-M"),
        ("5", "%-S"),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, st) in TOKENS {
            if let Some(r) = rest.strip_prefix(go) {
                out.push_str(st);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        if c.is_ascii_digit() {
            return Err(format!(
                "Go layout '{layout}': digit '{c}' is not a layout element"
            ));
        }
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The rule
// ---------------------------------------------------------------------------------------------

/// A rule built from an Infinity query.
#[derive(Debug)]
pub struct Translation {
    /// The rule, as an admin would write it (JSON form of config.md §2).
    pub rule: Value,
    /// Names of Infinity `computed_columns` that the rule cannot express (dropped from the
    /// golden by the `COMPUTED_COLUMNS_DROPPED` normalisation).
    pub computed: Vec<String>,
}

/// Why a golden is not replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotTranslatable {
    /// CSV / TSV / XML / HTML input.
    NotJson(String),
    /// `parser: jq-backend`.
    Jq,
    /// A `root_selector` that is a JSONata expression.
    Jsonata(String),
    /// Filter / summarize expressions (Infinity's expression language).
    Expressions(String),
    /// Anything else the mapping does not cover.
    Other(String),
}

impl fmt::Display for NotTranslatable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotTranslatable::NotJson(t) => write!(
                f,
                "input type '{t}' is not JSON; RestBridge reads JSON bodies only (a non-JSON \
                 body is a 502){}",
                if t == "xml" || t == "html" {
                    "; JSONPath-mappable only after Infinity's XML→JSON (goxml2json) step, which \
                     RestBridge does not have"
                } else {
                    ""
                }
            ),
            NotTranslatable::Jq => write!(
                f,
                "parser jq-backend: root_selector is a jq program; RestBridge has no jq"
            ),
            NotTranslatable::Jsonata(r) => write!(
                f,
                "root_selector '{r}' is a JSONata expression (JSONPath has no functions or \
                 aggregates)"
            ),
            NotTranslatable::Expressions(e) => write!(
                f,
                "needs Infinity's expression language ({e}); RestBridge has no \
                 filter/summarize/computed columns"
            ),
            NotTranslatable::Other(o) => write!(f, "{o}"),
        }
    }
}

/// Decides whether a golden's query can be replayed, from the query alone.
pub fn classify(q: &Value) -> Result<(), NotTranslatable> {
    let s = |k: &str| q[k].as_str().unwrap_or_default().to_owned();
    let ty = s("type");
    if ty != "json" {
        return Err(NotTranslatable::NotJson(ty));
    }
    match s("parser").as_str() {
        "backend" => {}
        "jq-backend" => return Err(NotTranslatable::Jq),
        other => {
            return Err(NotTranslatable::Other(format!(
                "parser '{other}' is not a backend parser"
            )))
        }
    }
    let mut exprs = Vec::new();
    for k in ["filterExpression", "summarizeExpression", "summarizeBy"] {
        let v = s(k);
        if !v.is_empty() {
            exprs.push(format!("{k} '{v}'"));
        }
    }
    if !exprs.is_empty() {
        return Err(NotTranslatable::Expressions(exprs.join(", ")));
    }
    let root = s("root_selector");
    if root_steps(&root).is_none() {
        return Err(NotTranslatable::Jsonata(root));
    }
    if !matches!(s("format").as_str(), "" | "table") {
        return Err(NotTranslatable::Other(format!(
            "format '{}' (reshaping) is not mapped",
            s("format")
        )));
    }
    let jo = &q["json_options"];
    if jo["columnar"] == json!(true) || jo["root_is_not_array"] == json!(true) {
        return Err(NotTranslatable::Other("json_options are not mapped".into()));
    }
    Ok(())
}

/// The type an admin would give a column, from its values (Infinity's "auto" type): all
/// integers → `int`, other numbers → `number`, strings → `string`, booleans → `bool`,
/// anything else → `json`.
pub fn infer_type<'a>(values: impl Iterator<Item = Option<&'a Value>>) -> &'static str {
    let mut kinds = BTreeSet::new();
    for v in values.flatten() {
        kinds.insert(match v {
            Value::Null => continue,
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_i64() || n.is_u64() => "int",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) | Value::Object(_) => "json",
        });
    }
    match kinds.len() {
        0 => "string",
        1 => kinds.into_iter().next().unwrap_or("string"),
        _ if kinds.iter().all(|k| *k == "int" || *k == "number") => "number",
        _ => "json",
    }
}

/// Builds the rule for one golden (`q` = `meta.custom.query`, `doc`/`skel` = the input).
pub fn translate(
    rule_id: &str,
    q: &Value,
    doc: &Value,
    skel: &Skel,
) -> Result<Translation, String> {
    let root = q["root_selector"].as_str().unwrap_or_default();
    let steps = root_steps(root).ok_or(format!("root_selector '{root}' is not a path"))?;
    let mut node = doc;
    let mut node_skel = skel;
    for s in &steps {
        node = step_value(node, s).ok_or(format!("root_selector '{root}' selects nothing"))?;
        node_skel =
            step_skel(node_skel, s).ok_or(format!("root_selector '{root}' selects nothing"))?;
    }
    let prefix = jsonpath(&steps);
    // An array: one row per element. Anything else: the node is the one row.
    let (rows_path, rows, row_skels): (String, Vec<&Value>, Vec<&Skel>) = match (node, node_skel) {
        (Value::Array(items), Skel::Array(sk)) => (
            format!("{prefix}[*]"),
            items.iter().collect(),
            sk.iter().collect(),
        ),
        _ => (prefix, vec![node], vec![node_skel]),
    };
    let ref_id = q["refId"].as_str().unwrap_or_default();
    let columns = q["columns"].as_array().cloned().unwrap_or_default();
    let mut fields = Vec::new();
    if columns.is_empty() {
        if rows.iter().all(|r| r.is_object()) {
            // Every key of the row objects, in document order.
            let mut keys: Vec<&str> = Vec::new();
            for sk in &row_skels {
                if let Skel::Object(m) = sk {
                    for (k, _) in m {
                        if !keys.contains(&k.as_str()) {
                            keys.push(k);
                        }
                    }
                }
            }
            for k in keys {
                let ty = infer_type(rows.iter().map(|r| r.get(k)));
                fields.push(
                    json!({"name": k, "path": jsonpath(&[Step::Key(k.to_owned())]), "type": ty}),
                );
            }
        } else if rows.iter().all(|r| !r.is_object() && !r.is_array()) {
            // Scalar rows: one field, the row itself, named after the refId.
            if ref_id.is_empty() {
                return Err("scalar rows need a refId to name the field".into());
            }
            let ty = infer_type(rows.iter().map(|r| Some(*r)));
            fields.push(json!({"name": ref_id, "path": "$", "type": ty}));
        } else {
            return Err("rows mix objects and other values; auto fields are not mapped".into());
        }
    } else {
        for c in &columns {
            let sel = c["selector"].as_str().unwrap_or_default();
            let steps = gjson_steps(sel).ok_or(format!("column selector '{sel}' is not a path"))?;
            let text = c["text"].as_str().unwrap_or_default();
            let name = if text.is_empty() { sel } else { text };
            let path = jsonpath(&steps);
            let mut f = json!({"name": name, "path": path});
            let ty = c["type"].as_str().unwrap_or_default();
            let layout = c["timestampFormat"].as_str().unwrap_or_default();
            match ty {
                "string" => f["type"] = json!("string"),
                "number" => f["type"] = json!("number"),
                "boolean" => f["type"] = json!("bool"),
                "timestamp" => {
                    f["type"] = json!("time");
                    if !layout.is_empty() {
                        f["format"] = json!(go_layout_to_strftime(layout)?);
                    }
                }
                "timestamp_epoch" => {
                    f["type"] = json!("time");
                    f["format"] = json!("epoch_ms");
                }
                "timestamp_epoch_s" => {
                    f["type"] = json!("time");
                    f["format"] = json!("epoch_s");
                }
                "" => {
                    f["type"] = json!(infer_type(rows.iter().map(|r| walk(r, &steps))));
                }
                other => return Err(format!("column type '{other}' is not mapped")),
            }
            fields.push(f);
        }
    }
    let format = match q["format"].as_str().unwrap_or_default() {
        "" => "auto",
        "table" => "table",
        other => return Err(format!("format '{other}' is not mapped")),
    };
    let computed = q["computed_columns"]
        .as_array()
        .map(|cc| {
            cc.iter()
                .map(|c| c["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    Ok(Translation {
        rule: json!({
            "id": rule_id,
            "request": {"url": "/"},
            "response": {"rows": rows_path, "fields": fields, "format": format},
        }),
        computed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layouts() {
        assert_eq!(go_layout_to_strftime("20060102").unwrap(), "%Y%m%d");
        assert_eq!(
            go_layout_to_strftime("2006-01-02T15:04:05Z07:00").unwrap(),
            "%Y-%m-%dT%H:%M:%S%:z"
        );
        assert_eq!(
            go_layout_to_strftime("02/Jan/2006:15:04:05 -0700").unwrap(),
            "%d/%b/%Y:%H:%M:%S %z"
        );
        assert!(go_layout_to_strftime("2006-99").is_err());
    }

    #[test]
    fn gjson_to_jsonpath() {
        let p = |s: &str| gjson_steps(s).map(|st| jsonpath(&st));
        assert_eq!(p("1").as_deref(), Some("$[1]"));
        assert_eq!(p("td.0").as_deref(), Some("$.td[0]"));
        assert_eq!(p("td.1.#content").as_deref(), Some("$.td[1]['#content']"));
        assert_eq!(p("it's").as_deref(), Some("$['it\\'s']"));
        assert_eq!(p("friends.#(age>45)#.last"), None);
        assert_eq!(p("a.*"), None);
        let r = |s: &str| root_steps(s).map(|st| jsonpath(&st));
        assert_eq!(r("").as_deref(), Some("$"));
        assert_eq!(r("$").as_deref(), Some("$"));
        assert_eq!(r("properties.rows").as_deref(), Some("$.properties.rows"));
        assert_eq!(r("$.root.row").as_deref(), Some("$.root.row"));
        assert_eq!(r("$sum(orders.price)"), None);
    }

    #[test]
    fn auto_types() {
        let t = |v: Value| infer_type(v.as_array().unwrap().iter().map(Some));
        assert_eq!(t(json!([1, 2, null])), "int");
        assert_eq!(t(json!([1, 2.5])), "number");
        assert_eq!(t(json!(["a", null])), "string");
        assert_eq!(t(json!([true])), "bool");
        assert_eq!(t(json!([null])), "string");
        assert_eq!(t(json!([{"a": 1}, 2])), "json");
    }

    #[test]
    fn skeleton_keeps_document_order() {
        let s: Skel = serde_json::from_str(r#"[{"name":"x","age":1,"b":{"z":1,"a":2}}]"#).unwrap();
        let Skel::Array(rows) = s else { panic!() };
        let Skel::Object(m) = &rows[0] else { panic!() };
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["name", "age", "b"]);
    }

    #[test]
    fn golden_reader() {
        let text = "//  🌟 This was machine generated.  Do not edit. 🌟\n// Name: q1\n// Dimensions: 1 Fields by 2 Rows\n// | Name: x |\n//  🌟 This was machine generated.  Do not edit. 🌟\n{\"status\":200,\"frames\":[{\"schema\":{\"name\":\"q1\",\"fields\":[{\"name\":\"x\",\"type\":\"number\",\"typeInfo\":{\"frame\":\"float64\",\"nullable\":true}}]},\"data\":{\"values\":[[1,null]]}}]}";
        let g = parse_golden(text).unwrap();
        let frames = golden_frames(&g).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].name, "q1");
        assert!(frames[0].fields[0].nullable);
        assert_eq!(frames[0].fields[0].values, vec![json!(1), Value::Null]);
        let bad = text.replace("2 Rows", "3 Rows");
        assert!(golden_frames(&parse_golden(&bad).unwrap()).is_err());
    }
}
