//! Response conversion from arbitrary bytes: for each of a set of rules (picked by the first
//! input byte), the body bytes either fail as "not JSON" / a mismatch or give frames that
//! encode to Arrow; and the DOM-free fast path (`convert_fast::try_convert`) gives exactly
//! the DOM path's outcome (frames, notices, errors — compared as Debug text, like the
//! crate's own equivalence tests).
//!
//! Input: one byte choosing the rule, then the response body.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use restbridge::convert::convert;
use restbridge::convert_fast::{try_convert, FastError};
use restbridge::rule::{compile_standalone, Rule};
use serde_json::{json, Value};

fn rules() -> &'static Vec<Rule> {
    static CELL: OnceLock<Vec<Rule>> = OnceLock::new();
    CELL.get_or_init(|| {
        let responses = [
            json!({"rows": "$.data[*]", "fields": [
                {"name": "time", "path": "$.t", "type": "time"},
                {"name": "value", "path": "$.v", "type": "number"},
                {"name": "name", "path": "$.name"},
                {"name": "count", "path": "$.i", "type": "int"},
                {"name": "ok", "path": "$.b", "type": "bool"},
                {"name": "raw", "path": "$.j", "type": "json"}]}),
            json!({"fields": [
                {"name": "time", "path": "$.t[*]", "type": "time", "format": "epoch_ms"},
                {"name": "value", "path": "$.v[*]", "type": "number"}]}),
            json!({"frames": "$.items[*]", "rows": "$.data[*]", "labels": {"name": "$.name"},
                "fields": [
                    {"name": "time", "path": "$.t", "type": "time"},
                    {"name": "value", "path": "$.v", "type": "number"}]}),
            json!({"rows": "$.data.*", "format": "table", "fields": [
                {"name": "key", "path": "@key"},
                {"name": "index", "path": "@index"},
                {"name": "value", "path": "$.v", "type": "int"}]}),
            json!({"rows": "$.data[*]", "format": "logs", "fields": [
                {"name": "time", "path": "$.t", "type": "time"},
                {"name": "body", "path": "$.name"}]}),
            json!({"rows": "$.data[*]", "format": "timeseries-wide", "seriesBy": ["name"],
                "fields": [
                    {"name": "time", "path": "$.t", "type": "time"},
                    {"name": "name", "path": "$.name"},
                    {"name": "value", "path": "$.v", "type": "number"}]}),
            json!({"rows": "$.data[*]", "format": "numeric-wide", "fields": [
                {"name": "name", "path": "$.name"},
                {"name": "value", "path": "$.v", "type": "number"}]}),
            json!({"rows": "$.data[*]", "labelsFrom": "$.labels", "fields": [
                {"name": "time", "path": "^.t", "type": "time",
                 "timezone": "${__response.$.tz}"},
                {"name": "value", "path": "$.v", "type": "number"}]}),
            json!({"frames": "$.*", "fields": [
                {"name": "time", "path": "$.t[*]", "type": "time", "format": "epoch_s"},
                {"name": "value", "path": "$.v[*]", "type": "int"}]}),
            json!({"rows": "$[*]", "fields": [
                {"name": "time", "path": "$[0]", "type": "time",
                 "format": "%Y-%m-%d %H:%M", "timezone": "Europe/Berlin"},
                {"name": "value", "path": "$[1]", "type": "number"}]}),
            // Engine-only paths (DOM path only).
            json!({"rows": "$..data[?@.v > 1]", "fields": [
                {"name": "time", "path": "$.t", "type": "time"},
                {"name": "value", "path": "$..v", "type": "number"}]}),
        ];
        responses
            .into_iter()
            .enumerate()
            .map(|(i, response)| {
                compile_standalone(&json!({
                    "id": format!("r{i}"), "request": {"url": "/x"}, "response": response}))
                .expect("fuzz rule compiles")
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let rules = rules();
    let rule = &rules[usize::from(pick) % rules.len()];
    let dom = match serde_json::from_slice::<Value>(body) {
        Err(e) => format!("not json: {e}"),
        Ok(doc) => match convert(rule, &doc, Some("q".into())) {
            Ok(frames) => {
                for f in &frames {
                    f.encode("A").expect("a converted frame encodes");
                }
                format!("{frames:#?}")
            }
            Err(e) => format!("error: {e}"),
        },
    };
    if let Some(fast) = try_convert(rule, body, Some("q".into())) {
        let fast = match fast {
            Ok(frames) => format!("{frames:#?}"),
            Err(FastError::NotJson(e)) => format!("not json: {e}"),
            Err(FastError::Convert(e)) => format!("error: {e}"),
            Err(other) => format!("other: {other}"),
        };
        assert!(
            fast == dom,
            "rule {}: fast and DOM paths differ\n--- dom:\n{dom}\n--- fast:\n{fast}",
            rule.id
        );
    }
});
