//! Replays the Grafana Infinity backend goldens (`../shared/conformance/infinity-golden`)
//! against `restbridge::convert`: for every golden whose query maps onto a rows JSONPath +
//! field JSONPath + type rule, build that rule from the Infinity query, convert the same input,
//! encode and decode the frames as Grafana would, and compare names, types, nullability and
//! values with the golden frame.
//!
//! Our frames differ from Infinity's only in ways documented in `docs/conformance-infinity.md`;
//! each such difference is one [`Norm`] below, applied explicitly and reported per case.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow_schema::{DataType, TimeUnit};
use serde_json::Value;

use crate::support::arrow::{decode, DecodedField, DecodedFrame};
use crate::support::shared;
use crate::translate::{
    classify, golden_frames, parse_golden, translate, GoldenField, GoldenFrame, NotTranslatable,
    Skel, Translation,
};

const GOLDEN_DIR: &str = "conformance/infinity-golden/pkg/testsuite/golden";
const TESTDATA_DIR: &str = "conformance/infinity-golden/testdata";

/// Goldens whose input Infinity read from a file in `testdata/` (README "Input files"). The
/// file is used as the body (its bytes keep the API's key order) after checking that it parses
/// to the `meta.custom.data` the golden recorded.
const INPUT_FILES: &[(&str, &str)] = &[
    (
        "remote/should_execute_default_query_without_error.jsonc",
        "users.json",
    ),
    (
        "scenario_azure_cost_management.jsonc",
        "misc/azure-cost-management-daily.json",
    ),
];

/// Translatable goldens that our converter cannot reproduce yet: (golden, reason). Each entry
/// is still run; an entry that starts matching fails the test so that it gets removed here.
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// An intentional difference between our frames and Infinity's, applied as a named
/// normalisation before comparing. Every variant is a row of the table in
/// `docs/conformance-infinity.md` (checked by [`docs_list_every_normalisation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Norm {
    /// Infinity sorts fields by name; ours follow the rule (and the shape: time first in a
    /// time series). Our fields are sorted by name before comparing.
    FieldOrderByName,
    /// A field the rule types `int` is Arrow Int64; Infinity has float64 for every number.
    /// Compared as f64.
    Int64AsFloat64,
    /// In a `numeric-long` frame our string fields are non-nullable and a null becomes `""`
    /// (alerting reads them as labels); Infinity's are nullable.
    NumericLongStringsNonNull,
    /// In a `timeseries-multi` frame our time field is non-nullable; Infinity's is nullable.
    TimeSeriesTimeNonNull,
    /// Our frame name is the rule id; Infinity's is the refId, else `response`.
    FrameNameIsRuleId,
    /// `meta.type`/`typeVersion`: ours follow from the field types (config.md §5); Infinity's
    /// from row count and source. Compared only where both took the same choice.
    FrameTypeFromFieldTypes,
    /// Infinity's `meta.custom` and `meta.executedQueryString` are not compared (README).
    MetaCustomNotCompared,
    /// Our frames carry `refId` in the schema metadata; Infinity's goldens have none.
    RefIdInSchema,
    /// Infinity `computed_columns` need its expression language; they are dropped from the
    /// golden, the other fields are compared.
    ComputedColumnsDropped,
}

impl Norm {
    pub const ALL: [Norm; 9] = [
        Norm::FieldOrderByName,
        Norm::Int64AsFloat64,
        Norm::NumericLongStringsNonNull,
        Norm::TimeSeriesTimeNonNull,
        Norm::FrameNameIsRuleId,
        Norm::FrameTypeFromFieldTypes,
        Norm::MetaCustomNotCompared,
        Norm::RefIdInSchema,
        Norm::ComputedColumnsDropped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Norm::FieldOrderByName => "FIELD_ORDER_BY_NAME",
            Norm::Int64AsFloat64 => "INT64_AS_FLOAT64",
            Norm::NumericLongStringsNonNull => "NUMERIC_LONG_STRINGS_NON_NULL",
            Norm::TimeSeriesTimeNonNull => "TIME_SERIES_TIME_NON_NULL",
            Norm::FrameNameIsRuleId => "FRAME_NAME_IS_RULE_ID",
            Norm::FrameTypeFromFieldTypes => "FRAME_TYPE_FROM_FIELD_TYPES",
            Norm::MetaCustomNotCompared => "META_CUSTOM_NOT_COMPARED",
            Norm::RefIdInSchema => "REFID_IN_SCHEMA",
            Norm::ComputedColumnsDropped => "COMPUTED_COLUMNS_DROPPED",
        }
    }
}

