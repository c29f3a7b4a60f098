//! Backend resources for the frontend (`pluginv2.Resource/CallResource`, protocol.md §2.4),
//! reached by Grafana at `/api/datasources/uid/<uid>/resources/<path>`:
//!
//! | Method, path | Body | Answer |
//! |---|---|---|
//! | `GET rules` | — | `{"rules": [{id, title, description, format, params: [{name, title, description, default, options, pattern, required}], fields: [{name, type}]}]}`; when some rules do not compile, the others plus `"problems"` |
//! | `POST validate` | `{"url"?, "jsonData": {...}, "secureJsonFields"?: {"key": true}}` or a bare jsonData object | `{"ok": bool, "problems": [{"rule": id or null, "path": "request.url" or null, "message"}]}` |
//! | `POST preview` | `{"rule", "params"?, "from"? (epoch ms), "to"?, "maxRows"? (default 20), "dryRun"? (render only, no upstream call), "jsonData"? (unsaved settings)}` | `{"request": {method, url, headers: [[name, value]], body}, "frames": [...], "error"?: {status, errorSource, message}}` — secrets masked |
//!
//! Unknown paths answer 404 with `{"error": …}`; a bad body answers 400.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};

use crate::instance::{Instance, Instances, MASK};
use crate::pipeline::{DataQuery, RequestContext};
use crate::settings::{DataSourceSettings, JsonData, SettingsError};

/// Rows shown per frame by `preview` unless the body asks otherwise.
pub const PREVIEW_ROWS: usize = 20;

/// Handles one resource call; returns the HTTP status and a JSON body.
pub async fn handle(
    instances: &Instances,
    settings: Option<&DataSourceSettings>,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Value) {
    let path = path.trim_matches('/');
    match (method.to_ascii_uppercase().as_str(), path) {
        ("GET", "rules") => {
            let Some(settings) = settings else {
                return (
                    400,
                    json!({"error": "the request carries no datasource settings"}),
                );
            };
            let compiled = instances.get(settings);
            match compiled.as_ref() {
                Ok(i) => (200, rules(i)),
                // One broken rule must not hide the others from the query editor.
                Err(_) => (200, rules_partial(settings)),
            }
        }
        ("POST", "validate") => match serde_json::from_slice::<Value>(body) {
            Ok(v) => (200, validate(settings, &v)),
            Err(e) => (400, json!({"error": format!("body is not JSON: {e}")})),
        },
        ("POST", "preview") => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return (400, json!({"error": "body is not JSON"}));
            };
            let Some(settings) = settings else {
                return (
                    400,
                    json!({"error": "the request carries no datasource settings"}),
                );
            };
            // The config editor may preview unsaved rules: `jsonData` in the body replaces
            // the saved one (secrets stay the saved ones).
            if let Some(jd) = v.get("jsonData") {
                let mut draft = settings.clone();
                draft.json_data = serde_json::to_vec(jd).unwrap_or_default();
                return match Instance::compile(&draft) {
                    Ok(i) => preview(&i, &v).await,
                    Err(e) => (
                        400,
                        json!({"error": format!("datasource settings are invalid: {e}")}),
                    ),
                };
            }
            let compiled = instances.get(settings);
            match compiled.as_ref() {
                Ok(i) => preview(i, &v).await,
                Err(e) => (
                    400,
                    json!({"error": format!("datasource settings are invalid: {e}")}),
                ),
            }
        }
        (_, "rules" | "validate" | "preview") => (
            405,
            json!({"error": format!("method {method} is not allowed on '{path}'")}),
        ),
        _ => (
            404,
            json!({"error": format!("no resource '{path}' (known: rules, validate, preview)")}),
        ),
    }
}

/// `GET rules`: what the query editor needs to offer a rule, its params and fields (so it
/// can tell whether a rule suits a variable or annotations).
pub fn rules(instance: &Instance) -> Value {
    let list: Vec<Value> = instance.rules.values().map(rule_json).collect();
    json!({ "rules": list })
}

/// `GET rules` when the settings do not compile: every rule that compiles on its own, plus
/// the problems.
fn rules_partial(settings: &DataSourceSettings) -> Value {
    let jd = match JsonData::parse(&settings.json_data) {
        Ok(jd) => jd,
        Err(e) => return json!({"rules": [], "problems": [problem(&e)]}),
    };
    let secret_keys: HashSet<String> = settings
        .secure_json_data
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k.clone())
        .collect();
    let ctx = crate::rule::CompileContext {
        secret_keys: &secret_keys,
        cache_defaults: jd.cache.as_ref(),
    };
    let mut list = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in jd.rules.iter().enumerate() {
        match crate::settings::parse_rule(i, raw)
            .and_then(|cfg| crate::rule::Rule::compile(cfg, &ctx))
        {
            Ok(rule) => list.push(rule_json(&rule)),
            Err(e) => problems.push(problem(&e)),
        }
    }
    json!({"rules": list, "problems": problems})
}

