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
    /// The upstream answered HTTP 429 and its `Retry-After` does not fit the deadline:
    /// status 429, failing fast with the time to retry.
    #[error("upstream {url} is rate-limiting (HTTP 429){}: {body}", retry_after_text(*retry_after_secs))]
    RateLimited {
        /// Masked URL.
        url: String,
        /// The upstream's `Retry-After`, seconds, when it sent one.
        retry_after_secs: Option<u64>,
        /// First 512 bytes of the body.
        body: String,
    },
    /// The request could not be built (bad header value, ...): status 400.
    #[error("request could not be built: {0}")]
    Request(String),
}

fn retry_after_text(secs: Option<u64>) -> String {
    match secs {
        Some(s) => format!("; retry after {s} s"),
        None => String::new(),
    }
}

impl FetchError {
    /// The DataResponse status for this failure (protocol.md §2.9): upstream 4xx passed
    /// through, timeouts 504, everything else 502.
    pub fn status(&self) -> i32 {
        match self {
            FetchError::Timeout { .. } => 504,
            FetchError::Status { status, .. } if (400..500).contains(status) => i32::from(*status),
            FetchError::RateLimited { .. } => 429,
            FetchError::Request(_) => 400,
            _ => 502,
        }
    }

    /// The error as reported once retries are over (no change today; kept as the one place
    /// to adjust final messages).
    fn into_final(self) -> FetchError {
        self
    }

    /// Worth retrying an idempotent request: connect failures and HTTP 502/503/504.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Connect { .. } => true,
            FetchError::Status { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

/// A successful upstream answer.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The body (decompressed, at most `maxResponseBytes`).
    pub body: Bytes,
    /// The `Link: <…>; rel="next"` target, if the response had one (RFC 8288).
    pub next_link: Option<String>,
    /// `Set-Cookie` header values (for the login flow).
    pub set_cookies: Vec<String>,
    /// Set when this is a stale cache entry served because the upstream failed: the notice
    /// text (config.md §1 `staleIfErrorSeconds`).
    pub stale: Option<String>,
    /// Until when this answer counts as fresh (`None`: not cacheable — TTL 0 or stale).
    pub fresh_until: Option<std::time::Instant>,
}

/// Transport options of one datasource's HTTP client (config.md §1 TLS keys).
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// `host:port` redirects may go to.
    pub allowed_hosts: Vec<String>,
    /// Body cap in bytes.
    pub max_body: u64,
    /// Cache bound in bytes.
    pub cache_bytes: u64,
    /// `tlsSkipVerify`: accept any server certificate.
    pub tls_skip_verify: bool,
    /// `tlsCACert` (PEM) when `tlsAuthWithCACert`: the only trusted roots.
    pub ca_pem: Option<String>,
    /// `tlsClientCert` + `tlsClientKey` (PEM) when `tlsAuth`.
    pub client_identity_pem: Option<(String, String)>,
    /// `serverName`: verify the certificate against this name instead of the URL's host.
    pub server_name: Option<String>,
    /// Shared second cache tier (`cache.redis`).
    pub redis: Option<Arc<crate::redis_tier::RedisTier>>,
}

/// Most retries of one idempotent request (connect errors, 502/503/504, 429 with a fitting
/// `Retry-After`).
pub const MAX_RETRIES: u32 = 3;
/// First backoff; doubled per retry, capped at [`MAX_BACKOFF`], with jitter in [50 %, 100 %].
pub const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Backoff cap.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

fn backoff(attempt: u32) -> Duration {
    let full = BASE_BACKOFF
        .saturating_mul(1 << attempt.min(10))
        .min(MAX_BACKOFF);
    // Cheap jitter from the clock's nanoseconds: spreads simultaneous retries.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.5 + f64::from(nanos % 1000) / 2000.0;
    full.mul_f64(factor)
}

/// Parses `Retry-After` (RFC 9110 §10.2.3): delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let ms = when.as_millisecond() - now.as_millisecond();
    Some(Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0)))
}

