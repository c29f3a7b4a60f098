//! One query, top to bottom: rule lookup → params → render → fetch (cached) → JSON →
//! frames. Shared by QueryData, CheckHealth's live probe and the command-line tool.

use std::time::Duration;

use serde_json::Value;

use crate::error::QueryError;
use crate::frame::Frame;
use crate::instance::{Instance, RenderInput};

/// One query as Grafana sends it (protocol.md §2.5 DataQuery), free of protobuf types.
#[derive(Clone, Debug, Default)]
pub struct DataQuery {
    /// The refId (response map key).
    pub ref_id: String,
    /// Raw query model JSON: `{"rule": ID, "params": {...}}` plus Grafana's own keys.
    pub json: Vec<u8>,
    /// Range start, epoch ms.
    pub from_ms: i64,
    /// Range end, epoch ms.
    pub to_ms: i64,
    /// Suggested interval, ms.
    pub interval_ms: i64,
    /// Max data points.
    pub max_data_points: i64,
}

/// Per-request context.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    /// Time left until Grafana's gRPC deadline, if it sent one.
    pub deadline: Option<Duration>,
    /// Forwardable HTTP headers of the Grafana request (protocol.md §4.3): `Authorization`,
    /// `X-Id-Token`, `Cookie` (names as Grafana sent them, `http_` prefix removed).
    pub forwarded: Vec<(String, String)>,
    /// The query comes from alerting (`FromAlert: true`, protocol.md §4.3).
    pub from_alert: bool,
    /// Grafana asked not to answer from a cache (`X-Cache-Skip: true`).
    pub cache_skip: bool,
}

impl RequestContext {
    /// Reads the forwardable headers from `QueryDataRequest.headers` (protocol.md §4.3: a
    /// `http_` prefix marks an HTTP header; `Authorization`, `X-Id-Token` and `Cookie` also
    /// come un-prefixed; keys compare case-insensitively).
    pub fn with_headers<'a>(
        deadline: Option<Duration>,
        headers: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> RequestContext {
        let mut forwarded = Vec::new();
        let mut from_alert = false;
        let mut cache_skip = false;
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("FromAlert") {
                from_alert |= v.trim().eq_ignore_ascii_case("true");
            }
            if k.eq_ignore_ascii_case("X-Cache-Skip") || k.eq_ignore_ascii_case("http_X-Cache-Skip")
            {
                cache_skip |= v.trim().eq_ignore_ascii_case("true");
            }
            let name = k.strip_prefix("http_").unwrap_or(k);
            if ["authorization", "x-id-token", "cookie"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
                && !forwarded
                    .iter()
                    .any(|(f, _): &(String, String)| f.eq_ignore_ascii_case(name))
            {
                forwarded.push((name.to_owned(), v.clone()));
            }
        }
        RequestContext {
            deadline,
            forwarded,
            from_alert,
            cache_skip,
        }
    }
}

/// The query model fields RestBridge reads (config.md §3).
#[derive(Clone, Debug)]
pub struct QueryModel {
    /// The rule id (trimmed).
    pub rule: String,
    /// The query's `params` object (may be empty).
    pub params: serde_json::Map<String, Value>,
}

/// Parses a query's JSON model (`{"rule": ID, "params": {...}}` plus Grafana's own keys).
///
/// # Errors
/// [`QueryError::BadQuery`] naming what is wrong: invalid JSON, not an object, no rule,
/// `params` not an object.
pub fn parse_model(json: &[u8]) -> Result<QueryModel, QueryError> {
    /// The two members RestBridge reads. Grafana's own members of the query model (refId,
    /// datasource, hide, …) are skipped without being built.
    #[derive(serde::Deserialize)]
    struct Members {
        #[serde(default)]
        rule: Option<Value>,
        #[serde(default)]
        params: Option<Value>,
    }
    let invalid =
        |e: serde_json::Error| QueryError::BadQuery(format!("query JSON is invalid: {e}"));
    let text = json.trim_ascii();
    let (rule, params) = match text.first() {
        None => (None, None),
        Some(b'{') => {
            let m: Members = serde_json::from_slice(text).map_err(invalid)?;
            (m.rule, m.params)
        }
        // Not an object: the same "invalid" message for bad JSON as for an object.
        Some(_) => {
            serde_json::from_slice::<serde::de::IgnoredAny>(text).map_err(invalid)?;
            return Err(QueryError::BadQuery("query JSON must be an object".into()));
        }
    };
    let rule = match rule {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(QueryError::BadQuery(
                "the query does not name a rule (set \"rule\" to a rule id)".into(),
            ))
        }
        Some(_) => return Err(QueryError::BadQuery("\"rule\" must be a string".into())),
    };
    let params = match params {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(QueryError::BadQuery("\"params\" must be an object".into())),
    };
    Ok(QueryModel { rule, params })
}

