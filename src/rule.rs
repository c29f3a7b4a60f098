//! Compiled rules: a [`RuleConfig`] checked and turned into templates, compiled JSONPaths and
//! field specs, once per datasource settings version (config.md §2).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use regex::Regex;
use serde_json::Value;

use crate::jsonpath::JsonPath;
use crate::settings::{
    CacheConfig, FieldConfig, FieldType, FormatConfig, ParamConfig, QueryValue, ResponseConfig,
    RuleConfig, SettingsError,
};
use crate::template::Template;
use crate::timeparse::TimeFormat;

/// HTTP methods a rule may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET` (default).
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// The method name as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request body template.
#[derive(Debug)]
pub enum BodyTemplate {
    /// A string template sent as-is (params inserted verbatim, or JSON-escaped when the
    /// rule's `Content-Type` is JSON).
    Text(Template),
    /// A mapping or list sent as JSON; every string leaf is a template (serde escapes it).
    Json(JsonTemplate),
}

/// A JSON value whose string leaves are templates.
#[derive(Debug)]
pub enum JsonTemplate {
    /// A non-string leaf (number, bool, null), sent as-is.
    Literal(Value),
    /// A string leaf.
    String(Template),
    /// An array.
    Array(Vec<JsonTemplate>),
    /// An object (member order kept as written).
    Object(Vec<(String, JsonTemplate)>),
}

/// A declared param, checked (config.md §2 `params`).
#[derive(Debug)]
pub struct Param {
    /// Name used as `${name}`.
    pub name: String,
    /// Label for the query editor.
    pub title: Option<String>,
    /// Help text.
    pub description: Option<String>,
    /// Value used when the query does not set it.
    pub default: Option<String>,
    /// Whole-value regex (anchored at compile time).
    pub pattern: Option<Regex>,
    /// The pattern as the admin wrote it (for messages).
    pub pattern_text: Option<String>,
    /// Allowed values.
    pub options: Option<Vec<String>>,
    /// The query must set it.
    pub required: bool,
}

/// Where a field's value comes from.
#[derive(Debug, Clone)]
pub enum FieldSource {
    /// A JSONPath relative to the row (row mode) or frame node (column mode).
    Path(JsonPath),
    /// `@key`: the member name the row (or, in column mode, the frame) was selected under.
    Key,
    /// `@index`: the row's (or frame's) position.
    Index,
    /// `^PATH`: a JSONPath evaluated on the frame node (not the row), e.g. `^.deliveryStart`
    /// for a time shared by all rows of a frame node.
    Frame(JsonPath),
}

/// Where a zone-less time is read.
#[derive(Debug, Clone)]
pub enum ZoneSpec {
    /// A fixed IANA zone (UTC by default).
    Fixed(jiff::tz::TimeZone),
    /// `${__response.PATH}`: the zone name is read from the response document.
    FromResponse(JsonPath),
}

/// One compiled field.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// Field name in the frame.
    pub name: String,
    /// Where the values come from.
    pub source: FieldSource,
    /// Value type.
    pub kind: FieldType,
    /// Time format (time fields).
    pub time_format: TimeFormat,
    /// Zone for zone-less times.
    pub zone: ZoneSpec,
    /// Grafana FieldConfig JSON object (unit, displayName, decimals, min, max), if any key set.
    pub config: Option<serde_json::Map<String, Value>>,
}

/// A path that selects nodes, remembering member names when it ends in a wildcard, so that
/// `@key`/`@index` work (config.md §2 "Extraction semantics").
#[derive(Debug, Clone)]
pub enum NodePath {
    /// `PARENT[*]` / `PARENT.*`: every member of every node `PARENT` selects, with its key.
    Members(JsonPath),
    /// Any other path: the selected nodes, with their position only.
    Plain(JsonPath),
}

