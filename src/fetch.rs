//! The HTTP side: one pooled reqwest client per datasource instance, a capped incremental
//! body read, and a moka cache in front that coalesces identical requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;
use moka::Expiry;

/// A fully rendered upstream request.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// HTTP method (`GET`, `POST`).
    pub method: reqwest::Method,
    /// Final URL including the query string.
    pub url: reqwest::Url,
    /// Request headers (names and rendered values; may hold secrets).
    pub headers: Vec<(String, String)>,
    /// Request body, if any.
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    /// The cache key: every part of the request, so that requests differing in any
    /// identity-bearing input (headers, credentials, body) never share an answer.
    pub fn cache_key(&self) -> String {
        let mut key = String::with_capacity(self.url.as_str().len() + 64);
        key.push_str(self.method.as_str());
        key.push(' ');
        key.push_str(self.url.as_str());
        let mut headers: Vec<_> = self.headers.iter().collect();
        headers.sort();
        for (k, v) in headers {
            key.push('\n');
            key.push_str(&k.to_ascii_lowercase());
            key.push_str(": ");
            key.push_str(v);
        }
        if let Some(b) = &self.body {
            key.push_str("\n\n");
            key.push_str(&String::from_utf8_lossy(b));
        }
        key
    }
}

/// Why the upstream call failed. Messages never contain secrets (the caller masks the
/// upstream body snippet).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Could not connect (refused, DNS, TLS): status 502.
    #[error("upstream {url} unreachable: {message}")]
    Connect {
        /// Masked URL.
        url: String,
        /// Cause.
        message: String,
    },
    /// No complete answer within the timeout: status 504.
    #[error("upstream {url} did not answer within {seconds:.3} s")]
    Timeout {
        /// Masked URL.
        url: String,
        /// The timeout that applied, seconds.
        seconds: f64,
    },
    /// The upstream answered with a non-2xx status; `body` is its first 512 bytes.
    #[error("upstream {url} answered HTTP {status}: {body}")]
    Status {
        /// Masked URL.
        url: String,
        /// Upstream HTTP status.
        status: u16,
        /// First 512 bytes of the body (lossy UTF-8, secrets masked by the caller).
        body: String,
    },
    /// The body is larger than `maxResponseBytes`: status 502.
    #[error("upstream {url} response is larger than maxResponseBytes ({limit} bytes)")]
    TooLarge {
        /// Masked URL.
        url: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// Reading the body failed: status 502.
    #[error("upstream {url} response could not be read: {message}")]
    Body {
        /// Masked URL.
        url: String,
        /// Cause.
        message: String,
    },
    /// The request could not be built (bad header value, ...): status 400.
    #[error("request could not be built: {0}")]
    Request(String),
}

impl FetchError {
    /// The DataResponse status for this failure (protocol.md §2.9): upstream 4xx passed
    /// through, timeouts 504, everything else 502.
    pub fn status(&self) -> i32 {
        match self {
            FetchError::Timeout { .. } => 504,
            FetchError::Status { status, .. } if (400..500).contains(status) => i32::from(*status),
            FetchError::Request(_) => 400,
            _ => 502,
        }
    }
}

#[derive(Clone)]
struct Cached {
    body: Bytes,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Cached> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Cached,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Installs rustls' ring crypto provider once per process (reqwest is built with
/// `rustls-no-provider`, libraries.md §1).
pub fn init_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// HTTP client + response cache of one datasource instance.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    cache: Cache<String, Cached>,
    max_body: u64,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("max_body", &self.max_body)
            .field("cached_entries", &self.cache.entry_count())
            .finish()
    }
}

