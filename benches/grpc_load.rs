//! gRPC load tool for the cache/performance issue, benchmarks 2–5. A measurement, never a
//! test: it prints numbers (and whether the issue's targets are met) and exits non-zero only
//! when an answer is wrong, not when a target is missed.
//!
//! ```text
//! cargo bench --bench grpc_load -- <scenario> [options]
//!   hit                   cache hits (answer cache on), 1,000-row table frame
//!   hit-no-answer-cache   the same with RESTBRIDGE_ANSWER_CACHE=off (body cache only)
//!   cold                  every query goes upstream (rule cache ttlSeconds 0, distinct keys)
//!   coalesce              1,000 concurrent identical queries against a 1 s upstream
//!   memory                random keys against cache.maxBytes 64 MiB for --minutes N
//!   soak                  --minutes N (30) of good and faulty queries, cancels and settings
//!                         updates; RSS, fds, threads and tokio tasks at idle checkpoints
//!                         every --checkpoint-minutes M (5) must stay flat
//!   startup               exec → handshake line (median of --runs), stripped binary size
//!   all                   hit, hit-no-answer-cache, cold, coalesce, startup
//! options: --requests N  --warmup N  --concurrency N (16)  --channels N  --rows N (1000)
//!          --minutes M (10)  --body-kb K (100)  --max-bytes B (67108864)
//!          --queries N (1000)  --delay-ms N (1000)  --runs N (20)  --sample-secs N (5)
//!          --plugin PATH (default: the gpx_restbridge built with this bench)
//!          --no-answer-cache (memory: run the plugin with RESTBRIDGE_ANSWER_CACHE=off)
//!          --transport unix|tcp (unix: the plugin's default, as go-plugin's Go servers)
//!          --client-threads N (1: the load client and stub on one tokio worker, so that
//!          they leave the other core to the plugin)
//!          --client h2|tonic (hit, hit-no-answer-cache, cold: h2 is a lean client on the
//!          `h2` crate, pre-encoded requests, answers compared byte for byte with a checked
//!          one; tonic is tonic's generated client, as before)
//!          --latency-trace PATH (hit, cold: one line per measured request, "END_NS
//!          LATENCY_NS", END_NS counted from the start of the measured run)
//! ```
//!
//! Everything runs on loopback: the plugin binary (`CARGO_BIN_EXE_gpx_restbridge`, built with
//! the optimised bench profile) is spawned the way Grafana's go-plugin client does it, a hyper
//! stub upstream with keep-alive serves canned JSON from memory, and a QueryData client drives
//! it: the lean `h2` one of [`h2client`] for hit and cold (unless `--client tonic`), tonic's
//! for the other scenarios. Plugin CPU time is `utime + stime` of `/proc/PID/stat`; memory is `VmRSS` /
//! `VmHWM` of `/proc/PID/status`. Every spawned plugin is killed by its PID when its guard is
//! dropped, also while a panic unwinds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampNanosecondType};
use bytes::Bytes;
use http_body_util::Full;
use restbridge::pb::pluginv2::data_client::DataClient;
use restbridge::pb::pluginv2::diagnostics_client::DiagnosticsClient;
use restbridge::pb::pluginv2::{self, DataSourceInstanceSettings, PluginContext};
use serde_json::{json, Value};
use tonic::transport::{Channel, Endpoint};

/// Upper bound of any single RPC.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// The issue's targets.
const TARGET_HIT_P99_US: f64 = 1000.0;
const TARGET_HIT_CPU_US: f64 = 50.0;
const TARGET_COLD_CPU_US: f64 = 300.0;
const TARGET_RSS_HEADROOM: u64 = 60 << 20;

#[path = "grpc_load/h2client.rs"]
mod h2client;
#[path = "common/rows.rs"]
mod rows;
#[path = "grpc_load/soak.rs"]
mod soak;

use rows::{BASE_EPOCH_S, STEP_S};

// ---------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Opts {
    scenario: String,
    requests: Option<usize>,
    warmup: Option<usize>,
    concurrency: usize,
    channels: Option<usize>,
    rows: usize,
    minutes: f64,
    body_kb: usize,
    max_bytes: u64,
    queries: usize,
    delay_ms: u64,
    runs: usize,
    sample_secs: u64,
    plugin: String,
    no_answer_cache: bool,
    /// `RESTBRIDGE_GRPC_NETWORK` for the plugin: `unix` (its default) or `tcp`.
    transport: String,
    /// Worker threads of the load client's tokio runtime.
    client_threads: usize,
    /// QueryData client of the throughput scenarios: `h2` (lean, the default) or `tonic`.
    client: String,
    /// hit / cold: write each measured request's completion time and latency here.
    latency_trace: Option<String>,
    /// Soak: minutes between idle checkpoints.
    checkpoint_minutes: f64,
    /// `--minutes` was given (the soak defaults to 30, memory to 10).
    minutes_given: bool,
}