/// The compiled `response` section.
#[derive(Debug)]
pub struct ResponseSpec {
    /// Frame nodes; `None` = the whole document is the one frame node.
    pub frames: Option<NodePath>,
    /// Row nodes relative to the frame node; `None` = column mode.
    pub rows: Option<NodePath>,
    /// Label name → path relative to the frame node.
    pub labels: Vec<(String, JsonPath)>,
    /// Object whose members all become labels.
    pub labels_from: Option<JsonPath>,
    /// Fields in frame order.
    pub fields: Vec<FieldSpec>,
    /// Indices into `fields` of the string fields that split rows into series.
    pub series_by: Vec<usize>,
    /// Output shape.
    pub format: FormatConfig,
}

/// A compiled rule (config.md §2).
#[derive(Debug)]
pub struct Rule {
    /// Rule id.
    pub id: String,
    /// Title for the query editor.
    pub title: Option<String>,
    /// Description for the query editor.
    pub description: Option<String>,
    /// HTTP method.
    pub method: Method,
    /// URL template (relative to the base URL, or absolute).
    pub url: Template,
    /// Query parameters in key order; a key with several templates repeats.
    pub query: Vec<(String, Vec<Template>)>,
    /// Header name → value template.
    pub headers: Vec<(String, Template)>,
    /// Request body.
    pub body: Option<BodyTemplate>,
    /// Zone of rendered dates (`request.timezone`); `None` = UTC.
    pub timezone: Option<jiff::tz::TimeZone>,
    /// Declared params.
    pub params: Vec<Param>,
    /// Response mapping.
    pub response: ResponseSpec,
    /// Pagination, if the API pages its results.
    pub pagination: Option<PaginationSpec>,
    /// Cache TTL; zero = never cached.
    pub cache_ttl: Duration,
    /// Round `from` down / `to` up to this many seconds (0 = off).
    pub align_seconds: u64,
    /// Serve a cached answer this long past its TTL when the upstream fails.
    pub stale_if_error: Duration,
    /// Alert queries may be answered from the cache (`cache.alertQueries: cached`).
    pub alert_from_cache: bool,
    /// Rule timeout (the datasource timeout applies when unset).
    pub timeout: Option<Duration>,
}

/// Compiled `request.pagination` (config.md §2.1).
#[derive(Debug, Clone)]
pub struct PaginationSpec {
    /// The kind.
    pub kind: crate::settings::PaginationKind,
    /// Most pages fetched.
    pub max_pages: u32,
    /// Parameter (or body field) set per page (page/offset/cursor).
    pub param: String,
    /// True: set `param` in the JSON body instead of the query.
    pub in_body: bool,
    /// First page number / offset.
    pub start: i64,
    /// Size parameter (empty = not sent) and page size (page/offset).
    pub size: Option<(String, u64)>,
    /// Where the next cursor is (cursor).
    pub cursor_path: Option<JsonPath>,
    /// Where the total row count is.
    pub total_path: Option<JsonPath>,
}

/// Default `maxPages` (config.md §2.1).
pub const DEFAULT_MAX_PAGES: u32 = 10;

