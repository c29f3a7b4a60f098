//! The serde shapes of the datasource settings (config.md §1–2).
//!
//! These types mirror what an admin writes into `jsonData` (Grafana UI or provisioning YAML).
//! They are *parsed* here and *compiled* in [`crate::rule`] / [`crate::instance`]; nothing in
//! this module does I/O. Unknown keys at the top level of `jsonData` are accepted (Grafana's UI
//! adds its own), unknown keys inside a rule are an error naming the rule and the key
//! (config.md §1 "Unknown keys").

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Default request timeout in seconds (config.md §1 `timeout`).
pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;
/// Default cap of a response body in bytes (config.md §1 `maxResponseBytes`): 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// Default cache TTL in seconds (config.md §1 `cache.ttlSeconds`).
pub const DEFAULT_CACHE_TTL_SECS: u64 = 60;
/// Default cache bound in bytes (config.md §1 `cache.maxBytes`): 256 MiB.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// The datasource instance settings as Grafana delivers them (protocol.md §2.3
/// `DataSourceInstanceSettings`), already free of protobuf types.
#[derive(Clone, Debug, Default)]
pub struct DataSourceSettings {
    /// Stable datasource identifier; with `last_updated_ms` the key of compiled instances.
    pub uid: String,
    /// Display name of the datasource.
    pub name: String,
    /// Base URL (`url`), e.g. `http://127.0.0.1:9090`; `jsonData.baseUrl` overrides it.
    pub url: String,
    /// Whether HTTP basic auth is on (`basicAuthEnabled`).
    pub basic_auth_enabled: bool,
    /// Basic auth user name (`basicAuthUser`); the password is the secret `basicAuthPassword`.
    pub basic_auth_user: String,
    /// Raw `jsonData` bytes (JSON object text; empty means `{}`).
    pub json_data: Vec<u8>,
    /// Decrypted `secureJsonData`: every value is a secret.
    pub secure_json_data: BTreeMap<String, String>,
    /// Last settings change, epoch milliseconds.
    pub last_updated_ms: i64,
}

/// Top-level `jsonData` (config.md §1). Unknown keys are kept in `extra` and ignored,
/// except Grafana's custom-header keys `httpHeaderNameN`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonData {
    /// Request timeout in seconds (default 30).
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Overrides the datasource `url` as base of rule URLs.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Extra hosts (`host` or `host:port`) an absolute rule URL may reach.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Response body cap in bytes (default 64 MiB).
    #[serde(default)]
    pub max_response_bytes: Option<u64>,
    /// Cache defaults for every rule.
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    /// Extra auth kinds beyond basic auth (config.md §1 `auth`).
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Accept any server certificate (Grafana's `tlsSkipVerify`).
    #[serde(default)]
    pub tls_skip_verify: bool,
    /// Present a client certificate (secure `tlsClientCert` + `tlsClientKey`, PEM).
    #[serde(default)]
    pub tls_auth: bool,
    /// Trust only the CA in secure `tlsCACert` (PEM).
    #[serde(default, rename = "tlsAuthWithCACert")]
    pub tls_auth_with_ca_cert: bool,
    /// TLS server name to verify instead of the URL's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Forward the Grafana user's `Authorization` / `X-Id-Token` (Grafana's "Forward OAuth Identity").
    #[serde(default)]
    pub oauth_pass_thru: bool,
    /// Cookie names forwarded from Grafana.
    #[serde(default)]
    pub keep_cookies: Vec<String>,
    /// The rules (config.md §2); raw values, parsed one by one so errors name the rule.
    #[serde(default)]
    pub rules: Vec<Value>,
    /// Optional live health check: run this rule in CheckHealth.
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    /// Every other key (Grafana UI keys, `httpHeaderNameN`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `jsonData.cache` and a rule's `cache` (config.md §1, §2).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheConfig {
    /// Time to live of a cached response in seconds; 0 = never cached.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// Bound of the whole cache in bytes (datasource level only).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Serve a stale answer up to this age when the upstream fails (seconds; reserved).
    #[serde(default)]
    pub stale_if_error_seconds: Option<u64>,
    /// Round `from` down and `to` up to multiples of this many seconds before rendering.
    #[serde(default)]
    pub align_seconds: Option<u64>,
    /// Alert queries (`FromAlert`): `fresh` (default: skip the cache, still coalesce) or
    /// `cached` (serve from the cache like dashboards).
    #[serde(default)]
    pub alert_queries: Option<AlertCacheMode>,
    /// Shared second tier for Grafana HA (datasource level only).
    #[serde(default)]
    pub redis: Option<RedisConfig>,
}

