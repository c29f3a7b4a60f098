//! Helpers shared by the `http_auth` tests: skip-or-fail for missing servers, temp dirs,
//! server processes stopped by PID, a programmable HTTP stub (any loopback address), and
//! thin wrappers around the spawned plugin's gRPC calls.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use restbridge::pb::pluginv2::{self, DataResponse, PluginContext};

use crate::support::arrow::{decode, DecodedFrame};
use crate::support::plugin::PluginProcess;

// ---------------------------------------------------------------------------------------
// Skips
// ---------------------------------------------------------------------------------------

/// A server the test needs is missing: prints `skipping: …` and returns, or fails when
/// `RESTBRIDGE_REQUIRE_SERVERS` is set (CI).
///
/// # Panics
/// When `RESTBRIDGE_REQUIRE_SERVERS` is set.
pub fn skip_or_fail(what: &str) {
    assert!(
        std::env::var_os("RESTBRIDGE_REQUIRE_SERVERS").is_none(),
        "{what}, and RESTBRIDGE_REQUIRE_SERVERS is set (run tests/http_auth/install.sh)"
    );
    println!("skipping: {what} (run tests/http_auth/install.sh)");
}

/// `name` in `PATH` or `/usr/bin`, if executable.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.into_iter()
        .chain(std::iter::once(PathBuf::from("/usr/bin")))
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The system Python (`/usr/bin/python3`, where Debian's python3-* packages live), else the
/// first `python3` in `PATH`.
pub fn system_python() -> Option<PathBuf> {
    let sys = PathBuf::from("/usr/bin/python3");
    if sys.exists() {
        Some(sys)
    } else {
        find_binary("python3")
    }
}

// ---------------------------------------------------------------------------------------
// Temp dirs and server processes
// ---------------------------------------------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique string for secrets and names: `prefix-<pid>-<n>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// A temp directory removed (recursively) when dropped.
#[derive(Debug)]
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(&format!("restbridge-{tag}")));
        fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A child server process: SIGTERM by PID on drop, SIGKILL after 5 s, reaped.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: Child,
    pub name: String,
}

impl ServerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` when the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// SIGTERM to our own (unreaped) child by PID, poll up to 5 s, then SIGKILL and reap.
pub fn stop_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child, not yet
        // reaped (try_wait returned None above), so it cannot name another process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A free loopback port (bind :0, read, release; callers retry on "address in use").
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// Minimal blocking HTTP/1.0 GET with extra header lines; `(status, body)`.
pub fn raw_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line from {addr}: {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// Polls `GET path` until `ok(status)`: at most `tries` attempts 50 ms apart; fails early
/// when the process exits. The error carries the last answer and the log tail.
pub fn wait_http(
    server: &mut ServerProcess,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    tries: u32,
    log: &Path,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last = String::from("no attempt");
    for _ in 0..tries {
        if let Some(status) = server.exited() {
            return Err(format!(
                "{} exited during start-up ({status}); log tail:\n{}",
                server.name,
                log_tail(log)
            ));
        }
        match raw_get(addr, path, headers) {
            Ok((200, _)) => return Ok(started.elapsed()),
            Ok((s, b)) => last = format!("HTTP {s}: {}", b.trim()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{} on {addr} not ready after {tries} polls of {path}: {last}; log tail:\n{}",
        server.name,
        log_tail(log)
    ))
}

/// The last 30 lines of a log file.
pub fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

// ---------------------------------------------------------------------------------------
// Programmable stub
// ---------------------------------------------------------------------------------------

/// One request as the stub saw it (header names lower-case).
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The form-encoded body as pairs.
    pub fn form(&self) -> HashMap<String, String> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// The query string as pairs.
    pub fn query_pairs(&self) -> HashMap<String, String> {
        form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }
}

/// One answer of the stub.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// A hyper HTTP/1.1 server on `ip:0` answering with `handler`; records every request.
/// Stops when dropped.
pub struct FnStub {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Req>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FnStub {
    pub async fn serve(
        ip: [u8; 4],
        handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
    ) -> FnStub {
        let handler: Handler = Arc::new(handler);
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::from(ip), 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let handler = handler.clone();
                        let seen = seen2.clone();
                        tokio::spawn(async move {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let svc = hyper::service::service_fn(move |req| {
                                answer(handler.clone(), seen.clone(), req)
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, svc)
                                .await;
                        });
                    }
                }
            }
        });
        FnStub {
            addr,
            seen,
            stop: Some(tx),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests to exactly `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }
}