/// The result of replaying one golden.
struct Replay {
    applied: BTreeSet<Norm>,
    mismatches: Vec<String>,
    ours_type: String,
    infinity_type: String,
}

fn golden_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read golden dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonc") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rel_name(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir)
        .expect("under golden dir")
        .to_string_lossy()
        .replace('\\', "/")
}

/// `parsers/json/backend/inline.jsonc` → `parsers.json.backend.inline` (a valid rule id).
fn rule_id(rel: &str) -> String {
    rel.trim_end_matches(".jsonc")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect()
}

/// JSON equality where numbers compare by value: Go re-encodes the fetched body, so the
/// file's `0.0` is `0` in `meta.custom.data`.
fn json_num_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_num_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_num_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The body Infinity parsed: the inline text, the testdata file, or `meta.custom.data`
/// serialised again.
fn input_text(
    rel: &str,
    q: &Value,
    custom_data: &Value,
    testdata: &Path,
) -> Result<String, String> {
    if let Some((_, file)) = INPUT_FILES.iter().find(|(g, _)| *g == rel) {
        let text = std::fs::read_to_string(testdata.join(file))
            .map_err(|e| format!("testdata/{file}: {e}"))?;
        let parsed: Value =
            serde_json::from_str(&text).map_err(|e| format!("testdata/{file}: {e}"))?;
        if !json_num_eq(&parsed, custom_data) {
            return Err(format!(
                "testdata/{file} differs from the golden's meta.custom.data"
            ));
        }
        return Ok(text);
    }
    match q["source"].as_str() {
        Some("inline") => {
            let data = q["data"].as_str().ok_or("inline query without data")?;
            if custom_data.as_str() != Some(data) {
                return Err("inline data differs from meta.custom.data".into());
            }
            Ok(data.to_owned())
        }
        Some("url") => Ok(match custom_data {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        other => Err(format!("source {other:?} is not mapped")),
    }
}

/// The `meta.type` config.md §5 predicts for a rule (auto / table formats only).
fn expected_frame_type(rule: &Value) -> &'static str {
    let resp = &rule["response"];
    if resp["format"] == "table" {
        return "";
    }
    let fields = resp["fields"].as_array().cloned().unwrap_or_default();
    let count = |ts: &[&str]| {
        fields
            .iter()
            .filter(|f| ts.contains(&f["type"].as_str().unwrap_or("string")))
            .count()
    };
    let (times, numbers, strings, others) = (
        count(&["time"]),
        count(&["number", "int"]),
        count(&["string"]),
        count(&["bool", "json"]),
    );
    if times == 1 && numbers >= 1 && others == 0 && strings == 0 {
        "timeseries-multi"
    } else if times == 0 && numbers >= 1 && others == 0 {
        "numeric-long"
    } else {
        ""
    }
}

fn golden_data_type(f: &GoldenField) -> Option<DataType> {
    Some(match f.frame_ty.as_str() {
        "float64" => DataType::Float64,
        "int64" => DataType::Int64,
        "string" => DataType::Utf8,
        "time.Time" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        "bool" => DataType::Boolean,
        "json.RawMessage" => DataType::Binary,
        _ => return None,
    })
}

/// Compares one cell. `ours` is the decoded Arrow value (times in ns), `theirs` the golden
/// JSON cell (times in ms).
fn cell_eq(dt: &DataType, ours: &Value, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        _ => match dt {
            DataType::Float64 | DataType::Int64 => ours.as_f64() == theirs.as_f64(),
            DataType::Timestamp(..) => match (ours.as_i64(), theirs.as_f64()) {
                // The golden JSON encodes time.Time as epoch milliseconds.
                (Some(ns), Some(ms)) => (ms * 1e6).round() == ns as f64,
                _ => false,
            },
            DataType::Binary => {
                serde_json::from_str::<Value>(ours.as_str().unwrap_or_default())
                    .ok()
                    .as_ref()
                    == Some(theirs)
            }
            _ => ours == theirs,
        },
    }
}

