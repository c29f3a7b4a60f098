//! Real upstream servers on 127.0.0.1 for the `http_paging` tests: finding what
//! `tests/http_paging/install.sh` installed, starting a server on a free port, a bounded
//! readiness poll, counting the requests it logged, and stopping it by its PID on drop.
//!
//! Where the binaries are looked up (the same places `install.sh` puts them):
//!
//! | server | path | override |
//! |---|---|---|
//! | json-server 0.17.4 | `$RESTBRIDGE_SERVERS_DIR/json-server/node_modules/json-server/lib/cli/bin.js`, run with `node` from `PATH` | — |
//! | datasette 1.0a41 | `$RESTBRIDGE_SERVERS_DIR/datasette-1.0a41/bin/datasette` | — |
//! | datasette 0.65.5 | `$RESTBRIDGE_SERVERS_DIR/datasette-0.65.5/bin/datasette` | — |
//! | etcd 3.4 | `etcd` in `PATH`, else `/usr/bin/etcd` (Debian `etcd-server`) | — |
//!
//! `RESTBRIDGE_SERVERS_DIR` defaults to `/tmp/restbridge-servers`. A missing server makes
//! its test print `skipping: …` and return, unless `RESTBRIDGE_REQUIRE_SERVERS` is set
//! (CI), which turns the skip into a failure.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Readiness poll: at most this many attempts …
const READY_TRIES: u32 = 300;
/// … this far apart (≈ 15 s in all, plus connect time).
const READY_STEP: Duration = Duration::from_millis(50);
/// How long `Drop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Starting on a port another process took meanwhile: try this many ports.
const PORT_ATTEMPTS: u32 = 3;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where `install.sh` put the npm and pip servers.
pub fn servers_dir() -> PathBuf {
    std::env::var_os("RESTBRIDGE_SERVERS_DIR")
        .map_or_else(|| PathBuf::from("/tmp/restbridge-servers"), PathBuf::from)
}

/// `None` after printing `skipping: …` when `path` is absent; panics instead when
/// `RESTBRIDGE_REQUIRE_SERVERS` is set.
pub fn require(what: &str, path: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(p) = path.filter(|p| p.exists()) {
        return Some(p);
    }
    assert!(
        std::env::var_os("RESTBRIDGE_REQUIRE_SERVERS").is_none(),
        "{what} is not installed, and RESTBRIDGE_REQUIRE_SERVERS is set \
         (run: bash tests/http_paging/install.sh)"
    );
    println!("skipping: {what} not installed (run: bash tests/http_paging/install.sh)");
    None
}

/// `name` in `PATH`, else `/usr/bin/name`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A scratch directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "restbridge-paging-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A free loopback port (bound, then released: another process may take it, hence the
/// retries in [`Server::start`]).
pub fn free_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// One running server process; stopped by its PID (SIGTERM, SIGKILL after 10 s) on drop.
pub struct Server {
    pub name: String,
    child: Child,
    /// The client port (HTTP API).
    pub port: u16,
    /// Extra ports the server was given (e.g. etcd's peer and metrics ports).
    pub extra_ports: Vec<u16>,
    /// stdout + stderr of the server.
    pub log: PathBuf,
    /// Seconds from spawn until the readiness URL answered.
    pub ready_secs: f64,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Server({} pid {} port {})",
            self.name,
            self.child.id(),
            self.port
        )
    }
}

impl Server {
    /// Starts `make(port, extra_ports)` with output to `dir/NAME.log`, on a free port plus
    /// `extra` more, and waits until `GET ready_path` gets any HTTP answer (bounded).
    pub fn start(
        name: &str,
        dir: &Path,
        extra: usize,
        ready_path: &str,
        make: impl Fn(u16, &[u16]) -> Command,
    ) -> Server {
        let mut last_err = String::new();
        for attempt in 0..PORT_ATTEMPTS {
            let port = free_port();
            let extra_ports: Vec<u16> = (0..extra).map(|_| free_port()).collect();
            let log = dir.join(format!("{name}-{attempt}.log"));
            let out = File::create(&log).unwrap();
            let err = out.try_clone().unwrap();
            let mut cmd = make(port, &extra_ports);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err));
            let started = Instant::now();
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
            let mut server = Server {
                name: name.to_owned(),
                child,
                port,
                extra_ports,
                log,
                ready_secs: 0.0,
            };
            match server.wait_ready(ready_path) {
                Ok(()) => {
                    server.ready_secs = started.elapsed().as_secs_f64();
                    println!(
                        "{name}: pid {} ready on 127.0.0.1:{port} in {:.2} s",
                        server.child.id(),
                        server.ready_secs
                    );
                    return server;
                }
                Err(e) => last_err = e, // dropped: stopped by PID
            }
        }
        panic!("{name} did not start: {last_err}");
    }

    fn wait_ready(&mut self, path: &str) -> Result<(), String> {
        let addr = self.addr();
        for _ in 0..READY_TRIES {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.log_tail()));
            }
            if http(addr, "GET", path, &[], None).is_ok() {
                return Ok(());
            }
            std::thread::sleep(READY_STEP);
        }
        Err(format!(
            "no answer from {path} after {READY_TRIES} tries: {}",
            self.log_tail()
        ))
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let t = self.log_text();
        let start = t.len().saturating_sub(2000);
        t.get(start..).unwrap_or(&t).to_owned()
    }

    /// Log lines containing `needle` (request lines of the server's access log).
    pub fn logged(&self, needle: &str) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(strip_ansi)
            .collect()
    }

    /// Access-log lines with `needle` once their number has settled: servers write the
    /// line after sending the answer, so poll (bounded) until at least `expected` are there,
    /// then once more after a short pause so that extra requests would show too.
    pub fn settled(&self, needle: &str, expected: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.logged(needle).len() < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(150));
        self.logged(needle)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id() as libc::pid_t;
            // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child,
            // not yet reaped (try_wait said it is running), so the PID cannot be reused.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A plain HTTP/1.1 request with `Connection: close` (setup calls and readiness polls; the
/// plugin itself is never bypassed in the tests). Returns status, raw headers and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<(u16, String, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header end in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, head.to_owned(), body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Base64 (standard alphabet, padded), for etcd keys and values.
pub fn b64(data: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = data.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(T[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn b64_matches_known_values() {
    assert_eq!(b64("sensor/"), "c2Vuc29yLw==");
    assert_eq!(b64("sensor0"), "c2Vuc29yMA==");
    assert_eq!(b64("21.5"), "MjEuNQ==");
    assert_eq!(b64("abc"), "YWJj");
}