impl Drop for FnStub {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn answer(
    handler: Handler,
    seen: Arc<Mutex<Vec<Req>>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let r = Req {
        method,
        path,
        query,
        headers,
        body,
        at,
    };
    seen.lock().unwrap().push(r.clone());
    let reply = handler(&r);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
    for (k, v) in &reply.headers {
        resp.headers_mut().append(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_str(v).unwrap(),
        );
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------------------
// Plugin calls
// ---------------------------------------------------------------------------------------

/// Now and one hour ago, epoch ms.
pub fn last_hour() -> (i64, i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    (now - 3_600_000, now)
}

/// Turns basic auth on in a context built by `support::plugin::context`.
pub fn with_basic_auth(mut ctx: PluginContext, user: &str) -> PluginContext {
    let s = ctx.data_source_instance_settings.as_mut().unwrap();
    s.basic_auth_enabled = true;
    s.basic_auth_user = user.to_owned();
    ctx
}

/// Runs `queries` with request `headers`; responses by refId.
pub async fn query_many(
    p: &PluginProcess,
    ctx: &PluginContext,
    headers: &[(&str, &str)],
    queries: Vec<pluginv2::DataQuery>,
) -> HashMap<String, DataResponse> {
    p.data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            queries,
            format: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .responses
}

/// Runs one query (refId `A`) of `rule` over the last hour.
pub async fn query_one(
    p: &PluginProcess,
    ctx: &PluginContext,
    rule: &str,
    params: serde_json::Value,
) -> DataResponse {
    query_with_headers(p, ctx, &[], rule, params).await
}

/// [`query_one`] with request headers (forwarded identity).
pub async fn query_with_headers(
    p: &PluginProcess,
    ctx: &PluginContext,
    headers: &[(&str, &str)],
    rule: &str,
    params: serde_json::Value,
) -> DataResponse {
    let (from, to) = last_hour();
    let q = crate::support::plugin::query("A", rule, params, from, to);
    query_many(p, ctx, headers, vec![q])
        .await
        .remove("A")
        .unwrap()
}

/// The frames of a successful response (panics with the error otherwise).
pub fn frames_ok(r: &DataResponse) -> Vec<DecodedFrame> {
    assert!(
        r.error.is_empty() && r.status == 200,
        "expected success, got status {} error {:?}",
        r.status,
        r.error
    );
    r.frames.iter().map(|f| decode(f)).collect()
}

/// Asserts a failed response with `status`; returns the error message.
pub fn error_with(r: &DataResponse, status: i32) -> String {
    assert_eq!(
        r.status, status,
        "expected status {status}, got {} with error {:?}",
        r.status, r.error
    );
    assert!(!r.error.is_empty(), "status {status} without an error text");
    assert_eq!(r.error_source, "downstream", "errorSource of {:?}", r.error);
    r.error.clone()
}

/// `meta.executedQueryString` of the first frame.
pub fn executed(frames: &[DecodedFrame]) -> String {
    frames
        .first()
        .and_then(|f| f.meta.as_ref())
        .and_then(|m| m.get("executedQueryString"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Every value, field name, label and meta text of the frames, as strings.
pub fn frame_texts(frames: &[DecodedFrame]) -> Vec<String> {
    let mut out = Vec::new();
    for f in frames {
        out.push(f.name.clone());
        if let Some(m) = &f.meta {
            out.push(m.to_string());
        }
        for fld in &f.fields {
            out.push(fld.name.clone());
            out.extend(fld.labels.iter().map(|(k, v)| format!("{k}={v}")));
            if let Some(c) = &fld.config {
                out.push(c.to_string());
            }
            out.extend(fld.values.iter().map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }));
        }
    }
    out
}

/// String values of field `name` in the first frame.
pub fn column(frames: &[DecodedFrame], name: &str) -> Vec<serde_json::Value> {
    frames[0].field(name).values.clone()
}

/// CheckHealth: (status, message).
pub async fn check_health(p: &PluginProcess, ctx: &PluginContext) -> (i32, String) {
    let h = p
        .diagnostics()
        .check_health(pluginv2::CheckHealthRequest {
            plugin_context: Some(ctx.clone()),
            headers: HashMap::new(),
        })
        .await
        .unwrap()
        .into_inner();
    (h.status, h.message)
}

pub const HEALTH_OK: i32 = pluginv2::check_health_response::HealthStatus::Ok as i32;
pub const HEALTH_ERROR: i32 = pluginv2::check_health_response::HealthStatus::Error as i32;

/// Asserts none of `secrets` occurs in any of `texts`; `what` names the source.
pub fn assert_no_secrets<T: AsRef<str>>(what: &str, texts: &[T], secrets: &[&str]) {
    for t in texts {
        let t = t.as_ref();
        for s in secrets {
            assert!(!t.contains(s), "secret {s:?} leaked in {what}: {t}");
        }
    }
}

/// QueryData sent as a raw gRPC call over HTTP/2 with a `grpc-timeout` header, like
/// Grafana's deadline — without tonic's client-side timer, which would otherwise cancel the
/// call at the same instant the plugin answers. Returns the response of refId `A`, or the
/// gRPC status headers when the call failed as a whole.
pub async fn query_with_grpc_deadline(
    p: &PluginProcess,
    ctx: &PluginContext,
    rule: &str,
    grpc_timeout: &str,
) -> Result<(DataResponse, Duration), String> {
    use prost::Message;
    let parts: Vec<&str> = p.handshake.trim().split('|').collect();
    let (from, to) = last_hour();
    let req = pluginv2::QueryDataRequest {
        plugin_context: Some(ctx.clone()),
        headers: HashMap::new(),
        queries: vec![crate::support::plugin::query(
            "A",
            rule,
            serde_json::json!({}),
            from,
            to,
        )],
        format: 0,
    };
    let msg = req.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&msg);
    let _ = rustls::crypto::ring::default_provider().install_default();
    // go-plugin dials what the handshake names: a unix socket path or 127.0.0.1:PORT.
    let (builder, authority) = match parts[2] {
        "unix" => (
            reqwest::Client::builder().unix_socket(parts[3]),
            "plugin.invalid",
        ),
        _ => (reqwest::Client::builder(), parts[3]),
    };
    let client = builder.http2_prior_knowledge().build().unwrap();
    // Timed from here: building the HTTP client (TLS set-up) is the test's, not the plugin's.
    let started = Instant::now();
    let resp = client
        .post(format!("http://{authority}/pluginv2.Data/QueryData"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", grpc_timeout)
        .body(frame)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let status = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let failed = format!(
        "the whole gRPC call failed: grpc-status {} grpc-message {:?}",
        status("grpc-status"),
        status("grpc-message")
    );
    let body = resp.bytes().await.unwrap();
    let took = started.elapsed();
    if body.len() < 5 {
        return Err(failed);
    }
    let resp = pluginv2::QueryDataResponse::decode(&body[5..]).unwrap();
    Ok((resp.responses.get("A").cloned().unwrap(), took))
}

/// The plugin's CollectMetrics text.
pub async fn metrics_text(p: &PluginProcess, ctx: &PluginContext) -> String {
    let m = p
        .diagnostics()
        .collect_metrics(pluginv2::CollectMetricsRequest {
            plugin_context: Some(ctx.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    String::from_utf8_lossy(&m.metrics.map(|m| m.prometheus).unwrap_or_default()).into_owned()
}