/// `cache.redis`: a Redis shared by the plugin processes of several Grafana replicas.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`; a password is taken from secure `redisPassword`.
    pub url: String,
    /// Prefix of every key (default `restbridge:`).
    #[serde(default)]
    pub key_prefix: Option<String>,
}

/// How alert queries use the cache (protocol.md §4.3 `FromAlert`, `X-Cache-Skip`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AlertCacheMode {
    /// Never answer an alert query from the cache (identical concurrent calls still coalesce).
    Fresh,
    /// Answer alert queries from the cache like dashboard queries.
    Cached,
}

/// `jsonData.auth` (config.md §1): auth kinds beyond Grafana's basic auth.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer <secure bearerToken>`.
    Bearer,
    /// OAuth2 client credentials (RFC 6749 §4.4): secure `clientSecret`; the token is cached,
    /// refreshed before expiry and once on a 401.
    #[serde(rename = "oauth2", rename_all = "camelCase")]
    OAuth2 {
        /// Token endpoint (absolute, or relative to the base URL).
        token_url: String,
        /// Client id.
        client_id: String,
        /// Scopes (sent space-separated).
        #[serde(default)]
        scopes: Vec<String>,
        /// Extra form parameters of the token request.
        #[serde(default)]
        endpoint_params: BTreeMap<String, String>,
    },
    /// Log in once (POST a body to a login URL), reuse the token or cookie it returns until
    /// it expires or a request gets 401, then log in again once (config.md §2.1).
    #[serde(rename_all = "camelCase")]
    Login {
        /// Login URL, relative to the base URL (or absolute on an allowed host).
        url: String,
        /// `POST` (default) or `GET`.
        #[serde(default)]
        method: Option<String>,
        /// Body: a mapping sent as JSON (string leaves may use `${__secure.KEY}`), or a string.
        #[serde(default)]
        body: Option<Value>,
        /// JSONPath of the token in the login response.
        #[serde(default)]
        token_path: Option<String>,
        /// Or: the name of a `Set-Cookie` cookie to reuse.
        #[serde(default)]
        cookie: Option<String>,
        /// Header that carries the token on every rule request (default `Authorization`).
        #[serde(default)]
        header: Option<String>,
        /// Text put before the token, e.g. `Bearer ` (default empty).
        #[serde(default)]
        prefix: Option<String>,
        /// Reuse the token this long, seconds; 0 (default) = until a 401.
        #[serde(default)]
        ttl_seconds: Option<u64>,
    },
    /// An API key from secure `apiKey`, in a header or a query parameter.
    #[serde(rename_all = "camelCase")]
    ApiKey {
        /// `header` or `query`.
        #[serde(default = "default_api_key_in", rename = "in")]
        location: ApiKeyLocation,
        /// Header or query parameter name, default `X-Api-Key`.
        #[serde(default = "default_api_key_name")]
        name: String,
    },
}

/// Where an API key goes.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyLocation {
    /// A request header.
    Header,
    /// A query parameter.
    Query,
}

fn default_api_key_in() -> ApiKeyLocation {
    ApiKeyLocation::Header
}

fn default_api_key_name() -> String {
    "X-Api-Key".to_owned()
}

/// `jsonData.healthCheck`: CheckHealth runs this rule live.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// The rule id to run.
    pub rule: String,
    /// Params for that rule (values as strings).
    #[serde(default)]
    pub params: BTreeMap<String, Scalar>,
}