/// Rounds `from` down and `to` up to multiples of `align_seconds` (config.md §4).
fn align(from_ms: i64, to_ms: i64, align_seconds: u64) -> (i64, i64) {
    if align_seconds == 0 {
        return (from_ms, to_ms);
    }
    let step = i64::try_from(align_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let down = from_ms.div_euclid(step) * step;
    let up = to_ms
        .checked_add(step - 1)
        .map_or(to_ms, |t| t.div_euclid(step) * step);
    (down, up)
}

/// Runs one query against a compiled instance and returns its frames.
///
/// # Errors
/// [`QueryError`] with the status and errorSource Grafana should see; messages are masked.
pub async fn run(
    instance: &Instance,
    query: &DataQuery,
    ctx: RequestContext,
) -> Result<Vec<Frame>, QueryError> {
    let model = parse_model(&query.json)?;
    run_rule(instance, &model.rule, &model.params, query, ctx).await
}

/// Runs rule `rule_id` with `params` (the query's `params` object).
///
/// # Errors
/// As [`run`].
pub async fn run_rule(
    instance: &Instance,
    rule_id: &str,
    params: &serde_json::Map<String, Value>,
    query: &DataQuery,
    ctx: RequestContext,
) -> Result<Vec<Frame>, QueryError> {
    let prepared = prepare(instance, rule_id, params, query, &ctx)?;
    fetch_and_convert(instance, prepared)
        .await
        .map(|(frames, _)| frames)
}

/// What identical concurrent queries share: the encoded frames, or the error.
pub type SharedAnswer = Result<Vec<bytes::Bytes>, std::sync::Arc<QueryError>>;

/// Runs a query and returns its frames encoded as Arrow IPC files (what QueryData sends),
/// answering from the instance's answer cache when a fresh entry exists for the same rule,
/// rendered request and refId: a hit costs a lookup and reference-count increments.
///
/// On a miss, identical concurrent queries (same rule, rendered request, refId and cache
/// reading) share one computation — one upstream call, one conversion, one encoding — and
/// all get its frames or its error ([`QueryError::Shared`]). A waiter gives up at its own
/// Grafana deadline (504) without cancelling the computation for the others; when every
/// waiter is gone, the computation (and its upstream request) is dropped.
///
/// `model` is `query.json` parsed by [`parse_model`] (the caller also needs the rule id).
///
/// # Errors
/// As [`run`]; frame encoding failures are [`QueryError::Frame`]; a settings error of
/// `compiled` is [`QueryError::Settings`].
pub async fn run_encoded(
    compiled: &crate::instance::CompiledInstance,
    model: QueryModel,
    query: &DataQuery,
    ctx: RequestContext,
) -> Result<Vec<bytes::Bytes>, QueryError> {
    let instance = match compiled.as_ref() {
        Ok(i) => i,
        Err(e) => return Err(QueryError::Settings(e.to_string())),
    };
    test_hook_panic(&model.rule);
    let prepared = prepare(instance, &model.rule, &model.params, query, &ctx)?;
    let mut key = prepared.request.cache_key();
    key.push('\0');
    key.push_str(&prepared.rule.id);
    key.push('\0');
    key.push_str(&query.ref_id);
    let use_answers = instance.answers.is_some() && !prepared.policy.ttl.is_zero();
    if let (Some(answers), true, true) = (&instance.answers, use_answers, prepared.policy.read) {
        if let Some(hit) = answers.get(&key).await {
            if std::time::Instant::now() < hit.fresh_until {
                crate::metrics::global().cache_event("hit");
                return Ok(hit.frames.clone());
            }
        }
    }
    let masked_url = prepared.masked_url.clone();
    // Fresh-wanting queries (alerts) never join a computation that may read the cache.
    let flight_key = format!("{key}\0{}", u8::from(prepared.policy.read));
    drop(prepared);
    let (id, flight) = {
        let mut map = instance
            .answer_flights
            .lock()
            .map_err(|_| QueryError::Internal("answer coalescing lock poisoned".into()))?;
        match map.get(&flight_key) {
            Some((id, f)) => {
                crate::metrics::global().cache_event("coalesced");
                (*id, f.clone())
            }
            None => {
                use futures_util::FutureExt;
                let compiled = compiled.clone();
                let query = query.clone();
                let ctx = ctx.clone();
                let fut = async move {
                    compute_answer(&compiled, &model, &query, &ctx, key, use_answers)
                        .await
                        .map_err(std::sync::Arc::new)
                }
                .boxed()
                .shared();
                let id = instance
                    .next_answer_flight
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                map.insert(flight_key.clone(), (id, fut.clone()));
                (id, fut)
            }
        }
    };
    let guard = crate::fetch::FlightGuard {
        map: &instance.answer_flights,
        key: &flight_key,
        id,
        flight: flight.clone(),
    };
    // The computation runs under the first query's timeouts; a waiter with a Grafana
    // deadline stops at its own (its 504), leaving the computation to the others.
    let result = match ctx.deadline {
        None => flight.await.map_err(QueryError::Shared),
        Some(limit) => match tokio::time::timeout(limit, flight).await {
            Ok(r) => r.map_err(QueryError::Shared),
            Err(_) => Err(QueryError::Fetch(crate::fetch::FetchError::Timeout {
                url: masked_url,
                seconds: limit.as_secs_f64(),
            })),
        },
    };
    drop(guard);
    result
}

/// The miss path of [`run_encoded`]: prepare again (inside the shared computation, which
/// owns its inputs), fetch, convert, encode and store in the answer cache.
async fn compute_answer(
    compiled: &crate::instance::CompiledInstance,
    model: &QueryModel,
    query: &DataQuery,
    ctx: &RequestContext,
    key: String,
    use_answers: bool,
) -> Result<Vec<bytes::Bytes>, QueryError> {
    let instance = match compiled.as_ref() {
        Ok(i) => i,
        Err(e) => return Err(QueryError::Settings(e.to_string())),
    };
    let prepared = prepare(instance, &model.rule, &model.params, query, ctx)?;
    crate::metrics::global().answers_computed.inc();
    let (frames, fresh_until) = fetch_and_convert(instance, prepared).await?;
    let size: usize = frames.iter().map(Frame::approx_bytes).sum();
    let encoded = cpu_heavy(size, || {
        frames
            .iter()
            .map(|f| {
                f.encode(&query.ref_id).map(|mut v| {
                    // The answer cache weighs `len`: do not keep spare capacity alive with it.
                    v.shrink_to_fit();
                    bytes::Bytes::from(v)
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    if let (Some(answers), true, Some(until)) = (&instance.answers, use_answers, fresh_until) {
        let answer = crate::instance::Answer {
            frames: encoded.clone(),
            fresh_until: until,
        };
        answers.insert(key, std::sync::Arc::new(answer)).await;
    }
    Ok(encoded)
}

/// The request a query would send, for the editor's preview: method, masked URL, headers
/// (credential headers replaced by `***`, secrets masked elsewhere) and the body (masked).
///
/// # Errors
/// As [`run`] for the steps before fetching (unknown rule, params, render).
pub fn describe_request(
    instance: &Instance,
    rule_id: &str,
    params: &serde_json::Map<String, Value>,
    query: &DataQuery,
) -> Result<Value, QueryError> {
    let p = prepare(instance, rule_id, params, query, &RequestContext::default())?;
    let headers: Vec<Value> = p
        .request
        .headers
        .iter()
        .map(|(k, v)| serde_json::json!([k, instance.mask_header(k, v)]))
        .collect();
    let body = p
        .request
        .body
        .as_ref()
        .map(|b| instance.mask(&String::from_utf8_lossy(b)));
    let credential = instance
        .token
        .as_ref()
        .map(|_| "a run-time credential (OAuth2/login) is added when sent");
    Ok(serde_json::json!({
        "method": p.request.method.as_str(),
        "url": p.masked_url,
        "headers": headers,
        "body": body,
        "note": credential,
    }))
}

/// Debug builds only, and only with `RESTBRIDGE_TEST_HOOKS=1`: a query for the rule id
/// `__panic__` panics, so the tests can prove a panic inside a query becomes that refId's 500
/// and the process keeps serving. Compiled out of release builds.
#[allow(clippy::panic)]
fn test_hook_panic(rule: &str) {
    if cfg!(debug_assertions)
        && rule == "__panic__"
        && std::env::var("RESTBRIDGE_TEST_HOOKS").as_deref() == Ok("1")
    {
        panic!("test hook: deliberate panic inside a query");
    }
}

/// A query rendered and ready to fetch.
struct Prepared<'a> {
    rule: &'a crate::rule::Rule,
    request: crate::fetch::HttpRequest,
    masked_url: String,
    extra_secrets: Vec<String>,
    policy: crate::fetch::CachePolicy,
    timeout: Duration,
}

/// Rule lookup, params, time alignment, rendering, forwarded identity and cache policy.
fn prepare<'a>(
    instance: &'a Instance,
    rule_id: &str,
    params: &serde_json::Map<String, Value>,
    query: &DataQuery,
    ctx: &RequestContext,
) -> Result<Prepared<'a>, QueryError> {
    let Some(rule) = instance.rules.get(rule_id) else {
        let known = instance.rule_ids();
        return Err(QueryError::BadQuery(format!(
            "unknown rule '{rule_id}' (known rules: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    };
    let params = rule.resolve_params(params).map_err(QueryError::BadQuery)?;
    let (from_ms, to_ms) = align(query.from_ms, query.to_ms, rule.align_seconds);
    let input = RenderInput {
        params: &params,
        from_ms,
        to_ms,
        interval_ms: query.interval_ms,
        max_data_points: query.max_data_points,
    };
    let (mut request, masked_url) = instance
        .render(rule, &input)
        .map_err(|m| QueryError::Render(instance.mask(&m)))?;
    let mut timeout = rule
        .timeout
        .unwrap_or(instance.timeout)
        .min(instance.timeout);
    if let Some(d) = ctx.deadline {
        timeout = timeout.min(d);
    }
    // Per-request secrets: the forwarded identity (and run-time tokens, added later).
    let mut extra_secrets: Vec<String> = Vec::new();
    forward_identity(instance, ctx, &mut request, &mut extra_secrets);
    // Alert queries (and X-Cache-Skip) want fresh data unless the rule says otherwise;
    // identical concurrent calls are still coalesced (protocol.md §4.3).
    let skip_cache = (ctx.from_alert || ctx.cache_skip) && !rule.alert_from_cache;
    let policy = crate::fetch::CachePolicy {
        ttl: rule.cache_ttl,
        stale_if_error: rule.stale_if_error,
        read: !skip_cache,
    };
    Ok(Prepared {
        rule,
        request,
        masked_url,
        extra_secrets,
        policy,
        timeout,
    })
}

/// Fetches every page and converts: the frames, and until when they are fresh (`None` when
/// not cacheable: TTL 0 or a stale answer).
async fn fetch_and_convert(
    instance: &Instance,
    p: Prepared<'_>,
) -> Result<(Vec<Frame>, Option<std::time::Instant>), QueryError> {
    let rule = p.rule;
    let mut fetch = Fetch {
        instance,
        rule,
        timeout: p.timeout,
        started: tokio::time::Instant::now(),
        extra_secrets: p.extra_secrets,
        policy: p.policy,
        notices: Vec::new(),
        fresh_until: None,
        uncacheable: false,
    };
    let frames = if rule.pagination.is_none() {
        // One page: the DOM-free fast path on the raw body when the rule fits it
        // (convert_fast.rs), else the DOM path. Same frames and errors either way.
        let fetched = fetch.one(&p.request, &p.masked_url).await?;
        let notices = std::mem::take(&mut fetch.notices);
        let fetch = &fetch;
        cpu_heavy(
            fetched.body.len(),
            move || match crate::convert_fast::FastPlan::new(rule) {
                Some(plan) => plan
                    .convert(&fetched.body, Some(p.masked_url), notices)
                    .map_err(|e| match e {
                        crate::convert_fast::FastError::NotJson(e) => {
                            fetch.not_json(&e, &fetched.body)
                        }
                        crate::convert_fast::FastError::Convert(e) => QueryError::Convert(e),
                    }),
                None => {
                    let doc = fetch.parse(&fetched.body)?;
                    let frames =
                        crate::convert::convert_pages(rule, &[&doc], Some(p.masked_url), notices)?;
                    drop_large(doc, fetched.body.len());
                    Ok(frames)
                }
            },
        )
        .await?
    } else {
        let (docs, mut notices) = fetch.pages(p.request, &p.masked_url).await?;
        notices.splice(0..0, fetch.notices.drain(..));
        // Pages were parsed as they arrived; size the conversion by the number of pages.
        let hint = docs.len().saturating_mul(CPU_INLINE_BYTES);
        cpu_heavy(hint, move || {
            let refs: Vec<&Value> = docs.iter().collect();
            let frames = crate::convert::convert_pages(rule, &refs, Some(p.masked_url), notices)?;
            let total: usize = docs.len();
            for doc in docs {
                drop_large(doc, total);
            }
            Ok::<_, QueryError>(frames)
        })
        .await?
    };
    let fresh_until = if fetch.uncacheable {
        None
    } else {
        fetch.fresh_until
    };
    Ok((frames, fresh_until))
}

/// Adds the Grafana user's identity when the datasource forwards it (`oauthPassThru`,
/// `keepCookies`).
fn forward_identity(
    instance: &Instance,
    ctx: &RequestContext,
    request: &mut crate::fetch::HttpRequest,
    extra_secrets: &mut Vec<String>,
) {
    for (name, value) in &ctx.forwarded {
        let is_cookie = name.eq_ignore_ascii_case("cookie");
        let value = if is_cookie {
            if instance.keep_cookies.is_empty() {
                continue;
            }
            let kept: Vec<&str> = value
                .split(';')
                .map(str::trim)
                .filter(|c| {
                    c.split_once('=')
                        .is_some_and(|(k, _)| instance.keep_cookies.iter().any(|n| n == k.trim()))
                })
                .collect();
            if kept.is_empty() {
                continue;
            }
            kept.join("; ")
        } else if instance.oauth_pass_thru {
            value.clone()
        } else {
            continue;
        };
        request
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        extra_secrets.push(value.clone());
        if let Some(token) = value.split_whitespace().nth(1) {
            extra_secrets.push(token.to_owned());
        }
        request.headers.push((name.clone(), value));
    }
}

/// The upstream side of one query: credentials, pages, masking.
struct Fetch<'a> {
    instance: &'a Instance,
    rule: &'a crate::rule::Rule,
    timeout: Duration,
    started: tokio::time::Instant,
    extra_secrets: Vec<String>,
    policy: crate::fetch::CachePolicy,
    /// Notices gathered while fetching (stale answers).
    notices: Vec<crate::frame::Notice>,
    /// The earliest `fresh_until` of the pages fetched.
    fresh_until: Option<std::time::Instant>,
    /// A page was not cacheable (TTL 0 or stale).
    uncacheable: bool,
}

impl Fetch<'_> {
    fn remaining(&self) -> Duration {
        self.timeout.saturating_sub(self.started.elapsed())
    }

    fn mask_err(&self, e: crate::fetch::FetchError) -> QueryError {
        QueryError::Fetch(mask_fetch(self.instance, &self.extra_secrets, e))
    }

    /// One request with the run-time credential; a 401 refreshes it and retries once.
    async fn one(
        &mut self,
        request: &crate::fetch::HttpRequest,
        masked_url: &str,
    ) -> Result<crate::fetch::Fetched, QueryError> {
        let Some(provider) = &self.instance.token else {
            return self
                .instance
                .fetcher
                .fetch(request, masked_url, self.policy, self.remaining())
                .await
                .map(|f| self.note_stale(f))
                .map_err(|e| self.mask_err(e));
        };
        let mut retried = false;
        loop {
            let cred = provider
                .credential(
                    &self.instance.fetcher,
                    self.instance.secrets(),
                    self.remaining(),
                )
                .await
                .map_err(|e| self.mask_err(e))?;
            self.extra_secrets.push(cred.value.clone());
            if let Some((_, bare)) = cred.value.split_once(' ') {
                self.extra_secrets.push(bare.to_owned());
            }
            if let Some((_, bare)) = cred.value.split_once('=') {
                self.extra_secrets.push(bare.to_owned());
            }
            let mut req = request.clone();
            req.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case(&cred.header));
            req.headers.push((cred.header.clone(), cred.value.clone()));
            match self
                .instance
                .fetcher
                .fetch(&req, masked_url, self.policy, self.remaining())
                .await
                .map(|f| self.note_stale(f))
            {
                Err(crate::fetch::FetchError::Status { status: 401, .. }) if !retried => {
                    tracing::debug!(rule = %self.rule.id, "Upstream answered 401; renewing the credential once.");
                    provider.invalidate(cred.generation).await;
                    retried = true;
                }
                Err(e) => return Err(self.mask_err(e)),
                Ok(f) => return Ok(f),
            }
        }
    }

    /// Turns a stale answer's note into a frame notice (secrets masked).
    fn note_stale(&mut self, f: crate::fetch::Fetched) -> crate::fetch::Fetched {
        match f.fresh_until {
            None => self.uncacheable = true,
            Some(u) => {
                self.fresh_until = Some(self.fresh_until.map_or(u, |cur| cur.min(u)));
            }
        }
        if let Some(note) = &f.stale {
            let text = self.instance.mask_with(note, &self.extra_secrets);
            self.notices.push(crate::frame::Notice {
                severity: "warning",
                text,
            });
        }
        f
    }

    fn parse(&self, body: &[u8]) -> Result<Value, QueryError> {
        serde_json::from_slice(body).map_err(|e| self.not_json(&e, body))
    }

    /// The "not JSON" error for `body` (secrets masked).
    fn not_json(&self, e: &serde_json::Error, body: &[u8]) -> QueryError {
        QueryError::NotJson {
            rule: self.rule.id.clone(),
            message: self
                .instance
                .mask_with(&not_json_message(e, body), &self.extra_secrets),
        }
    }

    /// Fetches every page (config.md §2.1) and returns the parsed documents and notices.
    async fn pages(
        &mut self,
        first: crate::fetch::HttpRequest,
        masked_url: &str,
    ) -> Result<(Vec<Value>, Vec<crate::frame::Notice>), QueryError> {
        use crate::settings::PaginationKind as K;
        let Some(p) = self.rule.pagination.clone() else {
            let fetched = self.one(&first, masked_url).await?;
            return Ok((vec![self.parse(&fetched.body)?], Vec::new()));
        };
        let mut docs = Vec::new();
        let mut notices = Vec::new();
        let mut rows_read: u64 = 0;
        // The cursor keeps its JSON type: a string cursor is sent back as a string.
        let mut cursor: Option<(String, bool)> = None;
        let mut next_url: Option<reqwest::Url> = None;
        for page in 0..p.max_pages {
            let mut req = first.clone();
            let page_i = i64::from(page);
            let value = match p.kind {
                K::Page => Some(((p.start + page_i).to_string(), true)),
                K::Offset => {
                    let size = p.size.as_ref().map_or(0, |(_, n)| *n as i64);
                    Some(((p.start + page_i * size).to_string(), true))
                }
                K::Cursor => cursor.clone(),
                K::Link => None,
            };
            if let Some((v, numeric)) = &value {
                set_param(&mut req, &p.param, v, p.in_body, *numeric);
            }
            if let Some((name, n)) = &p.size {
                if !name.is_empty() && matches!(p.kind, K::Page | K::Offset) {
                    set_param(&mut req, name, &n.to_string(), p.in_body, true);
                }
            }
            if let (K::Link, Some(url)) = (p.kind, &next_url) {
                req.url = url.clone();
            }
            let masked = self
                .instance
                .mask_with(req.url.as_str(), &self.extra_secrets);
            let fetched = self.one(&req, &masked).await?;
            let doc = self.parse(&fetched.body)?;
            let n = crate::convert::count_rows(self.rule, &doc) as u64;
            rows_read += n;
            let total = p
                .total_path
                .as_ref()
                .and_then(|t| t.select_one(&doc).ok().flatten())
                .and_then(crate::convert::to_f64);
            cursor = p
                .cursor_path
                .as_ref()
                .and_then(|c| c.select_one(&doc).ok().flatten())
                .and_then(|v| match v {
                    Value::String(s) if !s.is_empty() => Some((s.clone(), false)),
                    Value::Number(n) => Some((n.to_string(), true)),
                    _ => None,
                });
            docs.push(doc);
            let more = match p.kind {
                _ if n == 0 => false,
                _ if total.is_some_and(|t| rows_read as f64 >= t) => false,
                K::Page | K::Offset => p.size.as_ref().is_none_or(|(_, size)| n >= *size),
                K::Cursor => cursor.is_some(),
                K::Link => match fetched.next_link.as_deref() {
                    None => false,
                    Some(link) => {
                        let url = req.url.join(link).map_err(|e| {
                            QueryError::Render(format!(
                                "rule '{}': the Link header's next URL is invalid: {e}",
                                self.rule.id
                            ))
                        })?;
                        let hp = crate::fetch::host_port(&url);
                        if !self.instance.allowed_hosts.contains(&hp) {
                            return Err(QueryError::Render(format!(
                                "rule '{}': the Link header points to {hp}, which is neither \
                                 the datasource host nor in jsonData.allowedHosts",
                                self.rule.id
                            )));
                        }
                        next_url = Some(url);
                        true
                    }
                },
            };
            if !more {
                return Ok((docs, notices));
            }
        }
        notices.push(crate::frame::Notice {
            severity: "warning",
            text: format!(
                "stopped after maxPages ({}) pages; the API has more data (raise request.pagination.maxPages)",
                p.max_pages
            ),
        });
        Ok((docs, notices))
    }
}

/// Sets (replaces) a query parameter, or a top-level field of the JSON body (a JSON number
/// when `numeric`, else a string).
fn set_param(
    req: &mut crate::fetch::HttpRequest,
    name: &str,
    value: &str,
    in_body: bool,
    numeric: bool,
) {
    if in_body {
        if let Some(body) = &req.body {
            if let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(body) {
                let number = numeric
                    .then(|| serde_json::from_str::<serde_json::Number>(value).ok())
                    .flatten();
                let v = number.map_or_else(|| Value::String(value.to_owned()), Value::Number);
                obj.insert(name.to_owned(), v);
                req.body = Some(Value::Object(obj).to_string().into_bytes());
            }
        }
        return;
    }
    let pairs: Vec<(String, String)> = req
        .url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    req.url
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(name, value);
}

fn not_json_message(e: &serde_json::Error, body: &[u8]) -> String {
    let start: String = String::from_utf8_lossy(&body[..body.len().min(64)]).into_owned();
    format!("{e} (body starts with {start:?})")
}

/// Work below this size (response bytes) runs inline on the async worker: handing it to
/// another thread would cost more than it saves. Measured (docs/benchmarks-load.md, cold
/// path): `block_in_place` costs ~200 µs of CPU per call on 2 CPUs (a thread hand-off of
/// the worker), about as much as converting and encoding a 62 KB response, so only
/// responses of 1 MiB or more (several ms of conversion) leave the worker.
pub const CPU_INLINE_BYTES: usize = 1024 * 1024;

/// Bounds the conversions running at once to the number of CPUs, so that a burst of large
/// responses queues instead of starting hundreds of threads (and DOMs) at once.
static CPU_SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

/// Runs CPU-bound work (JSON → frames, Arrow encoding) of about `size` bytes of input.
///
/// Small work runs inline. Larger work waits for one of the conversion slots (one per CPU), then
/// runs in `tokio::task::block_in_place`: the async worker's other tasks (gRPC I/O, cache
/// hits, upstream reads) move to another thread meanwhile, so a 50 MB conversion never
/// stalls them. A panic inside `f` unwinds into the calling query task as before (that
/// refId's 500). Outside a multi-thread runtime, `f` runs inline.
pub async fn cpu_heavy<R>(size: usize, f: impl FnOnce() -> R) -> R {
    if size < CPU_INLINE_BYTES {
        return f();
    }
    let _slot = CPU_SLOTS.acquire().await.ok();
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Drops a large DOM off the async workers (freeing ~1e6 small maps takes hundreds of ms,
/// libraries.md §5).
fn drop_large(doc: Value, body_len: usize) {
    if body_len > 1 << 20 {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn_blocking(move || drop(doc));
            return;
        }
    }
    drop(doc);
}

fn mask_fetch(
    instance: &Instance,
    extra: &[String],
    e: crate::fetch::FetchError,
) -> crate::fetch::FetchError {
    use crate::fetch::FetchError as F;
    let m = |t: &str| instance.mask_with(t, extra);
    match e {
        F::Connect { url, message } => F::Connect {
            url: m(&url),
            message: m(&message),
        },
        F::Status { url, status, body } => F::Status {
            url: m(&url),
            status,
            body: m(&body),
        },
        F::RateLimited {
            url,
            retry_after_secs,
            body,
        } => F::RateLimited {
            url: m(&url),
            retry_after_secs,
            body: m(&body),
        },
        F::Body { url, message } => F::Body {
            url: m(&url),
            message: m(&message),
        },
        F::Timeout { url, seconds } => F::Timeout {
            url: m(&url),
            seconds,
        },
        F::TooLarge { url, limit } => F::TooLarge {
            url: m(&url),
            limit,
        },
        F::Request(r) => F::Request(m(&r)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn align_rounds_outwards() {
        assert_eq!(align(61_000, 119_000, 60), (60_000, 120_000));
        assert_eq!(align(60_000, 120_000, 60), (60_000, 120_000));
        assert_eq!(align(61_500, 119_500, 0), (61_500, 119_500));
    }

    #[test]
    fn query_model_errors() {
        let msg = |json: &[u8]| match parse_model(json) {
            Err(QueryError::BadQuery(m)) => m,
            other => panic!(
                "{:?}: expected a bad-query error, got {other:?}",
                String::from_utf8_lossy(json)
            ),
        };
        for no_rule in [
            &b""[..],
            b"  ",
            b"{}",
            br#"{"rule": null}"#,
            br#"{"rule": "  "}"#,
        ] {
            assert!(msg(no_rule).contains("does not name a rule"), "{no_rule:?}");
        }
        for not_object in [&b"[]"[..], b"\"rows\"", b" 1", b"null"] {
            assert_eq!(msg(not_object), "query JSON must be an object");
        }
        for invalid in [
            &b"{"[..],
            b"[",
            br#"{"rule": "a",}"#,
            b"nul",
            br#"{"rule": "a"} x"#,
        ] {
            assert!(
                msg(invalid).starts_with("query JSON is invalid: "),
                "{invalid:?}"
            );
        }
        assert_eq!(msg(br#"{"rule": 1}"#), "\"rule\" must be a string");
        assert_eq!(
            msg(br#"{"rule": "a", "params": []}"#),
            "\"params\" must be an object"
        );
        // Grafana's own members, of any type, are skipped; null params mean none.
        let m = parse_model(
            br#" {"refId": "A", "datasource": {"uid": "x", "type": "t"}, "hide": false,
                 "rule": " a ", "params": {"x": "1", "n": 2}, "extra": [1, {"rule": "no"}]} "#,
        )
        .unwrap();
        assert_eq!(m.rule, "a");
        assert_eq!(m.params["x"], "1");
        assert_eq!(m.params["n"], 2);
        let m = parse_model(br#"{"params": null, "rule": "b"}"#).unwrap();
        assert_eq!((m.rule.as_str(), m.params.len()), ("b", 0));
    }
}
