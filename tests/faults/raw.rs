//! Hostile upstreams on 127.0.0.1 written byte by byte on raw tokio TCP sockets: resets,
//! trickles, broken framing, endless bodies and headers generated on the fly, gzip bombs and
//! requests that never get an answer. Every connection is counted; streamed bytes are counted
//! as they are written, and a hanging connection records when the plugin closed it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The body of a complete answer.
#[derive(Clone, Debug)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// An HTML error page that echoes the request head (credentials included).
    EchoHtml,
    /// A JSON error object that echoes the request head (credentials included).
    EchoJson,
}

/// How a body is delimited.
#[derive(Clone, Copy, Debug)]
pub enum Framing {
    ContentLength,
    Chunked,
    /// No length: the body ends when the server closes.
    Close,
}

/// What the server does with a request on one path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete answer with `Content-Length`.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Body,
    },
    /// Reads the request and closes (FIN) without a byte.
    CloseBeforeHead,
    /// Reads the request and resets (RST) without a byte.
    ResetBeforeHead,
    /// 200 declaring 100 000 bytes, sends 20 of them, then resets.
    ResetMidBody,
    /// 200 declaring 1 000 bytes, sends 17 of them, then closes (FIN).
    ShortBody,
    /// 200, chunked, with a chunk-size line that is not hex.
    BadChunk,
    /// The status line, one byte per `every`.
    TrickleHead { every: Duration },
    /// A complete head, then the body one byte per `every`.
    TrickleBody { every: Duration },
    /// Never answers; waits for the client to close and records when.
    Hang,
    /// A `[1,1,1,…` body of `total` bytes generated on the fly (never terminated).
    Stream {
        status: u16,
        framing: Framing,
        total: u64,
    },
    /// `total` bytes of header lines (1 KiB lines, or one single header when `one_line`).
    HugeHeaders { total: u64, one_line: bool },
    /// A gzip bomb ([`crate::gzip::Bomb`]) with `blocks` compressed payload bytes.
    GzipBomb { blocks: u64 },
    /// The n-th request gets the n-th reply; the last one repeats.
    Sequence(Vec<Reply>),
}