/// One rule as the admin wrote it (config.md §2).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleConfig {
    /// `[A-Za-z0-9_.-]+`, unique in the datasource.
    pub id: String,
    /// Title shown in the query editor.
    #[serde(default)]
    pub title: Option<String>,
    /// Description shown in the query editor.
    #[serde(default)]
    pub description: Option<String>,
    /// What to call.
    pub request: RequestConfig,
    /// The only things a panel or alert query may set.
    #[serde(default)]
    pub params: Vec<ParamConfig>,
    /// How to turn the JSON into frames.
    pub response: ResponseConfig,
    /// Overrides `jsonData.cache` for this rule.
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    /// Request timeout for this rule in seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// `rule.request` (config.md §2).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestConfig {
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub method: Option<String>,
    /// URL template: relative to the base URL, or absolute on an allowed host.
    pub url: String,
    /// Query parameters; values are templates, a list repeats the key.
    #[serde(default)]
    pub query: BTreeMap<String, QueryValue>,
    /// Request headers; values are templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A string template, or a mapping sent as JSON (string leaves templated).
    #[serde(default)]
    pub body: Option<Value>,
    /// Pagination (config.md §2.1).
    #[serde(default)]
    pub pagination: Option<PaginationConfig>,
    /// IANA zone in which `${__from:date:…}`/`${__to:date:…}` render calendar fields
    /// (default UTC), for APIs that take local dates.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// `request.pagination` (config.md §2.1).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaginationConfig {
    /// `page`, `offset`, `cursor` or `link`.
    #[serde(rename = "type")]
    pub kind: PaginationKind,
    /// Most pages fetched (default 10); reaching it adds a frame notice.
    #[serde(default)]
    pub max_pages: Option<u32>,
    /// page/offset/cursor: the query parameter (or body field) to set.
    #[serde(default)]
    pub param: Option<String>,
    /// `query` (default) or `body`.
    #[serde(default, rename = "in")]
    pub location: Option<ParamLocation>,
    /// page: first page number (default 1); offset: first offset (default 0).
    #[serde(default)]
    pub start: Option<i64>,
    /// page/offset: the parameter carrying the page size.
    #[serde(default)]
    pub size_param: Option<String>,
    /// page/offset: the page size.
    #[serde(default)]
    pub size: Option<u64>,
    /// cursor: JSONPath of the next cursor in each response.
    #[serde(default)]
    pub cursor_path: Option<String>,
    /// Optional JSONPath of the total row count: stop once this many rows were read.
    #[serde(default)]
    pub total_path: Option<String>,
}

/// Pagination kinds (config.md §2.1).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PaginationKind {
    /// Page number + size.
    Page,
    /// Offset + limit.
    Offset,
    /// A next-token read from each response.
    Cursor,
    /// `Link: <url>; rel="next"` response headers.
    Link,
}

/// Where a pagination parameter goes.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    /// The URL query.
    Query,
    /// A field of the JSON body.
    Body,
}

/// A scalar YAML/JSON value used where a string is meant (`step: 60` → `"60"`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    /// A string.
    String(String),
    /// A number, kept in its JSON text form.
    Number(serde_json::Number),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// The string form of the scalar (`60`, `true`, `abc`).
    pub fn to_text(&self) -> String {
        match self {
            Scalar::String(s) => s.clone(),
            Scalar::Number(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// A query parameter value: one template or a list (the key repeats).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum QueryValue {
    /// One value.
    One(Scalar),
    /// The key is repeated once per value.
    Many(Vec<Scalar>),
}

/// One declared param (config.md §2 `params`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParamConfig {
    /// Name used as `${name}` in templates.
    pub name: String,
    /// Label for the query editor.
    #[serde(default)]
    pub title: Option<String>,
    /// Help text for the query editor.
    #[serde(default)]
    pub description: Option<String>,
    /// Value used when the query does not set it.
    #[serde(default)]
    pub default: Option<Scalar>,
    /// Regex the whole value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The only allowed values.
    #[serde(default)]
    pub options: Option<Vec<Scalar>>,
    /// The query must give a value (a default does not count as given).
    #[serde(default)]
    pub required: bool,
}

/// `rule.response` (config.md §2).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseConfig {
    /// JSONPath: each match is one series (frame node) with its own labels.
    #[serde(default)]
    pub frames: Option<String>,
    /// JSONPath relative to the frame node: each match is one row.
    #[serde(default)]
    pub rows: Option<String>,
    /// Label name → JSONPath relative to the frame node.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// JSONPath to an object whose members all become labels.
    #[serde(default)]
    pub labels_from: Option<String>,
    /// The fields (columns), in frame order.
    pub fields: Vec<FieldConfig>,
    /// String fields whose distinct values split rows into series.
    #[serde(default)]
    pub series_by: Vec<String>,
    /// Output shape.
    #[serde(default)]
    pub format: FormatConfig,
}

