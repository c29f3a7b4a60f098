//! Compiled datasource instances, cached per settings version (uid + lastUpdatedMS,
//! protocol.md §2.9 "Instance caching"), and request rendering.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fetch::{host_port, Fetcher, HttpRequest};
use crate::rule::{BodyTemplate, JsonTemplate, Rule};
use crate::settings::{
    ApiKeyLocation, AuthConfig, DataSourceSettings, HealthCheckConfig, JsonData, SettingsError,
    DEFAULT_CACHE_MAX_BYTES, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT_SECS,
};
use crate::template::{Position, RenderContext};

/// The mask that replaces secrets in every message, frame and log line (config.md §1).
pub const MASK: &str = "***";

/// A cached query answer: encoded frames of one rule × rendered request × refId.
#[derive(Debug)]
pub struct Answer {
    /// Arrow IPC files, as sent in `DataResponse.frames`.
    pub frames: Vec<bytes::Bytes>,
    /// Fresh until then (never later than the underlying response's freshness).
    pub fresh_until: std::time::Instant,
}

struct AnswerExpiry;

impl moka::Expiry<String, std::sync::Arc<Answer>> for AnswerExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &std::sync::Arc<Answer>,
        created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.fresh_until.saturating_duration_since(created_at))
    }
}

/// A compiled datasource: rules, HTTP client and cache, secrets.
#[derive(Debug)]
pub struct Instance {
    /// Datasource uid.
    pub uid: String,
    /// Base URL of rule URLs.
    pub base: reqwest::Url,
    /// Rules by id.
    pub rules: BTreeMap<String, Rule>,
    /// HTTP client + cache.
    pub fetcher: Fetcher,
    /// Encoded answers (see [`crate::pipeline::run_encoded`]); `None` when switched off with
    /// `RESTBRIDGE_ANSWER_CACHE=off` (a benchmarking switch).
    pub answers: Option<moka::future::Cache<String, std::sync::Arc<Answer>>>,
    /// Answers being computed (fetch + convert + encode), by answer key: identical
    /// concurrent queries wait for one computation (`pipeline::run_encoded`).
    pub answer_flights: crate::fetch::FlightMap<crate::pipeline::SharedAnswer>,
    /// Id source of [`answer_flights`](Self::answer_flights) entries.
    pub next_answer_flight: std::sync::atomic::AtomicU64,
    /// Datasource timeout.
    pub timeout: Duration,
    /// `host:port` an absolute rule URL (or a redirect) may reach: the base host + allowedHosts.
    pub allowed_hosts: Vec<String>,
    /// Optional live health check.
    pub health_check: Option<HealthCheckConfig>,
    /// Run-time credential (OAuth2 client credentials or a login), if configured.
    pub token: Option<crate::auth::TokenProvider>,
    /// Forward the user's `Authorization` / `X-Id-Token` (`oauthPassThru`).
    pub oauth_pass_thru: bool,
    /// Cookie names forwarded from Grafana (`keepCookies`).
    pub keep_cookies: Vec<String>,
    secrets: HashMap<String, String>,
    /// Secret values, longest first, for masking.
    secret_values: Vec<String>,
    /// Headers added to every request: (name, value) — values may be secrets.
    fixed_headers: Vec<(String, String)>,
    /// API key sent as a query parameter: (name, value).
    query_key: Option<(String, String)>,
    /// Parsed request URLs by their rendered parts (see `build_url`), so that repeated
    /// queries, answer-cache hits above all, skip URL parsing. At most [`URL_MEMO_ENTRIES`];
    /// emptied when full.
    url_memo: Mutex<HashMap<String, reqwest::Url>>,
}

/// Most URLs one compiled datasource remembers parsed (`Instance::render`): ~100–300 bytes
/// each, so at most a few hundred KiB per datasource version.
pub const URL_MEMO_ENTRIES: usize = 1024;

/// The inputs of one render: params and the query's time range.
#[derive(Debug, Clone)]
pub struct RenderInput<'a> {
    /// Resolved params (declared params only, defaults filled).
    pub params: &'a HashMap<String, String>,
    /// Range start, epoch ms.
    pub from_ms: i64,
    /// Range end, epoch ms.
    pub to_ms: i64,
    /// Interval, ms.
    pub interval_ms: i64,
    /// Max data points.
    pub max_data_points: i64,
}

