//! Request templates (config.md §4 "Templates").
//!
//! A rule's `url` path, query values, header values and JSON body may contain placeholders. A
//! template is parsed once when the datasource settings are compiled ([`Template::parse`]) and
//! rendered for every query ([`Template::render`]).
//!
//! # Syntax
//!
//! | Placeholder | Renders as |
//! |---|---|
//! | `${name}` | the query's param `name` (`[A-Za-z_][A-Za-z0-9_]*`, not starting with `__`) |
//! | `${name:raw}` | the same, without the position's encoding |
//! | `${__from}`, `${__to}` | the time range in epoch milliseconds, e.g. `1704067200000` |
//! | `${__from:date}`, `${__from:date:iso}` | RFC 3339 UTC with milliseconds, `2024-01-01T00:00:00.000Z` |
//! | `${__from:date:seconds}` | epoch seconds (rounded down), `1704067200` |
//! | `${__from:date:FORMAT}` | a moment.js-style `FORMAT` in UTC, see below |
//! | `${__interval}` | the query interval in its largest whole unit: `500ms`, `30s`, `5m`, `2h`, `1d` |
//! | `${__interval_ms}` | the query interval in milliseconds |
//! | `${__maxDataPoints}` | the query's max data points |
//! | `${__secure.KEY}` | the datasource's `secureJsonData` value `KEY` (`[A-Za-z0-9_.-]+`) |
//!
//! `:raw` is accepted on every placeholder except the `date` forms of `__from`/`__to` (there
//! everything after `date:` is the format, which may itself contain colons). A `$` that is not
//! followed by `{` is literal text; `${` always opens a placeholder and there is no escape for
//! it (the same as Grafana's own template variables). The placeholder ends at the first `}`.
//!
//! Date `FORMAT` tokens (Grafana/moment.js, always UTC): `YYYY` year, `YY` two-digit year, `MM`/`M`
//! month, `DD`/`D` day, `HH`/`H` hour 0–23, `hh`/`h` hour 1–12, `mm`/`m` minute, `ss`/`s`
//! second, `S`…`SSSSSSSSS` fraction of a second (`SSS` = milliseconds), `A` `AM`/`PM`, `a`
//! `am`/`pm`, `X` epoch seconds, `x` epoch milliseconds, `Z` `+00:00`, `ZZ` `+0000`, and
//! `[text]` for literal text. Other characters (including letters such as `T` that are not
//! moment tokens) are copied as they are. Moment tokens this formatter does not support
//! (`MMM`, `Do`, `dddd`, `Q`, `w`, `z`, `L`, …) are parse errors rather than silent garbage.
//!
//! # Encoding by position
//!
//! Only substituted values are encoded, never the template's literal text; see [`Position`].
//! Secrets rendered with [`RenderContext::mask_secrets`] are the plain text `***` in every
//! position.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Where a rendered value goes: decides the encoding (config.md §4 "Encoding by position").
///
/// The encoding applies to substituted values only; literal template text is copied unchanged.
/// A `:raw` placeholder skips the encoding in every position, but [`Position::Header`] still
/// rejects CR, LF and NUL in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Position {
    /// A part of a URL path. Every byte except the RFC 3986 unreserved characters
    /// (`A-Z a-z 0-9 - . _ ~`) is percent-encoded (UTF-8, upper-case hex), so a value cannot
    /// leave its segment: `../x` becomes `..%2Fx`, `a b` becomes `a%20b`. A path segment that
    /// consists only of substituted text (possibly next to literal text) and is exactly `.` or
    /// `..` becomes `%2E` or `%2E%2E`.
    ///
    /// Caution for callers: WHATWG URL parsers, including the `url` crate behind `reqwest`,
    /// still treat `%2E` and `%2E%2E` as dot segments and resolve them when parsing a URL
    /// string. The URL builder must therefore also refuse (or otherwise neutralise) a rendered
    /// segment that decodes to `.` or `..`.
    PathSegment,
    /// A query-string key or value. **No encoding here**: the value is returned as-is and the
    /// caller form-encodes the final key/value pairs itself (e.g. with
    /// `form_urlencoded::Serializer`); encoding here as well would encode twice.
    Query,
    /// Inside a JSON string literal. The value is JSON-string-escaped (`"` → `\"`, `\` → `\\`,
    /// control characters → `\n`, `\u001f`, …) without surrounding quotes; the caller places it
    /// between the quotes of a string in the body.
    JsonString,
    /// An HTTP header value. Copied as-is, but a CR, LF or NUL anywhere in the rendered value is
    /// an error ([`RenderError::HeaderControlChar`]), so a value cannot inject headers.
    Header,
    /// Anywhere else: copied as-is.
    Raw,
}

/// A parsed template: literal text and placeholders. Cheap to render many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    params: Vec<String>,
    secrets: Vec<String>,
}

/// What a query supplies for rendering a [`Template`].
///
/// Its `Debug` output lists secret keys only, never their values.
pub struct RenderContext<'a> {
    /// The query's params by name (already validated against the rule's declarations).
    pub params: &'a HashMap<String, String>,
    /// Start of the time range, epoch milliseconds (UTC).
    pub from_ms: i64,
    /// End of the time range, epoch milliseconds (UTC).
    pub to_ms: i64,
    /// Grafana's suggested interval between points, milliseconds.
    pub interval_ms: i64,
    /// Grafana's maximum number of data points for the panel.
    pub max_data_points: i64,
    /// The datasource's decrypted `secureJsonData`, by key.
    pub secrets: &'a HashMap<String, String>,
    /// `true` → every `${__secure.KEY}` renders as `***` (for `executedQueryString` and logs).
    /// A key missing from `secrets` is an error either way, so a template renders masked
    /// exactly when it renders unmasked.
    pub mask_secrets: bool,
    /// Zone in which `${__from:date:FORMAT}` / `${__from:date:iso}` render their calendar
    /// fields (the rule's `request.timezone`); `None` = UTC. Epoch forms are zone-free.
    pub timezone: Option<&'a jiff::tz::TimeZone>,
}

impl fmt::Debug for RenderContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secret_keys: Vec<&str> = self.secrets.keys().map(String::as_str).collect();
        secret_keys.sort_unstable();
        f.debug_struct("RenderContext")
            .field("params", &self.params)
            .field("from_ms", &self.from_ms)
            .field("to_ms", &self.to_ms)
            .field("interval_ms", &self.interval_ms)
            .field("max_data_points", &self.max_data_points)
            .field("secret_keys", &secret_keys)
            .field("mask_secrets", &self.mask_secrets)
            .finish()
    }
}