impl Reply {
    pub fn full(status: u16, content_type: &str, body: Body) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    pub fn json(status: u16, body: &str) -> Reply {
        Reply::full(
            status,
            "application/json",
            Body::Bytes(body.as_bytes().to_vec()),
        )
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

/// What the server saw and did.
#[derive(Debug, Default)]
pub struct State {
    /// Connections accepted.
    pub accepted: AtomicUsize,
    /// Request heads by path (query stripped), in arrival order.
    pub requests: Mutex<Vec<(String, String)>>,
    /// Bytes written by streaming replies (bodies, headers, trickles).
    pub written: AtomicU64,
    /// `Hang` requests received.
    pub hangs_started: AtomicUsize,
    /// For each `Hang` request the client closed: how long after the request it did.
    pub hangs_closed: Mutex<Vec<Duration>>,
}

/// A raw upstream; its accept loop stops when dropped.
pub struct RawServer {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RawServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawServer({})", self.addr)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The healthy answer of `/normal` on every server.
pub const NORMAL_BODY: &str = r#"{"items":[{"name":"a","v":1},{"name":"b","v":2}]}"#;

type Routes = Arc<Vec<(String, Reply, AtomicUsize)>>;

impl RawServer {
    /// Serves `routes` (exact paths) plus `/normal`; other paths get a JSON 404.
    pub async fn start(routes: Vec<(&str, Reply)>) -> RawServer {
        let mut all: Vec<(String, Reply, AtomicUsize)> = routes
            .into_iter()
            .map(|(p, r)| (p.to_owned(), r, AtomicUsize::new(0)))
            .collect();
        all.push((
            "/normal".into(),
            Reply::json(200, NORMAL_BODY),
            AtomicUsize::new(0),
        ));
        let routes: Routes = Arc::new(all);
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                st.accepted.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                let routes = routes.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, st, routes).await;
                });
            }
        });
        RawServer {
            addr,
            state,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received on `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    /// Request heads received on `path`.
    pub fn heads(&self, path: &str) -> Vec<String> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, h)| h.clone())
            .collect()
    }

    pub fn written(&self) -> u64 {
        self.state.written.load(Ordering::SeqCst)
    }

    pub fn reset_written(&self) {
        self.state.written.store(0, Ordering::SeqCst);
    }
}

/// Reads one request head (up to the blank line; bodies are not expected).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        if buf.len() > 1 << 20 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Whatever",
    }
}

/// Resets the connection: SO_LINGER 0, then close, so the peer sees RST.
fn reset(stream: TcpStream) {
    if let Ok(std) = stream.into_std() {
        let _ = socket_linger_zero(&std);
        drop(std);
    }
}

fn socket_linger_zero(s: &std::net::TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized `linger` struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

async fn put(stream: &mut TcpStream, st: &State, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    st.written.fetch_add(bytes.len() as u64, Ordering::SeqCst);
    Ok(())
}

fn echo_body(kind: &Body, head: &str) -> Vec<u8> {
    // Credential-bearing lines first, so they fit in the 512-byte snippet of messages.
    let mut lines: Vec<&str> = head.lines().collect();
    lines.sort_by_key(|l| {
        let l = l.to_ascii_lowercase();
        !(l.starts_with("get ")
            || l.starts_with("authorization")
            || l.starts_with("x-custom")
            || l.starts_with("x-auth-token"))
    });
    let text = lines.join("\n");
    match kind {
        Body::EchoHtml => format!(
            "<html><body><pre>{text}</pre><h1>Upstream error</h1><p>Something broke.</p></body></html>"
        )
        .into_bytes(),
        Body::EchoJson => serde_json::json!({"request": text, "error": "upstream error"})
            .to_string()
            .into_bytes(),
        Body::Empty => Vec::new(),
        Body::Bytes(b) => b.clone(),
    }
}

/// The generated `[1,1,1,…` stream: 64 KiB per chunk.
fn json_chunk(first: bool) -> Vec<u8> {
    let mut c: Vec<u8> = b"1,".repeat(32 * 1024);
    if first {
        c.insert(0, b'[');
        c.pop();
    }
    c
}

async fn serve(mut stream: TcpStream, st: Arc<State>, routes: Routes) -> std::io::Result<()> {
    {
        let head = read_head(&mut stream).await?;
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let path = target.split('?').next().unwrap_or("/").to_owned();
        st.requests
            .lock()
            .unwrap()
            .push((path.clone(), head.clone()));
        let reply = routes
            .iter()
            .find(|(p, _, _)| *p == path)
            .map(|(_, r, n)| {
                let i = n.fetch_add(1, Ordering::SeqCst);
                match r {
                    Reply::Sequence(all) => all[i.min(all.len() - 1)].clone(),
                    other => other.clone(),
                }
            })
            .unwrap_or_else(|| Reply::json(404, r#"{"error":"no such raw route"}"#));
        answer(stream, &st, &head, reply).await
    }
}

async fn answer(
    mut stream: TcpStream,
    st: &State,
    head: &str,
    reply: Reply,
) -> std::io::Result<()> {
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let body = echo_body(&body, head);
            let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (k, v) in &headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            if status != 204 {
                out.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            out.push_str("Connection: close\r\n\r\n");
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&body);
            stream.write_all(&bytes).await?;
            stream.shutdown().await?;
            // Let the client read everything before the socket goes away.
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut sink)).await;
        }
        Reply::CloseBeforeHead => {
            stream.shutdown().await?;
        }
        Reply::ResetBeforeHead => reset(stream),
        Reply::ResetMidBody => {
            let msg = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"items\":[{\"v\":1},";
            stream.write_all(msg.as_bytes()).await?;
            stream.flush().await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            reset(stream);
        }
        Reply::ShortBody => {
            let msg = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"items\":[{\"v\":1}";
            stream.write_all(msg.as_bytes()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut sink)).await;
        }
        Reply::BadChunk => {
            let msg = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\nzz-not-hex\r\n1}\r\n0\r\n\r\n";
            stream.write_all(msg.as_bytes()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut sink)).await;
        }
        Reply::TrickleHead { every } => {
            let msg = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                NORMAL_BODY.len(),
                NORMAL_BODY
            );
            for b in msg.as_bytes() {
                put(&mut stream, st, &[*b]).await?;
                tokio::time::sleep(every).await;
            }
        }
        Reply::TrickleBody { every } => {
            let msg = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                NORMAL_BODY.len()
            );
            stream.write_all(msg.as_bytes()).await?;
            for b in NORMAL_BODY.as_bytes() {
                put(&mut stream, st, &[*b]).await?;
                tokio::time::sleep(every).await;
            }
        }
        Reply::Hang => {
            st.hangs_started.fetch_add(1, Ordering::SeqCst);
            let started = Instant::now();
            let mut sink = [0u8; 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(120), stream.read(&mut sink)).await {
                    Ok(Ok(0) | Err(_)) | Err(_) => break,
                    Ok(Ok(_)) => {}
                }
            }
            st.hangs_closed.lock().unwrap().push(started.elapsed());
        }
        Reply::Stream {
            status,
            framing,
            total,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\n",
                reason(status)
            );
            match framing {
                Framing::ContentLength => out.push_str(&format!("Content-Length: {total}\r\n")),
                Framing::Chunked => out.push_str("Transfer-Encoding: chunked\r\n"),
                Framing::Close => out.push_str("Connection: close\r\n"),
            }
            out.push_str("\r\n");
            put(&mut stream, st, out.as_bytes()).await?;
            let mut sent = 0u64;
            let mut first = true;
            let chunk = json_chunk(false);
            while sent < total {
                let c = if first {
                    json_chunk(true)
                } else {
                    chunk.clone()
                };
                first = false;
                let n = (total - sent).min(c.len() as u64) as usize;
                match framing {
                    Framing::Chunked => {
                        let mut framed = format!("{n:x}\r\n").into_bytes();
                        framed.extend_from_slice(&c[..n]);
                        framed.extend_from_slice(b"\r\n");
                        put(&mut stream, st, &framed).await?;
                    }
                    _ => put(&mut stream, st, &c[..n]).await?,
                }
                sent += n as u64;
            }
            if let Framing::Chunked = framing {
                put(&mut stream, st, b"0\r\n\r\n").await?;
            }
            stream.shutdown().await?;
        }
        Reply::HugeHeaders { total, one_line } => {
            put(
                &mut stream,
                st,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
            )
            .await?;
            let mut sent = 0u64;
            if one_line {
                put(&mut stream, st, b"X-Huge: ").await?;
                let block = vec![b'a'; 64 * 1024];
                while sent < total {
                    put(&mut stream, st, &block).await?;
                    sent += block.len() as u64;
                }
                put(&mut stream, st, b"\r\n").await?;
            } else {
                let mut i = 0u64;
                let value = "b".repeat(1000);
                while sent < total {
                    // 64 lines of ~1 KiB per write.
                    let mut lines = String::with_capacity(66 * 1024);
                    for _ in 0..64 {
                        lines.push_str(&format!("X-Pad-{i:08}: {value}\r\n"));
                        i += 1;
                    }
                    put(&mut stream, st, lines.as_bytes()).await?;
                    sent += lines.len() as u64;
                }
            }
            let tail = format!("Content-Length: {}\r\n\r\n{NORMAL_BODY}", NORMAL_BODY.len());
            put(&mut stream, st, tail.as_bytes()).await?;
            stream.shutdown().await?;
        }
        Reply::GzipBomb { blocks } => {
            put(
                &mut stream,
                st,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n",
            )
            .await?;
            for chunk in crate::gzip::Bomb::new(blocks) {
                put(&mut stream, st, &chunk).await?;
            }
            stream.shutdown().await?;
        }
        Reply::Sequence(_) => unreachable!("resolved in serve"),
    }
    Ok(())
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    l.local_addr().unwrap().port()
}