impl Instance {
    /// Compiles datasource settings: jsonData, rules, base URL, auth, HTTP client.
    ///
    /// # Errors
    /// [`SettingsError`] naming the rule and key, or the datasource key, at fault.
    pub fn compile(s: &DataSourceSettings) -> Result<Instance, SettingsError> {
        let jd = JsonData::parse(&s.json_data)?;
        let ds_err = |key: &str, message: String| SettingsError::Datasource {
            key: key.to_owned(),
            message,
        };
        let (base_text, base_key) = match jd.base_url.as_deref().map(str::trim) {
            Some(b) if !b.is_empty() => (b.to_owned(), "jsonData.baseUrl"),
            _ => (s.url.trim().to_owned(), "url"),
        };
        if base_text.is_empty() {
            return Err(ds_err(base_key, "the datasource URL is empty".into()));
        }
        let base = reqwest::Url::parse(&base_text)
            .map_err(|e| ds_err(base_key, format!("'{base_text}' is not a valid URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(ds_err(
                base_key,
                format!("'{base_text}' must be an http:// or https:// URL with a host"),
            ));
        }
        let mut allowed_hosts = vec![host_port(&base)];
        for h in &jd.allowed_hosts {
            let h = h.trim().to_ascii_lowercase();
            if h.is_empty() {
                continue;
            }
            if h.contains(':') {
                allowed_hosts.push(h);
            } else {
                allowed_hosts.push(format!("{h}:80"));
                allowed_hosts.push(format!("{h}:443"));
            }
        }
        let secrets: HashMap<String, String> = s
            .secure_json_data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let secret_keys: HashSet<String> = secrets
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        let mut secret_values: Vec<String> = secrets
            .values()
            .filter(|v| !v.is_empty())
            .cloned()
            .collect();
        secret_values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        secret_values.dedup();

        let mut fixed_headers = Vec::new();
        if s.basic_auth_enabled {
            let pass = secrets
                .get("basicAuthPassword")
                .cloned()
                .unwrap_or_default();
            let token = base64_encode(format!("{}:{pass}", s.basic_auth_user).as_bytes());
            fixed_headers.push(("Authorization".to_owned(), format!("Basic {token}")));
        }
        let mut query_key = None;
        let mut token = None;
        match &jd.auth {
            None => {}
            Some(AuthConfig::OAuth2 {
                token_url,
                client_id,
                scopes,
                endpoint_params,
            }) => {
                let secret = secrets
                    .get("clientSecret")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ds_err(
                            "auth",
                            "type oauth2 needs secureJsonData.clientSecret".into(),
                        )
                    })?;
                let url = join_url(&base, token_url).map_err(|m| ds_err("auth.tokenUrl", m))?;
                // The client secret goes only where credentials may go (config.md §1).
                if !allowed_hosts.contains(&host_port(&url)) {
                    return Err(ds_err(
                        "auth.tokenUrl",
                        "the token URL must be on the datasource host or in allowedHosts".into(),
                    ));
                }
                let mut form = vec![
                    ("grant_type".to_owned(), "client_credentials".to_owned()),
                    ("client_id".to_owned(), client_id.clone()),
                    ("client_secret".to_owned(), secret.clone()),
                ];
                if !scopes.is_empty() {
                    form.push(("scope".to_owned(), scopes.join(" ")));
                }
                form.extend(endpoint_params.iter().map(|(k, v)| (k.clone(), v.clone())));
                token = Some(crate::auth::TokenProvider::new(
                    crate::auth::TokenSource::OAuth2 {
                        token_url: url,
                        form,
                    },
                ));
            }
            Some(AuthConfig::Login {
                url,
                method,
                body,
                token_path,
                cookie,
                header,
                prefix,
                ttl_seconds,
            }) => {
                let url = join_url(&base, url).map_err(|m| ds_err("auth.url", m))?;
                if !allowed_hosts.contains(&host_port(&url)) {
                    return Err(ds_err(
                        "auth.url",
                        "the login URL must be on the datasource host or in allowedHosts".into(),
                    ));
                }
                let method = match method.as_deref().map(str::to_ascii_uppercase).as_deref() {
                    None | Some("POST") => reqwest::Method::POST,
                    Some("GET") => reqwest::Method::GET,
                    Some(other) => {
                        return Err(ds_err(
                            "auth.method",
                            format!("must be GET or POST, got '{other}'"),
                        ))
                    }
                };
                let parse = |key: &str,
                             t: &str|
                 -> Result<crate::template::Template, SettingsError> {
                    let t = crate::template::Template::parse(t)
                        .map_err(|e| ds_err(key, e.to_string()))?;
                    if let Some(p) = t.params().next() {
                        return Err(ds_err(
                            key,
                            format!("only ${{__secure.KEY}} can be used here, not '${{{p}}}'"),
                        ));
                    }
                    for k in t.secrets() {
                        if !secret_keys.contains(k) {
                            return Err(ds_err(key, format!("secureJsonData has no key '{k}'")));
                        }
                    }
                    Ok(t)
                };
                let body = match body {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(t)) => {
                        Some(crate::auth::LoginBody::Text(parse("auth.body", t)?))
                    }
                    Some(v) => Some(crate::auth::LoginBody::Json(
                        crate::rule::compile_json_template("auth.body", v, &parse)?,
                    )),
                };
                let token_path = token_path
                    .as_deref()
                    .map(|p| {
                        crate::jsonpath::JsonPath::compile(p)
                            .map_err(|e| ds_err("auth.tokenPath", e.to_string()))
                    })
                    .transpose()?;
                if token_path.is_none() == cookie.is_none() {
                    return Err(ds_err(
                        "auth",
                        "type login needs exactly one of 'tokenPath' and 'cookie'".into(),
                    ));
                }
                token = Some(crate::auth::TokenProvider::new(
                    crate::auth::TokenSource::Login {
                        method,
                        url,
                        body: body.map(Box::new),
                        token_path,
                        cookie: cookie.clone(),
                        header: header.clone().unwrap_or_else(|| "Authorization".into()),
                        prefix: prefix.clone().unwrap_or_default(),
                        ttl: ttl_seconds.filter(|t| *t > 0).map(Duration::from_secs),
                    },
                ));
            }
            Some(AuthConfig::Bearer) => {
                let token = secrets
                    .get("bearerToken")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ds_err(
                            "auth",
                            "type bearer needs secureJsonData.bearerToken".into(),
                        )
                    })?;
                fixed_headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
            }
            Some(AuthConfig::ApiKey { location, name }) => {
                let key = secrets
                    .get("apiKey")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ds_err("auth", "type apiKey needs secureJsonData.apiKey".into())
                    })?;
                match location {
                    ApiKeyLocation::Header => fixed_headers.push((name.clone(), key.clone())),
                    ApiKeyLocation::Query => query_key = Some((name.clone(), key.clone())),
                }
            }
        }
        for (name, key) in jd.custom_headers() {
            let value = secrets.get(&key).cloned().unwrap_or_default();
            if value.contains(['\r', '\n', '\0']) {
                return Err(ds_err(&key, "header value contains CR, LF or NUL".into()));
            }
            fixed_headers.push((name, value));
        }

        let timeout = match jd.timeout {
            None => Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
            Some(t) if t.is_finite() && t > 0.0 && t <= 86_400.0 => Duration::from_secs_f64(t),
            Some(t) => {
                return Err(ds_err(
                    "jsonData.timeout",
                    format!("must be between 0 and 86400 seconds, got {t}"),
                ))
            }
        };
        let ctx = crate::rule::CompileContext {
            secret_keys: &secret_keys,
            cache_defaults: jd.cache.as_ref(),
        };
        let rules = crate::rule::compile_rules(&jd.rules, &ctx)?;
        if let Some(hc) = &jd.health_check {
            if !rules.contains_key(&hc.rule) {
                return Err(ds_err(
                    "jsonData.healthCheck.rule",
                    format!("no rule with id '{}'", hc.rule),
                ));
            }
        }
        let max_body = jd.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        let cache_bytes = jd
            .cache
            .as_ref()
            .and_then(|c| c.max_bytes)
            .unwrap_or(DEFAULT_CACHE_MAX_BYTES);
        let secret = |k: &str| secrets.get(k).filter(|v| !v.trim().is_empty()).cloned();
        let ca_pem = if jd.tls_auth_with_ca_cert {
            Some(secret("tlsCACert").ok_or_else(|| {
                ds_err(
                    "tlsAuthWithCACert",
                    "needs secureJsonData.tlsCACert (PEM)".into(),
                )
            })?)
        } else {
            None
        };
        let client_identity_pem = if jd.tls_auth {
            match (secret("tlsClientCert"), secret("tlsClientKey")) {
                (Some(c), Some(k)) => Some((c, k)),
                _ => {
                    return Err(ds_err(
                        "tlsAuth",
                        "needs secureJsonData.tlsClientCert and tlsClientKey (PEM)".into(),
                    ))
                }
            }
        } else {
            None
        };
        // The byte budget is split: half for response bodies, half for encoded answers.
        let answers =
            (std::env::var("RESTBRIDGE_ANSWER_CACHE").as_deref() != Ok("off")).then(|| {
                moka::future::Cache::builder()
                    .max_capacity(cache_bytes / 2)
                    .weigher(|k: &String, v: &std::sync::Arc<Answer>| {
                        let bytes: usize = v.frames.iter().map(bytes::Bytes::len).sum();
                        u32::try_from(k.len() + bytes + 64).unwrap_or(u32::MAX)
                    })
                    .expire_after(AnswerExpiry)
                    .build()
            });
        let redis = match jd.cache.as_ref().and_then(|c| c.redis.as_ref()) {
            None => None,
            Some(r) => Some(std::sync::Arc::new(
                crate::redis_tier::RedisTier::new(
                    &r.url,
                    r.key_prefix.as_deref().unwrap_or("restbridge:"),
                    secrets.get("redisPassword").map(String::as_str),
                )
                .map_err(|m| ds_err("jsonData.cache.redis.url", m))?,
            )),
        };
        let fetcher = Fetcher::new(&crate::fetch::ClientOptions {
            redis,
            allowed_hosts: allowed_hosts.clone(),
            max_body,
            cache_bytes: if answers.is_some() {
                cache_bytes / 2
            } else {
                cache_bytes
            },
            tls_skip_verify: jd.tls_skip_verify,
            ca_pem,
            client_identity_pem,
            server_name: jd
                .server_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        })
        .map_err(|m| ds_err("tls", m))?;
        Ok(Instance {
            uid: s.uid.clone(),
            base,
            rules,
            fetcher,
            answers,
            answer_flights: std::sync::Mutex::default(),
            next_answer_flight: std::sync::atomic::AtomicU64::new(0),
            timeout,
            allowed_hosts,
            health_check: jd.health_check,
            token,
            oauth_pass_thru: jd.oauth_pass_thru,
            keep_cookies: jd.keep_cookies,
            secrets,
            secret_values: {
                // Header values built from secrets (e.g. `Basic base64(user:password)`) are
                // secrets too, whole and without their scheme.
                let mut all = secret_values;
                for (_, v) in &fixed_headers {
                    all.push(v.clone());
                    if let Some((_, token)) = v.split_once(' ') {
                        all.push(token.to_owned());
                    }
                }
                all.sort_by_key(|v| std::cmp::Reverse(v.len()));
                all.dedup();
                all
            },
            fixed_headers,
            query_key,
            url_memo: Mutex::default(),
        })
    }

    /// Replaces every secret value (and its URL-encoded form) in `text` with `***`.
    pub fn mask(&self, text: &str) -> String {
        self.mask_with(text, &[])
    }

    /// [`mask`](Self::mask), also masking per-request secrets (forwarded identity headers,
    /// run-time tokens).
    pub fn mask_with(&self, text: &str, extra: &[String]) -> String {
        let mut out = text.to_owned();
        for s in self
            .secret_values
            .iter()
            .chain(extra.iter().filter(|e| e.len() >= 4))
        {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
            let enc: String = form_urlencoded::byte_serialize(s.as_bytes()).collect();
            if enc != *s && out.contains(enc.as_str()) {
                out = out.replace(enc.as_str(), MASK);
            }
            let pct = percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
            if pct != *s && out.contains(pct.as_str()) {
                out = out.replace(pct.as_str(), MASK);
            }
        }
        out
    }

    /// A header value safe to show: credential headers of the datasource (basic auth,
    /// API key, custom secure headers) and `Authorization`/`Cookie` become `***`; other
    /// values have secrets masked.
    pub fn mask_header(&self, name: &str, value: &str) -> String {
        let sensitive = [
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-id-token",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
            || self
                .fixed_headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name));
        if sensitive {
            MASK.to_owned()
        } else {
            self.mask(value)
        }
    }

    /// The decrypted secureJsonData (for rendering run-time credential requests).
    pub fn secrets(&self) -> &HashMap<String, String> {
        &self.secrets
    }

    /// Ids of the rules, sorted.
    pub fn rule_ids(&self) -> Vec<&str> {
        self.rules.keys().map(String::as_str).collect()
    }

    /// Renders a rule into the upstream request and its masked URL (for
    /// `executedQueryString` and messages).
    ///
    /// # Errors
    /// A message naming the rule and key: render failure, a URL that leaves the allowed
    /// hosts, an unparsable URL.
    pub fn render(
        &self,
        rule: &Rule,
        input: &RenderInput<'_>,
    ) -> Result<(HttpRequest, String), String> {
        let ctx = |mask: bool| RenderContext {
            params: input.params,
            from_ms: input.from_ms,
            to_ms: input.to_ms,
            interval_ms: input.interval_ms,
            max_data_points: input.max_data_points,
            secrets: &self.secrets,
            mask_secrets: mask,
            timezone: rule.timezone.as_ref(),
        };
        let real = ctx(false);
        let masked_ctx = ctx(true);
        let err =
            |key: &str, e: &dyn std::fmt::Display| format!("rule '{}': '{key}': {e}", rule.id);
        // The url crate resolves `%2E%2E` like `..`, so a param that is a dot segment could
        // climb out of the admin's path: refuse it (template.rs encodes everything else).
        for name in rule.url.params() {
            if let Some(v) = input
                .params
                .get(name)
                .filter(|v| matches!(v.as_str(), "." | ".."))
            {
                return Err(err(
                    "request.url",
                    &format!("param '{name}' value '{v}' is not allowed in a URL path"),
                ));
            }
        }
        let url = self
            .build_url(rule, &real, false)
            .map_err(|e| err("request.url", &e))?;
        // The masked URL differs from the real one only where a secret goes into it; when
        // none does (the common case), reuse the real URL instead of rendering and parsing
        // it a second time (it is on the path of every answer-cache hit).
        let url_has_secrets = self.query_key.is_some()
            || rule.url.secrets().next().is_some()
            || rule
                .query
                .iter()
                .any(|(_, ts)| ts.iter().any(|t| t.secrets().next().is_some()));
        let masked_url = if url_has_secrets {
            self.build_url(rule, &masked_ctx, true)
                .map_err(|e| err("request.url", &e))?
                .to_string()
        } else {
            url.as_str().to_owned()
        };
        let mut headers = self.fixed_headers.clone();
        for (name, t) in &rule.headers {
            let v = t
                .render(&real, Position::Header)
                .map_err(|e| err(&format!("request.headers.{name}"), &e))?;
            headers.push((name.clone(), v));
        }
        let json_ct = rule
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        let body = match &rule.body {
            None => None,
            Some(BodyTemplate::Text(t)) => {
                let is_json = headers.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("content-type")
                        && v.to_ascii_lowercase().contains("json")
                });
                let pos = if is_json {
                    Position::JsonString
                } else {
                    Position::Raw
                };
                Some(
                    t.render(&real, pos)
                        .map_err(|e| err("request.body", &e))?
                        .into_bytes(),
                )
            }
            Some(BodyTemplate::Json(t)) => {
                if !json_ct {
                    headers.push(("Content-Type".into(), "application/json".into()));
                }
                let v = render_json(t, &real).map_err(|e| err("request.body", &e))?;
                Some(v.to_string().into_bytes())
            }
        };
        let method = match rule.method {
            crate::rule::Method::Get => reqwest::Method::GET,
            crate::rule::Method::Post => reqwest::Method::POST,
        };
        Ok((
            HttpRequest {
                method,
                url,
                headers,
                body,
            },
            masked_url,
        ))
    }

    /// The request URL of `rule`: the rendered `request.url` (absolute, or appended to the
    /// base URL), host-checked, with the rendered `request.query` pairs and the API-key query
    /// parameter (masked when `masked`).
    ///
    /// The result is a pure function of this instance and the rendered strings, so it is
    /// remembered by them (`url_memo`): a repeated query renders its templates but does not
    /// parse the URL again. Errors are never remembered.
    fn build_url(
        &self,
        rule: &Rule,
        ctx: &RenderContext<'_>,
        masked: bool,
    ) -> Result<reqwest::Url, String> {
        let rendered = rule
            .url
            .render(ctx, Position::PathSegment)
            .map_err(|e| e.to_string())?;
        let mut query = Vec::with_capacity(rule.query.iter().map(|(_, v)| v.len()).sum());
        for (k, values) in &rule.query {
            for t in values {
                let v = t
                    .render(ctx, Position::Query)
                    .map_err(|e| format!("query '{k}': {e}"))?;
                query.push((k.as_str(), v));
            }
        }
        // Length-prefixed parts: no two different renderings share a key.
        let mut key = String::with_capacity(
            rendered.len() + query.iter().map(|(_, v)| v.len() + 8).sum::<usize>() + 8,
        );
        key.push(if masked { 'm' } else { 'r' });
        for part in std::iter::once(rendered.as_str()).chain(query.iter().map(|(_, v)| v.as_str()))
        {
            // Writing into a String cannot fail.
            let _ = write!(key, "{}:{part}", part.len());
        }
        if let Some(url) = self.url_memo.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(url);
        }
        let lower = rendered.to_ascii_lowercase();
        let mut url = if lower.starts_with("http://") || lower.starts_with("https://") {
            reqwest::Url::parse(&rendered)
                .map_err(|e| format!("'{rendered}' is not a valid URL: {e}"))?
        } else {
            let base = self.base.as_str().trim_end_matches('/');
            let joined = if rendered.starts_with('?') || rendered.is_empty() {
                format!("{base}{rendered}")
            } else {
                format!("{base}/{}", rendered.trim_start_matches('/'))
            };
            reqwest::Url::parse(&joined)
                .map_err(|e| format!("'{joined}' is not a valid URL: {e}"))?
        };
        let hp = host_port(&url);
        if !matches!(url.scheme(), "http" | "https") || !self.allowed_hosts.contains(&hp) {
            return Err(format!(
                "the URL goes to {}://{hp}, which is neither the datasource host nor in \
                 jsonData.allowedHosts",
                url.scheme()
            ));
        }
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &query {
                pairs.append_pair(k, v);
            }
            if let Some((name, value)) = &self.query_key {
                pairs.append_pair(name, if masked { MASK } else { value });
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        if let Ok(mut memo) = self.url_memo.lock() {
            if memo.len() >= URL_MEMO_ENTRIES {
                memo.clear();
            }
            memo.insert(key, url.clone());
        }
        Ok(url)
    }
}

