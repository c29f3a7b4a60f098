//! The command-line mode: started without the go-plugin cookie the binary is the admin's
//! tool; `demo` works with no network; every file in config-examples/ checks clean.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gpx_restbridge"));
    c.env_remove("grafana_plugin_type");
    c
}

#[test]
fn demo_prints_frames_of_every_demo_rule() {
    let out = bin().arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "4 rules loaded; health check rule 'services' returned 1 frame(s), 3 row(s)",
        "== rule 'forecast' ==",
        "type=timeseries-multi typeVersion=[0,1] rows=24",
        // 00:00 Berlin local time is 23:00 UTC the day before.
        "| 2023-12-31T23:00:00Z | -0.5        |",
        "labels {__name__=\"cpu_load\", dc=\"eu\", host=\"web-2\"}",
        "| cache | down     | null    |",
        "type=numeric-long typeVersion=[0,1] rows=3",
        "| orders  | 17    |",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn without_the_cookie_it_is_a_cli_and_prints_no_handshake() {
    let out = bin().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Usage") && err.contains("query") && err.contains("demo"),
        "{err}"
    );
}

#[test]
fn every_config_example_checks_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config-examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        n += 1;
        // Compile-only: no healthCheck live call can reach these placeholder URLs, so the
        // examples' rules are validated through `check` with unreachable hosts replaced.
        let out = bin()
            .args(["check", "--config"])
            .arg(&path)
            .env("RESTBRIDGE_DEMO_URL", "http://127.0.0.1:9")
            .env("PROMETHEUS_URL", "http://127.0.0.1:9")
            .env("PROMETHEUS_PASSWORD", "x")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("warning:"), "{}: {text}", path.display());
        for line in text.lines() {
            assert!(
                line.starts_with("ok") || line.contains("health check rule"),
                "{}: {line}",
                path.display()
            );
        }
        let loaded = restbridge::provisioning::load_file(&path).unwrap();
        for ds in &loaded.datasources {
            let mut s = ds.settings.clone();
            s.url = "http://127.0.0.1:9".into();
            if let Err(e) = restbridge::instance::Instance::compile(&s) {
                panic!("{}: {e}", path.display());
            }
        }
    }
    assert!(
        n >= 2,
        "expected demo.yaml and a Prometheus example, found {n}"
    );
}

#[test]
fn check_reports_a_bad_rule_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("rb-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: 1\ndatasources:\n  - name: Bad\n    type: restbridge-rest-datasource\n    url: http://127.0.0.1:9\n    jsonData:\n      rules:\n        - id: r1\n          request: {url: /x}\n          response:\n            fields: [{name: a, path: $.a, type: float}]\n",
    )
    .unwrap();
    let out = bin()
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rule 'r1'") && text.contains("response.fields[0].type"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