fn compile_pagination(
    rule: &str,
    p: &crate::settings::PaginationConfig,
    method: Method,
    body: Option<&BodyTemplate>,
) -> Result<PaginationSpec, SettingsError> {
    use crate::settings::{PaginationKind as K, ParamLocation};
    let max_pages = p.max_pages.unwrap_or(DEFAULT_MAX_PAGES);
    if max_pages == 0 || max_pages > 1000 {
        return Err(rule_err(
            rule,
            "'request.pagination.maxPages' must be between 1 and 1000",
        ));
    }
    let in_body = p.location == Some(ParamLocation::Body);
    if in_body && !matches!(body, Some(BodyTemplate::Json(JsonTemplate::Object(_)))) {
        return Err(rule_err(
            rule,
            "'request.pagination.in: body' needs a mapping 'request.body' (sent as JSON)",
        ));
    }
    if in_body && method == Method::Get {
        return Err(rule_err(
            rule,
            "'request.pagination.in: body' needs method POST",
        ));
    }
    let default_param = match p.kind {
        K::Page => "page",
        K::Offset => "offset",
        K::Cursor => "cursor",
        K::Link => "",
    };
    let param = p.param.clone().unwrap_or_else(|| default_param.to_owned());
    let size = match (&p.size_param, p.size) {
        (Some(name), Some(n)) if n > 0 => Some((name.clone(), n)),
        (None, None) => None,
        (None, Some(n)) if n > 0 => Some((String::new(), n)),
        _ => {
            return Err(rule_err(
                rule,
                "'request.pagination.size' must be a positive number (with 'sizeParam' naming \
                 its parameter)",
            ))
        }
    };
    if p.kind == K::Offset && size.is_none() {
        return Err(rule_err(
            rule,
            "'request.pagination' of type offset needs 'size' (the limit)",
        ));
    }
    let cursor_path = p
        .cursor_path
        .as_deref()
        .map(|t| compile_path(rule, "request.pagination.cursorPath", t))
        .transpose()?;
    if p.kind == K::Cursor && cursor_path.is_none() {
        return Err(rule_err(
            rule,
            "'request.pagination' of type cursor needs 'cursorPath'",
        ));
    }
    let total_path = p
        .total_path
        .as_deref()
        .map(|t| compile_path(rule, "request.pagination.totalPath", t))
        .transpose()?;
    Ok(PaginationSpec {
        kind: p.kind,
        max_pages,
        param,
        in_body,
        start: p.start.unwrap_or(if p.kind == K::Page { 1 } else { 0 }),
        size,
        cursor_path,
        total_path,
    })
}

/// Datasource-level inputs a rule compile needs.
#[derive(Debug)]
pub struct CompileContext<'a> {
    /// Names of the `secureJsonData` keys that are set.
    pub secret_keys: &'a HashSet<String>,
    /// Datasource cache defaults.
    pub cache_defaults: Option<&'a CacheConfig>,
}

