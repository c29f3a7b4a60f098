//! `gpx_restbridge demo`: a small built-in HTTP API on 127.0.0.1 serving the sample data the
//! project ships (`demo-data/`), and a run of every rule of `config-examples/demo.yaml`
//! against it. Needs no network and no files at run time (both are compiled in).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::sync::oneshot;

/// The demo provisioning file (compiled in).
pub const DEMO_YAML: &str = include_str!("../config-examples/demo.yaml");

/// (path, JSON body) of every demo endpoint.
pub const ROUTES: &[(&str, &str)] = &[
    ("/v1/forecast", include_str!("../demo-data/forecast.json")),
    (
        "/api/v1/query_range",
        include_str!("../demo-data/metrics.json"),
    ),
    ("/services", include_str!("../demo-data/services.json")),
    ("/queues", include_str!("../demo-data/queues.json")),
];

/// The running demo API; stops when dropped.
#[derive(Debug)]
pub struct DemoServer {
    /// Where it listens, e.g. `127.0.0.1:41234`.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl DemoServer {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    let (status, body) = match ROUTES.iter().find(|(p, _)| *p == path) {
        Some((_, body)) => (200, *body),
        None => (404, r#"{"error":"not found"}"#),
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Starts the demo API on 127.0.0.1 with an OS-chosen port.
///
/// # Errors
/// The bind error.
pub async fn start() -> std::io::Result<DemoServer> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (tx, mut rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut rx => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let service = hyper::service::service_fn(handle);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                    });
                }
            }
        }
    });
    Ok(DemoServer {
        addr,
        stop: Some(tx),
    })
}

/// Starts the demo API, runs CheckHealth and every demo rule, and returns the report text.
///
/// # Errors
/// A message when the server cannot start, the demo file does not load, or a rule fails.
pub async fn run() -> Result<String, String> {
    let server = start()
        .await
        .map_err(|e| format!("cannot start the demo API: {e}"))?;
    let url = server.url();
    let env = |k: &str| {
        if k == "RESTBRIDGE_DEMO_URL" {
            Some(url.clone())
        } else {
            std::env::var(k).ok()
        }
    };
    let loaded = crate::provisioning::parse(DEMO_YAML, &env)?;
    let mut out = format!(
        "RestBridge demo: built-in API on {url}, datasource from config-examples/demo.yaml\n\n"
    );
    let (report, ok) = crate::cli::check(&loaded).await;
    out.push_str(&format!("CheckHealth:\n{report}\n"));
    if !ok {
        return Err(format!("{out}the demo datasource failed its health check"));
    }
    let rules: Vec<String> = crate::settings::JsonData::parse(
        &loaded
            .datasources
            .first()
            .map(|d| d.settings.json_data.clone())
            .unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?
    .rules
    .iter()
    .filter_map(|r| r.get("id").and_then(|v| v.as_str()).map(str::to_owned))
    .collect();
    for rule in rules {
        let args = crate::cli::QueryArgs {
            datasource: None,
            rule: rule.clone(),
            params: Vec::new(),
            from: "2024-01-01T00:00:00Z".into(),
            to: "2024-01-02T00:00:00Z".into(),
            max_rows: Some(8),
        };
        out.push_str(&format!("== rule '{rule}' ==\n"));
        out.push_str(&crate::cli::query(&loaded, &args).await?);
        out.push('\n');
    }
    drop(server);
    Ok(out)
}

/// Runs the demo API until the process is stopped (SIGINT/SIGTERM); prints
/// `RESTBRIDGE_DEMO_URL=http://127.0.0.1:PORT` as the first stdout line, flushed.
///
/// # Errors
/// A message when the server cannot start.
pub async fn serve_forever() -> Result<(), String> {
    use std::io::Write;
    let server = start()
        .await
        .map_err(|e| format!("cannot start the demo API: {e}"))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "RESTBRIDGE_DEMO_URL={}", server.url());
        let _ = out.flush();
    }
    let _ = tokio::signal::ctrl_c().await;
    drop(server);
    Ok(())
}