/// A template that cannot be parsed. Every variant names the placeholder as written and the
/// byte offset of its `$` in the template text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `${` without a closing `}`; `placeholder` is the rest of the template (at most 40
    /// characters).
    #[error("unclosed placeholder `{placeholder}` at byte {offset}: missing `}}`")]
    Unclosed {
        /// The template text from the `$` on, shortened.
        placeholder: String,
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// `${}` or `${:raw}`.
    #[error("empty name in placeholder `{placeholder}` at byte {offset}")]
    EmptyName {
        /// The placeholder as written, e.g. `${}`.
        placeholder: String,
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// A param name outside `[A-Za-z_][A-Za-z0-9_]*`, or a `__secure.` key that is empty or
    /// outside `[A-Za-z0-9_.-]+`.
    #[error("invalid name in placeholder `{placeholder}` at byte {offset}: {reason}")]
    InvalidName {
        /// The placeholder as written.
        placeholder: String,
        /// Byte offset of the `$`.
        offset: usize,
        /// What the name must look like.
        reason: String,
    },
    /// A name starting with `__` that is not a built-in, e.g. `${__foo}`.
    #[error(
        "unknown built-in `{placeholder}` at byte {offset}; the built-ins are __from, __to, \
         __interval, __interval_ms, __maxDataPoints and __secure.KEY"
    )]
    UnknownBuiltin {
        /// The placeholder as written.
        placeholder: String,
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// A format spec after `:` that is not valid for this placeholder, or a bad date format.
    #[error("bad format in placeholder `{placeholder}` at byte {offset}: {reason}")]
    BadFormat {
        /// The placeholder as written.
        placeholder: String,
        /// Byte offset of the `$`.
        offset: usize,
        /// What is wrong, e.g. "unsupported date token `MMM`".
        reason: String,
    },
}

/// A template that cannot be rendered for one query. Messages never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The template references a param that the query did not supply.
    #[error("unknown param `{name}`: the query supplied no value for it")]
    UnknownParam {
        /// The param name.
        name: String,
    },
    /// `${__secure.KEY}` with no such key in the datasource's secureJsonData.
    #[error("secure key `{key}` is not set in the datasource's secureJsonData")]
    MissingSecret {
        /// The key (never the value).
        key: String,
    },
    /// A header value would contain CR, LF or NUL.
    #[error("header value from `{placeholder}` contains CR, LF or NUL")]
    HeaderControlChar {
        /// The placeholder as written, or `literal text` when the template text itself has one.
        placeholder: String,
    },
    /// A `__from`/`__to` date format for a time outside years -9999..=9999.
    #[error("time {ms} ms in `{placeholder}` is outside the representable range")]
    TimeOutOfRange {
        /// The placeholder as written.
        placeholder: String,
        /// The epoch milliseconds that could not be converted.
        ms: i64,
    },
}

/// Bytes left alone in a path segment: RFC 3986 unreserved characters.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Rendering of a masked secret.
const MASK: &str = "***";

/// Longest excerpt shown for an unclosed placeholder.
const EXCERPT_CHARS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Slot(Slot),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    /// The placeholder as written, for error messages.
    text: String,
    kind: SlotKind,
    raw: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SlotKind {
    Param(String),
    From(TimeFormat),
    To(TimeFormat),
    Interval,
    IntervalMs,
    MaxDataPoints,
    Secret(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeFormat {
    EpochMillis,
    EpochSeconds,
    Iso,
    Pattern(Vec<DateToken>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DateToken {
    Text(String),
    Year4,
    Year2,
    Month { padded: bool },
    Day { padded: bool },
    Hour24 { padded: bool },
    Hour12 { padded: bool },
    Minute { padded: bool },
    Second { padded: bool },
    Fraction { digits: usize },
    MeridiemUpper,
    MeridiemLower,
    EpochSeconds,
    EpochMillis,
    OffsetColon,
    OffsetPlain,
}

/// Letters that moment.js treats as (parts of) tokens. A run of one of these that this
/// formatter does not support is an error; other letters are literal text.
const MOMENT_LETTERS: &str = "YMDdHhkmsSAaXxZzQWwEeGgNLly";

impl Template {
    /// Parses template text.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] for an unclosed `${`, an empty name (`${}`), an invalid param name or
    /// secure key, an unknown built-in (`${__foo}`), or a bad format spec (`${x:json}`,
    /// `${__from:date:MMM}`, `${__from:date:[x}`); the message names the placeholder as
    /// written and the byte offset of its `$`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut params: Vec<String> = Vec::new();
        let mut secrets: Vec<String> = Vec::new();
        let mut literal_start = 0;
        let mut search_from = 0;
        while let Some(found) = text[search_from..].find("${") {
            let offset = search_from + found;
            let Some(close) = text[offset + 2..].find('}') else {
                return Err(TemplateError::Unclosed {
                    placeholder: excerpt(&text[offset..]),
                    offset,
                });
            };
            let end = offset + 2 + close + 1;
            if literal_start < offset {
                parts.push(Part::Literal(text[literal_start..offset].to_owned()));
            }
            let slot = parse_slot(&text[offset..end], offset)?;
            match &slot.kind {
                SlotKind::Param(name) if !params.contains(name) => params.push(name.clone()),
                SlotKind::Secret(key) if !secrets.contains(key) => secrets.push(key.clone()),
                _ => {}
            }
            parts.push(Part::Slot(slot));
            literal_start = end;
            search_from = end;
        }
        if literal_start < text.len() {
            parts.push(Part::Literal(text[literal_start..].to_owned()));
        }
        Ok(Template {
            source: text.to_owned(),
            parts,
            params,
            secrets,
        })
    }

    /// Renders the template for one query, encoding substituted values for `pos`.
    ///
    /// # Errors
    ///
    /// * [`RenderError::UnknownParam`]: a `${name}` the query's `params` lacks (names it).
    /// * [`RenderError::MissingSecret`]: a `${__secure.KEY}` not in `secrets` (names the key,
    ///   never a value), whether or not secrets are masked.
    /// * [`RenderError::HeaderControlChar`]: in [`Position::Header`], a CR, LF or NUL in a
    ///   substituted value (`:raw` included) or in the literal text.
    /// * [`RenderError::TimeOutOfRange`]: a date format for a time jiff cannot represent.
    pub fn render(&self, ctx: &RenderContext<'_>, pos: Position) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.source.len() + 32);
        // Byte ranges of encoded substitutions, for the dot-segment check of path segments.
        let mut substituted: Vec<Range<usize>> = Vec::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => {
                    if pos == Position::Header && has_header_control_char(text) {
                        return Err(RenderError::HeaderControlChar {
                            placeholder: "literal text".to_owned(),
                        });
                    }
                    out.push_str(text);
                }
                Part::Slot(slot) => {
                    let masked = ctx.mask_secrets && matches!(slot.kind, SlotKind::Secret(_));
                    let value = resolve(slot, ctx)?;
                    if pos == Position::Header && has_header_control_char(&value) {
                        return Err(RenderError::HeaderControlChar {
                            placeholder: slot.text.clone(),
                        });
                    }
                    if slot.raw || masked {
                        out.push_str(&value);
                    } else {
                        let start = out.len();
                        encode_into(&mut out, &value, pos);
                        substituted.push(start..out.len());
                    }
                }
            }
        }
        if pos == Position::PathSegment && !substituted.is_empty() {
            out = encode_dot_segments(&out, &substituted);
        }
        Ok(out)
    }

    /// Names of the user params the template references (built-ins excluded), each once, in
    /// order of first appearance. For checking against the rule's declared params.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(String::as_str)
    }

    /// `KEY`s of the `${__secure.KEY}` placeholders, each once, in order of first appearance.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.secrets.iter().map(String::as_str)
    }

    /// `true` when the template has no placeholders (rendering returns the text unchanged).
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|part| matches!(part, Part::Literal(_)))
    }

    /// The template text as given to [`Template::parse`].
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// At most [`EXCERPT_CHARS`] characters of `text`, with `…` when shortened.
fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let mut short: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        short.push('…');
    }
    short
}