impl Opts {
    fn parse() -> Result<Opts, String> {
        let mut o = Opts {
            scenario: String::new(),
            requests: None,
            warmup: None,
            concurrency: 16,
            channels: None,
            rows: 1000,
            minutes: 10.0,
            body_kb: 100,
            max_bytes: 64 << 20,
            queries: 1000,
            delay_ms: 1000,
            runs: 20,
            sample_secs: 5,
            plugin: env!("CARGO_BIN_EXE_gpx_restbridge").to_owned(),
            no_answer_cache: false,
            transport: "unix".into(),
            client_threads: 1,
            client: "h2".into(),
            latency_trace: None,
            checkpoint_minutes: 5.0,
            minutes_given: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            // `cargo bench` appends `--bench` to a harness-less target's arguments.
            if a == "--bench" {
                continue;
            }
            if !a.starts_with("--") {
                if !o.scenario.is_empty() {
                    return Err(format!("two scenarios given: {} and {a}", o.scenario));
                }
                o.scenario = a;
                continue;
            }
            if a == "--no-answer-cache" {
                o.no_answer_cache = true;
                continue;
            }
            let v = args.next().ok_or_else(|| format!("{a} needs a value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{a} {v}: {e}");
            let n = || v.parse::<usize>().map_err(|e| bad(&e));
            match a.as_str() {
                "--requests" => o.requests = Some(n()?),
                "--warmup" => o.warmup = Some(n()?),
                "--concurrency" => o.concurrency = n()?.max(1),
                "--channels" => o.channels = Some(n()?.max(1)),
                "--rows" => o.rows = n()?.max(1),
                "--minutes" => {
                    o.minutes = v.parse::<f64>().map_err(|e| bad(&e))?;
                    o.minutes_given = true;
                }
                "--checkpoint-minutes" => {
                    o.checkpoint_minutes = v.parse::<f64>().map_err(|e| bad(&e))?.max(0.1);
                }
                "--body-kb" => o.body_kb = n()?.max(1),
                "--max-bytes" => o.max_bytes = v.parse::<u64>().map_err(|e| bad(&e))?,
                "--queries" => o.queries = n()?.max(1),
                "--delay-ms" => o.delay_ms = v.parse::<u64>().map_err(|e| bad(&e))?,
                "--runs" => o.runs = n()?.max(1),
                "--sample-secs" => o.sample_secs = v.parse::<u64>().map_err(|e| bad(&e))?.max(1),
                "--plugin" => o.plugin.clone_from(&v),
                "--transport" if v == "tcp" || v == "unix" => o.transport.clone_from(&v),
                "--client-threads" => o.client_threads = n()?.max(1),
                "--client" if v == "h2" || v == "tonic" => o.client.clone_from(&v),
                "--latency-trace" => o.latency_trace = Some(v.clone()),
                _ => return Err(format!("unknown option {a}")),
            }
        }
        if o.scenario.is_empty() {
            o.scenario = "all".into();
        }
        if o.scenario == "soak" && !o.minutes_given {
            o.minutes = 30.0;
        }
        if !(o.minutes.is_finite() && o.minutes > 0.0 && o.minutes <= 24.0 * 60.0) {
            return Err("--minutes must be in (0, 1440]".into());
        }
        Ok(o)
    }
}

/// Dials the plugin's unix socket for every new gRPC connection (the URI is ignored).
#[derive(Clone)]
struct UnixConnector(std::path::PathBuf);

impl tonic::codegen::Service<tonic::codegen::http::Uri> for UnixConnector {
    type Response = hyper_util::rt::TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move {
            Ok(hyper_util::rt::TokioIo::new(
                tokio::net::UnixStream::connect(path).await?,
            ))
        })
    }
}

// ---------------------------------------------------------------------------------------
// /proc readings

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (`utime`, `stime`) of a process (all its threads, exited ones included), seconds.
fn cpu_times(pid: u32) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (f64::NAN, f64::NAN);
    };
    // The command name (field 2) may hold spaces; the fields after its ')' start at 3.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return (f64::NAN, f64::NAN);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    // utime is field 14, stime field 15 → indexes 11 and 12 after field 3.
    let hz = clock_ticks();
    (ticks(11) as f64 / hz, ticks(12) as f64 / hz)
}

/// `utime + stime`, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let (u, s) = cpu_times(pid);
    u + s
}

/// The 1-minute load average (other work on the machine inflates latencies).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// (VmRSS, VmHWM) in bytes.
fn rss_bytes(pid: u32) -> (u64, u64) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (0, 0);
    };
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |k| k * 1024)
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn machine() -> (usize, String) {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    (cores, model)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------------------
// The plugin process

/// A spawned `gpx_restbridge`; SIGKILLed by its PID on drop if still running.
struct PluginGuard {
    child: Child,
    pid: u32,
    /// `tcp` or `unix`, from the handshake line.
    network: String,
    addr: String,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// exec → handshake line.
    startup: Duration,
}

impl Drop for PluginGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill(); // SIGKILL to self.pid
            let _ = self.child.wait();
        }
        if self.network == "unix" {
            // A SIGKILLed plugin cannot remove its socket file.
            let _ = std::fs::remove_file(&self.addr);
        }
    }
}