fn rule_err(rule: &str, message: impl Into<String>) -> SettingsError {
    SettingsError::Rule {
        rule: rule.to_owned(),
        message: message.into(),
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Turns a finite, non-negative number of seconds into a [`Duration`].
fn seconds(rule: &str, key: &str, v: f64) -> Result<Duration, SettingsError> {
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
        return Err(rule_err(
            rule,
            format!("'{key}' must be between 0 and 86400 seconds, got {v}"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

impl Rule {
    /// Compiles a parsed rule.
    ///
    /// # Errors
    /// [`SettingsError::Rule`] naming the rule id and the key path: bad id, method, template,
    /// JSONPath, regex, time format or zone, a template using an undeclared param or an unset
    /// secret, a default that fails its own pattern/options, unknown `seriesBy` fields.
    pub fn compile(cfg: RuleConfig, ctx: &CompileContext<'_>) -> Result<Rule, SettingsError> {
        let id = cfg.id.clone();
        if !valid_id(&id) {
            return Err(rule_err(
                &id,
                "'id' must match [A-Za-z0-9_.-]+ (letters, digits, '_', '.', '-')",
            ));
        }
        let method = match cfg
            .request
            .method
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("GET") => Method::Get,
            Some("POST") => Method::Post,
            Some(other) => {
                return Err(rule_err(
                    &id,
                    format!("'request.method' must be GET or POST, got '{other}'"),
                ))
            }
        };
        let params = compile_params(&id, &cfg.params)?;
        let declared: HashSet<&str> = params.iter().map(|p| p.name.as_str()).collect();
        let check = |key: &str, t: &Template| -> Result<(), SettingsError> {
            for p in t.params() {
                if !declared.contains(p) {
                    return Err(rule_err(
                        &id,
                        format!(
                            "'{key}' uses '${{{p}}}' but no param '{p}' is declared in 'params'"
                        ),
                    ));
                }
            }
            for s in t.secrets() {
                if !ctx.secret_keys.contains(s) {
                    return Err(rule_err(
                        &id,
                        format!(
                            "'{key}' uses '${{__secure.{s}}}' but secureJsonData has no key '{s}'"
                        ),
                    ));
                }
            }
            Ok(())
        };
        let parse = |key: &str, text: &str| -> Result<Template, SettingsError> {
            let t = Template::parse(text).map_err(|e| rule_err(&id, format!("'{key}': {e}")))?;
            check(key, &t)?;
            Ok(t)
        };

        let url = parse("request.url", &cfg.request.url)?;
        if cfg.request.url.trim().is_empty() {
            return Err(rule_err(&id, "'request.url' is empty"));
        }
        let mut query = Vec::new();
        for (k, v) in &cfg.request.query {
            let key = format!("request.query.{k}");
            let values = match v {
                QueryValue::One(s) => vec![parse(&key, &s.to_text())?],
                QueryValue::Many(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, s)| parse(&format!("{key}[{i}]"), &s.to_text()))
                    .collect::<Result<_, _>>()?,
            };
            query.push((k.clone(), values));
        }
        let mut headers = Vec::new();
        for (k, v) in &cfg.request.headers {
            if k.is_empty() || !k.bytes().all(is_header_name_byte) {
                return Err(rule_err(
                    &id,
                    format!("'request.headers': '{k}' is not a valid header name"),
                ));
            }
            headers.push((k.clone(), parse(&format!("request.headers.{k}"), v)?));
        }
        let body = match &cfg.request.body {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(BodyTemplate::Text(parse("request.body", s)?)),
            Some(v @ (Value::Object(_) | Value::Array(_))) => Some(BodyTemplate::Json(
                compile_json_body("request.body", v, &parse)?,
            )),
            Some(_) => {
                return Err(rule_err(
                    &id,
                    "'request.body' must be a string or a mapping/list (sent as JSON)",
                ))
            }
        };

        let timezone = match cfg.request.timezone.as_deref().map(str::trim) {
            None | Some("") | Some("UTC") => None,
            Some(z) => Some(jiff::tz::TimeZone::get(z).map_err(|e| {
                rule_err(
                    &id,
                    format!("'request.timezone': '{z}' is not a known IANA time zone: {e}"),
                )
            })?),
        };
        let response = compile_response(&id, &cfg.response)?;
        let pagination = cfg
            .request
            .pagination
            .as_ref()
            .map(|p| compile_pagination(&id, p, method, body.as_ref()))
            .transpose()?;
        let rule_cache = cfg.cache.as_ref();
        let ttl = rule_cache
            .and_then(|c| c.ttl_seconds)
            .or(ctx.cache_defaults.and_then(|c| c.ttl_seconds))
            .unwrap_or(crate::settings::DEFAULT_CACHE_TTL_SECS);
        let align_seconds = rule_cache
            .and_then(|c| c.align_seconds)
            .or(ctx.cache_defaults.and_then(|c| c.align_seconds))
            .unwrap_or(0);
        let stale_if_error = rule_cache
            .and_then(|c| c.stale_if_error_seconds)
            .or(ctx.cache_defaults.and_then(|c| c.stale_if_error_seconds))
            .unwrap_or(0);
        let alert_from_cache = rule_cache
            .and_then(|c| c.alert_queries)
            .or(ctx.cache_defaults.and_then(|c| c.alert_queries))
            == Some(crate::settings::AlertCacheMode::Cached);
        if rule_cache.is_some_and(|c| c.redis.is_some()) {
            return Err(rule_err(
                &id,
                "'cache.redis' is a datasource setting (jsonData.cache), not a rule setting",
            ));
        }
        if rule_cache.is_some_and(|c| c.max_bytes.is_some()) {
            return Err(rule_err(
                &id,
                "'cache.maxBytes' is a datasource setting (jsonData.cache), not a rule setting",
            ));
        }
        let timeout = cfg
            .timeout
            .map(|t| seconds(&id, "timeout", t))
            .transpose()?;
        Ok(Rule {
            id,
            title: cfg.title,
            description: cfg.description,
            method,
            url,
            query,
            headers,
            body,
            timezone,
            params,
            response,
            pagination,
            cache_ttl: Duration::from_secs(ttl),
            align_seconds,
            stale_if_error: Duration::from_secs(stale_if_error),
            alert_from_cache,
            timeout,
        })
    }

    /// Checks the params a query sent against the declared ones and fills defaults.
    ///
    /// `given` is the query's `params` object (values may be strings, numbers or bools).
    ///
    /// # Errors
    /// A message naming the param: unknown param, value not a scalar, value failing
    /// `pattern` or `options`, missing `required` param (config.md §3).
    pub fn resolve_params(
        &self,
        given: &serde_json::Map<String, Value>,
    ) -> Result<HashMap<String, String>, String> {
        for key in given.keys() {
            if !self.params.iter().any(|p| &p.name == key) {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "rule '{}' has no param '{key}' (declared params: {})",
                    self.id,
                    list_or_none(&known)
                ));
            }
        }
        let mut out = HashMap::with_capacity(self.params.len());
        for p in &self.params {
            let value = match given.get(&p.name) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(Value::Null) | None => None,
                Some(other) => {
                    return Err(format!(
                        "param '{}' of rule '{}' must be a string, got {}",
                        p.name,
                        self.id,
                        crate::settings::json_kind(other)
                    ))
                }
            };
            let value = match value {
                Some(v) => {
                    check_param_value(p, &v).map_err(|m| format!("rule '{}': {m}", self.id))?;
                    v
                }
                None if p.required => {
                    return Err(format!(
                        "param '{}' of rule '{}' is required",
                        p.name, self.id
                    ))
                }
                None => p.default.clone().unwrap_or_default(),
            };
            out.insert(p.name.clone(), value);
        }
        Ok(out)
    }
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_param_value(p: &Param, v: &str) -> Result<(), String> {
    if let Some(re) = &p.pattern {
        if !re.is_match(v) {
            return Err(format!(
                "param '{}' value '{v}' does not match pattern '{}'",
                p.name,
                p.pattern_text.as_deref().unwrap_or_default()
            ));
        }
    }
    if let Some(opts) = &p.options {
        if !opts.iter().any(|o| o == v) {
            return Err(format!(
                "param '{}' value '{v}' is not one of the options [{}]",
                p.name,
                opts.join(", ")
            ));
        }
    }
    Ok(())
}

fn compile_params(rule: &str, cfg: &[ParamConfig]) -> Result<Vec<Param>, SettingsError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(cfg.len());
    for (i, p) in cfg.iter().enumerate() {
        let key = format!("params[{i}]");
        let name_ok = p
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !p.name.starts_with("__");
        if !name_ok {
            return Err(rule_err(
                rule,
                format!(
                    "'{key}.name' '{}' must match [A-Za-z_][A-Za-z0-9_]* and not start with '__'",
                    p.name
                ),
            ));
        }
        if !seen.insert(p.name.clone()) {
            return Err(rule_err(
                rule,
                format!("'{key}.name': param '{}' is declared twice", p.name),
            ));
        }
        let pattern = match &p.pattern {
            None => None,
            Some(text) => Some(Regex::new(&format!("^(?:{text})$")).map_err(|e| {
                rule_err(rule, format!("'{key}.pattern' is not a valid regex: {e}"))
            })?),
        };
        let param = Param {
            name: p.name.clone(),
            title: p.title.clone(),
            description: p.description.clone(),
            default: p.default.as_ref().map(|d| d.to_text()),
            pattern,
            pattern_text: p.pattern.clone(),
            options: p
                .options
                .as_ref()
                .map(|o| o.iter().map(|s| s.to_text()).collect()),
            required: p.required,
        };
        if let Some(d) = &param.default {
            check_param_value(&param, d)
                .map_err(|m| rule_err(rule, format!("'{key}.default': {m}")))?;
        }
        out.push(param);
    }
    Ok(out)
}

/// Compiles a JSON value whose string leaves are templates, parsing each with `parse`
/// (which also checks what the template may reference); `key` is the key path for messages.
///
/// # Errors
/// The first error `parse` returns.
pub fn compile_json_template(
    key: &str,
    v: &Value,
    parse: &dyn Fn(&str, &str) -> Result<Template, SettingsError>,
) -> Result<JsonTemplate, SettingsError> {
    compile_json_body(key, v, parse)
}

fn compile_json_body(
    key: &str,
    v: &Value,
    parse: &dyn Fn(&str, &str) -> Result<Template, SettingsError>,
) -> Result<JsonTemplate, SettingsError> {
    Ok(match v {
        Value::String(s) => JsonTemplate::String(parse(key, s)?),
        Value::Array(items) => JsonTemplate::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| compile_json_body(&format!("{key}[{i}]"), x, parse))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => JsonTemplate::Object(
            map.iter()
                .map(|(k, x)| {
                    Ok((
                        k.clone(),
                        compile_json_body(&format!("{key}.{k}"), x, parse)?,
                    ))
                })
                .collect::<Result<_, SettingsError>>()?,
        ),
        other => JsonTemplate::Literal(other.clone()),
    })
}