/// Parses one placeholder, `placeholder` being `${…}` including the braces.
fn parse_slot(placeholder: &str, offset: usize) -> Result<Slot, TemplateError> {
    let content = &placeholder[2..placeholder.len() - 1];
    let (name, spec) = match content.split_once(':') {
        Some((name, spec)) => (name, Some(spec)),
        None => (content, None),
    };
    let bad_format = |reason: String| TemplateError::BadFormat {
        placeholder: placeholder.to_owned(),
        offset,
        reason,
    };
    let invalid_name = |reason: &str| TemplateError::InvalidName {
        placeholder: placeholder.to_owned(),
        offset,
        reason: reason.to_owned(),
    };
    // `raw` is the only spec outside the time built-ins.
    let raw_only = |spec: Option<&str>| match spec {
        None => Ok(false),
        Some("raw") => Ok(true),
        Some(other) => Err(bad_format(format!(
            "unknown format `{other}`; only `raw` is supported here"
        ))),
    };
    if name.is_empty() {
        return Err(TemplateError::EmptyName {
            placeholder: placeholder.to_owned(),
            offset,
        });
    }
    let (kind, raw) = if let Some(builtin) = name.strip_prefix("__") {
        match builtin {
            "from" | "to" => {
                let (format, raw) = parse_time_spec(spec).map_err(bad_format)?;
                let kind = if builtin == "from" {
                    SlotKind::From(format)
                } else {
                    SlotKind::To(format)
                };
                (kind, raw)
            }
            "interval" => (SlotKind::Interval, raw_only(spec)?),
            "interval_ms" => (SlotKind::IntervalMs, raw_only(spec)?),
            "maxDataPoints" => (SlotKind::MaxDataPoints, raw_only(spec)?),
            _ => match builtin.strip_prefix("secure.") {
                Some(key) => {
                    if !is_secure_key(key) {
                        return Err(invalid_name(
                            "a secure key must be non-empty and match [A-Za-z0-9_.-]+",
                        ));
                    }
                    (SlotKind::Secret(key.to_owned()), raw_only(spec)?)
                }
                None => {
                    return Err(TemplateError::UnknownBuiltin {
                        placeholder: placeholder.to_owned(),
                        offset,
                    })
                }
            },
        }
    } else {
        if !is_param_name(name) {
            return Err(invalid_name(
                "a param name must match [A-Za-z_][A-Za-z0-9_]* and not start with `__`",
            ));
        }
        (SlotKind::Param(name.to_owned()), raw_only(spec)?)
    };
    Ok(Slot {
        text: placeholder.to_owned(),
        kind,
        raw,
    })
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_param_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(first) if first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// `[A-Za-z0-9_.-]+`.
fn is_secure_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

/// The spec of `__from`/`__to`: the time format and whether `:raw` was given.
fn parse_time_spec(spec: Option<&str>) -> Result<(TimeFormat, bool), String> {
    match spec {
        None => Ok((TimeFormat::EpochMillis, false)),
        Some("raw") => Ok((TimeFormat::EpochMillis, true)),
        Some("date") | Some("date:iso") => Ok((TimeFormat::Iso, false)),
        Some("date:seconds") => Ok((TimeFormat::EpochSeconds, false)),
        Some(other) => match other.strip_prefix("date:") {
            Some("") => Err("empty date format after `date:`".to_owned()),
            Some(pattern) => Ok((TimeFormat::Pattern(parse_date_pattern(pattern)?), false)),
            None => Err(format!(
                "unknown format `{other}`; use `date`, `date:iso`, `date:seconds`, \
                 `date:FORMAT` or `raw`"
            )),
        },
    }
}

/// Tokenises a moment.js-style date format.
fn parse_date_pattern(pattern: &str) -> Result<Vec<DateToken>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut text = String::new();
    let mut index = 0;
    while index < chars.len() {
        let current = chars[index];
        if current == '[' {
            let Some(close) = chars[index + 1..].iter().position(|&c| c == ']') else {
                return Err("unclosed `[` in date format".to_owned());
            };
            text.extend(&chars[index + 1..index + 1 + close]);
            index += close + 2;
            continue;
        }
        if !MOMENT_LETTERS.contains(current) {
            text.push(current);
            index += 1;
            continue;
        }
        let run = chars[index..].iter().take_while(|&&c| c == current).count();
        let spelled: String = std::iter::repeat_n(current, run).collect();
        let ordinal =
            run == 1 && matches!(current, 'M' | 'D') && chars.get(index + 1) == Some(&'o');
        let token = if ordinal {
            None
        } else {
            date_token(current, run)
        };
        let Some(token) = token else {
            let shown = if ordinal {
                format!("{current}o")
            } else {
                spelled
            };
            return Err(format!(
                "unsupported date token `{shown}` (put literal text in [brackets])"
            ));
        };
        if !text.is_empty() {
            tokens.push(DateToken::Text(std::mem::take(&mut text)));
        }
        tokens.push(token);
        index += run;
    }
    if !text.is_empty() {
        tokens.push(DateToken::Text(text));
    }
    Ok(tokens)
}

/// The supported token for `run` repetitions of `letter`.
fn date_token(letter: char, run: usize) -> Option<DateToken> {
    let padded = run == 2;
    let token = match (letter, run) {
        ('Y', 4) => DateToken::Year4,
        ('Y', 2) => DateToken::Year2,
        ('M', 1 | 2) => DateToken::Month { padded },
        ('D', 1 | 2) => DateToken::Day { padded },
        ('H', 1 | 2) => DateToken::Hour24 { padded },
        ('h', 1 | 2) => DateToken::Hour12 { padded },
        ('m', 1 | 2) => DateToken::Minute { padded },
        ('s', 1 | 2) => DateToken::Second { padded },
        ('S', 1..=9) => DateToken::Fraction { digits: run },
        ('A', 1) => DateToken::MeridiemUpper,
        ('a', 1) => DateToken::MeridiemLower,
        ('X', 1) => DateToken::EpochSeconds,
        ('x', 1) => DateToken::EpochMillis,
        ('Z', 1) => DateToken::OffsetColon,
        ('Z', 2) => DateToken::OffsetPlain,
        _ => return None,
    };
    Some(token)
}