impl PluginGuard {
    /// Starts the plugin like go-plugin: magic cookie, protocol versions, port range, a
    /// working directory that is not the plugin's; the first stdout line is the handshake.
    fn spawn(
        exe: &str,
        transport: &str,
        extra_env: &[(&str, &str)],
    ) -> Result<PluginGuard, String> {
        let mut cmd = Command::new(exe);
        cmd.current_dir(std::env::temp_dir())
            .env_remove("RESTBRIDGE_ANSWER_CACHE")
            .env_remove("RESTBRIDGE_LOG")
            .env_remove("PLUGIN_UNIX_SOCKET_DIR")
            .env("RESTBRIDGE_GRPC_NETWORK", transport)
            .env("grafana_plugin_type", "datasource")
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("spawn {exe}: {e}"))?;
        let pid = child.id();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        // The guard exists from here on, so an early return still kills the process.
        let mut guard = PluginGuard {
            child,
            pid,
            network: String::new(),
            addr: String::new(),
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
            startup: Duration::ZERO,
        };
        if let Some(stderr) = stderr {
            let tail = guard.stderr_tail.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut t) = tail.lock() {
                        if t.len() >= 40 {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            });
        }
        let Some(mut stdout) = stdout else {
            return Err("no stdout pipe".into());
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while line.len() < 4096 {
                match stdout.read(&mut byte) {
                    Ok(1) if byte[0] != b'\n' => line.push(byte[0]),
                    _ => break,
                }
            }
            let _ = tx.send((Instant::now(), String::from_utf8_lossy(&line).into_owned()));
            // Keep draining so the plugin never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        let (at, line) = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| format!("no handshake line within 30 s; stderr: {:?}", guard.tail()))?;
        guard.startup = at.saturating_duration_since(started);
        let parts: Vec<&str> = line.trim().split('|').collect();
        if parts.len() < 5 || parts[0] != "1" || parts[1] != "2" || parts[4] != "grpc" {
            return Err(format!(
                "bad handshake line {line:?}; stderr: {:?}",
                guard.tail()
            ));
        }
        if parts[2] != "tcp" && parts[2] != "unix" {
            return Err(format!("handshake network {}", parts[2]));
        }
        guard.network = parts[2].to_owned();
        guard.addr = parts[3].to_owned();
        Ok(guard)
    }

    fn tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A new gRPC connection (one TCP or unix-socket connection per call), as go-plugin's
    /// client dials the handshake's network and address.
    async fn connect(&self) -> Result<Channel, String> {
        if self.network == "unix" {
            return Endpoint::from_static("http://plugin.invalid")
                .connect_timeout(Duration::from_secs(5))
                .connect_with_connector(UnixConnector(self.addr.clone().into()))
                .await
                .map_err(|e| format!("dial unix {}: {e}", self.addr));
        }
        Endpoint::from_shared(format!("http://{}", self.addr))
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("dial {}: {e}", self.addr))
    }

    async fn data_clients(&self, n: usize) -> Result<Vec<DataClient<Channel>>, String> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(DataClient::new(self.connect().await?).max_decoding_message_size(1 << 30));
        }
        Ok(out)
    }

    /// `n` HTTP/2 connections for the lean client ([`h2client`]), dialled like [`Self::connect`].
    async fn h2_senders(&self, n: usize) -> Result<Vec<h2::client::SendRequest<Bytes>>, String> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let send = if self.network == "unix" {
                let io = tokio::net::UnixStream::connect(&self.addr)
                    .await
                    .map_err(|e| format!("dial unix {}: {e}", self.addr))?;
                h2client::handshake(io).await?
            } else {
                let io = tokio::net::TcpStream::connect(&self.addr)
                    .await
                    .map_err(|e| format!("dial {}: {e}", self.addr))?;
                io.set_nodelay(true).map_err(|e| e.to_string())?;
                h2client::handshake(io).await?
            };
            out.push(send);
        }
        Ok(out)
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(self.pid)
    }

    fn rss(&self) -> (u64, u64) {
        rss_bytes(self.pid)
    }

    /// `CollectMetrics` → (upstream requests, hit, miss, coalesced, cache bytes).
    async fn metrics(&self) -> Result<Metrics, String> {
        let mut d = DiagnosticsClient::new(self.connect().await?);
        let r = tokio::time::timeout(
            RPC_TIMEOUT,
            d.collect_metrics(pluginv2::CollectMetricsRequest {
                plugin_context: None,
            }),
        )
        .await
        .map_err(|_| "CollectMetrics timed out".to_owned())?
        .map_err(|e| format!("CollectMetrics: {e}"))?
        .into_inner();
        let text = r
            .metrics
            .map(|m| String::from_utf8_lossy(&m.prometheus).into_owned())
            .unwrap_or_default();
        let sum = |prefix: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .fold(0.0, |a, b| a + b)
        };
        Ok(Metrics {
            upstream: sum("restbridge_upstream_requests_total{"),
            hit: sum("restbridge_cache_events_total{event=\"hit\"}"),
            miss: sum("restbridge_cache_events_total{event=\"miss\"}"),
            coalesced: sum("restbridge_cache_events_total{event=\"coalesced\"}"),
            cache_bytes: sum("restbridge_cache_bytes "),
            tasks: sum("restbridge_runtime_alive_tasks "),
            inflight: sum("restbridge_upstream_inflight_requests "),
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Metrics {
    upstream: f64,
    hit: f64,
    miss: f64,
    coalesced: f64,
    cache_bytes: f64,
    /// Tokio tasks alive in the plugin (includes the CollectMetrics call itself).
    tasks: f64,
    /// Upstream requests in flight.
    inflight: f64,
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "upstream_requests={} cache hit={} miss={} coalesced={} cache_bytes={:.1} MiB",
            self.upstream,
            self.hit,
            self.miss,
            self.coalesced,
            self.cache_bytes / (1024.0 * 1024.0)
        )
    }
}

// ---------------------------------------------------------------------------------------
// The stub upstream

struct Route {
    status: u16,
    body: Bytes,
    delay: Duration,
    hits: AtomicUsize,
}

/// hyper HTTP/1.1 server on 127.0.0.1 with keep-alive; answers canned bodies by path and
/// counts requests per path. Stops accepting when dropped.
struct Stub {
    addr: SocketAddr,
    routes: Arc<HashMap<String, Route>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Stub {
    async fn start(routes: Vec<(&str, Bytes, Duration)>) -> Result<Stub, String> {
        Stub::start_with_status(
            routes
                .into_iter()
                .map(|(p, body, delay)| (p, 200, body, delay))
                .collect(),
        )
        .await
    }

    /// Like [`start`](Self::start), each route with its HTTP status (bodies starting with
    /// `<` are sent as `text/html`).
    async fn start_with_status(routes: Vec<(&str, u16, Bytes, Duration)>) -> Result<Stub, String> {
        let routes: Arc<HashMap<String, Route>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, status, body, delay)| {
                    (
                        p.to_owned(),
                        Route {
                            status,
                            body,
                            delay,
                            hits: AtomicUsize::new(0),
                        },
                    )
                })
                .collect(),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("stub bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let r = routes.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        let r = r.clone();
                        tokio::spawn(async move {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let svc = hyper::service::service_fn(move |req| serve(r.clone(), req));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .keep_alive(true)
                                .serve_connection(io, svc)
                                .await;
                        });
                    }
                }
            }
        });
        Ok(Stub {
            addr,
            routes,
            stop: Some(tx),
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self, path: &str) -> usize {
        self.routes
            .get(path)
            .map_or(0, |r| r.hits.load(Ordering::SeqCst))
    }
}

async fn serve(
    routes: Arc<HashMap<String, Route>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let Some(route) = routes.get(req.uri().path()) else {
        let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
        *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
        return Ok(resp);
    };
    route.hits.fetch_add(1, Ordering::SeqCst);
    if !route.delay.is_zero() {
        tokio::time::sleep(route.delay).await;
    }
    let mut resp = hyper::Response::new(Full::new(route.body.clone()));
    *resp.status_mut() = hyper::StatusCode::from_u16(route.status).unwrap_or_default();
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(if route.body.starts_with(b"<") {
            "text/html"
        } else {
            "application/json"
        }),
    );
    Ok(resp)
}

/// [`rows::rows_json`] as the stub's body.
fn rows_body(rows: usize) -> Bytes {
    Bytes::from(rows::rows_json(rows))
}

/// The number of rows whose body is at least `kb` KiB.
fn rows_for_kb(kb: usize) -> usize {
    let per_row = rows_body(100).len() as f64 / 100.0;
    ((kb * 1024) as f64 / per_row).ceil() as usize
}

// ---------------------------------------------------------------------------------------
// Datasource settings and queries

