//! Real servers on 127.0.0.1 for the `http_auth` tests, each started on a free port with a
//! bounded readiness poll and stopped by PID when dropped:
//!
//! * [`Httpbin`]: Debian `python3-httpbin` (`python3 -m httpbin.core`, real-apis.md §2.7);
//! * [`PromAuth`]: Prometheus with `--web.config.file` basic auth (bcrypt via `htpasswd`,
//!   real-apis.md §1.3);
//! * [`TlsServer`]: Python's `http.server` behind an `ssl` context that requires a client
//!   certificate, with a throwaway CA, server and client certificate made by `openssl`.
//!
//! Each `start` returns `None` after [`skip_or_fail`] when a binary is missing.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    find_binary, free_port, log_tail, skip_or_fail, system_python, wait_http, ServerProcess,
    TempDir,
};

const PORT_ATTEMPTS: u32 = 3;

// ---------------------------------------------------------------------------------------
// httpbin
// ---------------------------------------------------------------------------------------

/// httpbin 0.7 (Flask/Werkzeug dev server) on 127.0.0.1.
#[derive(Debug)]
pub struct Httpbin {
    pub server: ServerProcess,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Httpbin {
    pub fn start() -> Option<Httpbin> {
        let python = system_python().filter(|py| {
            Command::new(py)
                .args(["-c", "import httpbin.core, brotli"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let Some(python) = python else {
            skip_or_fail("httpbin not installed (apt-get install python3-httpbin)");
            return None;
        };
        let dir = TempDir::new("httpbin");
        let log = dir.join("httpbin.log");
        let started = Instant::now();
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let out = fs::File::create(&log).unwrap();
            let child = Command::new(&python)
                .args(["-m", "httpbin.core", "--host", "127.0.0.1", "--port"])
                .arg(port.to_string())
                .env("PYTHONUNBUFFERED", "1")
                .current_dir(&dir.path)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("spawn httpbin");
            let mut server = ServerProcess {
                child,
                name: "httpbin".into(),
            };
            match wait_http(&mut server, addr, "/get", &[], 200, &log) {
                Ok(_) => {
                    println!(
                        "httpbin pid {} on {addr}, ready in {:.2} s",
                        server.pid(),
                        started.elapsed().as_secs_f64()
                    );
                    return Some(Httpbin {
                        server,
                        addr,
                        url: format!("http://{addr}"),
                        log,
                        _dir: dir,
                    });
                }
                Err(e) => {
                    drop(server);
                    if !e.contains("already in use") {
                        panic!("httpbin did not start: {e}");
                    }
                    last = e;
                }
            }
        }
        panic!("httpbin did not start: {last}");
    }

    /// How many requests httpbin logged whose request line starts with `GET {path}`
    /// (Werkzeug logs `"GET /status/503 HTTP/1.1" 503 -` after answering).
    pub fn hits(&self, path: &str) -> usize {
        let needle = format!("\"GET {path}");
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// Waits (≤ 2 s) until the log shows `n` hits of `path`, then returns the count.
    pub fn hits_settled(&self, path: &str, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.hits(path) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.hits(path)
    }
}

// ---------------------------------------------------------------------------------------
// Prometheus with basic auth
// ---------------------------------------------------------------------------------------

/// A bcrypt hash of `password` (cost 10): `htpasswd -nbBC 10 "" PASSWORD`, else Python's
/// `bcrypt` module. `None` when neither is available.
pub fn bcrypt_hash(password: &str) -> Option<String> {
    if let Some(htpasswd) = find_binary("htpasswd") {
        let out = Command::new(htpasswd)
            .args(["-nbBC", "10", "", password])
            .output()
            .ok()?;
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            let hash = text.trim().trim_start_matches(':').to_owned();
            if hash.starts_with("$2") {
                return Some(hash);
            }
        }
    }
    let python = system_python()?;
    let out = Command::new(python)
        .args([
            "-c",
            "import bcrypt,sys;print(bcrypt.hashpw(sys.argv[1].encode(),bcrypt.gensalt(10)).decode())",
            password,
        ])
        .output()
        .ok()?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && hash.starts_with("$2")).then_some(hash)
}

/// Prometheus with `--web.config.file` requiring basic auth for `user`/`password`.
#[derive(Debug)]
pub struct PromAuth {
    pub server: ServerProcess,
    pub url: String,
    _dir: TempDir,
}

impl PromAuth {
    pub fn start(user: &str, password: &str) -> Option<PromAuth> {
        let Some(prometheus) = find_binary("prometheus") else {
            skip_or_fail("prometheus not installed (apt-get install prometheus)");
            return None;
        };
        let Some(hash) = bcrypt_hash(password) else {
            skip_or_fail("no bcrypt tool (apt-get install apache2-utils)");
            return None;
        };
        let dir = TempDir::new("prom-auth");
        let web = dir.join("web.yml");
        fs::write(&web, format!("basic_auth_users:\n  {user}: '{hash}'\n")).unwrap();
        let config = dir.join("prometheus.yml");
        fs::write(
            &config,
            "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
        )
        .unwrap();
        let data = dir.join("data");
        fs::create_dir_all(&data).unwrap();
        let log = dir.join("prometheus.log");
        let basic = format!("Basic {}", b64(format!("{user}:{password}").as_bytes()));
        let started = Instant::now();
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let out = fs::File::create(&log).unwrap();
            let child = Command::new(&prometheus)
                .arg(flag("--config.file=", &config))
                .arg(flag("--storage.tsdb.path=", &data))
                .arg(flag("--web.config.file=", &web))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("spawn prometheus");
            let mut server = ServerProcess {
                child,
                name: "prometheus".into(),
            };
            // Readiness with the credentials (without them even /-/ready is 401).
            match wait_http(
                &mut server,
                addr,
                "/-/ready",
                &[("Authorization", &basic)],
                200,
                &log,
            ) {
                Ok(_) => {
                    println!(
                        "prometheus (basic auth) pid {} on {addr}, ready in {:.2} s",
                        server.pid(),
                        started.elapsed().as_secs_f64()
                    );
                    return Some(PromAuth {
                        server,
                        url: format!("http://{addr}"),
                        _dir: dir,
                    });
                }
                Err(e) => {
                    drop(server);
                    if !log_tail(&log).contains("address already in use") {
                        panic!("prometheus did not start: {e}");
                    }
                    last = e;
                }
            }
        }
        panic!("prometheus did not start: {last}");
    }
}

fn flag(name: &str, path: &Path) -> std::ffi::OsString {
    let mut f = std::ffi::OsString::from(name);
    f.push(path);
    f
}

/// Standard base64 (for the test's own basic-auth header).
pub fn b64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

/// PEM texts of a throwaway PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: String,
    pub client_cert: String,
    pub client_key: String,
    /// A second, unrelated client identity (signed by another CA).
    pub rogue_cert: String,
    pub rogue_key: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA (`ca.pem`), a server certificate for `127.0.0.1` and `tls.restbridge.test`
/// (for `serverName`) and a client
/// certificate (`CN=restbridge-client`), all P-256, valid for 1 day, in `dir`; plus a rogue
/// client certificate from an unrelated CA.
pub fn make_pki(dir: &Path) -> Pki {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "1"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=RestBridge test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let leaf = |name: &str, cn: &str, ext: &str, ca_name: &str| {
        fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let mut req = vec!["req", "-new", "-nodes"];
        req.extend(ec);
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subj = format!("/CN={cn}");
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req);
        let ca_pem = format!("{ca_name}.pem");
        let ca_key = format!("{ca_name}.key");
        let pem = format!("{name}.pem");
        let extfile = format!("{name}.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &pem,
                "-extfile",
                &extfile,
            ],
        );
    };
    leaf(
        "server",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:tls.restbridge.test\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        "ca",
    );
    let client_ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                      extendedKeyUsage=clientAuth\n";
    leaf("client", "restbridge-client", client_ext, "ca");
    let mut rogue_ca = vec!["req", "-x509", "-nodes", "-days", "1"];
    rogue_ca.extend(ec);
    rogue_ca.extend([
        "-keyout",
        "rogueca.key",
        "-out",
        "rogueca.pem",
        "-subj",
        "/CN=Rogue CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &rogue_ca);
    leaf("rogue", "rogue-client", client_ext, "rogueca");
    let read = |n: &str| fs::read_to_string(dir.join(n)).unwrap();
    Pki {
        ca_cert: read("ca.pem"),
        client_cert: read("client.pem"),
        client_key: read("client.key"),
        rogue_cert: read("rogue.pem"),
        rogue_key: read("rogue.key"),
    }
}

const TLS_SERVER_PY: &str = r#"
import http.server, json, ssl, sys
cert, key, ca = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        # Handshake here, in the connection's own thread, with a bound.
        self.request.settimeout(5)
        self.request.do_handshake()
        super().setup()
    def do_GET(self):
        peer = self.connection.getpeercert() or {}
        cn = ""
        for rdn in peer.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        body = json.dumps({"ok": True, "path": self.path, "client": cn}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        sys.stderr.write("request %s\n" % (fmt % args))
        sys.stderr.flush()

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def get_request(self):
        sock, addr = self.socket.accept()
        return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr
    def handle_error(self, request, client_address):
        sys.stderr.write("tls error from %s: %s\n" % (client_address, sys.exc_info()[1]))
        sys.stderr.flush()

srv = Server(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// An HTTPS server on 127.0.0.1 that requires a client certificate signed by the test CA.
#[derive(Debug)]
pub struct TlsServer {
    pub server: ServerProcess,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub pki: Pki,
    pub log: PathBuf,
    _dir: TempDir,
}

impl TlsServer {
    pub fn start() -> Option<TlsServer> {
        if find_binary("openssl").is_none() {
            skip_or_fail("openssl not installed (apt-get install openssl)");
            return None;
        }
        let python = system_python().filter(|py| {
            Command::new(py)
                .args(["-c", "import ssl, http.server"])
                .status()
                .is_ok_and(|s| s.success())
        });
        let Some(python) = python else {
            skip_or_fail("python3 with ssl not installed (apt-get install python3)");
            return None;
        };
        let dir = TempDir::new("tls");
        let started = Instant::now();
        let pki = make_pki(&dir.path);
        let pki_time = started.elapsed();
        let script = dir.join("tls_server.py");
        fs::write(&script, TLS_SERVER_PY).unwrap();
        let log = dir.join("tls.log");
        let mut child = Command::new(python)
            .arg(&script)
            .arg(dir.join("server.pem"))
            .arg(dir.join("server.key"))
            .arg(dir.join("ca.pem"))
            .current_dir(&dir.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn python TLS server");
        let stdout = child.stdout.take().unwrap();
        let server = ServerProcess {
            child,
            name: "tls-server".into(),
        };
        // The script prints its port once it listens: read that line with a bound.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("TLS server gave no port in 10 s: {}", log_tail(&log)));
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("TLS server said {line:?}: {}", log_tail(&log)));
        println!(
            "TLS server pid {} on 127.0.0.1:{port}; PKI made in {:.2} s, up in {:.2} s",
            server.pid(),
            pki_time.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        Some(TlsServer {
            server,
            url: format!("https://127.0.0.1:{port}"),
            pki,
            log,
            _dir: dir,
        })
    }
}