/// The unencoded value of one placeholder.
fn resolve<'c>(slot: &Slot, ctx: &RenderContext<'c>) -> Result<Cow<'c, str>, RenderError> {
    let value = match &slot.kind {
        SlotKind::Param(name) => match ctx.params.get(name) {
            Some(value) => Cow::Borrowed(value.as_str()),
            None => return Err(RenderError::UnknownParam { name: name.clone() }),
        },
        SlotKind::From(format) => Cow::Owned(format_time(ctx.from_ms, format, slot, ctx.timezone)?),
        SlotKind::To(format) => Cow::Owned(format_time(ctx.to_ms, format, slot, ctx.timezone)?),
        SlotKind::Interval => Cow::Owned(format_interval(ctx.interval_ms)),
        SlotKind::IntervalMs => Cow::Owned(ctx.interval_ms.to_string()),
        SlotKind::MaxDataPoints => Cow::Owned(ctx.max_data_points.to_string()),
        SlotKind::Secret(key) => match ctx.secrets.get(key) {
            Some(_) if ctx.mask_secrets => Cow::Borrowed(MASK),
            Some(value) => Cow::Borrowed(value.as_str()),
            None => return Err(RenderError::MissingSecret { key: key.clone() }),
        },
    };
    Ok(value)
}

/// Grafana-style interval: the largest unit (d, h, m, s, ms) that divides `ms` exactly.
/// Zero and negative values render as milliseconds (`0ms`).
fn format_interval(ms: i64) -> String {
    const UNITS: [(i64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    if ms > 0 {
        for (size, suffix) in UNITS {
            if ms % size == 0 {
                return format!("{}{suffix}", ms / size);
            }
        }
    }
    format!("{ms}ms")
}

/// Renders `ms` (epoch milliseconds) in `format`, calendar fields in `zone` (UTC if `None`).
fn format_time(
    ms: i64,
    format: &TimeFormat,
    slot: &Slot,
    zone: Option<&jiff::tz::TimeZone>,
) -> Result<String, RenderError> {
    let tokens = match format {
        TimeFormat::EpochMillis => return Ok(ms.to_string()),
        TimeFormat::EpochSeconds => return Ok(ms.div_euclid(1000).to_string()),
        TimeFormat::Iso => None,
        TimeFormat::Pattern(tokens) => Some(tokens),
    };
    let timestamp =
        jiff::Timestamp::from_millisecond(ms).map_err(|_| RenderError::TimeOutOfRange {
            placeholder: slot.text.clone(),
            ms,
        })?;
    let offset = zone.map_or(jiff::tz::Offset::UTC, |z| z.to_offset(timestamp));
    let civil = offset.to_datetime(timestamp);
    let total = offset.seconds();
    let (sign, abs) = if total < 0 {
        ('-', -total)
    } else {
        ('+', total)
    };
    let (oh, om) = (abs / 3600, (abs % 3600) / 60);
    let Some(tokens) = tokens else {
        let suffix = if total == 0 {
            "Z".to_owned()
        } else {
            format!("{sign}{oh:02}:{om:02}")
        };
        return Ok(format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{suffix}",
            civil.year(),
            civil.month(),
            civil.day(),
            civil.hour(),
            civil.minute(),
            civil.second(),
            civil.millisecond()
        ));
    };
    let mut out = String::new();
    for token in tokens {
        let piece = match token {
            DateToken::Text(text) => text.clone(),
            DateToken::Year4 => format!("{:04}", civil.year()),
            DateToken::Year2 => format!("{:02}", i32::from(civil.year()).rem_euclid(100)),
            DateToken::Month { padded } => number(civil.month(), *padded),
            DateToken::Day { padded } => number(civil.day(), *padded),
            DateToken::Hour24 { padded } => number(civil.hour(), *padded),
            DateToken::Hour12 { padded } => {
                let hour = match civil.hour() % 12 {
                    0 => 12,
                    other => other,
                };
                number(hour, *padded)
            }
            DateToken::Minute { padded } => number(civil.minute(), *padded),
            DateToken::Second { padded } => number(civil.second(), *padded),
            DateToken::Fraction { digits } => {
                let millis = format!("{:03}", civil.millisecond());
                if *digits <= 3 {
                    millis[..*digits].to_owned()
                } else {
                    format!("{millis:0<digits$}")
                }
            }
            DateToken::MeridiemUpper => meridiem(civil.hour(), "AM", "PM"),
            DateToken::MeridiemLower => meridiem(civil.hour(), "am", "pm"),
            DateToken::EpochSeconds => ms.div_euclid(1000).to_string(),
            DateToken::EpochMillis => ms.to_string(),
            DateToken::OffsetColon => format!("{sign}{oh:02}:{om:02}"),
            DateToken::OffsetPlain => format!("{sign}{oh:02}{om:02}"),
        };
        out.push_str(&piece);
    }
    Ok(out)
}

/// A date component, zero-padded to two digits when `padded`.
fn number(value: i8, padded: bool) -> String {
    if padded {
        format!("{value:02}")
    } else {
        value.to_string()
    }
}

fn meridiem(hour: i8, morning: &str, afternoon: &str) -> String {
    if hour < 12 { morning } else { afternoon }.to_owned()
}

fn has_header_control_char(text: &str) -> bool {
    text.contains(['\r', '\n', '\0'])
}

/// Appends `value` encoded for `pos`.
fn encode_into(out: &mut String, value: &str, pos: Position) {
    match pos {
        Position::PathSegment => out.extend(utf8_percent_encode(value, PATH_SEGMENT)),
        Position::JsonString => escape_json_into(out, value),
        Position::Query | Position::Header | Position::Raw => out.push_str(value),
    }
}

/// JSON string escaping (RFC 8259 §7) without the surrounding quotes.
fn escape_json_into(out: &mut String, value: &str) {
    for character in value.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            control if u32::from(control) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => out.push(other),
        }
    }
}