impl Fetcher {
    /// Builds the client and cache.
    ///
    /// * `allowed_hosts`: `host:port` strings redirects may go to (others stop the redirect
    ///   chain, and the 3xx is returned as an upstream status).
    /// * `max_body`: body cap in bytes (`maxResponseBytes`).
    /// * `cache_bytes`: cache bound in bytes (`cache.maxBytes`).
    ///
    /// # Errors
    /// A message when the TLS stack cannot be initialised.
    pub fn new(
        allowed_hosts: Vec<String>,
        max_body: u64,
        cache_bytes: u64,
    ) -> Result<Fetcher, String> {
        init_tls();
        let allowed = Arc::new(allowed_hosts);
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let url = attempt.url();
            let hp = host_port(url);
            if attempt.previous().len() >= 10 || !allowed.contains(&hp) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("RestBridge/", env!("CARGO_PKG_VERSION")))
            .redirect(policy)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let cache = Cache::builder()
            .max_capacity(cache_bytes)
            .weigher(|k: &String, v: &Cached| {
                u32::try_from(k.len() + v.body.len() + 64).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        Ok(Fetcher {
            client,
            cache,
            max_body,
        })
    }

    /// Fetches through the cache: a fresh entry is answered from memory; concurrent identical
    /// requests share one upstream call (and its error). `ttl` zero bypasses the cache.
    /// `masked_url` is used in error messages.
    ///
    /// # Errors
    /// [`FetchError`] from the upstream call.
    pub async fn fetch(
        &self,
        req: &HttpRequest,
        masked_url: &str,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<Bytes, FetchError> {
        if ttl.is_zero() {
            return self.fetch_uncached(req, masked_url, timeout).await;
        }
        let key = req.cache_key();
        self.cache
            .try_get_with(key, async {
                let body = self.fetch_uncached(req, masked_url, timeout).await?;
                Ok::<_, FetchError>(Cached { body, ttl })
            })
            .await
            .map(|c| c.body)
            .map_err(|e: Arc<FetchError>| (*e).clone())
    }

    /// One upstream call, no cache.
    ///
    /// # Errors
    /// [`FetchError`] for connect failures, timeouts, non-2xx statuses and oversize bodies.
    pub async fn fetch_uncached(
        &self,
        req: &HttpRequest,
        masked_url: &str,
        timeout: Duration,
    ) -> Result<Bytes, FetchError> {
        match tokio::time::timeout(timeout, self.call(req, masked_url, timeout)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                url: masked_url.to_owned(),
                seconds: timeout.as_secs_f64(),
            }),
        }
    }

    async fn call(
        &self,
        req: &HttpRequest,
        masked_url: &str,
        timeout: Duration,
    ) -> Result<Bytes, FetchError> {
        let mut builder = self
            .client
            .request(req.method.clone(), req.url.clone())
            .timeout(timeout);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(b) = &req.body {
            builder = builder.body(b.clone());
        }
        let classify = |e: reqwest::Error| -> FetchError {
            if e.is_timeout() {
                FetchError::Timeout {
                    url: masked_url.to_owned(),
                    seconds: timeout.as_secs_f64(),
                }
            } else if e.is_builder() {
                FetchError::Request(error_chain(&e))
            } else if e.is_connect() || e.is_request() {
                FetchError::Connect {
                    url: masked_url.to_owned(),
                    message: error_chain(&e),
                }
            } else {
                FetchError::Body {
                    url: masked_url.to_owned(),
                    message: error_chain(&e),
                }
            }
        };
        let mut resp = builder.send().await.map_err(classify)?;
        let status = resp.status();
        if let Some(len) = resp.content_length() {
            if status.is_success() && len > self.max_body {
                return Err(FetchError::TooLarge {
                    url: masked_url.to_owned(),
                    limit: self.max_body,
                });
            }
        }
        let limit = if status.is_success() {
            self.max_body
        } else {
            512
        };
        let mut buf = Vec::with_capacity(
            resp.content_length()
                .map_or(8192, |l| l.min(self.max_body) as usize)
                .min(16 << 20),
        );
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (buf.len() + chunk.len()) as u64 > limit {
                        if !status.is_success() {
                            let room = (limit as usize).saturating_sub(buf.len());
                            buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
                            break;
                        }
                        return Err(FetchError::TooLarge {
                            url: masked_url.to_owned(),
                            limit: self.max_body,
                        });
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if !status.is_success() => {
                    let _ = e;
                    break;
                }
                Err(e) => return Err(classify(e)),
            }
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: masked_url.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&buf[..buf.len().min(512)]).into_owned(),
            });
        }
        Ok(Bytes::from(buf))
    }
}

/// `host:port` of a URL with the scheme's default port filled in (`example.com:443`).
pub fn host_port(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// The error and its sources joined with `: ` (reqwest hides the cause in `source()`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}
