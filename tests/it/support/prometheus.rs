//! A real Prometheus server for integration tests.
//!
//! [`Prometheus::start`] backfills the given OpenMetrics text with
//! `promtool tsdb create-blocks-from openmetrics` into a fresh temp dir, starts
//! `prometheus` on `127.0.0.1:<free port>` with that dir as its TSDB, and waits until
//! `GET /-/ready` answers 200. Dropping the value stops the server (SIGTERM, then SIGKILL
//! after ~5 s) and deletes the temp dir.
//!
//! When `prometheus` or `promtool` is not installed, `start` prints
//! `skipping: prometheus/promtool not installed (apt-get install prometheus)` to stderr
//! and returns `Ok(None)`, so a test can return early:
//!
//! ```ignore
//! let Some(prom) = Prometheus::start(&demo_openmetrics())? else { return Ok(()) };
//! // prom.base_url == "http://127.0.0.1:PORT" (no trailing slash)
//! ```
//!
//! [`demo_openmetrics`] and [`demo_expected`] give a small deterministic data set whose
//! values round-trip exactly through Prometheus' JSON (see [`demo_openmetrics`]).
//!
//! Notes:
//! * Do not keep a `Prometheus` in a `static`: statics are never dropped, so the server
//!   would outlive the test binary. Start one per test (≈0.3 s) instead.
//! * If the test process is killed hard (SIGKILL), `Drop` does not run and the server and
//!   its temp dir (`$TMPDIR/restbridge-prom-*`) are left behind.
//! * Prometheus' 5-minute lookback means a range query that reaches past the last
//!   backfilled sample repeats the last value for up to 5 minutes after it.
//! * Instant queries (`/api/v1/query`) default to `time=now`, far after the backfilled
//!   history, and so return `"result":[]`: always pass an explicit `time=`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Readiness poll: at most this many `GET /-/ready` attempts ...
const READY_TRIES: u32 = 200;
/// ... this far apart (200 × 50 ms ≈ 10 s, plus connect/read time).
const READY_STEP: Duration = Duration::from_millis(50);
/// How long `Drop` waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Poll step while waiting for the process to exit.
const STOP_STEP: Duration = Duration::from_millis(50);
/// How often `start` picks a new port when the chosen one was taken meanwhile.
const PORT_ATTEMPTS: u32 = 3;

/// First timestamp of the demo data: 2024-01-01T00:00:00Z, in Unix seconds.
pub const DEMO_START: i64 = 1_704_067_200;
/// Spacing of the demo samples, in seconds.
pub const DEMO_STEP: i64 = 60;
/// Samples per demo series: 00:00:00 .. 01:00:00 inclusive.
pub const DEMO_POINTS: i64 = 61;
/// Metric name of the demo gauge.
pub const DEMO_METRIC: &str = "demo_temperature_celsius";

