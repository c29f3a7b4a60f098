//! Optional second cache tier shared by several plugin processes (Grafana HA: every replica
//! runs its own plugin process): `jsonData.cache.redis: {url, keyPrefix}`.
//!
//! Keys are `<keyPrefix><SHA-256 hex of the request cache key>` — the cache key holds
//! credentials, so it is never stored in clear. Values are the response body and its
//! `Link: rel="next"` target. Every Redis call is bounded by [`REDIS_TIMEOUT`]; when Redis is
//! down the plugin keeps working on its local cache, logs one warning, and tries Redis again
//! after [`RETRY_AFTER`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Upper bound of one Redis round trip; a slower Redis is treated as down.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis is left alone after a failure.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A Redis connection used as a shared cache.
pub struct RedisTier {
    client: redis::Client,
    prefix: String,
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    down_until: std::sync::Mutex<Option<Instant>>,
    warned: AtomicBool,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTier")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisTier {
    /// Prepares the tier; connects lazily on first use.
    ///
    /// # Errors
    /// A message when `url` is not a Redis URL (`redis://host:port[/db]`).
    pub fn new(url: &str, prefix: &str, password: Option<&str>) -> Result<RedisTier, String> {
        let mut info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|e| format!("'{url}' is not a valid Redis URL: {e}"))?;
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info)
            .map_err(|e| format!("'{url}' is not a valid Redis URL: {e}"))?;
        Ok(RedisTier {
            client,
            prefix: prefix.to_owned(),
            conn: tokio::sync::Mutex::new(None),
            down_until: std::sync::Mutex::new(None),
            warned: AtomicBool::new(false),
        })
    }

    /// The Redis key of a request cache key.
    pub fn key(&self, cache_key: &str) -> String {
        let digest = Sha256::digest(cache_key.as_bytes());
        let mut out = String::with_capacity(self.prefix.len() + 64);
        out.push_str(&self.prefix);
        for b in digest {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        if let Ok(mut d) = self.down_until.lock() {
            *d = Some(Instant::now() + RETRY_AFTER);
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %error, "Redis cache tier unavailable ({what}); continuing with the local cache only.");
        }
    }

    async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        if let Ok(d) = self.down_until.lock() {
            if d.is_some_and(|t| Instant::now() < t) {
                return None;
            }
        }
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Some(c.clone());
        }
        match tokio::time::timeout(
            REDIS_TIMEOUT,
            self.client.get_multiplexed_async_connection(),
        )
        .await
        {
            Ok(Ok(c)) => {
                if self.warned.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis cache tier reachable again.");
                }
                *guard = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.failed("connect", &e);
                None
            }
            Err(_) => {
                self.failed("connect", &"timed out");
                None
            }
        }
    }

    async fn reset(&self) {
        *self.conn.lock().await = None;
    }

    /// Reads an entry: (body, next link, time left to live). `None` on a miss or when Redis
    /// is unavailable.
    pub async fn get(&self, key: &str) -> Option<(Bytes, Option<String>, Duration)> {
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
        match tokio::time::timeout(
            REDIS_TIMEOUT,
            pipe.query_async::<(Option<Vec<u8>>, i64)>(&mut conn),
        )
        .await
        {
            Ok(Ok((Some(raw), pttl))) if pttl > 0 => {
                let (body, link) = decode(&raw)?;
                Some((body, link, Duration::from_millis(pttl.unsigned_abs())))
            }
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                self.failed("GET", &e);
                self.reset().await;
                None
            }
            Err(_) => {
                self.failed("GET", &"timed out");
                self.reset().await;
                None
            }
        }
    }

    /// Stores an entry for `ttl` (at least 1 ms).
    pub async fn set(&self, key: &str, body: &Bytes, next_link: Option<&str>, ttl: Duration) {
        let Some(mut conn) = self.connection().await else {
            return;
        };
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(encode(body, next_link))
            .arg("PX")
            .arg(ms)
            .clone();
        match tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.failed("SET", &e);
                self.reset().await;
            }
            Err(_) => {
                self.failed("SET", &"timed out");
                self.reset().await;
            }
        }
    }
}

/// `u32 link length (big endian) | link | body`.
fn encode(body: &[u8], next_link: Option<&str>) -> Vec<u8> {
    let link = next_link.unwrap_or_default().as_bytes();
    let mut out = Vec::with_capacity(4 + link.len() + body.len());
    out.extend_from_slice(&u32::try_from(link.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(link);
    out.extend_from_slice(body);
    out
}

fn decode(raw: &[u8]) -> Option<(Bytes, Option<String>)> {
    let len = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?) as usize;
    let link = raw.get(4..4 + len)?;
    let body = raw.get(4 + len..)?;
    let link = (!link.is_empty()).then(|| String::from_utf8_lossy(link).into_owned());
    Some((Bytes::copy_from_slice(body), link))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hashed_keys() {
        let raw = encode(b"{\"a\":1}", Some("http://h/next"));
        let (body, link) = decode(&raw).unwrap();
        assert_eq!(&body[..], b"{\"a\":1}");
        assert_eq!(link.as_deref(), Some("http://h/next"));
        let (body, link) = decode(&encode(b"x", None)).unwrap();
        assert_eq!((&body[..], link), (&b"x"[..], None));
        assert!(decode(b"\0\0").is_none());
        let t = RedisTier::new("redis://127.0.0.1:1/", "rb:", Some("pw")).unwrap();
        let k = t.key("GET http://x/?token=SECRET");
        assert!(
            k.starts_with("rb:") && k.len() == 67 && !k.contains("SECRET"),
            "{k}"
        );
        assert!(RedisTier::new("nope://", "", None).is_err());
    }
}