/// Renders a JSON template: string leaves rendered raw (the serializer escapes them).
///
/// # Errors
/// The render error of the first failing leaf.
pub fn render_json(t: &JsonTemplate, ctx: &RenderContext<'_>) -> Result<serde_json::Value, String> {
    Ok(match t {
        JsonTemplate::Literal(v) => v.clone(),
        JsonTemplate::String(s) => {
            serde_json::Value::String(s.render(ctx, Position::Raw).map_err(|e| e.to_string())?)
        }
        JsonTemplate::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|i| render_json(i, ctx))
                .collect::<Result<_, _>>()?,
        ),
        JsonTemplate::Object(members) => {
            let mut m = serde_json::Map::new();
            for (k, v) in members {
                m.insert(k.clone(), render_json(v, ctx)?);
            }
            serde_json::Value::Object(m)
        }
    })
}

/// Resolves a URL setting: absolute, or appended to the base URL's path.
///
/// # Errors
/// A message when the result is not an http(s) URL.
pub fn join_url(base: &reqwest::Url, text: &str) -> Result<reqwest::Url, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let joined = if lower.starts_with("http://") || lower.starts_with("https://") {
        t.to_owned()
    } else {
        format!(
            "{}/{}",
            base.as_str().trim_end_matches('/'),
            t.trim_start_matches('/')
        )
    };
    let url =
        reqwest::Url::parse(&joined).map_err(|e| format!("'{joined}' is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("'{joined}' must be an http:// or https:// URL"));
    }
    Ok(url)
}