/// Counter that makes temp dir names unique within one process.
static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temp directory that is deleted (recursively) when dropped.
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/restbridge-prom-<pid>-<counter>-<nanos>`; fails if it exists.
    fn new() -> Result<TempDir, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "restbridge-prom-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir(&path)
            .map_err(|e| format!("cannot create temp dir {}: {e}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover dir must not turn a passing test into a panic.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A real Prometheus server on 127.0.0.1 with backfilled, deterministic history.
///
/// Stopped (SIGTERM by PID, SIGKILL after ~5 s) and its temp dir removed on drop.
pub struct Prometheus {
    /// The running `prometheus` process.
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    /// `127.0.0.1:PORT`, e.g. for raw [`http_get`] calls.
    pub addr: SocketAddr,
    /// Temp dir holding `prometheus.yml`, `data/` (the TSDB) and `prometheus.log`.
    /// Declared last so it is removed after the process is gone.
    dir: TempDir,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("pid", &self.pid())
            .field("base_url", &self.base_url)
            .field("addr", &self.addr)
            .field("dir", &self.dir.path)
            .finish_non_exhaustive()
    }
}

impl Prometheus {
    /// Starts Prometheus with the given OpenMetrics text (timestamps in seconds, ending with
    /// `# EOF`) backfilled via `promtool tsdb create-blocks-from openmetrics`.
    ///
    /// Returns `Ok(None)` after printing
    /// `skipping: prometheus/promtool not installed (apt-get install prometheus)` to stderr
    /// when the binaries are absent (looked up in `PATH`, then `/usr/bin`), so tests can skip.
    /// `Err(String)` on real failures, with promtool's output or the tail of Prometheus'
    /// log in the message.
    ///
    /// The server runs with `--storage.tsdb.retention.time=100y` (the default 15 d would
    /// delete old backfilled blocks at start-up) and a config without scrape targets, so the
    /// TSDB holds exactly the backfilled samples.
    pub fn start(openmetrics: &str) -> Result<Option<Prometheus>, String> {
        let (Some(prometheus_bin), Some(promtool_bin)) =
            (find_binary("prometheus"), find_binary("promtool"))
        else {
            if std::env::var_os("RESTBRIDGE_REQUIRE_SERVERS").is_some() {
                return Err(
                    "prometheus/promtool not installed, and RESTBRIDGE_REQUIRE_SERVERS \
                            is set (CI must run the real-server suites)"
                        .to_owned(),
                );
            }
            eprintln!("skipping: prometheus/promtool not installed (apt-get install prometheus)");
            return Ok(None);
        };

        let dir = TempDir::new()?;
        let data_dir = dir.path.join("data");
        let config = dir.path.join("prometheus.yml");
        let om_file = dir.path.join("backfill.om");
        let log_path = dir.path.join("prometheus.log");

        fs::create_dir(&data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        fs::write(
            &config,
            "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\nscrape_configs: []\n",
        )
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        fs::write(&om_file, openmetrics)
            .map_err(|e| format!("cannot write {}: {e}", om_file.display()))?;

        backfill(&promtool_bin, &om_file, &data_dir)?;

        let mut last_err = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut child = spawn(&prometheus_bin, &config, &data_dir, &log_path, addr)?;
            match wait_ready(&mut child, addr, &log_path) {
                Ok(()) => {
                    return Ok(Some(Prometheus {
                        child,
                        base_url: format!("http://{addr}"),
                        addr,
                        dir,
                    }));
                }
                Err(e) => {
                    stop_child(&mut child);
                    // The port was free when we looked, but someone else may have bound it
                    // before Prometheus did (see `free_port`): try another one.
                    let port_taken = read_tail(&log_path).contains("address already in use");
                    last_err = e;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last_err)
    }

    /// OS process id of the running `prometheus`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        stop_child(&mut self.child);
        // `self.dir` is dropped right after this, which deletes the temp dir.
    }
}

/// Sends SIGTERM to the child by PID, polls `try_wait` for up to ~5 s in 50 ms steps, then
/// falls back to `Child::kill` (SIGKILL) and reaps the process.
fn stop_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return; // Already exited and reaped: its PID may belong to someone else now.
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) has no memory-safety preconditions. `pid` is our own child, which
        // has not been reaped yet (try_wait above returned None), so the PID cannot have been
        // reused by another process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) => sleep(STOP_STEP),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Looks for an executable `name` in each `PATH` entry, then in `/usr/bin`.
fn find_binary(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(std::iter::once(PathBuf::from("/usr/bin")))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `promtool tsdb create-blocks-from openmetrics OM_FILE DATA_DIR`.
fn backfill(promtool: &Path, om_file: &Path, data_dir: &Path) -> Result<(), String> {
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(om_file)
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", promtool.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool backfill failed ({}):\n{}{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout)),
            tail(&String::from_utf8_lossy(&out.stderr)),
        ))
    }
}

/// Picks a free loopback port by binding `127.0.0.1:0`, reading the port and dropping the
/// listener.
///
/// Tiny race: between dropping the listener here and Prometheus binding the port, another
/// process could take it. Prometheus then exits with "address already in use", which
/// `Prometheus::start` detects and retries with a new port (up to `PORT_ATTEMPTS` times).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| format!("cannot bind 127.0.0.1:0 to find a free port: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot read local address of probe listener: {e}"))?
        .port();
    drop(listener);
    Ok(port)
}

fn spawn(
    prometheus: &Path,
    config: &Path,
    data_dir: &Path,
    log_path: &Path,
    addr: SocketAddr,
) -> Result<Child, String> {
    // Truncate the log per attempt so a retry's tail is not mixed with the previous one.
    let log =
        File::create(log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_out = log
        .try_clone()
        .map_err(|e| format!("cannot clone log file handle: {e}"))?;
    let mut config_flag = std::ffi::OsString::from("--config.file=");
    config_flag.push(config);
    let mut data_flag = std::ffi::OsString::from("--storage.tsdb.path=");
    data_flag.push(data_dir);
    Command::new(prometheus)
        .arg(config_flag)
        .arg(data_flag)
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(log_out)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", prometheus.display()))
}

/// Polls `GET /-/ready` until it answers 200: at most `READY_TRIES` attempts, `READY_STEP`
/// apart. Fails early if the process exits.
fn wait_ready(child: &mut Child, addr: SocketAddr, log_path: &Path) -> Result<(), String> {
    let started = Instant::now();
    let mut last = String::from("no attempt made");
    for _ in 0..READY_TRIES {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(format!(
                    "prometheus on {addr} exited during start-up ({status}); log tail:\n{}",
                    read_tail(log_path)
                ));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("cannot poll prometheus process: {e}")),
        }
        match http_get(addr, "/-/ready") {
            Ok((200, _)) => return Ok(()),
            Ok((status, body)) => last = format!("HTTP {status}: {}", body.trim()),
            Err(e) => last = e,
        }
        sleep(READY_STEP);
    }
    Err(format!(
        "prometheus on {addr} not ready after {READY_TRIES} polls of /-/ready ({:.1} s); \
         last answer: {last}; log tail:\n{}",
        started.elapsed().as_secs_f64(),
        read_tail(log_path)
    ))
}