/// The `rel="next"` target of a `Link` header value (RFC 8288 §3), if any.
pub fn next_link(value: &str) -> Option<String> {
    for part in value.split(',') {
        let part = part.trim();
        let Some(end) = part.find('>') else { continue };
        let target = part.strip_prefix('<').map(|p| &p[..end.saturating_sub(1)]);
        let params = &part[end + 1..];
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|r| {
                    r.trim_matches('"')
                        .split_whitespace()
                        .any(|x| x.eq_ignore_ascii_case("next"))
                })
                .unwrap_or(false)
        });
        if is_next {
            return target.map(str::to_owned);
        }
    }
    None
}

/// A cached answer: fresh for `fresh_for`, kept (for stale-if-error) for `keep_for`.
#[derive(Clone)]
struct Cached {
    fetched: Fetched,
    stored: std::time::Instant,
    fresh_for: Duration,
    keep_for: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Cached> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Cached,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.keep_for)
    }
}

/// How one request may use the cache (config.md §1 `cache`, protocol.md §4.3).
#[derive(Clone, Copy, Debug, Default)]
pub struct CachePolicy {
    /// Time to live of a new entry; zero = do not store.
    pub ttl: Duration,
    /// Serve an entry this long past its TTL when the upstream fails (`staleIfErrorSeconds`).
    pub stale_if_error: Duration,
    /// Answer from a fresh entry (false for alert queries that want fresh data, or
    /// `X-Cache-Skip`); concurrent identical requests are coalesced either way.
    pub read: bool,
}

/// A shared in-flight computation: every waiter polls the same future and gets a clone of
/// its output.
pub type SharedFlight<T> =
    futures_util::future::Shared<futures_util::future::BoxFuture<'static, T>>;

/// In-flight computations by key, each with the id of the flight that created the entry.
pub type FlightMap<T> = std::sync::Mutex<std::collections::HashMap<String, (u64, SharedFlight<T>)>>;

/// Removes a coalescing entry when its waiter is done or dropped and no other waiter is left
/// (so an abandoned computation is dropped, not run on for nobody).
pub struct FlightGuard<'a, T: Clone> {
    /// The map holding the entry.
    pub map: &'a FlightMap<T>,
    /// The entry's key.
    pub key: &'a str,
    /// Id of the flight this waiter joined (a newer flight under the same key is left alone).
    pub id: u64,
    /// This waiter's clone of the flight.
    pub flight: SharedFlight<T>,
}

impl<T: Clone> std::fmt::Debug for FlightGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightGuard")
            .field("key", &self.key)
            .field("id", &self.id)
            .finish()
    }
}