/// A rule `id` on `path` reading rows `$[*]` into a table frame (one frame, all rows);
/// `k` is a param that changes the URL (a distinct cache key per value).
fn rule(id: &str, path: &str, ttl: Option<u64>) -> Value {
    let mut r = json!({
        "id": id,
        "request": {"url": path, "query": {"k": "${k}"}},
        "params": [{"name": "k", "default": "0"}],
        "response": {
            "rows": "$[*]",
            "fields": [
                {"name": "time", "path": "$.time", "type": "time"},
                {"name": "value", "path": "$.value", "type": "number"},
                {"name": "host", "path": "$.host", "type": "string"}
            ],
            "format": "table"
        }
    });
    if let Some(t) = ttl {
        r["cache"] = json!({"ttlSeconds": t});
    }
    r
}

fn context(uid: &str, url: &str, json_data: &Value) -> PluginContext {
    PluginContext {
        org_id: 1,
        plugin_id: "restbridge-rest-datasource".into(),
        data_source_instance_settings: Some(DataSourceInstanceSettings {
            name: format!("load {uid}"),
            url: url.into(),
            json_data: serde_json::to_vec(json_data).unwrap_or_default(),
            last_updated_ms: 1,
            uid: uid.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn request(ctx: &PluginContext, rule: &str, k: &str) -> pluginv2::QueryDataRequest {
    let to_ms = (BASE_EPOCH_S + 86_400) * 1000;
    pluginv2::QueryDataRequest {
        plugin_context: Some(ctx.clone()),
        headers: HashMap::new(),
        queries: vec![pluginv2::DataQuery {
            ref_id: "A".into(),
            max_data_points: 1000,
            interval_ms: 15_000,
            time_range: Some(pluginv2::TimeRange {
                from_epoch_ms: BASE_EPOCH_S * 1000,
                to_epoch_ms: to_ms,
            }),
            json: serde_json::to_vec(&json!({
                "refId": "A",
                "datasource": {"type": "restbridge-rest-datasource", "uid": "load"},
                "rule": rule,
                "params": {"k": k}
            }))
            .unwrap_or_default(),
            query_type: String::new(),
        }],
        ..Default::default()
    }
}

/// Decodes the single frame of refId A and checks every row against [`rows_body`].
fn verify_frame(resp: &pluginv2::QueryDataResponse, rows: usize) -> Result<(), String> {
    let r = resp.responses.get("A").ok_or("no response for refId A")?;
    if r.status != 200 {
        return Err(format!("status {}: {}", r.status, r.error));
    }
    if r.frames.len() != 1 {
        return Err(format!("{} frames, expected 1", r.frames.len()));
    }
    let reader =
        arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(&r.frames[0][..]), None)
            .map_err(|e| format!("not an Arrow IPC file: {e}"))?;
    let names: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if names != ["time", "value", "host"] {
        return Err(format!("fields {names:?}"));
    }
    let mut row = 0usize;
    for batch in reader {
        let b = batch.map_err(|e| format!("batch: {e}"))?;
        let time = b
            .column(0)
            .as_primitive_opt::<TimestampNanosecondType>()
            .ok_or("time is not Timestamp(ns)")?;
        let value = b
            .column(1)
            .as_primitive_opt::<Float64Type>()
            .ok_or("value is not Float64")?;
        let host = b
            .column(2)
            .as_string_opt::<i32>()
            .ok_or("host is not Utf8")?;
        for j in 0..b.num_rows() {
            let i = row + j;
            let want_t = (BASE_EPOCH_S + i as i64 * STEP_S) * 1_000_000_000;
            if time.value(j) != want_t
                || value.value(j) != i as f64 * 0.25
                || host.value(j) != format!("host-{}", i % 16)
            {
                return Err(format!("row {i} differs"));
            }
        }
        row += b.num_rows();
    }
    if row != rows {
        return Err(format!("{row} rows, expected {rows}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The load driver

struct RunStats {
    latencies_ns: Vec<u64>,
    wall: Duration,
    errors: usize,
    first_error: Option<String>,
    /// (completion time since the run's start, latency), ns, in no particular order; empty
    /// unless asked for.
    trace: Vec<(u64, u64)>,
}

impl RunStats {
    fn pct(&self, q: f64) -> f64 {
        let v = &self.latencies_ns;
        if v.is_empty() {
            return f64::NAN;
        }
        let idx = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[idx] as f64 / 1000.0
    }

    fn max_us(&self) -> f64 {
        self.latencies_ns
            .last()
            .map_or(f64::NAN, |n| *n as f64 / 1000.0)
    }

    fn throughput(&self) -> f64 {
        self.latencies_ns.len() as f64 / self.wall.as_secs_f64()
    }
}

/// A QueryData client of the throughput scenarios; one clone per load worker.
trait Caller: Clone + Send + 'static {
    /// Sends request `i` and checks its answer: the latency (request sent → answer read) and
    /// the verdict.
    fn call(
        &mut self,
        i: usize,
    ) -> impl std::future::Future<Output = (Duration, Result<(), String>)> + Send;
}

/// tonic's generated client: every answer decoded by prost and checked cheaply (status 200,
/// one frame of the expected size); every 500th decoded row by row.
#[derive(Clone)]
struct TonicCaller {
    client: DataClient<Channel>,
    make: Arc<dyn Fn(usize) -> pluginv2::QueryDataRequest + Send + Sync>,
    rows: usize,
    expect_len: Option<usize>,
}

impl Caller for TonicCaller {
    async fn call(&mut self, i: usize) -> (Duration, Result<(), String>) {
        let req = (self.make)(i);
        let t0 = Instant::now();
        let r = tokio::time::timeout(RPC_TIMEOUT, self.client.query_data(req)).await;
        let dt = t0.elapsed();
        let check = match r {
            Err(_) => Err("timed out".to_owned()),
            Ok(Err(e)) => Err(format!("rpc: {e}")),
            Ok(Ok(resp)) => {
                let resp = resp.into_inner();
                match resp.responses.get("A") {
                    None => Err("no refId A".to_owned()),
                    Some(a) if a.status != 200 => Err(format!("status {}: {}", a.status, a.error)),
                    Some(a) if a.frames.len() != 1 => Err(format!("{} frames", a.frames.len())),
                    Some(a) if self.expect_len.is_some_and(|l| a.frames[0].len() != l) => {
                        Err(format!("frame of {} bytes", a.frames[0].len()))
                    }
                    Some(_) if i.is_multiple_of(500) => verify_frame(&resp, self.rows),
                    Some(_) => Ok(()),
                }
            }
        };
        (dt, check)
    }
}

/// The lean client ([`h2client`]): requests framed once by `make`, answers checked by
/// `expect`.
#[derive(Clone)]
struct H2Caller {
    send: h2::client::SendRequest<Bytes>,
    make: Arc<dyn Fn(usize) -> Bytes + Send + Sync>,
    expect: Arc<h2client::Expect>,
    rows: usize,
}

impl Caller for H2Caller {
    async fn call(&mut self, i: usize) -> (Duration, Result<(), String>) {
        let (dt, r) = h2client::timed(&mut self.send, (self.make)(i), RPC_TIMEOUT).await;
        (dt, r.and_then(|a| self.expect.check(&a, i, self.rows)))
    }
}

/// The callers of one throughput run, of either client.
enum Callers {
    Tonic(Vec<TonicCaller>),
    H2(Vec<H2Caller>),
}

impl Callers {
    async fn drive(&self, offset: usize, n: usize, concurrency: usize, trace: bool) -> RunStats {
        match self {
            Callers::Tonic(c) => drive(c, offset, n, concurrency, trace).await,
            Callers::H2(c) => drive(c, offset, n, concurrency, trace).await,
        }
    }
}

/// Sends requests `offset..offset + n`, `concurrency` at a time, round-robin over `callers`.
/// With `trace`, [`RunStats::trace`] gets each request's completion time and latency.
async fn drive<C: Caller>(
    callers: &[C],
    offset: usize,
    n: usize,
    concurrency: usize,
    trace: bool,
) -> RunStats {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let mut caller = callers[w % callers.len()].clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n / concurrency + 1);
            let mut ends = Vec::with_capacity(if trace { lat.capacity() } else { 0 });
            let mut errors = 0usize;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (dt, check) = caller.call(i + offset).await;
                lat.push(u64::try_from(dt.as_nanos()).unwrap_or(u64::MAX));
                if trace {
                    ends.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
                }
                if let Err(e) = check {
                    errors += 1;
                    first_error.get_or_insert(format!("request {}: {e}", i + offset));
                }
            }
            (lat, ends, errors, first_error)
        }));
    }
    let mut stats = RunStats {
        latencies_ns: Vec::with_capacity(n),
        wall: Duration::ZERO,
        errors: 0,
        first_error: None,
        trace: Vec::new(),
    };
    for t in tasks {
        match t.await {
            Ok((lat, ends, errors, first)) => {
                stats
                    .trace
                    .extend(ends.into_iter().zip(lat.iter().copied()));
                stats.latencies_ns.extend(lat);
                stats.errors += errors;
                if stats.first_error.is_none() {
                    stats.first_error = first;
                }
            }
            Err(e) => {
                stats.errors += 1;
                stats.first_error.get_or_insert(format!("worker: {e}"));
            }
        }
    }
    stats.wall = start.elapsed();
    stats.latencies_ns.sort_unstable();
    stats
}