/// Minimal blocking `GET` over a raw HTTP/1.0 connection (no HTTP crate).
///
/// `path_and_query` must already be URL-encoded (e.g.
/// `/api/v1/query?query=demo_temperature_celsius`). Returns the status code and the body
/// (lossily decoded as UTF-8). Connect timeout 1 s, read/write timeouts 10 s.
pub fn http_get(addr: SocketAddr, path_and_query: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| format!("set timeouts on {addr}: {e}"))?;
    let request = format!("GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed HTTP response from {addr}: {}", tail(&text)))?;
    // Status line: "HTTP/1.0 200 OK".
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("malformed HTTP status line from {addr}: {}", tail(head)))?;
    Ok((status, body.to_string()))
}

/// Last ~40 lines of the log file (or a note why it could not be read).
fn read_tail(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => tail(&String::from_utf8_lossy(&bytes)),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Last 40 lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    let mut out = lines[from..].join("\n");
    out.push('\n');
    out
}

/// Demo value of `sensor` at sample index `i` (0-based), or `None` for an unknown sensor.
///
/// * sensor `a`: `20 + i * 0.125`  → 20, 20.125, 20.25, … 27.5
/// * sensor `b`: `15 - i * 0.375`  → 15, 14.625, 14.25, … 0 (at i = 40) … -7.5
///
/// All values are multiples of 1/8 with small magnitude, so they are exact in `f64`, and
/// Prometheus (Go's shortest round-trip formatting) prints them exactly as Rust's `{}` does
/// (`"20.125"`, `"-7.5"`, `"0"`, `"20"`).
fn demo_value(sensor: &str, i: i64) -> Option<f64> {
    // i ≤ 60, so the i64 → f64 conversion is exact.
    let i = i as f64;
    match sensor {
        "a" => Some(20.0 + i * 0.125),
        "b" => Some(15.0 - i * 0.375),
        _ => None,
    }
}

/// OpenMetrics text for the demo data set, ready for [`Prometheus::start`].
///
/// One gauge, [`DEMO_METRIC`] = `demo_temperature_celsius`, with two series
/// `{sensor="a",site="lab"}` and `{sensor="b",site="lab"}`, each with [`DEMO_POINTS`] = 61
/// samples every [`DEMO_STEP`] = 60 s from [`DEMO_START`] = 2024-01-01T00:00:00Z
/// (1704067200) to 2024-01-01T01:00:00Z (1704070800) inclusive. Sample `i` sits at
/// `1704067200 + 60 * i`; its value is
///
/// * sensor `a`: `20 + i * 0.125` (20 … 27.5, rising)
/// * sensor `b`: `15 - i * 0.375` (15 … -7.5, falling, exactly 0 at i = 40 / 00:40:00)
///
/// [`demo_expected`] returns the same points for assertions.
pub fn demo_openmetrics() -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    // Writing into a String cannot fail, so the fmt::Results are ignored.
    let _ = writeln!(
        out,
        "# HELP {DEMO_METRIC} Demo temperature for RestBridge integration tests."
    );
    let _ = writeln!(out, "# TYPE {DEMO_METRIC} gauge");
    for sensor in ["a", "b"] {
        for (ts, v) in demo_expected(sensor) {
            let _ = writeln!(
                out,
                "{DEMO_METRIC}{{sensor=\"{sensor}\",site=\"lab\"}} {v} {ts}"
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The exact `(epoch_seconds, value)` points of demo series `sensor` (`"a"` or `"b"`), in
/// time order; empty for any other sensor. See [`demo_openmetrics`] for the formula.
///
/// A `query_range` over 2024-01-01T00:00:00Z..01:00:00Z with `step=60` returns exactly these
/// points (timestamps as JSON numbers, values as strings formatted like Rust's `{}`).
pub fn demo_expected(sensor: &str) -> Vec<(i64, f64)> {
    (0..DEMO_POINTS)
        .filter_map(|i| demo_value(sensor, i).map(|v| (DEMO_START + i * DEMO_STEP, v)))
        .collect()
}