/// `response.format` (config.md §2, §5).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FormatConfig {
    /// Pick the shape from the field types (config.md §5 table).
    #[default]
    Auto,
    /// Force `timeseries-multi` (one frame per series).
    #[serde(alias = "timeseries-multi")]
    Timeseries,
    /// Force `timeseries-wide`: one frame, a shared time field, one value field per series.
    #[serde(rename = "timeseries-wide")]
    TimeseriesWide,
    /// Force `numeric-long`.
    #[serde(alias = "numeric-long")]
    Numeric,
    /// Force `numeric-wide`: one frame with one row, one field per item.
    #[serde(rename = "numeric-wide")]
    NumericWide,
    /// A plain table frame, never typed.
    Table,
    /// A `log-lines` frame.
    Logs,
}

/// One field of `response.fields`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldConfig {
    /// Field name in the frame.
    pub name: String,
    /// JSONPath (relative to the row, or to the frame node in column mode), or `@key`/`@index`.
    pub path: String,
    /// Value type.
    #[serde(rename = "type", default)]
    pub kind: FieldType,
    /// Time format (time fields only): auto, rfc3339, epoch_s/ms/us/ns, or a strftime pattern.
    #[serde(default)]
    pub format: Option<String>,
    /// IANA zone for zone-less times, or `${__response.PATH}`; default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Grafana unit id (FieldConfig `unit`).
    #[serde(default)]
    pub unit: Option<String>,
    /// FieldConfig `displayName`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// FieldConfig `decimals`.
    #[serde(default)]
    pub decimals: Option<u16>,
    /// FieldConfig `min`.
    #[serde(default)]
    pub min: Option<f64>,
    /// FieldConfig `max`.
    #[serde(default)]
    pub max: Option<f64>,
}

/// `fields[].type` (config.md §2).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Timestamp, output as Arrow `Timestamp(ns)`.
    Time,
    /// float64 (JSON numbers, numeric strings, `"NaN"`, `"+Inf"`).
    Number,
    /// int64, exact beyond 2^53.
    Int,
    /// UTF-8 string (other scalars are stringified).
    #[default]
    String,
    /// Boolean.
    Bool,
    /// Raw JSON text.
    Json,
}

/// Why `jsonData` could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// `jsonData` is not a JSON object of the expected shape.
    #[error("datasource jsonData is invalid: {0}")]
    JsonData(String),
    /// A rule failed to parse or compile; `rule` is its id (or `#index` when it has none).
    #[error("rule '{rule}': {message}")]
    Rule {
        /// Rule id or `#<index>`.
        rule: String,
        /// What is wrong, naming the key path.
        message: String,
    },
    /// Something at the datasource level (URL, auth, cache) is wrong.
    #[error("datasource setting '{key}': {message}")]
    Datasource {
        /// The key path, e.g. `url` or `auth.type`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl JsonData {
    /// Parses raw `jsonData` bytes; empty bytes or `null` mean `{}` (protocol.md §2.3).
    ///
    /// # Errors
    /// [`SettingsError::JsonData`] when the bytes are not a JSON object of this shape; the
    /// message names the key path (e.g. `cache.ttlSeconds`).
    pub fn parse(bytes: &[u8]) -> Result<JsonData, SettingsError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed == b"null" {
            return Ok(JsonData::default());
        }
        let value: Value = serde_json::from_slice(trimmed)
            .map_err(|e| SettingsError::JsonData(format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(SettingsError::JsonData(format!(
                "expected a JSON object, got {}",
                json_kind(&value)
            )));
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            SettingsError::JsonData(format!("at '{path}': {}", e.into_inner()))
        })
    }

    /// The custom headers of Grafana's convention: `httpHeaderNameN` in jsonData with the
    /// value in secure `httpHeaderValueN`, as (name, secret key) pairs in N order.
    pub fn custom_headers(&self) -> Vec<(String, String)> {
        let mut out: Vec<(u32, String, String)> = self
            .extra
            .iter()
            .filter_map(|(k, v)| {
                let n: u32 = k.strip_prefix("httpHeaderName")?.parse().ok()?;
                let name = v.as_str()?.trim();
                (!name.is_empty()).then(|| (n, name.to_owned(), format!("httpHeaderValue{n}")))
            })
            .collect();
        out.sort_by_key(|(n, _, _)| *n);
        out.into_iter().map(|(_, name, key)| (name, key)).collect()
    }
}