fn compare_field(
    ours: &DecodedField,
    theirs: &GoldenField,
    frame_type: &str,
    applied: &mut BTreeSet<Norm>,
    mm: &mut Vec<String>,
) {
    let name = &theirs.name;
    let Some(want_dt) = golden_data_type(theirs) else {
        mm.push(format!(
            "field '{name}': golden storage type '{}' is not mapped",
            theirs.frame_ty
        ));
        return;
    };
    // Type.
    let mut dt = want_dt.clone();
    if ours.data_type != want_dt {
        if ours.data_type == DataType::Int64 && want_dt == DataType::Float64 {
            applied.insert(Norm::Int64AsFloat64);
            dt = DataType::Int64;
        } else {
            mm.push(format!(
                "field '{name}': type {:?}, Infinity {:?} ({})",
                ours.data_type, want_dt, theirs.frame_ty
            ));
            return;
        }
    }
    if ours.tstype.as_deref() != Some(theirs.ty.as_str()) {
        mm.push(format!(
            "field '{name}': tstype {:?}, Infinity type '{}'",
            ours.tstype, theirs.ty
        ));
    }
    // Nullability (and, for numeric-long strings, the null cells that became "").
    let mut null_as_empty = false;
    if ours.nullable != theirs.nullable {
        let norm = match (frame_type, &ours.data_type, ours.nullable) {
            ("numeric-long", DataType::Utf8, false) => Some(Norm::NumericLongStringsNonNull),
            ("timeseries-multi", DataType::Timestamp(..), false) => {
                Some(Norm::TimeSeriesTimeNonNull)
            }
            _ => None,
        };
        match norm {
            Some(n) => {
                applied.insert(n);
                null_as_empty = n == Norm::NumericLongStringsNonNull;
            }
            None => mm.push(format!(
                "field '{name}': nullable {}, Infinity {}",
                ours.nullable, theirs.nullable
            )),
        }
    }
    // Labels and config: Infinity sets none here.
    let their_labels = theirs
        .labels
        .as_ref()
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0);
    if !ours.labels.is_empty() || their_labels != 0 {
        mm.push(format!(
            "field '{name}': labels {:?}, Infinity {:?}",
            ours.labels, theirs.labels
        ));
    }
    if ours.config.is_some() || theirs.config.is_some() {
        mm.push(format!(
            "field '{name}': config {:?}, Infinity {:?}",
            ours.config, theirs.config
        ));
    }
    // Values.
    if ours.values.len() != theirs.values.len() {
        mm.push(format!(
            "field '{name}': {} rows, Infinity {}",
            ours.values.len(),
            theirs.values.len()
        ));
        return;
    }
    for (row, (o, t)) in ours.values.iter().zip(&theirs.values).enumerate() {
        let t_norm = if null_as_empty && t.is_null() {
            Value::String(String::new())
        } else {
            t.clone()
        };
        if !cell_eq(&dt, o, &t_norm) {
            mm.push(format!("field '{name}' row {row}: ours {o}, Infinity {t}"));
        }
    }
}