/// One QueryData (refId A), checked in full; returns the frame's size.
async fn probe(
    client: &DataClient<Channel>,
    req: pluginv2::QueryDataRequest,
    rows: usize,
) -> Result<usize, String> {
    let resp = tokio::time::timeout(RPC_TIMEOUT, client.clone().query_data(req))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| format!("rpc: {e}"))?
        .into_inner();
    verify_frame(&resp, rows)?;
    Ok(resp.responses.get("A").map_or(0, |a| a.frames[0].len()))
}

// ---------------------------------------------------------------------------------------
// Scenarios

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Hit,
    HitNoAnswerCache,
    Cold,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Hit => "hit",
            Mode::HitNoAnswerCache => "hit-no-answer-cache",
            Mode::Cold => "cold",
        }
    }
}

/// Row of the summary table.
#[derive(Debug, Clone)]
struct Summary {
    scenario: String,
    line: String,
}

async fn run_throughput(o: &Opts, mode: Mode) -> Result<Summary, String> {
    let name = mode.name();
    let n = o.requests.unwrap_or(match mode {
        Mode::Hit | Mode::HitNoAnswerCache => 20_000,
        Mode::Cold => 10_000,
    });
    let warmup = o.warmup.unwrap_or((n / 10).clamp(200, 2000));
    let body = rows_body(o.rows);
    let stub = Stub::start(vec![("/rows", body.clone(), Duration::ZERO)]).await?;
    let env: &[(&str, &str)] = if mode == Mode::HitNoAnswerCache {
        &[("RESTBRIDGE_ANSWER_CACHE", "off")]
    } else {
        &[]
    };
    let plugin = PluginGuard::spawn(&o.plugin, &o.transport, env)?;
    let ttl = if mode == Mode::Cold { Some(0) } else { None };
    let jd = json!({"cache": {"ttlSeconds": 3600}, "rules": [rule("rows", "/rows", ttl)]});
    let ctx = Arc::new(context("load", &stub.url(), &jd));
    let channels = o.channels.unwrap_or(1);
    // Cold: a distinct `k` per request, so nothing is cached or coalesced; hits: one key.
    // Fixed width: every cold answer (executedQueryString included) has the same size.
    let cold = mode == Mode::Cold;
    let key = move |i: usize| {
        if cold {
            format!("{i:012}")
        } else {
            "1".to_owned()
        }
    };
    let probe_key = 999_999_999_999;
    let (callers, frame_len) = if o.client == "tonic" {
        let clients = plugin.data_clients(channels).await?;
        let c2 = ctx.clone();
        let make: Arc<dyn Fn(usize) -> pluginv2::QueryDataRequest + Send + Sync> =
            Arc::new(move |i| request(&c2, "rows", &key(i)));
        let frame_len = probe(&clients[0], make(probe_key), o.rows).await?;
        let callers = clients
            .into_iter()
            .map(|client| TonicCaller {
                client,
                make: make.clone(),
                rows: o.rows,
                expect_len: Some(frame_len),
            })
            .collect();
        (Callers::Tonic(callers), frame_len)
    } else {
        let mut sends = plugin.h2_senders(channels).await?;
        // The reference answer: decoded and checked row by row.
        let first = h2client::grpc_frame(&request(&ctx, "rows", &key(probe_key)));
        let (_, answer) = h2client::timed(&mut sends[0], first, RPC_TIMEOUT).await;
        let answer = answer.map_err(|e| format!("probe: {e}"))?;
        let resp = answer.decode().map_err(|e| format!("probe: {e}"))?;
        verify_frame(&resp, o.rows).map_err(|e| format!("probe: {e}"))?;
        let frame_len = resp.responses.get("A").map_or(0, |a| a.frames[0].len());
        let (make, expect): (Arc<dyn Fn(usize) -> Bytes + Send + Sync>, _) = if cold {
            let c2 = ctx.clone();
            (
                Arc::new(move |i| h2client::grpc_frame(&request(&c2, "rows", &key(i)))),
                h2client::Expect::Decode { frame_len },
            )
        } else {
            // Every hit asks the same question: framed once, answered by the same bytes.
            let req = h2client::grpc_frame(&request(&ctx, "rows", &key(0)));
            (
                Arc::new(move |_| req.clone()),
                h2client::Expect::Exact(Bytes::from(answer.concat())),
            )
        };
        let expect = Arc::new(expect);
        let callers = sends
            .into_iter()
            .map(|send| H2Caller {
                send,
                make: make.clone(),
                expect: expect.clone(),
                rows: o.rows,
            })
            .collect();
        (Callers::H2(callers), frame_len)
    };

    println!(
        "== {name}: {} rows/frame, upstream body {} bytes, {n} requests (+{warmup} warm-up), \
         concurrency {}, {channels} gRPC connection(s), {} client, plugin pid {}",
        o.rows,
        body.len(),
        o.concurrency,
        o.client,
        plugin.pid
    );
    let w = callers.drive(0, warmup, o.concurrency, false).await;
    if w.errors > 0 {
        return Err(format!(
            "warm-up: {} errors, first: {:?}",
            w.errors, w.first_error
        ));
    }
    let m0 = plugin.metrics().await?;
    let load0 = loadavg();
    let (user0, sys0) = cpu_times(plugin.pid);
    let (cpu0, self0) = (plugin.cpu(), cpu_seconds(std::process::id()));
    let up0 = stub.hits("/rows");
    // Measured requests use keys the warm-up did not (only matters for `cold`).
    let s = callers
        .drive(warmup, n, o.concurrency, o.latency_trace.is_some())
        .await;
    if let Some(path) = &o.latency_trace {
        let mut t = s.trace.clone();
        t.sort_unstable();
        let text: String = t
            .iter()
            .map(|(end, lat)| format!("{end} {lat}\n"))
            .collect();
        std::fs::write(path, text).map_err(|e| format!("--latency-trace {path}: {e}"))?;
        println!("   latency trace: {path} ({} lines)", t.len());
    }
    let (cpu1, self1) = (plugin.cpu(), cpu_seconds(std::process::id()));
    let (user1, sys1) = cpu_times(plugin.pid);
    let load1 = loadavg();
    let up = stub.hits("/rows") - up0;
    let m1 = plugin.metrics().await?;
    let (rss, hwm) = plugin.rss();
    let cpu_us = (cpu1 - cpu0) * 1e6 / n as f64;
    let client_us = (self1 - self0) * 1e6 / n as f64;
    println!(
        "   latency µs: p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}",
        s.pct(0.50),
        s.pct(0.90),
        s.pct(0.99),
        s.max_us()
    );
    println!(
        "   throughput {:.0} QueryData/s over {:.2} s; errors {}{}",
        s.throughput(),
        s.wall.as_secs_f64(),
        s.errors,
        s.first_error
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "   plugin CPU {:.2} s = {cpu_us:.1} µs per QueryData (user {:.1}, sys {:.1}); \
         load client + stub CPU {client_us:.1} µs per QueryData; load average {load0} → {load1}",
        cpu1 - cpu0,
        (user1 - user0) * 1e6 / n as f64,
        (sys1 - sys0) * 1e6 / n as f64,
    );
    println!(
        "   plugin RSS {:.1} MiB (peak {:.1} MiB); frame {frame_len} bytes; upstream requests during the run {up}",
        mib(rss),
        mib(hwm)
    );
    println!(
        "   metrics delta: upstream_requests={} hit={} miss={} coalesced={}",
        m1.upstream - m0.upstream,
        m1.hit - m0.hit,
        m1.miss - m0.miss,
        m1.coalesced - m0.coalesced
    );
    let verdict = match mode {
        Mode::Cold => format!(
            "target ≤ {TARGET_COLD_CPU_US:.0} µs CPU: {}",
            if cpu_us <= TARGET_COLD_CPU_US {
                "met"
            } else {
                "MISSED"
            }
        ),
        _ => format!(
            "targets p99 ≤ 1 ms: {}, ≤ {TARGET_HIT_CPU_US:.0} µs CPU: {}",
            if s.pct(0.99) <= TARGET_HIT_P99_US {
                "met"
            } else {
                "MISSED"
            },
            if cpu_us <= TARGET_HIT_CPU_US {
                "met"
            } else {
                "MISSED"
            }
        ),
    };
    println!("   {verdict}");
    if mode == Mode::Cold && up != n {
        return Err(format!("cold: {up} upstream requests for {n} queries"));
    }
    if mode != Mode::Cold && up != 0 {
        return Err(format!("{name}: {up} upstream requests during a hit run"));
    }
    if s.errors > 0 {
        return Err(format!(
            "{name}: {} wrong answers, first: {:?}",
            s.errors, s.first_error
        ));
    }
    drop(plugin);
    Ok(Summary {
        scenario: name.into(),
        line: format!(
            "| {name} | {n} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {cpu_us:.1} | {client_us:.1} | {:.1} | {load0}→{load1} | {verdict} |",
            s.pct(0.5),
            s.pct(0.9),
            s.pct(0.99),
            s.max_us(),
            s.throughput(),
            mib(hwm)
        ),
    })
}

