//! Rule compilation from arbitrary `jsonData`: the whole datasource compile
//! (`Instance::compile`: jsonData shape, auth, TLS switches, every rule) fails with a
//! settings error or succeeds without panicking; every rule that compiles also renders its
//! request with its default params and converts a small fixed document, both without
//! panicking, and every frame it gives encodes.
//!
//! Input: the `jsonData` bytes. The `secureJsonData` offered has the keys the examples use.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use restbridge::instance::{Instance, RenderInput};
use restbridge::settings::DataSourceSettings;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let secrets: BTreeMap<String, String> = [
        ("token", "t0ken"),
        ("apiKey", "k3y"),
        ("bearerToken", "b3arer"),
        ("clientSecret", "cl1ent"),
        ("basicAuthPassword", "pw"),
        ("httpHeaderValue1", "h1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = DataSourceSettings {
        uid: "fuzz".into(),
        name: "fuzz".into(),
        url: "http://127.0.0.1:9/base".into(),
        basic_auth_enabled: data.first().is_some_and(|b| b & 1 == 1),
        basic_auth_user: "user".into(),
        json_data: data.to_vec(),
        secure_json_data: secrets,
        last_updated_ms: 1,
    };
    // Each rule on its own, as the conformance tools compile them.
    if let Ok(Value::Object(jd)) = serde_json::from_slice::<Value>(data) {
        if let Some(Value::Array(rules)) = jd.get("rules") {
            for raw in rules {
                let _ = restbridge::rule::compile_standalone(raw);
            }
        }
    }
    let Ok(instance) = Instance::compile(&settings) else {
        return;
    };
    let docs = [
        json!({}),
        json!([]),
        json!({"data": [{"t": "2024-01-01T00:00:00Z", "v": 1.5, "name": "a"},
                        {"t": 1704067200, "v": "2", "name": null}],
               "items": [{"name": "x", "data": [{"t": 0, "v": 1}]}]}),
    ];
    for rule in instance.rules.values() {
        if let Ok(params) = rule.resolve_params(&serde_json::Map::new()) {
            let input = RenderInput {
                params: &params,
                from_ms: 1_704_067_200_000,
                to_ms: 1_704_070_800_000,
                interval_ms: 60_000,
                max_data_points: 500,
            };
            let _ = instance.render(rule, &input);
        }
        for doc in &docs {
            if let Ok(frames) = restbridge::convert::convert(rule, doc, None) {
                for f in frames {
                    f.encode("A").expect("a converted frame encodes");
                }
            }
        }
    }
});