fn compare_frame(
    ours: &DecodedFrame,
    ref_id: &str,
    rule_id: &str,
    expected_type: &str,
    theirs: &GoldenFrame,
    applied: &mut BTreeSet<Norm>,
    mm: &mut Vec<String>,
) {
    // Frame name and refId.
    if ours.name != theirs.name {
        applied.insert(Norm::FrameNameIsRuleId);
        if ours.name != rule_id {
            mm.push(format!(
                "frame name '{}', expected the rule id '{rule_id}'",
                ours.name
            ));
        }
    }
    if theirs.ref_id.as_deref() != Some(ours.ref_id.as_str()) {
        applied.insert(Norm::RefIdInSchema);
        if ours.ref_id != ref_id {
            mm.push(format!("refId '{}', expected '{ref_id}'", ours.ref_id));
        }
    }
    // Meta: type/typeVersion; nothing else on our side (no notices, no executedQueryString).
    let our_type = ours.meta_type().unwrap_or_default();
    if our_type != expected_type {
        mm.push(format!(
            "meta.type '{our_type}', config.md §5 predicts '{expected_type}'"
        ));
    }
    let their_type = theirs.meta["type"].as_str().unwrap_or_default();
    let version = |m: Option<&Value>| {
        m.and_then(|m| m.get("typeVersion"))
            .cloned()
            .unwrap_or(serde_json::json!([0, 0]))
    };
    if our_type == their_type {
        if version(ours.meta.as_ref()) != version(Some(&theirs.meta)) {
            mm.push(format!(
                "meta.typeVersion {}, Infinity {}",
                version(ours.meta.as_ref()),
                version(Some(&theirs.meta))
            ));
        }
    } else {
        applied.insert(Norm::FrameTypeFromFieldTypes);
    }
    if let Some(m) = ours.meta.as_ref().and_then(Value::as_object) {
        for k in m.keys() {
            if k != "type" && k != "typeVersion" {
                mm.push(format!("our meta has '{k}': {}", m[k]));
            }
        }
    }
    if let Some(m) = theirs.meta.as_object() {
        if m.contains_key("custom") || m.contains_key("executedQueryString") {
            applied.insert(Norm::MetaCustomNotCompared);
        }
        if let Some(k) = m.keys().find(|k| {
            !matches!(
                k.as_str(),
                "type" | "typeVersion" | "custom" | "executedQueryString"
            )
        }) {
            mm.push(format!(
                "Infinity meta has '{k}', not compared by this test"
            ));
        }
    }
    // Field order.
    let mut fields: Vec<&DecodedField> = ours.fields.iter().collect();
    let mut sorted = fields.clone();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    if sorted
        .iter()
        .map(|f| &f.name)
        .ne(fields.iter().map(|f| &f.name))
    {
        applied.insert(Norm::FieldOrderByName);
        fields = sorted;
    }
    let our_names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    let their_names: Vec<&str> = theirs.fields.iter().map(|f| f.name.as_str()).collect();
    if our_names != their_names {
        mm.push(format!("fields {our_names:?}, Infinity {their_names:?}"));
        return;
    }
    for (o, t) in fields.iter().zip(&theirs.fields) {
        compare_field(o, t, our_type, applied, mm);
    }
}