fn compile_path(rule: &str, key: &str, text: &str) -> Result<JsonPath, SettingsError> {
    JsonPath::compile(text).map_err(|e| rule_err(rule, format!("'{key}': {e}")))
}

/// Compiles a node-selecting path; `X[*]` / `X.*` keep member names for `@key`.
fn compile_node_path(rule: &str, key: &str, text: &str) -> Result<NodePath, SettingsError> {
    let full = compile_path(rule, key, text)?;
    let trimmed = text.trim_end();
    let parent = trimmed
        .strip_suffix("[*]")
        .or_else(|| trimmed.strip_suffix(".*"))
        .filter(|p| !p.ends_with('.') && !p.is_empty());
    if let Some(parent) = parent {
        if let Ok(p) = JsonPath::compile(parent) {
            return Ok(NodePath::Members(p));
        }
    }
    Ok(NodePath::Plain(full))
}

fn compile_response(rule: &str, cfg: &ResponseConfig) -> Result<ResponseSpec, SettingsError> {
    let frames = cfg
        .frames
        .as_deref()
        .map(|t| compile_node_path(rule, "response.frames", t))
        .transpose()?;
    let rows = cfg
        .rows
        .as_deref()
        .map(|t| compile_node_path(rule, "response.rows", t))
        .transpose()?;
    let labels = cfg
        .labels
        .iter()
        .map(|(name, p)| {
            Ok((
                name.clone(),
                compile_path(rule, &format!("response.labels.{name}"), p)?,
            ))
        })
        .collect::<Result<Vec<_>, SettingsError>>()?;
    let labels_from = cfg
        .labels_from
        .as_deref()
        .map(|t| compile_path(rule, "response.labelsFrom", t))
        .transpose()?;
    if cfg.fields.is_empty() {
        return Err(rule_err(
            rule,
            "'response.fields' must list at least one field",
        ));
    }
    let mut names = HashSet::new();
    let mut fields = Vec::with_capacity(cfg.fields.len());
    for (i, f) in cfg.fields.iter().enumerate() {
        let key = format!("response.fields[{i}]");
        if f.name.is_empty() {
            return Err(rule_err(rule, format!("'{key}.name' is empty")));
        }
        if !names.insert(f.name.clone()) {
            return Err(rule_err(
                rule,
                format!("'{key}.name': field '{}' is declared twice", f.name),
            ));
        }
        fields.push(compile_field(rule, &key, f)?);
    }
    let mut series_by = Vec::new();
    for name in &cfg.series_by {
        let Some(idx) = fields.iter().position(|f| &f.name == name) else {
            return Err(rule_err(
                rule,
                format!("'response.seriesBy': no field named '{name}'"),
            ));
        };
        if fields[idx].kind != FieldType::String {
            return Err(rule_err(
                rule,
                format!("'response.seriesBy': field '{name}' must have type string"),
            ));
        }
        series_by.push(idx);
    }
    Ok(ResponseSpec {
        frames,
        rows,
        labels,
        labels_from,
        fields,
        series_by,
        format: cfg.format,
    })
}