/// Standard base64 with padding (RFC 4648 §4), for the basic-auth header.
fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A compiled instance, or the settings error every query of that version gets.
pub type CompiledInstance = Arc<Result<Instance, SettingsError>>;

/// The compile of one datasource version, done once (concurrent callers wait for it).
type InstanceCell = Arc<std::sync::OnceLock<CompiledInstance>>;

/// Compiled instances by datasource uid; recompiled when `lastUpdatedMS` changes.
#[derive(Debug, Default)]
pub struct Instances {
    map: Mutex<HashMap<String, (i64, InstanceCell)>>,
}

impl Instances {
    /// Bytes held by the response caches of every compiled instance.
    pub fn cache_bytes(&self) -> u64 {
        self.map.lock().map_or(0, |map| {
            map.values()
                .filter_map(|(_, cell)| cell.get())
                .filter_map(|i| i.as_ref().as_ref().ok())
                .map(|i| {
                    i.fetcher.cache_bytes()
                        + i.answers
                            .as_ref()
                            .map_or(0, moka::future::Cache::weighted_size)
                })
                .sum()
        })
    }

    /// [`get`](Self::get) for async callers: an already compiled version is returned at
    /// once; a compile (milliseconds to seconds for thousands of rules) runs through
    /// [`crate::pipeline::cpu_heavy`], off the async worker, so that it does not stall the
    /// other queries and the gRPC connection meanwhile.
    pub async fn get_async(&self, s: &DataSourceSettings) -> CompiledInstance {
        if let Ok(map) = self.map.lock() {
            if let Some((version, cell)) = map.get(&s.uid) {
                if *version == s.last_updated_ms {
                    if let Some(done) = cell.get() {
                        return done.clone();
                    }
                }
            }
        }
        crate::pipeline::cpu_heavy(usize::MAX, || self.get(s)).await
    }