async fn run_coalesce(o: &Opts) -> Result<Vec<Summary>, String> {
    let delay = Duration::from_millis(o.delay_ms);
    let body = rows_body(o.rows);
    let stub = Stub::start(vec![
        ("/slow", body.clone(), delay),
        ("/slow-nocache", body, delay),
    ])
    .await?;
    let mut out = Vec::new();
    for (variant, path, ttl, env) in [
        ("cache on", "/slow", None, &[][..]),
        (
            "cache off (ttlSeconds 0)",
            "/slow-nocache",
            Some(0),
            &[][..],
        ),
        (
            "cache on, RESTBRIDGE_ANSWER_CACHE=off",
            "/slow",
            None,
            &[("RESTBRIDGE_ANSWER_CACHE", "off")][..],
        ),
    ] {
        let plugin = PluginGuard::spawn(&o.plugin, &o.transport, env)?;
        let channels = o.channels.unwrap_or(8);
        let clients = plugin.data_clients(channels).await?;
        let jd = json!({"cache": {"ttlSeconds": 60}, "rules": [rule("slow", path, ttl)]});
        let uid = format!("coalesce-{}", out.len());
        let ctx = context(&uid, &stub.url(), &jd);
        let before = stub.hits(path);
        let cpu0 = plugin.cpu();
        println!(
            "== coalesce [{variant}]: {} concurrent identical queries over {channels} gRPC connections, upstream delay {} ms, plugin pid {}",
            o.queries, o.delay_ms, plugin.pid
        );
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(o.queries);
        for i in 0..o.queries {
            let mut c = clients[i % clients.len()].clone();
            let req = request(&ctx, "slow", "1");
            let rows = o.rows;
            tasks.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let r = tokio::time::timeout(RPC_TIMEOUT, c.query_data(req)).await;
                let dt = t0.elapsed();
                let ok = match r {
                    Err(_) => Err("timed out".to_owned()),
                    Ok(Err(e)) => Err(format!("rpc: {e}")),
                    Ok(Ok(resp)) => verify_frame(&resp.into_inner(), rows),
                };
                (dt, ok)
            }));
        }
        let mut lat = Vec::with_capacity(o.queries);
        let mut wrong = 0usize;
        let mut first = None;
        for t in tasks {
            match t.await {
                Ok((dt, ok)) => {
                    lat.push(u64::try_from(dt.as_nanos()).unwrap_or(u64::MAX));
                    if let Err(e) = ok {
                        wrong += 1;
                        first.get_or_insert(e);
                    }
                }
                Err(e) => {
                    wrong += 1;
                    first.get_or_insert(format!("task: {e}"));
                }
            }
        }
        let wall = start.elapsed();
        let cpu = plugin.cpu() - cpu0;
        let upstream = stub.hits(path) - before;
        let m = plugin.metrics().await?;
        lat.sort_unstable();
        let s = RunStats {
            latencies_ns: lat,
            wall,
            errors: wrong,
            first_error: first.clone(),
            trace: Vec::new(),
        };
        let (_, hwm) = plugin.rss();
        println!(
            "   upstream requests {upstream}; answered correctly {}/{}; all done in {:.3} s",
            o.queries - wrong,
            o.queries,
            wall.as_secs_f64()
        );
        println!(
            "   latency ms: p50 {:.1}  p99 {:.1}  max {:.1}; plugin CPU {:.3} s = {:.0} µs per query; peak RSS {:.1} MiB",
            s.pct(0.5) / 1000.0,
            s.pct(0.99) / 1000.0,
            s.max_us() / 1000.0,
            cpu,
            cpu * 1e6 / o.queries as f64,
            mib(hwm)
        );
        println!("   metrics: {m}");
        let pass = upstream == 1 && wrong == 0;
        println!(
            "   target 1 upstream request, all answered correctly: {}",
            if pass { "met" } else { "MISSED" }
        );
        out.push(Summary {
            scenario: format!("coalesce [{variant}]"),
            line: format!(
                "| coalesce [{variant}] | {} | {upstream} | {}/{} | {:.3} | {:.1} | {:.1} | {:.0} | {:.1} | {} |",
                o.queries,
                o.queries - wrong,
                o.queries,
                wall.as_secs_f64(),
                s.pct(0.99) / 1000.0,
                s.max_us() / 1000.0,
                cpu * 1e6 / o.queries as f64,
                mib(hwm),
                if pass { "met" } else { "MISSED" }
            ),
        });
        if !pass {
            return Err(format!(
                "coalesce [{variant}]: {upstream} upstream requests, {wrong} wrong answers (first: {first:?})"
            ));
        }
    }
    Ok(out)
}