/// Replaces every `/`-separated segment of `rendered` that is exactly `.` or `..` and overlaps
/// a substituted range with `%2E` / `%2E%2E`. Segments made only of literal text stay as the
/// admin wrote them.
fn encode_dot_segments(rendered: &str, substituted: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(rendered.len() + 8);
    let mut start = 0;
    for (index, segment) in rendered.split('/').enumerate() {
        if index > 0 {
            out.push('/');
        }
        let end = start + segment.len();
        let from_value = substituted
            .iter()
            .any(|range| range.start < end && start < range.end);
        match segment {
            "." if from_value => out.push_str("%2E"),
            ".." if from_value => out.push_str("%2E%2E"),
            _ => out.push_str(segment),
        }
        start = end + 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// 2024-01-01T00:00:00.000Z
    const NEW_YEAR: i64 = 1_704_067_200_000;
    /// 2024-03-05T13:05:09.007Z
    const AFTERNOON: i64 = 1_709_643_909_007;
    /// 2024-06-15T00:30:45.120Z
    const JUST_AFTER_MIDNIGHT: i64 = 1_718_411_445_120;

    struct Fixture {
        params: HashMap<String, String>,
        secrets: HashMap<String, String>,
    }

    impl Fixture {
        fn new() -> Self {
            let params = [
                ("city", "Zürich"),
                ("lat", "48.14"),
                ("traversal", "../x"),
                ("amp", "a&b=c"),
                ("hash", "x#frag"),
                ("question", "what?x=1"),
                ("space", "a b"),
                ("slash", "a/b"),
                ("dot", "."),
                ("dotdot", ".."),
                ("empty", ""),
                ("quote", "say \"hi\"\\\n\t\u{1}"),
                ("crlf", "v\r\nX-Evil: 1"),
                ("lf", "a\nb"),
                ("nul", "a\0b"),
                ("percent", "100%"),
                ("plus", "a+b"),
                ("unreserved", "AZaz09-._~"),
            ];
            let secrets = [("apiKey", "s3cr3t/+="), ("token-v2", "tok")];
            Fixture {
                params: params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                secrets: secrets
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            }
        }

        fn ctx(&self, from_ms: i64) -> RenderContext<'_> {
            RenderContext {
                params: &self.params,
                from_ms,
                to_ms: JUST_AFTER_MIDNIGHT,
                interval_ms: 30_000,
                max_data_points: 1234,
                secrets: &self.secrets,
                mask_secrets: false,
                timezone: None,
            }
        }
    }

    #[test]
    fn dates_render_in_the_rule_zone() {
        let fx = Fixture::new();
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let mut ctx = fx.ctx(1_704_067_200_000); // 2024-01-01T00:00:00Z
        ctx.timezone = Some(&berlin);
        assert_eq!(
            render("${__from:date:YYYY-MM-DD HH:mm Z}", &ctx, Position::Raw),
            "2024-01-01 01:00 +01:00"
        );
        assert_eq!(
            render("${__from:date}", &ctx, Position::Raw),
            "2024-01-01T01:00:00.000+01:00"
        );
        assert_eq!(render("${__from:date:ZZ}", &ctx, Position::Raw), "+0100");
        assert_eq!(
            render("${__from:date:seconds}", &ctx, Position::Raw),
            "1704067200"
        );
        let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
        ctx.timezone = Some(&ny);
        assert_eq!(
            render("${__from:date:YYYY-MM-DD}", &ctx, Position::Raw),
            "2023-12-31"
        );
        assert_eq!(render("${__from:date:Z}", &ctx, Position::Raw), "-05:00");
    }

    fn render(text: &str, ctx: &RenderContext<'_>, pos: Position) -> String {
        Template::parse(text)
            .unwrap_or_else(|error| panic!("{text}: {error}"))
            .render(ctx, pos)
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn parse_error(text: &str) -> TemplateError {
        match Template::parse(text) {
            Ok(template) => panic!("{text} parsed: {template:?}"),
            Err(error) => error,
        }
    }

    fn render_error(text: &str, ctx: &RenderContext<'_>, pos: Position) -> RenderError {
        match Template::parse(text).unwrap().render(ctx, pos) {
            Ok(rendered) => panic!("{text} rendered: {rendered}"),
            Err(error) => error,
        }
    }

    #[test]
    fn builtins_render_against_fixed_times() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        let cases = [
            ("${__from}", "1704067200000"),
            ("${__to}", "1718411445120"),
            ("${__from:raw}", "1704067200000"),
            ("${__from:date}", "2024-01-01T00:00:00.000Z"),
            ("${__from:date:iso}", "2024-01-01T00:00:00.000Z"),
            ("${__to:date}", "2024-06-15T00:30:45.120Z"),
            ("${__from:date:seconds}", "1704067200"),
            ("${__to:date:seconds}", "1718411445"),
            ("${__interval}", "30s"),
            ("${__interval_ms}", "30000"),
            ("${__maxDataPoints}", "1234"),
            ("${__interval:raw}", "30s"),
            ("${__secure.apiKey}", "s3cr3t/+="),
            ("${__secure.token-v2}", "tok"),
            ("${lat}", "48.14"),
            ("${lat:raw}", "48.14"),
        ];
        for (text, expected) in cases {
            assert_eq!(render(text, &ctx, Position::Raw), expected, "{text}");
        }
    }

    #[test]
    fn date_format_tokens() {
        let fixture = Fixture::new();
        let cases = [
            (
                NEW_YEAR,
                "YYYY-MM-DD HH:mm:ss.SSS",
                "2024-01-01 00:00:00.000",
            ),
            (NEW_YEAR, "YYYY", "2024"),
            (NEW_YEAR, "YY", "24"),
            (AFTERNOON, "MM", "03"),
            (AFTERNOON, "M", "3"),
            (AFTERNOON, "DD", "05"),
            (AFTERNOON, "D", "5"),
            (AFTERNOON, "HH", "13"),
            (AFTERNOON, "H", "13"),
            (AFTERNOON, "hh", "01"),
            (AFTERNOON, "h", "1"),
            (AFTERNOON, "mm", "05"),
            (AFTERNOON, "m", "5"),
            (AFTERNOON, "ss", "09"),
            (AFTERNOON, "s", "9"),
            (AFTERNOON, "SSS", "007"),
            (AFTERNOON, "S", "0"),
            (AFTERNOON, "SS", "00"),
            (AFTERNOON, "SSSSSS", "007000"),
            (AFTERNOON, "SSSSSSSSS", "007000000"),
            (JUST_AFTER_MIDNIGHT, "S", "1"),
            (JUST_AFTER_MIDNIGHT, "SS", "12"),
            (AFTERNOON, "A", "PM"),
            (AFTERNOON, "a", "pm"),
            (JUST_AFTER_MIDNIGHT, "A", "AM"),
            (JUST_AFTER_MIDNIGHT, "a", "am"),
            (JUST_AFTER_MIDNIGHT, "hh", "12"),
            (JUST_AFTER_MIDNIGHT, "h", "12"),
            (JUST_AFTER_MIDNIGHT, "H", "0"),
            (NEW_YEAR + 12 * 3_600_000, "h A", "12 PM"),
            (AFTERNOON, "X", "1709643909"),
            (AFTERNOON, "x", "1709643909007"),
            (AFTERNOON, "Z", "+00:00"),
            (AFTERNOON, "ZZ", "+0000"),
            (
                AFTERNOON,
                "YYYY-MM-DDTHH:mm:ssZ",
                "2024-03-05T13:05:09+00:00",
            ),
            (AFTERNOON, "[Year] YYYY [at] h:mm a", "Year 2024 at 1:05 pm"),
            (AFTERNOON, "[[]YYYY[]]", "[2024]"),
            (AFTERNOON, "[]YYYY", "2024"),
            (AFTERNOON, "D/M/YYYY", "5/3/2024"),
            (AFTERNOON, "YYYYMMDD_HHmmss", "20240305_130509"),
            (AFTERNOON, "ünï €", "ünï €"),
        ];
        for (ms, format, expected) in cases {
            let text = format!("${{__from:date:{format}}}");
            assert_eq!(
                render(&text, &fixture.ctx(ms), Position::Raw),
                expected,
                "{format}"
            );
        }
    }

    #[test]
    fn dates_before_the_epoch() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(-1);
        assert_eq!(render("${__from}", &ctx, Position::Raw), "-1");
        assert_eq!(
            render("${__from:date}", &ctx, Position::Raw),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(render("${__from:date:seconds}", &ctx, Position::Raw), "-1");
        assert_eq!(render("${__from:date:X}", &ctx, Position::Raw), "-1");
        let ctx = fixture.ctx(-1000);
        assert_eq!(render("${__from:date:seconds}", &ctx, Position::Raw), "-1");
    }

    #[test]
    fn interval_uses_largest_whole_unit() {
        let cases = [
            (500, "500ms"),
            (1, "1ms"),
            (1_500, "1500ms"),
            (1_000, "1s"),
            (30_000, "30s"),
            (90_000, "90s"),
            (60_000, "1m"),
            (300_000, "5m"),
            (5_400_000, "90m"),
            (7_200_000, "2h"),
            (86_400_000, "1d"),
            (129_600_000, "36h"),
            (604_800_000, "7d"),
            (0, "0ms"),
            (-5, "-5ms"),
        ];
        for (ms, expected) in cases {
            assert_eq!(format_interval(ms), expected, "{ms}");
        }
        let fixture = Fixture::new();
        let mut ctx = fixture.ctx(NEW_YEAR);
        ctx.interval_ms = 7_200_000;
        assert_eq!(render("${__interval}", &ctx, Position::Raw), "2h");
        assert_eq!(render("${__interval_ms}", &ctx, Position::Raw), "7200000");
    }

    #[test]
    fn path_segment_encoding() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        let cases = [
            ("/items/${traversal}", "/items/..%2Fx"),
            ("/items/${amp}", "/items/a%26b%3Dc"),
            ("/items/${hash}", "/items/x%23frag"),
            ("/items/${question}", "/items/what%3Fx%3D1"),
            ("/items/${space}", "/items/a%20b"),
            ("/items/${slash}", "/items/a%2Fb"),
            ("/items/${city}", "/items/Z%C3%BCrich"),
            ("/items/${percent}", "/items/100%25"),
            ("/items/${plus}", "/items/a%2Bb"),
            ("/items/${unreserved}", "/items/AZaz09-._~"),
            ("/items/${quote}", "/items/say%20%22hi%22%5C%0A%09%01"),
            ("/items/${dot}", "/items/%2E"),
            ("/items/${dotdot}", "/items/%2E%2E"),
            ("/items/${dotdot}/next", "/items/%2E%2E/next"),
            ("${dotdot}", "%2E%2E"),
            ("/items/${dot}${dot}/x", "/items/%2E%2E/x"),
            ("/items/.${dot}/x", "/items/%2E%2E/x"),
            ("/items/${dot}x", "/items/.x"),
            ("/items/v${dotdot}", "/items/v.."),
            ("/items/${empty}/x", "/items//x"),
            ("/a/../b/${lat}", "/a/../b/48.14"),
            ("/a/./${lat}", "/a/./48.14"),
            ("/t/${__from:date}", "/t/2024-01-01T00%3A00%3A00.000Z"),
            ("/t/${__from:date:YYYY/MM}", "/t/2024%2F01"),
            ("/k/${__secure.apiKey}", "/k/s3cr3t%2F%2B%3D"),
            ("/${lat}?q=#x", "/48.14?q=#x"),
        ];
        for (text, expected) in cases {
            assert_eq!(
                render(text, &ctx, Position::PathSegment),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn raw_skips_encoding() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        let cases = [
            (
                "/items/${traversal:raw}",
                Position::PathSegment,
                "/items/../x",
            ),
            ("/items/${dotdot:raw}", Position::PathSegment, "/items/.."),
            (
                "/k/${__secure.apiKey:raw}",
                Position::PathSegment,
                "/k/s3cr3t/+=",
            ),
            (
                "{\"q\":\"${quote:raw}\"}",
                Position::JsonString,
                "{\"q\":\"say \"hi\"\\\n\t\u{1}\"}",
            ),
            ("${amp:raw}", Position::Query, "a&b=c"),
            ("${space:raw}", Position::Header, "a b"),
        ];
        for (text, pos, expected) in cases {
            assert_eq!(render(text, &ctx, pos), expected, "{text}");
        }
    }

    #[test]
    fn query_position_does_not_encode() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        for name in [
            "amp",
            "hash",
            "question",
            "space",
            "city",
            "percent",
            "plus",
            "traversal",
        ] {
            let text = format!("${{{name}}}");
            assert_eq!(
                render(&text, &ctx, Position::Query),
                fixture.params[name],
                "{name}"
            );
        }
        assert_eq!(
            render("${__from:date}", &ctx, Position::Query),
            "2024-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn json_string_escaping() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        let rendered = render(
            r#"{"q":"${quote}","c":"${city}"}"#,
            &ctx,
            Position::JsonString,
        );
        assert_eq!(rendered, r#"{"q":"say \"hi\"\\\n\t\u0001","c":"Zürich"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(parsed["q"], fixture.params["quote"].as_str());
        assert_eq!(parsed["c"], "Zürich");
        // Literal text is never escaped, only values.
        assert_eq!(
            render("\"${lat}\"\n", &ctx, Position::JsonString),
            "\"48.14\"\n"
        );
        // Every control character and special character round-trips through serde_json.
        let nasty: String = (0u32..0x80)
            .filter_map(char::from_u32)
            .chain(['\u{7f}', '\u{2028}', '\u{1F600}'])
            .collect();
        let mut escaped = String::new();
        escape_json_into(&mut escaped, &nasty);
        let back: String = serde_json::from_str(&format!("\"{escaped}\"")).unwrap();
        assert_eq!(back, nasty);
    }

    #[test]
    fn header_position_passes_values_but_rejects_cr_lf_nul() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        assert_eq!(
            render("Bearer ${__secure.apiKey}", &ctx, Position::Header),
            "Bearer s3cr3t/+="
        );
        assert_eq!(
            render("${amp} ${city}", &ctx, Position::Header),
            "a&b=c Zürich"
        );
        for (text, placeholder) in [
            ("x ${crlf}", "${crlf}"),
            ("${lf}", "${lf}"),
            ("${nul}", "${nul}"),
            ("${crlf:raw}", "${crlf:raw}"),
        ] {
            let error = render_error(text, &ctx, Position::Header);
            assert_eq!(
                error,
                RenderError::HeaderControlChar {
                    placeholder: placeholder.to_owned()
                }
            );
            assert_eq!(
                error.to_string(),
                format!("header value from `{placeholder}` contains CR, LF or NUL")
            );
        }
        let error = render_error("a\r\nb: ${lat}", &ctx, Position::Header);
        assert_eq!(
            error.to_string(),
            "header value from `literal text` contains CR, LF or NUL"
        );
        // Other positions accept those characters.
        assert_eq!(render("${lf}", &ctx, Position::Raw), "a\nb");
        assert_eq!(render("${lf}", &ctx, Position::Query), "a\nb");
    }

    #[test]
    fn secret_error_never_contains_values() {
        let mut fixture = Fixture::new();
        fixture
            .secrets
            .insert("password".to_owned(), "hunter2\r\n".to_owned());
        let ctx = fixture.ctx(NEW_YEAR);
        let error = render_error("${__secure.password}", &ctx, Position::Header);
        assert!(!error.to_string().contains("hunter2"));
        assert!(!format!("{error:?}").contains("hunter2"));
        assert!(!format!("{ctx:?}").contains("hunter2"));
        assert!(format!("{ctx:?}").contains("password"));
    }

    #[test]
    fn masked_secrets_render_as_stars() {
        let fixture = Fixture::new();
        let mut ctx = fixture.ctx(NEW_YEAR);
        ctx.mask_secrets = true;
        let cases = [
            ("/k/${__secure.apiKey}", Position::PathSegment, "/k/***"),
            ("${__secure.apiKey}", Position::Query, "***"),
            ("Bearer ${__secure.apiKey}", Position::Header, "Bearer ***"),
            (
                r#"{"k":"${__secure.token-v2}"}"#,
                Position::JsonString,
                r#"{"k":"***"}"#,
            ),
            ("${__secure.apiKey:raw}", Position::Raw, "***"),
            ("${lat}&k=${__secure.apiKey}", Position::Raw, "48.14&k=***"),
        ];
        for (text, pos, expected) in cases {
            assert_eq!(render(text, &ctx, pos), expected, "{text}");
        }
        let error = render_error("${__secure.missing}", &ctx, Position::Raw);
        assert_eq!(
            error,
            RenderError::MissingSecret {
                key: "missing".to_owned()
            }
        );
    }

    #[test]
    fn render_errors_and_messages() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        let error = render_error("/x/${station}", &ctx, Position::PathSegment);
        assert_eq!(
            error,
            RenderError::UnknownParam {
                name: "station".to_owned()
            }
        );
        assert_eq!(
            error.to_string(),
            "unknown param `station`: the query supplied no value for it"
        );

        let error = render_error("${__secure.nope}", &ctx, Position::Header);
        assert_eq!(
            error.to_string(),
            "secure key `nope` is not set in the datasource's secureJsonData"
        );

        let mut ctx = fixture.ctx(i64::MAX);
        ctx.to_ms = i64::MIN;
        let error = render_error("${__from:date}", &ctx, Position::Raw);
        assert_eq!(
            error,
            RenderError::TimeOutOfRange {
                placeholder: "${__from:date}".to_owned(),
                ms: i64::MAX
            }
        );
        assert_eq!(
            error.to_string(),
            format!(
                "time {} ms in `${{__from:date}}` is outside the representable range",
                i64::MAX
            )
        );
        assert!(matches!(
            render_error("${__to:date:YYYY}", &ctx, Position::Raw),
            RenderError::TimeOutOfRange { .. }
        ));
        // Plain epoch forms need no calendar and always render.
        assert_eq!(
            render("${__from} ${__to:date:seconds}", &ctx, Position::Raw),
            format!("{} {}", i64::MAX, i64::MIN.div_euclid(1000))
        );
    }

    #[test]
    fn parse_errors_and_messages() {
        let cases: [(&str, TemplateError, &str); 14] = [
            (
                "/a/${lat",
                TemplateError::Unclosed {
                    placeholder: "${lat".to_owned(),
                    offset: 3,
                },
                "unclosed placeholder `${lat` at byte 3: missing `}`",
            ),
            (
                "${a}${",
                TemplateError::Unclosed {
                    placeholder: "${".to_owned(),
                    offset: 4,
                },
                "unclosed placeholder `${` at byte 4: missing `}`",
            ),
            (
                "x${}",
                TemplateError::EmptyName {
                    placeholder: "${}".to_owned(),
                    offset: 1,
                },
                "empty name in placeholder `${}` at byte 1",
            ),
            (
                "${:raw}",
                TemplateError::EmptyName {
                    placeholder: "${:raw}".to_owned(),
                    offset: 0,
                },
                "empty name in placeholder `${:raw}` at byte 0",
            ),
            (
                "ab${__foo}",
                TemplateError::UnknownBuiltin {
                    placeholder: "${__foo}".to_owned(),
                    offset: 2,
                },
                "unknown built-in `${__foo}` at byte 2; the built-ins are __from, __to, \
                 __interval, __interval_ms, __maxDataPoints and __secure.KEY",
            ),
            (
                "${__}",
                TemplateError::UnknownBuiltin {
                    placeholder: "${__}".to_owned(),
                    offset: 0,
                },
                "unknown built-in `${__}` at byte 0; the built-ins are __from, __to, \
                 __interval, __interval_ms, __maxDataPoints and __secure.KEY",
            ),
            (
                "${1abc}",
                TemplateError::InvalidName {
                    placeholder: "${1abc}".to_owned(),
                    offset: 0,
                    reason: "a param name must match [A-Za-z_][A-Za-z0-9_]* and not start \
                             with `__`"
                        .to_owned(),
                },
                "invalid name in placeholder `${1abc}` at byte 0: a param name must match \
                 [A-Za-z_][A-Za-z0-9_]* and not start with `__`",
            ),
            (
                "${__secure.}",
                TemplateError::InvalidName {
                    placeholder: "${__secure.}".to_owned(),
                    offset: 0,
                    reason: "a secure key must be non-empty and match [A-Za-z0-9_.-]+".to_owned(),
                },
                "invalid name in placeholder `${__secure.}` at byte 0: a secure key must be \
                 non-empty and match [A-Za-z0-9_.-]+",
            ),
            (
                "${lat:json}",
                TemplateError::BadFormat {
                    placeholder: "${lat:json}".to_owned(),
                    offset: 0,
                    reason: "unknown format `json`; only `raw` is supported here".to_owned(),
                },
                "bad format in placeholder `${lat:json}` at byte 0: unknown format `json`; \
                 only `raw` is supported here",
            ),
            (
                "${__from:text}",
                TemplateError::BadFormat {
                    placeholder: "${__from:text}".to_owned(),
                    offset: 0,
                    reason: "unknown format `text`; use `date`, `date:iso`, `date:seconds`, \
                             `date:FORMAT` or `raw`"
                        .to_owned(),
                },
                "bad format in placeholder `${__from:text}` at byte 0: unknown format `text`; \
                 use `date`, `date:iso`, `date:seconds`, `date:FORMAT` or `raw`",
            ),
            (
                "${__to:date:}",
                TemplateError::BadFormat {
                    placeholder: "${__to:date:}".to_owned(),
                    offset: 0,
                    reason: "empty date format after `date:`".to_owned(),
                },
                "bad format in placeholder `${__to:date:}` at byte 0: empty date format after \
                 `date:`",
            ),
            (
                "${__from:date:[YYYY}",
                TemplateError::BadFormat {
                    placeholder: "${__from:date:[YYYY}".to_owned(),
                    offset: 0,
                    reason: "unclosed `[` in date format".to_owned(),
                },
                "bad format in placeholder `${__from:date:[YYYY}` at byte 0: unclosed `[` in \
                 date format",
            ),
            (
                "${__from:date:DD MMM}",
                TemplateError::BadFormat {
                    placeholder: "${__from:date:DD MMM}".to_owned(),
                    offset: 0,
                    reason: "unsupported date token `MMM` (put literal text in [brackets])"
                        .to_owned(),
                },
                "bad format in placeholder `${__from:date:DD MMM}` at byte 0: unsupported date \
                 token `MMM` (put literal text in [brackets])",
            ),
            (
                "${__interval:date}",
                TemplateError::BadFormat {
                    placeholder: "${__interval:date}".to_owned(),
                    offset: 0,
                    reason: "unknown format `date`; only `raw` is supported here".to_owned(),
                },
                "bad format in placeholder `${__interval:date}` at byte 0: unknown format \
                 `date`; only `raw` is supported here",
            ),
        ];
        for (text, expected, message) in cases {
            let error = parse_error(text);
            assert_eq!(error, expected, "{text}");
            assert_eq!(error.to_string(), message, "{text}");
        }
    }

    #[test]
    fn more_invalid_names() {
        for text in [
            "${a-b}",
            "${ lat}",
            "${lat }",
            "${a.b}",
            "${é}",
            "${a${b}}",
            "${__secure.a b}",
            "${__secure.a/b}",
        ] {
            assert!(
                matches!(parse_error(text), TemplateError::InvalidName { .. }),
                "{text}"
            );
        }
        for text in [
            "${__FROM}",
            "${__interval_s}",
            "${__secureKey}",
            "${__maxdatapoints}",
        ] {
            assert!(
                matches!(parse_error(text), TemplateError::UnknownBuiltin { .. }),
                "{text}"
            );
        }
    }

    #[test]
    fn unsupported_date_tokens_are_errors() {
        for (format, token) in [
            ("MMM", "MMM"),
            ("MMMM", "MMMM"),
            ("Do", "Do"),
            ("Mo", "Mo"),
            ("DDD", "DDD"),
            ("dddd", "dddd"),
            ("d", "d"),
            ("Y", "Y"),
            ("YYY", "YYY"),
            ("YYYYY", "YYYYY"),
            ("HHH", "HHH"),
            ("SSSSSSSSSS", "SSSSSSSSSS"),
            ("AA", "AA"),
            ("XX", "XX"),
            ("ZZZ", "ZZZ"),
            ("z", "z"),
            ("Q", "Q"),
            ("w", "w"),
            ("W", "W"),
            ("E", "E"),
            ("k", "k"),
            ("L", "L"),
            ("GGGG", "GGGG"),
            ("YYYY-MM-DD [day] dddd", "dddd"),
        ] {
            let text = format!("${{__from:date:{format}}}");
            match parse_error(&text) {
                TemplateError::BadFormat { reason, .. } => assert_eq!(
                    reason,
                    format!("unsupported date token `{token}` (put literal text in [brackets])"),
                    "{format}"
                ),
                other => panic!("{format}: {other:?}"),
            }
        }
        // Bracketed text and non-token letters are fine.
        assert!(Template::parse("${__from:date:[MMM Do dddd] T}").is_ok());
        assert!(Template::parse("${__from:date:DDo}").is_ok());
    }

    #[test]
    fn offsets_are_bytes_of_the_dollar() {
        match parse_error("ü€/${bad-name}") {
            TemplateError::InvalidName { offset, .. } => assert_eq!(offset, 6),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unclosed_excerpt_is_shortened() {
        let text = format!("${{{}", "a".repeat(100));
        match parse_error(&text) {
            TemplateError::Unclosed {
                placeholder,
                offset,
            } => {
                assert_eq!(offset, 0);
                assert_eq!(placeholder, format!("${{{}…", "a".repeat(38)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dollar_without_brace_is_literal() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        let cases = [
            ("$", "$"),
            ("$$", "$$"),
            ("price: $5", "price: $5"),
            ("$lat", "$lat"),
            ("$__from", "$__from"),
            ("a}b{", "a}b{"),
            ("$$${lat}$", "$$48.14$"),
            ("{${lat}}", "{48.14}"),
        ];
        for (text, expected) in cases {
            let template = Template::parse(text).unwrap();
            assert_eq!(
                template.render(&ctx, Position::PathSegment).unwrap(),
                expected
            );
            assert_eq!(template.source(), text);
        }
        assert!(Template::parse("price: $5").unwrap().is_literal());
        assert!(!Template::parse("$${lat}").unwrap().is_literal());
    }

    #[test]
    fn literal_templates() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        for text in ["", "/v1/items", "a b/c?d#e"] {
            let template = Template::parse(text).unwrap();
            assert!(template.is_literal());
            assert_eq!(template.params().count(), 0);
            assert_eq!(template.secrets().count(), 0);
            for pos in [
                Position::PathSegment,
                Position::Query,
                Position::JsonString,
                Position::Header,
                Position::Raw,
            ] {
                assert_eq!(template.render(&ctx, pos).unwrap(), text);
            }
        }
        assert!(!Template::parse("${__from}").unwrap().is_literal());
    }

    #[test]
    fn params_and_secrets_are_listed_once_in_order() {
        let template = Template::parse(
            "/v1/${station}/${lat}/${station:raw}?k=${__secure.apiKey}&from=${__from:date}\
             &b=${__secure.other.key}&c=${__secure.apiKey:raw}&i=${__interval}&_=${_x1}",
        )
        .unwrap();
        assert_eq!(
            template.params().collect::<Vec<_>>(),
            ["station", "lat", "_x1"]
        );
        assert_eq!(
            template.secrets().collect::<Vec<_>>(),
            ["apiKey", "other.key"]
        );
        let builtins_only =
            Template::parse("${__from}${__to}${__interval_ms}${__maxDataPoints}").unwrap();
        assert_eq!(builtins_only.params().count(), 0);
        assert_eq!(builtins_only.secrets().count(), 0);
    }

    #[test]
    fn colons_inside_date_formats_belong_to_the_format() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(AFTERNOON);
        assert_eq!(
            render("${__from:date:HH:mm:ss}", &ctx, Position::Raw),
            "13:05:09"
        );
        assert_eq!(
            render("${__from:date:YYYY-MM-DD HH:mm}", &ctx, Position::Query),
            "2024-03-05 13:05"
        );
    }

    #[test]
    fn render_context_debug_lists_keys_only() {
        let fixture = Fixture::new();
        let ctx = fixture.ctx(NEW_YEAR);
        let shown = format!("{ctx:?}");
        assert!(shown.contains("apiKey") && shown.contains("token-v2"));
        assert!(!shown.contains("s3cr3t"));
    }
}