/// Replays one translatable golden: translate, convert, compare. When the translation typed
/// a column `int`, the same rule with `number` instead is replayed too and must match without
/// `INT64_AS_FLOAT64` (the Int64/float64 difference is the rule's choice, nothing else).
fn replay(
    rel: &str,
    q: &Value,
    theirs: &[GoldenFrame],
    testdata: &Path,
    verbose: bool,
) -> Result<Replay, String> {
    let custom_data = &theirs[0].meta["custom"]["data"];
    let text = input_text(rel, q, custom_data, testdata)?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("input is not JSON: {e}"))?;
    let skel: Skel = serde_json::from_str(&text).map_err(|e| format!("input: {e}"))?;
    let id = rule_id(rel);
    let tr = translate(&id, q, &doc, &skel)?;
    let ref_id = match q["refId"].as_str() {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => "A".to_owned(),
    };
    let mut primary = check_rule(&tr, &ref_id, &doc, theirs, verbose)?;
    let mut as_number = tr.rule.clone();
    let mut had_int = false;
    if let Some(fields) = as_number["response"]["fields"].as_array_mut() {
        for f in fields {
            if f["type"] == "int" {
                f["type"] = Value::from("number");
                had_int = true;
            }
        }
    }
    if had_int {
        let variant = Translation {
            rule: as_number,
            computed: tr.computed.clone(),
        };
        let r = check_rule(&variant, &ref_id, &doc, theirs, false)?;
        if r.applied.contains(&Norm::Int64AsFloat64) {
            primary
                .mismatches
                .push("[int→number variant] still needed INT64_AS_FLOAT64".into());
        }
        primary.mismatches.extend(
            r.mismatches
                .into_iter()
                .map(|m| format!("[int→number variant] {m}")),
        );
    }
    Ok(primary)
}

/// Compiles and runs one translated rule and compares its frames with the golden's.
fn check_rule(
    tr: &Translation,
    ref_id: &str,
    doc: &Value,
    theirs: &[GoldenFrame],
    verbose: bool,
) -> Result<Replay, String> {
    let id = tr.rule["id"].as_str().unwrap_or_default();
    let rule = restbridge::rule::compile_standalone(&tr.rule)
        .map_err(|e| format!("rule does not compile: {e}"))?;
    let frames = restbridge::convert::convert(&rule, doc, None)
        .map_err(|e| format!("convert failed: {e}"))?;
    if verbose {
        println!("  rule: {}", tr.rule);
        print!("{}", restbridge::render::frames_to_text(&frames, None));
    }

    let mut applied = BTreeSet::new();
    let mut mm = Vec::new();
    for f in &frames {
        for n in &f.notices {
            mm.push(format!("notice ({}): {}", n.severity, n.text));
        }
    }
    // COMPUTED_COLUMNS_DROPPED: remove Infinity's computed columns from the expected frame.
    let mut theirs = theirs.to_vec();
    if !tr.computed.is_empty() {
        for fr in &mut theirs {
            let before = fr.fields.len();
            fr.fields.retain(|f| !tr.computed.contains(&f.name));
            if fr.fields.len() != before {
                applied.insert(Norm::ComputedColumnsDropped);
            }
        }
        if !applied.contains(&Norm::ComputedColumnsDropped) {
            mm.push(format!(
                "computed columns {:?} not found in the golden",
                tr.computed
            ));
        }
    }
    if frames.len() != theirs.len() {
        mm.push(format!(
            "{} frames, Infinity {}",
            frames.len(),
            theirs.len()
        ));
    }
    let expected_type = expected_frame_type(&tr.rule);
    let mut ours_type = String::new();
    for (o, t) in frames.iter().zip(&theirs) {
        let bytes = o.encode(ref_id).map_err(|e| format!("encode: {e}"))?;
        let decoded = decode(&bytes);
        ours_type = decoded.meta_type().unwrap_or_default().to_owned();
        compare_frame(
            &decoded,
            ref_id,
            id,
            expected_type,
            t,
            &mut applied,
            &mut mm,
        );
    }
    Ok(Replay {
        applied,
        mismatches: mm,
        ours_type,
        infinity_type: theirs
            .first()
            .and_then(|t| t.meta["type"].as_str())
            .unwrap_or_default()
            .to_owned(),
    })
}

/// For a skipped jq golden: its expected frames equal the `backend` golden of the same input
/// (README), which is replayed — so skipping it loses no coverage. Compares everything but
/// the query echo in `meta.custom` and `executedQueryString`.
fn same_as_backend_golden(dir: &Path, rel: &str) -> Option<bool> {
    let twin = rel.replace("/jq-backend/", "/backend/");
    if twin == rel {
        return None;
    }
    let strip = |p: PathBuf| -> Option<Value> {
        let g = parse_golden(&std::fs::read_to_string(p).ok()?).ok()?;
        let mut r = g.response;
        for fr in r["frames"].as_array_mut()? {
            let meta = fr["schema"]["meta"].as_object_mut()?;
            meta.remove("custom");
            meta.remove("executedQueryString");
        }
        Some(r)
    };
    Some(strip(dir.join(rel))? == strip(dir.join(&twin))?)
}