    /// The compiled instance for these settings (compiled at most once per version).
    /// A compile error is cached too, so every query of that version gets it at once.
    pub fn get(&self, s: &DataSourceSettings) -> CompiledInstance {
        // One cell per (uid, version): concurrent first queries of a new version wait for a
        // single compile (one client, one cache, one token provider), outside the map lock.
        let cell = match self.map.lock() {
            Ok(mut map) => {
                let entry = map
                    .entry(s.uid.clone())
                    .or_insert_with(|| (s.last_updated_ms, Arc::default()));
                if entry.0 != s.last_updated_ms {
                    *entry = (s.last_updated_ms, Arc::default());
                }
                entry.1.clone()
            }
            Err(_) => Arc::default(),
        };
        cell.get_or_init(|| Arc::new(Instance::compile(s))).clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(i.as_bytes()), o);
        }
    }

    fn settings(json: serde_json::Value) -> DataSourceSettings {
        DataSourceSettings {
            uid: "u".into(),
            url: "http://127.0.0.1:9/api/".into(),
            json_data: serde_json::to_vec(&json).unwrap(),
            secure_json_data: [("token".to_owned(), "s3cr3t/&x".to_owned())].into(),
            ..DataSourceSettings::default()
        }
    }

    /// Renders rule `id` with its default params and a zero time range.
    fn render_defaults(inst: &Instance, id: &str) -> (HttpRequest, String) {
        let rule = &inst.rules[id];
        let params = rule.resolve_params(&serde_json::Map::new()).unwrap();
        render_at_zero(inst, rule, &params).unwrap()
    }

    /// Renders `rule` with resolved `params` and a zero time range.
    fn render_at_zero(
        inst: &Instance,
        rule: &Rule,
        params: &HashMap<String, String>,
    ) -> Result<(HttpRequest, String), String> {
        let input = RenderInput {
            params,
            from_ms: 0,
            to_ms: 0,
            interval_ms: 0,
            max_data_points: 0,
        };
        inst.render(rule, &input)
    }

    #[test]
    fn render_joins_base_encodes_and_masks() {
        let inst = Instance::compile(&settings(serde_json::json!({"rules": [{
            "id": "r", "request": {"url": "/items/${name}", "query": {"q": "${name}", "k": "${__secure.token}"}},
            "params": [{"name": "name", "default": "a b/c"}],
            "response": {"fields": [{"name": "x", "path": "$.x"}]}
        }]})))
        .unwrap();
        let (req, masked) = render_defaults(&inst, "r");
        assert_eq!(
            req.url.as_str(),
            "http://127.0.0.1:9/api/items/a%20b%2Fc?k=s3cr3t%2F%26x&q=a+b%2Fc"
        );
        assert_eq!(
            masked,
            "http://127.0.0.1:9/api/items/a%20b%2Fc?k=***&q=a+b%2Fc"
        );
        assert_eq!(inst.mask(req.url.as_str()), masked);
    }

    #[test]
    fn remembered_urls_are_the_urls_parsing_gives() {
        let rules = serde_json::json!({"allowedHosts": ["127.0.0.1:10"], "rules": [{
            "id": "r", "request": {"url": "/items/${p}", "query": {"q": "${q}", "z": "${__secure.token}"}},
            "params": [{"name": "p"}, {"name": "q"}],
            "response": {"fields": [{"name": "x", "path": "$.x"}]}
        }, {
            "id": "abs", "request": {"url": "http://127.0.0.1:10/x/${p}", "query": {"q": "${q}", "z": "${__secure.token}"}},
            "params": [{"name": "p"}, {"name": "q"}],
            "response": {"fields": [{"name": "x", "path": "$.x"}]}
        }, {
            "id": "far", "request": {"url": "http://127.0.0.2:10/x/${p}", "query": {"q": "${q}"}},
            "params": [{"name": "p"}, {"name": "q"}],
            "response": {"fields": [{"name": "x", "path": "$.x"}]}
        }]});
        let inst = Instance::compile(&settings(rules.clone())).unwrap();
        let render = |inst: &Instance, id: &str, p: &str, q: &str| {
            let rule = &inst.rules[id];
            let mut given = serde_json::Map::new();
            given.insert("p".into(), p.into());
            given.insert("q".into(), q.into());
            let params = rule.resolve_params(&given).unwrap();
            render_at_zero(inst, rule, &params).map(|(req, masked)| (req.url.to_string(), masked))
        };
        // Parts whose concatenations are equal (URL and `q` are adjacent parts), masked and
        // real URLs, an absolute URL.
        let cases = [
            ("r", "ab", "c"),
            ("r", "a", "bc"),
            ("r", "a", "b:c"),
            ("r", "a:1", "b"),
            ("abs", "a", "bc"),
            ("r", "ü", "€"),
        ];
        let mut seen = Vec::new();
        for round in 0..3 {
            for (id, p, q) in cases {
                let got = render(&inst, id, p, q).unwrap();
                let fresh = Instance::compile(&settings(rules.clone())).unwrap();
                assert_eq!(
                    got,
                    render(&fresh, id, p, q).unwrap(),
                    "round {round}: {p} {q}"
                );
                assert!(got.1.contains("z=***") && !got.1.contains("s3cr3t"));
                if round == 0 {
                    assert!(!seen.contains(&got.0), "{got:?} twice");
                    seen.push(got.0);
                }
            }
        }
        // A refused host is refused every time (errors are not remembered)...
        for _ in 0..2 {
            let e = render(&inst, "far", "a", "b").unwrap_err();
            assert!(e.contains("neither the datasource host"), "{e}");
        }
        // ...and the memory stays bounded while answers stay right.
        for i in 0..URL_MEMO_ENTRIES + 10 {
            let (url, _) = render(&inst, "r", &i.to_string(), "x").unwrap();
            assert_eq!(
                url,
                format!("http://127.0.0.1:9/api/items/{i}?q=x&z=s3cr3t%2F%26x")
            );
        }
        assert!(inst.url_memo.lock().unwrap().len() <= URL_MEMO_ENTRIES);
    }

    #[test]
    fn masked_url_is_the_real_url_when_no_secret_goes_into_it() {
        // A secret in a header does not reach the URL: the masked URL is the real one.
        let inst = Instance::compile(&settings(serde_json::json!({"rules": [{
            "id": "r", "request": {"url": "/items/${name}", "query": {"q": "${name}"},
                                   "headers": {"X-Key": "${__secure.token}"}},
            "params": [{"name": "name", "default": "a b"}],
            "response": {"fields": [{"name": "x", "path": "$.x"}]}
        }]})))
        .unwrap();
        let (req, masked) = render_defaults(&inst, "r");
        assert_eq!(masked, "http://127.0.0.1:9/api/items/a%20b?q=a+b");
        assert_eq!(req.url.as_str(), masked);
        assert!(req
            .headers
            .iter()
            .any(|(k, v)| k == "X-Key" && v == "s3cr3t/&x"));
    }

    #[test]
    fn dot_segment_params_cannot_climb_the_path() {
        let inst = Instance::compile(&settings(serde_json::json!({"rules": [{
            "id": "r", "request": {"url": "/items/${name}/detail"},
            "params": [{"name": "name"}],
            "response": {"fields": [{"name": "x", "path": "$.x"}]}
        }]})))
        .unwrap();
        let rule = &inst.rules["r"];
        let render = |v: &str| {
            let params: HashMap<String, String> = [("name".to_owned(), v.to_owned())].into();
            render_at_zero(&inst, rule, &params).map(|(req, _)| req.url.path().to_owned())
        };
        for bad in ["..", "."] {
            let err = render(bad).unwrap_err();
            assert!(err.contains("param 'name'"), "{err}");
        }
        assert_eq!(
            render("../../admin").unwrap(),
            "/api/items/..%2F..%2Fadmin/detail"
        );
    }

    #[test]
    fn absolute_url_to_other_host_is_refused() {
        let inst = Instance::compile(&settings(serde_json::json!({"rules": [{
            "id": "r", "request": {"url": "http://evil.example/x"},
            "response": {"fields": [{"name": "x", "path": "$.x"}]}
        }]})))
        .unwrap();
        let err = render_at_zero(&inst, &inst.rules["r"], &HashMap::new()).unwrap_err();
        assert!(err.contains("evil.example:80"), "{err}");
        assert!(err.contains("allowedHosts"), "{err}");
    }

    #[test]
    fn undeclared_param_and_missing_secret_are_compile_errors() {
        let err = Instance::compile(&settings(serde_json::json!({"rules": [{
            "id": "r", "request": {"url": "/x/${nope}"},
            "response": {"fields": [{"name": "x", "path": "$.x"}]}
        }]})))
        .unwrap_err()
        .to_string();
        assert!(err.contains("rule 'r'") && err.contains("nope"), "{err}");
        let err = Instance::compile(&settings(serde_json::json!({"rules": [{
            "id": "r", "request": {"url": "/x", "headers": {"A": "${__secure.missing}"}},
            "response": {"fields": [{"name": "x", "path": "$.x"}]}
        }]})))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("request.headers.A") && err.contains("missing"),
            "{err}"
        );
    }
}
