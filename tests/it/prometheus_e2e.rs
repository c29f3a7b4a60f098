//! Against a real Prometheus (Debian `prometheus`, history backfilled with promtool,
//! real-apis.md §1.2): a `query_range` rule returns one time-series frame per series with
//! the Prometheus labels as field labels and exactly the backfilled values.

use restbridge::pb::pluginv2;
use serde_json::json;

use crate::support::arrow::decode;
use crate::support::plugin::{context, query, PluginProcess};
use crate::support::prometheus::{demo_expected, demo_openmetrics, Prometheus, DEMO_START};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_range_gives_one_frame_per_series_with_exact_values() {
    let Some(prom) = Prometheus::start(&demo_openmetrics()).expect("start prometheus") else {
        return; // skip notice printed by Prometheus::start
    };
    let jd = json!({
        "healthCheck": {"rule": "up"},
        "rules": [
            {"id": "range", "request": {"url": "/api/v1/query_range", "query": {
                "query": "${metric}", "start": "${__from:date:seconds}", "end": "${__to:date:seconds}", "step": "60"}},
             "params": [{"name": "metric", "default": "demo_temperature_celsius", "pattern": "[a-z_]+"}],
             "response": {"frames": "$.data.result[*]", "labelsFrom": "$.metric", "rows": "$.values[*]",
                          "fields": [{"name": "time", "path": "$[0]", "type": "time"},
                                     {"name": "value", "path": "$[1]", "type": "number", "unit": "celsius"}]}},
            {"id": "up", "request": {"url": "/api/v1/status/buildinfo"},
             "response": {"fields": [{"name": "version", "path": "$.data.version"}]}}
        ]
    });
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("prom", &prom.base_url, &jd, &[], 1);
    let h = p
        .diagnostics()
        .check_health(pluginv2::CheckHealthRequest {
            plugin_context: Some(ctx.clone()),
            headers: Default::default(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        pluginv2::check_health_response::HealthStatus::Ok as i32,
        "{}",
        h.message
    );
    assert!(
        h.message
            .contains("health check rule 'up' returned 1 frame(s), 1 row(s)"),
        "{}",
        h.message
    );

    let from = DEMO_START * 1000;
    let to = from + 3_600_000;
    let resp = p
        .data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx),
            queries: vec![query("A", "range", json!({}), from, to)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let a = &resp.responses["A"];
    assert_eq!(a.status, 200, "{}", a.error);
    let frames: Vec<_> = a.frames.iter().map(|b| decode(b)).collect();
    assert_eq!(frames.len(), 2, "one frame per series");
    let mut sensors = Vec::new();
    for f in &frames {
        assert_eq!(f.meta_type(), Some("timeseries-multi"));
        let value = f.field("value");
        let sensor = value.labels["sensor"].clone();
        assert_eq!(value.labels["site"], "lab");
        assert_eq!(value.labels["__name__"], "demo_temperature_celsius");
        let expected = demo_expected(&sensor);
        assert_eq!(expected.len(), 61);
        let times: Vec<i64> = f
            .field("time")
            .values
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let values: Vec<f64> = value.values.iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(
            times,
            expected
                .iter()
                .map(|(t, _)| t * 1_000_000_000)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            values,
            expected.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            "sensor {sensor}"
        );
        sensors.push(sensor);
    }
    sensors.sort();
    assert_eq!(sensors, vec!["a", "b"]);
    drop(prom);
}