#[test]
fn infinity_goldens_replay() {
    let Some(dir) = shared::path(GOLDEN_DIR) else {
        return;
    };
    let testdata = shared::path(TESTDATA_DIR).expect("testdata beside the goldens");
    let files = golden_files(&dir);
    assert!(
        !files.is_empty(),
        "no .jsonc goldens under {}",
        dir.display()
    );

    let mut replayed = 0usize;
    let mut matched = 0usize;
    let mut skipped: Vec<(String, NotTranslatable)> = Vec::new();
    let mut gaps_seen = Vec::new();
    let mut failures = Vec::new();
    let mut summary_rows = Vec::new();
    for path in &files {
        let rel = rel_name(&dir, path);
        let text = std::fs::read_to_string(path).expect("read golden");
        let theirs = match parse_golden(&text).and_then(|g| golden_frames(&g)) {
            Ok(f) if !f.is_empty() => f,
            Ok(_) => {
                failures.push(format!("{rel}: golden has no frames"));
                continue;
            }
            Err(e) => {
                failures.push(format!("{rel}: cannot read golden: {e}"));
                continue;
            }
        };
        let q = theirs[0].meta["custom"]["query"].clone();
        if let Err(why) = classify(&q) {
            if why == NotTranslatable::Jq {
                match same_as_backend_golden(&dir, &rel) {
                    Some(true) => println!("{rel}: jq golden = its backend twin (replayed)"),
                    Some(false) => failures.push(format!(
                        "{rel}: expected frames differ from the backend twin (README says equal)"
                    )),
                    None => {}
                }
            }
            println!("{rel}: SKIP — {why}");
            skipped.push((rel, why));
            continue;
        }
        println!("{rel}:");
        let gap = KNOWN_GAPS.iter().find(|(g, _)| *g == rel);
        let outcome = replay(&rel, &q, &theirs, &testdata, true);
        let (ok, detail, row) = match outcome {
            Ok(r) => {
                let norms: Vec<&str> = r.applied.iter().map(|n| n.name()).collect();
                (
                    r.mismatches.is_empty(),
                    r.mismatches,
                    format!(
                        "{rel}: ours '{}', Infinity '{}'; normalisations {norms:?}",
                        r.ours_type, r.infinity_type
                    ),
                )
            }
            Err(e) => (false, vec![e], format!("{rel}: error")),
        };
        summary_rows.push(row);
        match (gap, ok) {
            (Some((_, reason)), false) => {
                println!("  KNOWN GAP ({reason}):");
                for d in &detail {
                    println!("    {d}");
                }
                gaps_seen.push(rel);
            }
            (Some(_), true) => {
                failures.push(format!(
                    "{rel}: listed in KNOWN_GAPS but now matches — remove it from KNOWN_GAPS"
                ));
            }
            (None, ok) => {
                replayed += 1;
                if ok {
                    matched += 1;
                    println!("  MATCH");
                } else {
                    for d in &detail {
                        println!("  MISMATCH {d}");
                    }
                    failures.push(format!("{rel}:\n    {}", detail.join("\n    ")));
                }
            }
        }
    }

    println!("\nper-case frame types and normalisations:");
    for r in &summary_rows {
        println!("  {r}");
    }
    println!("known gaps ({}):", KNOWN_GAPS.len());
    for (g, reason) in KNOWN_GAPS {
        println!("  {g}: {reason}");
    }
    println!("skipped (not JSONPath-translatable):");
    for (rel, why) in &skipped {
        println!("  {rel}: {why}");
    }
    println!(
        "infinity goldens: {replayed} replayed, {matched} matched, {} skipped (not \
         JSONPath-translatable), {} known gaps",
        skipped.len(),
        gaps_seen.len()
    );
    for (g, _) in KNOWN_GAPS {
        assert!(
            files.iter().any(|p| rel_name(&dir, p) == *g),
            "KNOWN_GAPS names {g}, which is not a golden"
        );
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert!(replayed > 0, "no golden was replayed");
    assert_eq!(matched, replayed, "every replayed golden must match");
    assert_eq!(
        replayed + skipped.len() + gaps_seen.len(),
        files.len(),
        "every golden is replayed, skipped or a known gap"
    );
}

/// Every normalisation the replay may apply is a row of the documented differences table.
#[test]
fn docs_list_every_normalisation() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/conformance-infinity.md"),
    )
    .expect("docs/conformance-infinity.md");
    for n in Norm::ALL {
        assert!(
            doc.lines()
                .any(|l| l.starts_with('|') && l.contains(&format!("`{}`", n.name()))),
            "docs/conformance-infinity.md has no table row for normalisation {}",
            n.name()
        );
    }
    for (g, _) in KNOWN_GAPS {
        assert!(
            doc.contains(g),
            "docs/conformance-infinity.md does not mention known gap {g}"
        );
    }
}