/// Parses one raw rule value, naming the key path of the first problem.
///
/// # Errors
/// [`SettingsError::Rule`] with the rule id (or `#index`) and the key path.
pub fn parse_rule(index: usize, raw: &Value) -> Result<RuleConfig, SettingsError> {
    let rule = raw
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("#{index}"));
    if !raw.is_object() {
        return Err(SettingsError::Rule {
            rule,
            message: format!("expected a mapping, got {}", json_kind(raw)),
        });
    }
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path == "." {
            inner
        } else {
            format!("at '{path}': {inner}")
        };
        SettingsError::Rule { rule, message }
    })
}

/// A short name of a JSON value's kind for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_null_json_data_are_empty_objects() {
        assert!(JsonData::parse(b"").unwrap().rules.is_empty());
        assert!(JsonData::parse(b" null ").unwrap().rules.is_empty());
    }

    #[test]
    fn non_object_json_data_is_an_error() {
        let err = JsonData::parse(b"[1]").unwrap_err().to_string();
        assert!(
            err.contains("expected a JSON object, got an array"),
            "{err}"
        );
        let err = JsonData::parse(b"{").unwrap_err().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn unknown_top_level_keys_are_accepted_and_headers_found() {
        let jd = JsonData::parse(
            br#"{"httpHeaderName2":"X-B","httpHeaderName1":"X-A","somethingElse":1}"#,
        )
        .unwrap();
        assert_eq!(
            jd.custom_headers(),
            vec![
                ("X-A".to_owned(), "httpHeaderValue1".to_owned()),
                ("X-B".to_owned(), "httpHeaderValue2".to_owned())
            ]
        );
    }

    #[test]
    fn unknown_key_inside_rule_names_rule_and_key() {
        let raw: Value = serde_json::json!({
            "id": "r1",
            "request": {"url": "/x", "methd": "GET"},
            "response": {"fields": []}
        });
        let err = parse_rule(0, &raw).unwrap_err().to_string();
        assert!(err.contains("rule 'r1'"), "{err}");
        assert!(err.contains("request"), "{err}");
        assert!(err.contains("methd"), "{err}");
    }

    #[test]
    fn bad_field_type_names_path() {
        let raw: Value = serde_json::json!({
            "id": "r2",
            "request": {"url": "/x"},
            "response": {"fields": [{"name": "a", "path": "$.a", "type": "float"}]}
        });
        let err = parse_rule(3, &raw).unwrap_err().to_string();
        assert!(err.contains("response.fields[0].type"), "{err}");
        let err = parse_rule(3, &serde_json::json!(5))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rule '#3'"), "{err}");
    }

    #[test]
    fn scalars_become_text() {
        let raw: Value = serde_json::json!({
            "id": "r", "request": {"url": "/x", "query": {"step": 60, "a": ["x", true]}},
            "response": {"fields": []}
        });
        let rule = parse_rule(0, &raw).unwrap();
        match &rule.request.query["step"] {
            QueryValue::One(s) => assert_eq!(s.to_text(), "60"),
            QueryValue::Many(_) => panic!("expected one"),
        }
        match &rule.request.query["a"] {
            QueryValue::Many(v) => assert_eq!(v[1].to_text(), "true"),
            QueryValue::One(_) => panic!("expected many"),
        }
    }
}
