//! The command-line tool: `query`, `check` and `demo` run the same code path as QueryData
//! and CheckHealth, without Grafana.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::instance::Instances;
use crate::pipeline::{DataQuery, RequestContext};
use crate::provisioning::{self, Loaded};

/// RestBridge: put any REST/JSON API into Grafana. Started by Grafana this binary is the
/// backend plugin; started by hand it runs rules from a provisioning file.
#[derive(Debug, Parser)]
#[command(name = "gpx_restbridge", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one rule of a provisioning file and print its frames.
    Query {
        /// Grafana datasource provisioning YAML (apiVersion 1).
        #[arg(long)]
        config: PathBuf,
        /// Datasource name (needed when the file has several RestBridge datasources).
        #[arg(long)]
        datasource: Option<String>,
        /// Rule id.
        #[arg(long)]
        rule: String,
        /// A param value, `name=value` (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Range start: `now`, `now-6h`, epoch ms, or RFC 3339.
        #[arg(long, default_value = "now-6h")]
        from: String,
        /// Range end.
        #[arg(long, default_value = "now")]
        to: String,
        /// Rows to print per frame (0 = all).
        #[arg(long, default_value_t = 50)]
        max_rows: usize,
    },
    /// Validate every rule of every RestBridge datasource in a provisioning file.
    Check {
        /// Grafana datasource provisioning YAML.
        #[arg(long)]
        config: PathBuf,
    },
    /// Start a small built-in API on 127.0.0.1, run config-examples/demo.yaml against it and
    /// print the frames (no network needed).
    Demo {
        /// Keep the built-in API running (print its URL and serve until stopped) instead of
        /// running the demo rules; for trying RestBridge in a real Grafana or with curl.
        #[arg(long)]
        serve: bool,
    },
}

/// Entry point of the command-line mode; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    crate::logging::init("warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Query {
                config,
                datasource,
                rule,
                params,
                from,
                to,
                max_rows,
            } => {
                let loaded = provisioning::load_file(&config)?;
                let args = QueryArgs {
                    datasource,
                    rule,
                    params,
                    from,
                    to,
                    max_rows: (max_rows > 0).then_some(max_rows),
                };
                let text = query(&loaded, &args).await?;
                print!("{text}");
                Ok(())
            }
            Command::Check { config } => {
                let loaded = provisioning::load_file(&config)?;
                let (text, ok) = check(&loaded).await;
                print!("{text}");
                if ok {
                    Ok(())
                } else {
                    Err("check failed".to_owned())
                }
            }
            Command::Demo { serve: false } => crate::demo::run().await.map(|text| print!("{text}")),
            Command::Demo { serve: true } => crate::demo::serve_forever().await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Arguments of `query`.
#[derive(Debug, Clone)]
pub struct QueryArgs {
    /// Datasource name.
    pub datasource: Option<String>,
    /// Rule id.
    pub rule: String,
    /// `name=value` params.
    pub params: Vec<String>,
    /// Range start text.
    pub from: String,
    /// Range end text.
    pub to: String,
    /// Rows shown per frame.
    pub max_rows: Option<usize>,
}

/// Runs one rule like QueryData and renders the frames as text.
///
/// # Errors
/// The query's error message (with its status), or a bad argument.
pub async fn query(loaded: &Loaded, args: &QueryArgs) -> Result<String, String> {
    let ds = provisioning::pick(loaded, args.datasource.as_deref())?;
    let now = jiff::Timestamp::now().as_millisecond();
    let from_ms = parse_time(&args.from, now)?;
    let to_ms = parse_time(&args.to, now)?;
    let mut params = serde_json::Map::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--param '{p}' must look like name=value"))?;
        params.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
    }
    let json = serde_json::json!({"rule": args.rule, "params": params});
    let query = DataQuery {
        ref_id: "A".into(),
        json: json.to_string().into_bytes(),
        from_ms,
        to_ms,
        interval_ms: ((to_ms - from_ms) / 1000).max(1000),
        max_data_points: 1000,
    };
    let instances = Instances::default();
    let instance = instances.get(&ds.settings);
    let instance = instance.as_ref().as_ref().map_err(|e| e.to_string())?;
    let frames = crate::pipeline::run(instance, &query, RequestContext::default())
        .await
        .map_err(|e| {
            format!(
                "{e} (status {}, errorSource {})",
                e.status(),
                e.source().as_str()
            )
        })?;
    // Encode like QueryData does, so the CLI also proves the frames are valid Arrow.
    for f in &frames {
        f.encode("A").map_err(|e| e.to_string())?;
    }
    let mut out = String::new();
    for w in &loaded.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str(&crate::render::frames_to_text(&frames, args.max_rows));
    Ok(out)
}

/// Validates every datasource like CheckHealth; returns the report and whether all passed.
pub async fn check(loaded: &Loaded) -> (String, bool) {
    use crate::pb::pluginv2::check_health_response::HealthStatus;
    let mut out = String::new();
    let mut ok = !loaded.datasources.is_empty();
    if loaded.datasources.is_empty() {
        out.push_str("error: no datasource of type restbridge-rest-datasource in the file\n");
    }
    for w in &loaded.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let instances = Instances::default();
    for ds in &loaded.datasources {
        let (status, message, _) =
            crate::server::check_health(&instances, Some(&ds.settings)).await;
        let good = status == HealthStatus::Ok;
        ok &= good;
        out.push_str(&format!(
            "{} datasource '{}': {message}\n",
            if good { "ok   " } else { "error" },
            ds.name
        ));
    }
    (out, ok)
}

/// Parses `now`, `now-6h`, `now+5m`, epoch ms, or RFC 3339 into epoch ms.
///
/// # Errors
/// A message naming the text.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now_ms);
        }
        let (sign, amount) = match rest.as_bytes()[0] {
            b'-' => (-1, &rest[1..]),
            b'+' => (1, &rest[1..]),
            _ => return Err(format!("cannot read time '{text}'")),
        };
        let digits: String = amount.chars().take_while(char::is_ascii_digit).collect();
        let unit = &amount[digits.len()..];
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("cannot read time '{text}'"))?;
        let ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(format!("cannot read time '{text}' (units: s, m, h, d, w)")),
        };
        return Ok(now_ms + sign * n * ms);
    }
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    t.parse::<jiff::Timestamp>()
        .map(|ts| ts.as_millisecond())
        .map_err(|_| format!("cannot read time '{text}' (use now, now-6h, epoch ms or RFC 3339)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(parse_time("now", 10_000_000).unwrap(), 10_000_000);
        assert_eq!(
            parse_time("now-1h", 10_000_000).unwrap(),
            10_000_000 - 3_600_000
        );
        assert_eq!(parse_time("now+5m", 0).unwrap(), 300_000);
        assert_eq!(parse_time("1704067200000", 0).unwrap(), 1_704_067_200_000);
        assert_eq!(
            parse_time("2024-01-01T00:00:00Z", 0).unwrap(),
            1_704_067_200_000
        );
        assert!(parse_time("yesterday", 0).is_err());
        assert!(parse_time("now-5y", 0).is_err());
    }
}