/// The comparison is not vacuous: a golden altered in any compared aspect no longer matches.
#[test]
fn replay_detects_differences() {
    let Some(dir) = shared::path(GOLDEN_DIR) else {
        return;
    };
    let testdata = shared::path(TESTDATA_DIR).expect("testdata beside the goldens");
    let load = |rel: &str| {
        let text = std::fs::read_to_string(dir.join(rel)).expect("golden");
        let frames = golden_frames(&parse_golden(&text).expect("parse")).expect("frames");
        let q = frames[0].meta["custom"]["query"].clone();
        (q, frames)
    };
    type Mutation = (&'static str, &'static str, fn(&mut GoldenFrame));
    let mutations: [Mutation; 8] = [
        (
            "remote/should_execute_default_query_without_error.jsonc",
            "a number value",
            |f| f.fields[0].values[1] = Value::from(28),
        ),
        (
            "remote/should_execute_default_query_without_error.jsonc",
            "a null number",
            |f| f.fields[4].values[2] = Value::from(0),
        ),
        (
            "remote/should_execute_default_query_without_error.jsonc",
            "a string value",
            |f| f.fields[1].values[0] = Value::from("US"),
        ),
        ("parsers/json/backend/url.jsonc", "a field name", |f| {
            f.fields[1].name = "Name".into()
        }),
        ("parsers/json/backend/url.jsonc", "a field type", |f| {
            f.fields[0].frame_ty = "string".into();
            f.fields[0].ty = "string".into();
        }),
        (
            "parsers/json/backend/url.jsonc",
            "a number's nullability",
            |f| f.fields[0].nullable = false,
        ),
        (
            "scenario_azure_cost_management.jsonc",
            "a time by 1 ms",
            |f| {
                let t = f.fields[1].values[3].as_i64().expect("ms");
                f.fields[1].values[3] = Value::from(t + 1);
            },
        ),
        ("scenario_azure_cost_management.jsonc", "a row less", |f| {
            for fl in &mut f.fields {
                fl.values.pop();
            }
        }),
    ];
    for (rel, what, mutate) in mutations {
        let (q, mut frames) = load(rel);
        let clean = replay(rel, &q, &frames, &testdata, false).expect("replay");
        assert!(clean.mismatches.is_empty(), "{rel}: {:?}", clean.mismatches);
        mutate(&mut frames[0]);
        let r = replay(rel, &q, &frames, &testdata, false).expect("replay");
        assert!(
            !r.mismatches.is_empty(),
            "{rel}: changing {what} in the golden went unnoticed"
        );
        println!("{rel}: changed {what} → {}", r.mismatches[0]);
    }
}