impl<T: Clone> Drop for FlightGuard<'_, T> {
    fn drop(&mut self) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        let ours = map.get(self.key).is_some_and(|(i, _)| *i == self.id);
        // Clones alive: the map's, this guard's, and one per waiter still awaiting.
        let others_waiting = self.flight.strong_count().is_some_and(|n| n > 3);
        let finished = self.flight.peek().is_some();
        if ours && (finished || !others_waiting) {
            map.remove(self.key);
        }
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
    inflight: Arc<FlightMap<Result<Fetched, FetchError>>>,
    next_flight: Arc<std::sync::atomic::AtomicU64>,
    redis: Option<Arc<crate::redis_tier::RedisTier>>,
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
    /// Builds the client and cache from the datasource's transport options.
    ///
    /// Redirects are followed (at most 10) only to `allowed_hosts`; others stop the chain
    /// and the 3xx is returned as an upstream status.
    ///
    /// # Errors
    /// A message naming the TLS setting that could not be used (bad PEM, ...).
    pub fn new(opts: &ClientOptions) -> Result<Fetcher, String> {
        init_tls();
        let allowed = Arc::new(opts.allowed_hosts.clone());
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let url = attempt.url();
            let hp = host_port(url);
            if attempt.previous().len() >= 10 || !allowed.contains(&hp) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("RestBridge/", env!("CARGO_PKG_VERSION")))
            .redirect(policy)
            .pool_idle_timeout(Duration::from_secs(90));
        if let Some(name) = opts.server_name.as_deref() {
            let config = crate::tls::client_config(
                name,
                opts.tls_skip_verify,
                opts.ca_pem.as_deref(),
                opts.client_identity_pem
                    .as_ref()
                    .map(|(c, k)| (c.as_str(), k.as_str())),
            )?;
            builder = builder.tls_backend_preconfigured(config);
        } else {
            builder = Self::tls_options(builder, opts)?;
        }
        let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        let cache = Cache::builder()
            .max_capacity(opts.cache_bytes)
            .weigher(|k: &String, v: &Cached| {
                u32::try_from(k.len() + v.fetched.body.len() + 96).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        Ok(Fetcher {
            client,
            cache,
            max_body: opts.max_body,
            inflight: Arc::default(),
            next_flight: Arc::default(),
            redis: opts.redis.clone(),
        })
    }

    /// TLS settings reqwest expresses itself (no `serverName`).
    fn tls_options(
        mut builder: reqwest::ClientBuilder,
        opts: &ClientOptions,
    ) -> Result<reqwest::ClientBuilder, String> {
        if opts.tls_skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &opts.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| format!("tlsCACert is not a valid PEM certificate: {e}"))?;
            if certs.is_empty() {
                return Err("tlsCACert holds no PEM certificate".to_owned());
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some((cert, key)) = &opts.client_identity_pem {
            let mut pem = cert.clone();
            pem.push('\n');
            pem.push_str(key);
            let id = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| {
                format!("tlsClientCert/tlsClientKey are not a valid PEM certificate and key: {e}")
            })?;
            builder = builder.identity(id);
        }
        Ok(builder)
    }

    /// Fetches through the cache. A fresh entry answers from memory (when `policy.read`);
    /// otherwise concurrent identical requests share one upstream call and its result, error
    /// included (coalescing also applies when the cache is off or skipped). Successful answers
    /// are stored for `policy.ttl`; when the upstream fails and an entry is at most
    /// `policy.stale_if_error` past its TTL, that entry is served with
    /// [`Fetched::stale`] set. Errors are never cached.
    ///
    /// # Errors
    /// [`FetchError`] from the upstream call.
    pub async fn fetch(
        &self,
        req: &HttpRequest,
        masked_url: &str,
        policy: CachePolicy,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        let metrics = crate::metrics::global();
        let key = req.cache_key();
        if policy.read && !policy.ttl.is_zero() {
            if let Some(e) = self.cache.get(&key).await {
                if e.stored.elapsed() < e.fresh_for {
                    metrics.cache_event("hit");
                    let mut fetched = e.fetched;
                    fetched.fresh_until = Some(e.stored + e.fresh_for);
                    return Ok(fetched);
                }
            }
        }
        let (id, flight, leader) = {
            let mut map = self
                .inflight
                .lock()
                .map_err(|_| FetchError::Request("internal: coalescing lock poisoned".into()))?;
            match map.get(&key) {
                Some((id, f)) => (*id, f.clone(), false),
                None => {
                    use futures_util::FutureExt;
                    let this = self.clone();
                    let req = req.clone();
                    let masked = masked_url.to_owned();
                    let fut =
                        async move { this.fetch_shared_tier(&req, &masked, policy, timeout).await }
                            .boxed()
                            .shared();
                    let id = self
                        .next_flight
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    map.insert(key.clone(), (id, fut.clone()));
                    (id, fut, true)
                }
            }
        };
        metrics.cache_event(if leader { "miss" } else { "coalesced" });
        // When the last waiter goes away (done, or its query was cancelled), the map's copy
        // of the shared request goes too, so an abandoned upstream call is dropped (its
        // connection closed) instead of running on until its timeout.
        let guard = FlightGuard {
            map: &self.inflight,
            key: &key,
            id,
            flight: flight.clone(),
        };
        let result = flight.await;
        drop(guard);
        match result {
            Ok(mut fetched) => {
                if !policy.ttl.is_zero() && fetched.fresh_until.is_none() {
                    fetched.fresh_until = Some(std::time::Instant::now() + policy.ttl);
                }
                if leader && !policy.ttl.is_zero() {
                    let now = std::time::Instant::now();
                    let fresh_for = fetched
                        .fresh_until
                        .map_or(policy.ttl, |u| u.saturating_duration_since(now));
                    let entry = Cached {
                        fetched: fetched.clone(),
                        stored: now,
                        fresh_for,
                        keep_for: policy.ttl + policy.stale_if_error,
                    };
                    self.cache.insert(key, entry).await;
                }
                Ok(fetched)
            }
            Err(e) => {
                if !policy.stale_if_error.is_zero() {
                    if let Some(entry) = self.cache.get(&key).await {
                        let age = entry.stored.elapsed();
                        if age <= entry.fresh_for + policy.stale_if_error {
                            metrics.cache_event("stale");
                            let mut fetched = entry.fetched;
                            fetched.fresh_until = None;
                            fetched.stale = Some(format!(
                                "stale data: the upstream failed ({e}); serving the answer \
                                 cached {} s ago (staleIfErrorSeconds)",
                                age.as_secs()
                            ));
                            return Ok(fetched);
                        }
                    }
                }
                Err(e)
            }
        }
    }

    /// One upstream call through the optional Redis tier: a fresh Redis entry answers
    /// (when `policy.read`), otherwise the upstream does and its answer is stored in Redis.
    async fn fetch_shared_tier(
        &self,
        req: &HttpRequest,
        masked_url: &str,
        policy: CachePolicy,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        let tier = self.redis.as_ref().filter(|_| !policy.ttl.is_zero());
        let Some(tier) = tier else {
            return self.fetch_uncached(req, masked_url, timeout).await;
        };
        let key = tier.key(&req.cache_key());
        if policy.read {
            if let Some((body, next_link, left)) = tier.get(&key).await {
                crate::metrics::global().cache_event("redis_hit");
                return Ok(Fetched {
                    body,
                    next_link,
                    set_cookies: Vec::new(),
                    stale: None,
                    fresh_until: Some(std::time::Instant::now() + left.min(policy.ttl)),
                });
            }
        }
        let fetched = self.fetch_uncached(req, masked_url, timeout).await?;
        tier.set(
            &key,
            &fetched.body,
            fetched.next_link.as_deref(),
            policy.ttl,
        )
        .await;
        Ok(fetched)
    }

    /// Bytes held by this instance's cache (weighted size).
    pub fn cache_bytes(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Drops a cached answer.
    pub async fn invalidate(&self, req: &HttpRequest) {
        self.cache.invalidate(&req.cache_key()).await;
    }

    /// One upstream call with retries, no cache. Everything — retries and their backoff
    /// included — happens within `timeout`. Idempotent requests (GET) are retried on connect
    /// errors and HTTP 502/503/504 with capped exponential backoff and jitter; HTTP 429 is
    /// retried after its `Retry-After` when that fits the time left, else it fails at once
    /// with [`FetchError::RateLimited`].
    ///
    /// # Errors
    /// [`FetchError`] for connect failures, timeouts, non-2xx statuses and oversize bodies.
    pub async fn fetch_uncached(
        &self,
        req: &HttpRequest,
        masked_url: &str,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let idempotent = matches!(req.method, reqwest::Method::GET | reqwest::Method::HEAD);
        let timed_out = || FetchError::Timeout {
            url: masked_url.to_owned(),
            seconds: timeout.as_secs_f64(),
        };
        let mut attempt = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return Err(timed_out());
            }
            let result = match tokio::time::timeout(
                remaining,
                self.call(req, masked_url, remaining),
            )
            .await
            {
                // reqwest's own timer (set to `remaining`) can win the race against ours:
                // report the query's timeout either way, not what remained of it.
                Ok(Err(FetchError::Timeout { .. })) | Err(_) => Err(timed_out()),
                Ok(r) => r,
            };
            let err = match result {
                Ok(f) => return Ok(f),
                Err(e) => e,
            };
            if !idempotent || attempt >= MAX_RETRIES {
                return Err(err.into_final());
            }
            let wait = match &err {
                e if e.is_transient() => backoff(attempt),
                FetchError::RateLimited {
                    retry_after_secs: Some(s),
                    ..
                } => Duration::from_secs(*s),
                _ => return Err(err.into_final()),
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if wait >= left {
                return Err(err.into_final());
            }
            // Only the masked URL and the status: the error text may echo credentials.
            tracing::debug!(url = %masked_url, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, status = err.status(), "Retrying upstream request.");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn call(
        &self,
        req: &HttpRequest,
        masked_url: &str,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        let metrics = crate::metrics::global();
        // The gauge is decremented by a guard, so a call dropped mid-flight (timeout,
        // cancelled query) does not leave it at +1.
        struct InFlight;
        impl Drop for InFlight {
            fn drop(&mut self) {
                crate::metrics::global().inflight.dec();
            }
        }
        metrics.inflight.inc();
        let in_flight = InFlight;
        let started = std::time::Instant::now();
        let result = self.call_inner(req, masked_url, timeout).await;
        drop(in_flight);
        let status = match &result {
            Ok(_) => "2xx".to_owned(),
            Err(FetchError::Status { status, .. }) => status.to_string(),
            Err(FetchError::RateLimited { .. }) => "429".to_owned(),
            Err(FetchError::Timeout { .. }) => "timeout".to_owned(),
            Err(FetchError::TooLarge { .. }) => "too_large".to_owned(),
            Err(_) => "error".to_owned(),
        };
        metrics.upstream(
            &host_port(&req.url),
            &status,
            started.elapsed().as_secs_f64(),
        );
        result
    }

    async fn call_inner(
        &self,
        req: &HttpRequest,
        masked_url: &str,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
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
        let header = |name: &str| {
            resp.headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let link = header("link");
        let next_link = (!link.is_empty()).then(|| next_link(&link)).flatten();
        let retry_after = parse_retry_after(&header("retry-after"));
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
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
            let body = String::from_utf8_lossy(&buf[..buf.len().min(512)]).into_owned();
            if status.as_u16() == 429 {
                return Err(FetchError::RateLimited {
                    url: masked_url.to_owned(),
                    retry_after_secs: retry_after.map(|d| d.as_secs().max(1)),
                    body,
                });
            }
            return Err(FetchError::Status {
                url: masked_url.to_owned(),
                status: status.as_u16(),
                body,
            });
        }
        Ok(Fetched {
            body: Bytes::from(buf),
            next_link,
            set_cookies,
            stale: None,
            fresh_until: None,
        })
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let v = r#"<https://api.github.com/repos/x/issues?page=2>; rel="next", <https://api.github.com/repos/x/issues?page=5>; rel="last""#;
        assert_eq!(
            next_link(v).as_deref(),
            Some("https://api.github.com/repos/x/issues?page=2")
        );
        assert_eq!(next_link(r#"</a?p=1>; rel="prev""#), None);
        assert_eq!(next_link(r#"</b>; rel="prev next""#).as_deref(), Some("/b"));
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        for a in 0..12 {
            let b = backoff(a);
            assert!(b <= MAX_BACKOFF, "{b:?}");
            assert!(
                b >= BASE_BACKOFF.mul_f64(0.5).min(MAX_BACKOFF.mul_f64(0.5)),
                "{b:?}"
            );
        }
    }

    #[test]
    fn transient_errors() {
        let s = |status| FetchError::Status {
            url: String::new(),
            status,
            body: String::new(),
        };
        assert!(s(503).is_transient() && s(502).is_transient() && s(504).is_transient());
        assert!(!s(500).is_transient() && !s(404).is_transient());
        assert_eq!(
            FetchError::RateLimited {
                url: String::new(),
                retry_after_secs: Some(30),
                body: String::new()
            }
            .status(),
            429
        );
    }
}