async fn run_memory(o: &Opts) -> Result<Summary, String> {
    let rows = rows_for_kb(o.body_kb);
    let body = rows_body(rows);
    let stub = Stub::start(vec![("/mem", body.clone(), Duration::ZERO)]).await?;
    let env: &[(&str, &str)] = if o.no_answer_cache {
        &[("RESTBRIDGE_ANSWER_CACHE", "off")]
    } else {
        &[]
    };
    let plugin = PluginGuard::spawn(&o.plugin, &o.transport, env)?;
    let clients = plugin.data_clients(o.channels.unwrap_or(1)).await?;
    let jd = json!({"cache": {"ttlSeconds": 3600, "maxBytes": o.max_bytes},
                    "rules": [rule("mem", "/mem", None)]});
    let ctx = context("memory", &stub.url(), &jd);
    let limit = o.max_bytes + TARGET_RSS_HEADROOM;
    let (rss0, _) = plugin.rss();
    println!(
        "== memory: {:.1} min of random keys, body {} bytes ({rows} rows), maxBytes {} ({:.0} MiB), \
         concurrency {}, answer cache {}, plugin pid {}, RSS at start {:.1} MiB",
        o.minutes,
        body.len(),
        o.max_bytes,
        mib(o.max_bytes),
        o.concurrency,
        if o.no_answer_cache { "off" } else { "on" },
        plugin.pid,
        mib(rss0)
    );
    let deadline = Instant::now() + Duration::from_secs_f64(o.minutes * 60.0);
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let mut tasks = Vec::new();
    for w in 0..o.concurrency {
        let mut c = clients[w % clients.len()].clone();
        let ctx = ctx.clone();
        let (done, count, errors, first_error) = (
            done.clone(),
            count.clone(),
            errors.clone(),
            first_error.clone(),
        );
        // xorshift64*, seeded per worker: random, distinct keys.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0xD1B5_4A32_D192_ED03);
        tasks.push(tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let k = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_string();
                let r =
                    tokio::time::timeout(RPC_TIMEOUT, c.query_data(request(&ctx, "mem", &k))).await;
                let check = match r {
                    Err(_) => Err("timed out".to_owned()),
                    Ok(Err(e)) => Err(format!("rpc: {e}")),
                    Ok(Ok(resp)) => match resp.into_inner().responses.get("A") {
                        Some(a) if a.status == 200 && a.frames.len() == 1 => Ok(()),
                        Some(a) => Err(format!("status {}: {}", a.status, a.error)),
                        None => Err("no refId A".to_owned()),
                    },
                };
                count.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = check {
                    errors.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut f) = first_error.lock() {
                        f.get_or_insert(e);
                    }
                }
            }
        }));
    }
    let start = Instant::now();
    let mut peak = 0u64;
    let mut samples = 0usize;
    let cpu0 = plugin.cpu();
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(o.sample_secs))).await;
        let (rss, _) = plugin.rss();
        peak = peak.max(rss);
        samples += 1;
        if samples % 6 == 1 || Instant::now() >= deadline {
            let m = plugin.metrics().await.unwrap_or_default();
            println!(
                "   t={:>5.0} s  RSS {:>6.1} MiB  peak {:>6.1} MiB  queries {:>8}  cache {:.1} MiB",
                start.elapsed().as_secs_f64(),
                mib(rss),
                mib(peak),
                count.load(Ordering::Relaxed),
                m.cache_bytes / (1024.0 * 1024.0)
            );
            let _ = std::io::stdout().flush();
        }
        if plugin.rss().0 == 0 {
            return Err(format!("the plugin died; stderr: {:?}", plugin.tail()));
        }
    }
    done.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(RPC_TIMEOUT, t).await;
    }
    let cpu = plugin.cpu() - cpu0;
    let (rss, hwm) = plugin.rss();
    let m = plugin.metrics().await?;
    let n = count.load(Ordering::Relaxed);
    let errs = errors.load(Ordering::Relaxed);
    let pass = hwm < limit && peak < limit;
    println!(
        "   {n} queries ({:.0}/s), {errs} errors{}; upstream requests {}; plugin CPU {:.0} µs per query",
        n as f64 / start.elapsed().as_secs_f64(),
        first_error
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default(),
        stub.hits("/mem"),
        cpu * 1e6 / n.max(1) as f64
    );
    println!(
        "   RSS at end {:.1} MiB; peak sampled {:.1} MiB; VmHWM {:.1} MiB; limit {:.0} MiB: {}; {m}",
        mib(rss),
        mib(peak),
        mib(hwm),
        mib(limit),
        if pass { "met" } else { "MISSED" }
    );
    if errs > 0 {
        return Err(format!("memory: {errs} failed queries"));
    }
    Ok(Summary {
        scenario: "memory".into(),
        line: format!(
            "| memory | {:.1} min | {n} | {:.1} | {:.1} | {:.1} | {:.0} | {} |",
            o.minutes,
            mib(rss0),
            mib(peak),
            mib(hwm),
            mib(limit),
            if pass { "met" } else { "MISSED" }
        ),
    })
}