fn rule_json(r: &crate::rule::Rule) -> Value {
    {
        {
            let params: Vec<Value> = r
                .params
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "title": p.title,
                        "description": p.description,
                        "default": p.default,
                        "options": p.options,
                        "pattern": p.pattern_text,
                        "required": p.required,
                    })
                })
                .collect();
            let fields: Vec<Value> = r
                .response
                .fields
                .iter()
                .map(|f| json!({"name": f.name, "type": format!("{:?}", f.kind).to_ascii_lowercase()}))
                .collect();
            json!({
                "id": r.id,
                "title": r.title,
                "description": r.description,
                "format": format!("{:?}", r.response.format).to_ascii_lowercase(),
                "params": params,
                "fields": fields,
            })
        }
    }
}

/// Splits a settings error into (rule, key path, message).
fn problem(e: &SettingsError) -> Value {
    let (rule, message) = match e {
        SettingsError::Rule { rule, message } => (Some(rule.clone()), message.clone()),
        SettingsError::Datasource { key, message } => {
            return json!({"rule": null, "path": key, "message": format!("'{key}' {message}")})
        }
        other => (None, other.to_string()),
    };
    // Messages name their key first: "'request.url': …" or "at 'response.fields[0].type': …".
    let path = message
        .strip_prefix("at '")
        .or_else(|| message.strip_prefix('\''))
        .and_then(|rest| rest.split_once('\''))
        .map(|(p, _)| p.to_owned());
    json!({"rule": rule, "path": path, "message": message})
}

