//! One query, top to bottom: rule lookup → params → render → fetch (cached) → JSON →
//! frames. Shared by QueryData, CheckHealth's live probe and the command-line tool.

use std::time::Duration;

use serde_json::Value;

use crate::error::QueryError;
use crate::frame::Frame;
use crate::instance::{Instance, RenderInput};

/// One query as Grafana sends it (protocol.md §2.5 DataQuery), free of protobuf types.
#[derive(Clone, Debug, Default)]
pub struct DataQuery {
    /// The refId (response map key).
    pub ref_id: String,
    /// Raw query model JSON: `{"rule": ID, "params": {...}}` plus Grafana's own keys.
    pub json: Vec<u8>,
    /// Range start, epoch ms.
    pub from_ms: i64,
    /// Range end, epoch ms.
    pub to_ms: i64,
    /// Suggested interval, ms.
    pub interval_ms: i64,
    /// Max data points.
    pub max_data_points: i64,
}

/// Per-request context.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestContext {
    /// Time left until Grafana's gRPC deadline, if it sent one.
    pub deadline: Option<Duration>,
}

/// The query model fields RestBridge reads (config.md §3).
struct QueryModel {
    rule: String,
    params: serde_json::Map<String, Value>,
}

fn parse_model(json: &[u8]) -> Result<QueryModel, QueryError> {
    let v: Value = if json.trim_ascii().is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(json)
            .map_err(|e| QueryError::BadQuery(format!("query JSON is invalid: {e}")))?
    };
    let Value::Object(mut obj) = v else {
        return Err(QueryError::BadQuery("query JSON must be an object".into()));
    };
    let rule = match obj.remove("rule") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(QueryError::BadQuery(
                "the query does not name a rule (set \"rule\" to a rule id)".into(),
            ))
        }
        Some(_) => return Err(QueryError::BadQuery("\"rule\" must be a string".into())),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(QueryError::BadQuery("\"params\" must be an object".into())),
    };
    Ok(QueryModel { rule, params })
}

/// Rounds `from` down and `to` up to multiples of `align_seconds` (config.md §4).
fn align(from_ms: i64, to_ms: i64, align_seconds: u64) -> (i64, i64) {
    if align_seconds == 0 {
        return (from_ms, to_ms);
    }
    let step = i64::try_from(align_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let down = from_ms.div_euclid(step) * step;
    let up = to_ms
        .checked_add(step - 1)
        .map_or(to_ms, |t| t.div_euclid(step) * step);
    (down, up)
}

/// Runs one query against a compiled instance and returns its frames.
///
/// # Errors
/// [`QueryError`] with the status and errorSource Grafana should see; messages are masked.
pub async fn run(
    instance: &Instance,
    query: &DataQuery,
    ctx: RequestContext,
) -> Result<Vec<Frame>, QueryError> {
    let model = parse_model(&query.json)?;
    run_rule(instance, &model.rule, &model.params, query, ctx).await
}

/// Runs rule `rule_id` with `params` (the query's `params` object).
///
/// # Errors
/// As [`run`].
pub async fn run_rule(
    instance: &Instance,
    rule_id: &str,
    params: &serde_json::Map<String, Value>,
    query: &DataQuery,
    ctx: RequestContext,
) -> Result<Vec<Frame>, QueryError> {
    let Some(rule) = instance.rules.get(rule_id) else {
        let known = instance.rule_ids();
        return Err(QueryError::BadQuery(format!(
            "unknown rule '{rule_id}' (known rules: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    };
    let params = rule.resolve_params(params).map_err(QueryError::BadQuery)?;
    let (from_ms, to_ms) = align(query.from_ms, query.to_ms, rule.align_seconds);
    let input = RenderInput {
        params: &params,
        from_ms,
        to_ms,
        interval_ms: query.interval_ms,
        max_data_points: query.max_data_points,
    };
    let (request, masked_url) = instance
        .render(rule, &input)
        .map_err(|m| QueryError::Render(instance.mask(&m)))?;
    let mut timeout = rule
        .timeout
        .unwrap_or(instance.timeout)
        .min(instance.timeout);
    if let Some(d) = ctx.deadline {
        timeout = timeout.min(d);
    }
    let body = instance
        .fetcher
        .fetch(&request, &masked_url, rule.cache_ttl, timeout)
        .await
        .map_err(|e| QueryError::Fetch(mask_fetch(instance, e)))?;
    let doc = parse_json(&body).map_err(|message| QueryError::NotJson {
        rule: rule.id.clone(),
        message,
    })?;
    let frames = crate::convert::convert(rule, &doc, Some(masked_url))?;
    drop_large(doc, body.len());
    Ok(frames)
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| {
        let start: String = String::from_utf8_lossy(&body[..body.len().min(64)]).into_owned();
        format!("{e} (body starts with {start:?})")
    })
}

/// Drops a large DOM off the async workers (freeing ~1e6 small maps takes hundreds of ms,
/// libraries.md §5).
fn drop_large(doc: Value, body_len: usize) {
    if body_len > 1 << 20 {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn_blocking(move || drop(doc));
            return;
        }
    }
    drop(doc);
}

fn mask_fetch(instance: &Instance, e: crate::fetch::FetchError) -> crate::fetch::FetchError {
    use crate::fetch::FetchError as F;
    match e {
        F::Connect { url, message } => F::Connect {
            url,
            message: instance.mask(&message),
        },
        F::Status { url, status, body } => F::Status {
            url,
            status,
            body: instance.mask(&body),
        },
        F::Body { url, message } => F::Body {
            url,
            message: instance.mask(&message),
        },
        F::Request(m) => F::Request(instance.mask(&m)),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn align_rounds_outwards() {
        assert_eq!(align(61_000, 119_000, 60), (60_000, 120_000));
        assert_eq!(align(60_000, 120_000, 60), (60_000, 120_000));
        assert_eq!(align(61_500, 119_500, 0), (61_500, 119_500));
    }

    #[test]
    fn query_model_errors() {
        assert!(parse_model(b"{}").is_err());
        assert!(parse_model(b"[]").is_err());
        assert!(parse_model(br#"{"rule": 1}"#).is_err());
        assert!(parse_model(br#"{"rule": "a", "params": []}"#).is_err());
        let m = parse_model(br#"{"rule": "a", "params": {"x": "1"}, "refId": "A"}"#).unwrap();
        assert_eq!(m.rule, "a");
        assert_eq!(m.params["x"], "1");
    }
}