fn run_startup(o: &Opts) -> Result<Summary, String> {
    let exe = o.plugin.as_str();
    println!(
        "== startup: {} runs of exec → handshake line ({exe})",
        o.runs
    );
    let mut times = Vec::with_capacity(o.runs);
    for _ in 0..o.runs {
        let p = PluginGuard::spawn(&o.plugin, &o.transport, &[])?;
        times.push(p.startup);
        drop(p); // SIGKILL by PID, reaped
    }
    let first = times.first().copied().unwrap_or_default();
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    println!(
        "   handshake ms: median {:.2}  min {:.2}  max {:.2}  (first run {:.2})",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        ms(first)
    );
    let size = std::fs::metadata(exe).map(|m| m.len()).unwrap_or(0);
    let tmp = std::env::temp_dir().join(format!("gpx_restbridge.stripped.{}", std::process::id()));
    let stripped = match Command::new("strip")
        .arg("-o")
        .arg(&tmp)
        .arg(exe)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => {
            let s = std::fs::metadata(&tmp).map(|m| m.len()).ok();
            let _ = std::fs::remove_file(&tmp);
            s
        }
        Ok(out) => {
            println!(
                "   strip failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            println!("   `strip` is not available ({e}); stripped size not measured");
            None
        }
    };
    println!(
        "   binary {:.2} MiB as built (bench = release profile, line tables), stripped {}",
        mib(size),
        stripped.map_or_else(
            || "n/a".to_owned(),
            |s| format!("{:.2} MiB ({s} bytes)", mib(s))
        )
    );
    Ok(Summary {
        scenario: "startup".into(),
        line: format!(
            "| startup | {} runs | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            o.runs,
            ms(median),
            ms(times[0]),
            ms(times[times.len() - 1]),
            mib(size),
            stripped.map_or_else(|| "n/a".to_owned(), |s| format!("{:.2}", mib(s)))
        ),
    })
}

// ---------------------------------------------------------------------------------------

async fn run(o: Opts) -> Result<Vec<Summary>, String> {
    let mut out = Vec::new();
    let all = o.scenario == "all";
    let known = [
        "all",
        "hit",
        "hit-no-answer-cache",
        "cold",
        "coalesce",
        "memory",
        "soak",
        "startup",
    ];
    if !known.contains(&o.scenario.as_str()) {
        return Err(format!(
            "unknown scenario {:?}; one of {}",
            o.scenario,
            known.join(", ")
        ));
    }
    if all || o.scenario == "hit" {
        out.push(run_throughput(&o, Mode::Hit).await?);
    }
    if all || o.scenario == "hit-no-answer-cache" {
        out.push(run_throughput(&o, Mode::HitNoAnswerCache).await?);
    }
    if all || o.scenario == "cold" {
        out.push(run_throughput(&o, Mode::Cold).await?);
    }
    if all || o.scenario == "coalesce" {
        out.extend(run_coalesce(&o).await?);
    }
    if o.scenario == "memory" {
        out.push(run_memory(&o).await?);
    }
    if o.scenario == "soak" {
        out.push(soak::run_soak(&o).await?);
    }
    if all || o.scenario == "startup" {
        let o2 = o.clone();
        out.push(
            tokio::task::spawn_blocking(move || run_startup(&o2))
                .await
                .map_err(|e| e.to_string())??,
        );
    }
    Ok(out)
}

fn main() -> ExitCode {
    let o = match Opts::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("grpc_load: {e}");
            return ExitCode::from(2);
        }
    };
    let (cores, model) = machine();
    println!(
        "grpc_load: scenario {}; {cores} cores (nproc), CPU {model}; CLK_TCK {}; plugin transport {}; load client threads {}",
        o.scenario,
        clock_ticks(),
        o.transport,
        o.client_threads
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.client_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("grpc_load: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(o));
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(rows) => {
            println!("\nsummary ({cores} cores, {model}):");
            for r in rows {
                println!("{}  <- {}", r.line, r.scenario);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("grpc_load: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