/// `POST validate`: every problem of a jsonData document (not only the first), each with its
/// rule id and key path, as the config editor has it before saving.
pub fn validate(saved: Option<&DataSourceSettings>, body: &Value) -> Value {
    let (json_data, url, secure_fields) = match body.get("jsonData") {
        Some(jd) => (
            jd.clone(),
            body.get("url").and_then(Value::as_str).map(str::to_owned),
            body.get("secureJsonFields").cloned(),
        ),
        None => (body.clone(), None, None),
    };
    let mut problems = Vec::new();
    let bytes = serde_json::to_vec(&json_data).unwrap_or_default();
    let parsed = match JsonData::parse(&bytes) {
        Ok(p) => p,
        Err(e) => {
            problems.push(problem(&e));
            return json!({"ok": false, "problems": problems});
        }
    };
    // Secret keys: the saved ones, plus those the editor marks as set.
    let mut secret_keys: HashSet<String> = saved
        .map(|s| {
            s.secure_json_data
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(fields)) = &secure_fields {
        for (k, v) in fields {
            if v.as_bool() == Some(true) {
                secret_keys.insert(k.clone());
            }
        }
    }
    let ctx = crate::rule::CompileContext {
        secret_keys: &secret_keys,
        cache_defaults: parsed.cache.as_ref(),
    };
    let mut ids = HashSet::new();
    for (i, raw) in parsed.rules.iter().enumerate() {
        match crate::settings::parse_rule(i, raw)
            .and_then(|cfg| crate::rule::Rule::compile(cfg, &ctx))
        {
            Ok(rule) => {
                if !ids.insert(rule.id.clone()) {
                    problems.push(json!({"rule": rule.id, "path": "id",
                        "message": "'id' is used by more than one rule"}));
                }
            }
            Err(e) => problems.push(problem(&e)),
        }
    }
    // Datasource-level settings (URL, auth, TLS, healthCheck): compile without the rules,
    // with placeholder values for secrets that are set but not known here.
    let mut ds = saved.cloned().unwrap_or_default();
    if let Some(u) = url {
        ds.url = u;
    }
    let mut without_rules = json_data.clone();
    if let Some(obj) = without_rules.as_object_mut() {
        obj.insert("rules".into(), Value::Array(Vec::new()));
        obj.remove("healthCheck");
    }
    ds.json_data = serde_json::to_vec(&without_rules).unwrap_or_default();
    let mut placeholders = false;
    let secure: BTreeMap<String, String> = secret_keys
        .iter()
        .map(|k| {
            let v = saved
                .and_then(|s| s.secure_json_data.get(k).cloned())
                .unwrap_or_else(|| {
                    placeholders = true;
                    MASK.to_owned()
                });
            (k.clone(), v)
        })
        .collect();
    ds.secure_json_data = secure;
    if let Err(e) = Instance::compile(&ds) {
        let unknown_pem =
            placeholders && matches!(&e, SettingsError::Datasource { key, .. } if key == "tls");
        if !unknown_pem {
            problems.push(problem(&e));
        }
    }
    if let Some(hc) = &parsed.health_check {
        let known = parsed
            .rules
            .iter()
            .any(|r| r.get("id").and_then(Value::as_str) == Some(hc.rule.as_str()));
        if !known {
            problems.push(json!({"rule": null, "path": "healthCheck.rule",
                "message": format!("'healthCheck.rule': no rule with id '{}'", hc.rule)}));
        }
    }
    json!({"ok": problems.is_empty(), "problems": problems})
}

/// `POST preview`: the rendered request (secrets masked) and the first rows, or the error.
pub async fn preview(instance: &Instance, body: &Value) -> (u16, Value) {
    let Some(rule) = body.get("rule").and_then(Value::as_str) else {
        return (400, json!({"error": "the body needs \"rule\""}));
    };
    let params = body
        .get("params")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let now = jiff::Timestamp::now().as_millisecond();
    let from = body
        .get("from")
        .and_then(Value::as_i64)
        .unwrap_or(now - 3_600_000);
    let to = body.get("to").and_then(Value::as_i64).unwrap_or(now);
    let max_rows = body
        .get("maxRows")
        .and_then(Value::as_u64)
        .map_or(PREVIEW_ROWS, |n| n.min(1000) as usize);
    let query = DataQuery {
        ref_id: "preview".into(),
        from_ms: from,
        to_ms: to,
        interval_ms: ((to - from) / 1000).max(1000),
        max_data_points: 1000,
        ..DataQuery::default()
    };
    let dry_run = body.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    let request = match crate::pipeline::describe_request(instance, rule, &params, &query) {
        Ok(r) => r,
        Err(e) => {
            return (
                200,
                json!({"request": null, "frames": [], "error": error_json(&e)}),
            )
        }
    };
    if dry_run {
        return (200, json!({"request": request, "frames": []}));
    }
    match crate::pipeline::run_rule(instance, rule, &params, &query, RequestContext::default())
        .await
    {
        Ok(frames) => (
            200,
            json!({"request": request, "frames": frames.iter().map(|f| frame_json(f, max_rows)).collect::<Vec<_>>()}),
        ),
        Err(e) => (
            200,
            json!({"request": request, "frames": [], "error": error_json(&e)}),
        ),
    }
}

fn error_json(e: &crate::error::QueryError) -> Value {
    json!({"status": e.status(), "errorSource": e.source().as_str(), "message": e.to_string()})
}

/// A frame as JSON for the editor: name, meta, fields, and the first `max_rows` rows
/// (times as RFC 3339 strings).
pub fn frame_json(f: &crate::frame::Frame, max_rows: usize) -> Value {
    let fields: Vec<Value> = f
        .fields
        .iter()
        .map(|x| json!({"name": x.name, "type": x.values.type_name(), "labels": x.labels, "config": x.config}))
        .collect();
    let rows: Vec<Value> = (0..f.rows().min(max_rows))
        .map(|r| Value::Array(f.fields.iter().map(|x| cell_json(&x.values, r)).collect()))
        .collect();
    json!({"name": f.name, "meta": f.meta_json(), "fields": fields, "rows": rows, "totalRows": f.rows()})
}

fn cell_json(c: &crate::frame::Column, row: usize) -> Value {
    use crate::frame::Column;
    match c {
        Column::Time(v) => v.get(row).copied().flatten().map_or(Value::Null, |t| {
            Value::String(crate::render::format_time(t))
        }),
        Column::Number(v) => v.get(row).copied().flatten().map_or(Value::Null, |x| {
            serde_json::Number::from_f64(x)
                .map_or_else(|| Value::String(x.to_string()), Value::Number)
        }),
        Column::Int(v) => v
            .get(row)
            .copied()
            .flatten()
            .map_or(Value::Null, Value::from),
        Column::String(v) | Column::Json(v) => v
            .get(row)
            .map_or(Value::Null, |s| Value::String(s.to_owned())),
        Column::Bool(v) => v
            .get(row)
            .copied()
            .flatten()
            .map_or(Value::Null, Value::Bool),
    }
}
