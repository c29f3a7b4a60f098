//! Against a real Prometheus whose `--web.config.file` demands basic auth (bcrypt hash,
//! real-apis.md §1.3): CheckHealth runs the healthCheck rule live.

use serde_json::json;

use crate::common::{
    assert_no_secrets, check_health, error_with, frames_ok, query_one, unique, with_basic_auth,
    HEALTH_ERROR, HEALTH_OK,
};
use crate::servers::PromAuth;
use crate::support::plugin::{context, PluginProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_health_with_prometheus_basic_auth() {
    let password = unique("prom-pw");
    let Some(prom) = PromAuth::start("grafana", &password) else {
        return;
    };
    let wrong = unique("prom-wrong");
    let jd = json!({
        "healthCheck": {"rule": "build"},
        "rules": [{"id": "build", "request": {"url": "/api/v1/status/buildinfo"},
                   "response": {"fields": [{"name": "version", "path": "$.data.version"}]}}]
    });
    let p = PluginProcess::spawn(&[]).await;
    let good = with_basic_auth(
        context(
            "prom-good",
            &prom.url,
            &jd,
            &[("basicAuthPassword", &password)],
            1,
        ),
        "grafana",
    );
    let bad = with_basic_auth(
        context(
            "prom-bad",
            &prom.url,
            &jd,
            &[("basicAuthPassword", &wrong)],
            1,
        ),
        "grafana",
    );
    let anonymous = context("prom-anon", &prom.url, &jd, &[], 1);

    let (status, ok_msg) = check_health(&p, &good).await;
    assert_eq!(status, HEALTH_OK, "{ok_msg}");
    assert!(
        ok_msg.contains("health check rule 'build' returned 1 frame(s), 1 row(s)"),
        "{ok_msg}"
    );
    let (status, bad_msg) = check_health(&p, &bad).await;
    assert_eq!(status, HEALTH_ERROR, "{bad_msg}");
    assert!(bad_msg.contains("401"), "{bad_msg}");
    // Prometheus' own 401 body ("Unauthorized") is passed on.
    assert!(bad_msg.contains("Unauthorized"), "{bad_msg}");
    let (status, anon_msg) = check_health(&p, &anonymous).await;
    assert_eq!(status, HEALTH_ERROR, "{anon_msg}");
    assert!(anon_msg.contains("401"), "{anon_msg}");

    // The same through QueryData.
    let f = frames_ok(&query_one(&p, &good, "build", json!({})).await);
    let version = f[0].field("version").values[0].clone();
    let err = error_with(&query_one(&p, &bad, "build", json!({})).await, 401);

    let mut texts = p.stderr_lines();
    texts.extend([ok_msg.clone(), bad_msg.clone(), anon_msg, err]);
    assert_no_secrets(
        "health messages, errors and stderr",
        &texts,
        &[&password, &wrong],
    );
    println!(
        "proved: Prometheus (pid {}) with --web.config.file bcrypt basic auth — CheckHealth \
         OK with the right password ({ok_msg}; version {version}), ERROR 401 with a wrong one \
         ({bad_msg}) and without credentials; QueryData 401 downstream; passwords never shown",
        prom.server.pid()
    );
}