fn compile_field(rule: &str, key: &str, f: &FieldConfig) -> Result<FieldSpec, SettingsError> {
    let source = match f.path.trim() {
        "@key" => FieldSource::Key,
        "@index" => FieldSource::Index,
        p if p.starts_with('^') => {
            let rest = &p[1..];
            let text = if rest.starts_with('$') {
                rest.to_owned()
            } else {
                format!("${rest}")
            };
            FieldSource::Frame(compile_path(rule, &format!("{key}.path"), &text)?)
        }
        p => FieldSource::Path(compile_path(rule, &format!("{key}.path"), p)?),
    };
    if f.kind != FieldType::Time && (f.format.is_some() || f.timezone.is_some()) {
        return Err(rule_err(
            rule,
            format!("'{key}': 'format' and 'timezone' apply to time fields only"),
        ));
    }
    let time_format = match &f.format {
        None => TimeFormat::Auto,
        Some(s) => {
            TimeFormat::parse(s).map_err(|e| rule_err(rule, format!("'{key}.format': {e}")))?
        }
    };
    let zone = match f.timezone.as_deref().map(str::trim) {
        None | Some("") | Some("UTC") => ZoneSpec::Fixed(jiff::tz::TimeZone::UTC),
        Some(t) => {
            if let Some(inner) = t
                .strip_prefix("${__response.")
                .and_then(|r| r.strip_suffix('}'))
            {
                let path = if inner.starts_with('$') {
                    inner.to_owned()
                } else {
                    format!("$.{inner}")
                };
                ZoneSpec::FromResponse(compile_path(rule, &format!("{key}.timezone"), &path)?)
            } else {
                ZoneSpec::Fixed(jiff::tz::TimeZone::get(t).map_err(|e| {
                    rule_err(
                        rule,
                        format!("'{key}.timezone': '{t}' is not a known IANA time zone: {e}"),
                    )
                })?)
            }
        }
    };
    let mut config = serde_json::Map::new();
    if let Some(u) = &f.unit {
        config.insert("unit".into(), Value::String(u.clone()));
    }
    if let Some(d) = &f.display_name {
        config.insert("displayName".into(), Value::String(d.clone()));
    }
    if let Some(d) = f.decimals {
        config.insert("decimals".into(), Value::from(d));
    }
    for (name, v) in [("min", f.min), ("max", f.max)] {
        if let Some(v) = v {
            let n = serde_json::Number::from_f64(v)
                .ok_or_else(|| rule_err(rule, format!("'{key}.{name}' must be a finite number")))?;
            config.insert(name.into(), Value::Number(n));
        }
    }
    Ok(FieldSpec {
        name: f.name.clone(),
        source,
        kind: f.kind,
        time_format,
        zone,
        config: (!config.is_empty()).then_some(config),
    })
}

/// Compiles every raw rule of a datasource, checking that ids are unique.
///
/// # Errors
/// The first [`SettingsError`] met, in rule order.
pub fn compile_rules(
    raw: &[Value],
    ctx: &CompileContext<'_>,
) -> Result<BTreeMap<String, Rule>, SettingsError> {
    let mut out = BTreeMap::new();
    for (i, r) in raw.iter().enumerate() {
        let cfg = crate::settings::parse_rule(i, r)?;
        let id = cfg.id.clone();
        let rule = Rule::compile(cfg, ctx)?;
        if out.insert(id.clone(), rule).is_some() {
            return Err(rule_err(&id, "'id' is used by more than one rule"));
        }
    }
    Ok(out)
}

/// Compiles one rule from its JSON form with no datasource context (no secrets, no cache
/// defaults): for tests, conformance replays and tools.
///
/// # Errors
/// [`SettingsError::Rule`] as [`Rule::compile`].
pub fn compile_standalone(raw: &Value) -> Result<Rule, SettingsError> {
    let secret_keys = HashSet::new();
    let ctx = CompileContext {
        secret_keys: &secret_keys,
        cache_defaults: None,
    };
    Rule::compile(crate::settings::parse_rule(0, raw)?, &ctx)
}
