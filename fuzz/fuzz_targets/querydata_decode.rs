//! QueryData request bytes, the server's wire → domain path without the network: decode the
//! protobuf (prost), take the datasource settings (`server::settings_from_pb`), compile the
//! instance, read the forwarded headers, then for every query read its model (`rule`,
//! `params`) and prepare the upstream request as the pipeline does
//! (`pipeline::describe_request`: rule lookup, params, time alignment, rendering) — never
//! fetching. Nothing may panic.
//!
//! Input: the protobuf bytes of a `pluginv2.QueryDataRequest`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use restbridge::instance::Instance;
use restbridge::pb::pluginv2::QueryDataRequest;
use restbridge::pipeline::{describe_request, DataQuery, RequestContext};
use restbridge::server::settings_from_pb;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = QueryDataRequest::decode(data) else {
        return;
    };
    let _ctx = RequestContext::with_headers(None, &req.headers);
    let Some(settings) = settings_from_pb(req.plugin_context.as_ref()) else {
        return;
    };
    let Ok(instance) = Instance::compile(&settings) else {
        return;
    };
    for q in &req.queries {
        // server::query_from_pb
        let (from_ms, to_ms) = q
            .time_range
            .as_ref()
            .map_or((0, 0), |t| (t.from_epoch_ms, t.to_epoch_ms));
        let query = DataQuery {
            ref_id: q.ref_id.clone(),
            json: q.json.clone(),
            from_ms,
            to_ms,
            interval_ms: q.interval_ms,
            max_data_points: q.max_data_points,
        };
        // pipeline::parse_model: an object with a non-empty string `rule` and an object
        // `params`.
        let model: Value = if query.json.trim_ascii().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            match serde_json::from_slice(&query.json) {
                Ok(v) => v,
                Err(_) => continue,
            }
        };
        let Value::Object(mut obj) = model else {
            continue;
        };
        let rule = match obj.remove("rule") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => continue,
        };
        let params = match obj.remove("params") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => continue,
        };
        let _ = describe_request(&instance, &rule, &params, &query);
    }
});
