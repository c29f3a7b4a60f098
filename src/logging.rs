//! hclog-compatible JSON logging on stderr (protocol.md §1.7, libraries.md §6.5).
//!
//! Grafana starts the plugin through go-plugin, which reads the child's stderr line by line.
//! A line that parses as an hclog JSON object is re-logged into Grafana's own logger at its
//! level; anything else is logged verbatim at debug. This module therefore writes exactly one
//! JSON object per line:
//!
//! ```text
//! {"@level":"info","@message":"query done","@module":"restbridge::query","@timestamp":"2026-11-23T02:03:04.000123Z","rows":12}
//! ```
//!
//! * `@level` is one of `trace`, `debug`, `info`, `warn`, `error` (never `warning`).
//! * `@message`, `@level` and `@timestamp` are always JSON strings: go-plugin does unchecked type
//!   assertions on them, and a non-string there panics Grafana's log reader.
//! * `@timestamp` is RFC 3339 UTC with exactly six fractional digits, the hclog layout
//!   `2006-01-02T15:04:05.000000Z07:00`; any other shape makes go-plugin log the line raw.
//! * `@module` is the event's tracing target.
//! * Every event field is its own key (strings, numbers and bools keep their JSON type; `Debug`
//!   values become strings). Fields of the enclosing spans are included too, outermost first, and
//!   an event field wins over a span field of the same name. A field whose name starts with `@`
//!   is written as `_@name`, so no field can replace or shadow the `@` keys.
//!
//! [`install_panic_hook`] makes panics visible at error level in Grafana: go-plugin maps a line
//! starting with `panic: ` to error, while Rust's default `thread '…' panicked at` lands at debug.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::fmt;
use std::io::Write as _;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// Environment variable holding an `EnvFilter` directive string (e.g. `info,restbridge=debug`)
/// that overrides the default level given to [`init`].
const FILTER_ENV: &str = "RESTBRIDGE_LOG";

/// Filter used when both the environment variable and the default level fail to parse.
const FALLBACK_FILTER: &str = "info";

/// Keys written by the formatter itself; fields can never produce them.
const LEVEL_KEY: &str = "@level";
const MESSAGE_KEY: &str = "@message";
const MODULE_KEY: &str = "@module";
const TIMESTAMP_KEY: &str = "@timestamp";

/// Installs the process-wide tracing subscriber that writes hclog JSON lines to stderr.
///
/// The filter comes from the `RESTBRIDGE_LOG` environment variable (tracing `EnvFilter`
/// syntax, e.g. `warn,restbridge=debug`) when it is set, non-empty and valid; otherwise from
/// `default_level` (same syntax, usually just a level such as `"info"`); if that does not parse
/// either, `info` is used. An invalid `RESTBRIDGE_LOG` is reported as a `warn` line once the
/// subscriber is installed.
///
/// Never panics: if a global subscriber is already installed (a second call, or a test harness
/// that set one), the call does nothing.
pub fn init(default_level: &str) {
    let env_value = std::env::var(FILTER_ENV).ok();
    let (filter, env_error) = build_filter(env_value.as_deref(), default_level);
    // `try_init` fails only when a global subscriber already exists; keeping that one is fine.
    if subscriber(filter, std::io::stderr).try_init().is_ok() {
        if let Some(error) = env_error {
            tracing::warn!(
                variable = FILTER_ENV,
                error = %error,
                "ignoring invalid log filter from the environment"
            );
        }
    }
}

/// Formats one hclog JSON log line (without the trailing newline).
///
/// * `level`: mapped to the lower-case hclog names `trace`, `debug`, `info`, `warn`, `error`.
/// * `target`: written as `@module`.
/// * `message`: written as `@message` (a JSON string; embedded newlines are escaped by the JSON
///   encoder, so the result is always a single line).
/// * `fields`: written after the `@` keys in the given order, values keeping their JSON type.
///   When a name occurs more than once, the last value wins (at the position of the first).
///   A name starting with `@` is written as `_` + name, so fields cannot override `@level`,
///   `@message`, `@timestamp` or `@module`.
/// * `now`: written as `@timestamp`, RFC 3339 UTC with exactly six fractional digits
///   (microseconds, truncated), e.g. `2026-11-23T02:03:04.000123Z`. A time outside the range
///   jiff can represent (years -9999..=9999) is written as the Unix epoch.
///
/// The key order is `@level`, `@message`, `@module`, `@timestamp`, then the fields. Never fails.
pub fn format_line(
    level: &Level,
    target: &str,
    message: &str,
    fields: &[(String, Value)],
    now: SystemTime,
) -> String {
    let mut out = String::with_capacity(96 + message.len() + 32 * fields.len());
    out.push('{');
    push_entry(&mut out, LEVEL_KEY, &Value::from(level_name(level)));
    out.push(',');
    push_entry(&mut out, MESSAGE_KEY, &Value::from(message));
    out.push(',');
    push_entry(&mut out, MODULE_KEY, &Value::from(target));
    out.push(',');
    push_entry(&mut out, TIMESTAMP_KEY, &Value::from(format_timestamp(now)));

    let mut merged: Vec<(String, &Value)> = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let key = safe_key(name);
        match merged.iter_mut().find(|(existing, _)| *existing == key) {
            Some(slot) => slot.1 = value,
            None => merged.push((key, value)),
        }
    }
    for (key, value) in merged {
        out.push(',');
        push_entry(&mut out, &key, value);
    }
    out.push('}');
    out
}

/// Installs a panic hook that reports panics in a form Grafana shows at error level.
///
/// On every panic it writes two lines to stderr:
/// 1. plain text `panic: <message> at <file>:<line>` (CR and LF in the message are written as
///    `\r` and `\n` so this stays one line; `<unknown location>` when the location is unknown),
///    which go-plugin logs at error level;
/// 2. an hclog JSON line at level `error` with the same message and the fields `location`,
///    `thread` and, when `RUST_BACKTRACE` enables capture, `backtrace`.
///
/// The hook replaces the default one (which would only add a debug-level duplicate) and does
/// nothing else: it neither aborts nor exits, so unwinding, `catch_unwind` and task isolation
/// behave as the caller configured them. Write errors on stderr are ignored.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = payload_message(info.payload());
        let location = info
            .location()
            .map(|location| format!("{}:{}", location.file(), location.line()));
        let thread = std::thread::current();
        let backtrace = Backtrace::capture();
        let backtrace = match backtrace.status() {
            BacktraceStatus::Captured => Some(backtrace.to_string()),
            _ => None,
        };
        let text = panic_report(
            &message,
            location.as_deref(),
            thread.name().unwrap_or("<unnamed>"),
            backtrace.as_deref(),
            SystemTime::now(),
        );
        let mut stderr = std::io::stderr().lock();
        // Nothing sensible can be done when stderr is gone; the panic proceeds regardless.
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }));
}

/// Builds the filter: a valid, non-empty `env_value` wins, else `default_level`, else `info`.
/// Also returns the parse error of a rejected `env_value`, for reporting once logging works.
fn build_filter(env_value: Option<&str>, default_level: &str) -> (EnvFilter, Option<String>) {
    let mut env_error = None;
    if let Some(directives) = env_value.filter(|value| !value.trim().is_empty()) {
        match EnvFilter::try_new(directives) {
            Ok(filter) => return (filter, None),
            Err(error) => env_error = Some(error.to_string()),
        }
    }
    let filter =
        EnvFilter::try_new(default_level).unwrap_or_else(|_| EnvFilter::new(FALLBACK_FILTER));
    (filter, env_error)
}

/// The subscriber used by [`init`], with the writer left open so tests can capture output.
fn subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_writer(writer)
        .fmt_fields(HclogFields)
        .event_format(HclogFormat)
        .with_env_filter(filter)
        .finish()
}

/// Lower-case hclog level name.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// RFC 3339 UTC with exactly six fractional digits.
fn format_timestamp(now: SystemTime) -> String {
    let timestamp = jiff::Timestamp::try_from(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{timestamp:.6}")
}

/// Field names starting with `@` are moved out of the formatter's namespace.
fn safe_key(name: &str) -> String {
    if name.starts_with('@') {
        format!("_{name}")
    } else {
        name.to_owned()
    }
}

/// Appends `"key":value` as JSON.
fn push_entry(out: &mut String, key: &str, value: &Value) {
    // `Value`'s Display is its compact JSON encoding; it cannot fail for a string.
    out.push_str(&Value::from(key).to_string());
    out.push(':');
    out.push_str(&value.to_string());
}

/// The text of a panic payload (`&str` or `String`; anything else gets a placeholder).
fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// Both panic lines, each terminated by `\n`.
fn panic_report(
    message: &str,
    location: Option<&str>,
    thread: &str,
    backtrace: Option<&str>,
    now: SystemTime,
) -> String {
    let one_line = message.replace('\r', "\\r").replace('\n', "\\n");
    let shown_location = location.unwrap_or("<unknown location>");
    let mut fields = vec![
        ("location".to_owned(), Value::from(shown_location)),
        ("thread".to_owned(), Value::from(thread)),
    ];
    if let Some(backtrace) = backtrace {
        fields.push(("backtrace".to_owned(), Value::from(backtrace)));
    }
    let json = format_line(&Level::ERROR, "panic", message, &fields, now);
    format!("panic: {one_line} at {shown_location}\n{json}\n")
}

/// Collects tracing fields as JSON values, keeping the `message` field apart.
#[derive(Debug, Default)]
struct FieldCollector {
    message: Option<String>,
    fields: Vec<(String, Value)>,
}

impl FieldCollector {
    fn put(&mut self, name: &str, value: Value) {
        if name == "message" {
            self.message = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
            return;
        }
        upsert(&mut self.fields, name.to_owned(), value);
    }

    /// Span fields are stored as a JSON object; a span's `message` is an ordinary field there.
    fn into_object(self) -> Map<String, Value> {
        let mut object: Map<String, Value> = self.fields.into_iter().collect();
        if let Some(message) = self.message {
            object.insert("message".to_owned(), Value::from(message));
        }
        object
    }
}

impl Visit for FieldCollector {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let json = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::from(value.to_string()));
        self.put(field.name(), json);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let json = match i64::try_from(value) {
            Ok(small) => Value::from(small),
            Err(_) => Value::from(value.to_string()),
        };
        self.put(field.name(), json);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let json = match u64::try_from(value) {
            Ok(small) => Value::from(small),
            Err(_) => Value::from(value.to_string()),
        };
        self.put(field.name(), json);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.put(field.name(), Value::from(text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field.name(), Value::from(format!("{value:?}")));
    }
}

/// Formats span fields as a JSON object, so that events can merge them back as typed values.
#[derive(Debug, Clone, Copy, Default)]
struct HclogFields;

impl<'writer> FormatFields<'writer> for HclogFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut collector = FieldCollector::default();
        fields.record(&mut collector);
        write!(writer, "{}", Value::Object(collector.into_object()))
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut object = parse_object(&current.fields);
        let mut collector = FieldCollector::default();
        fields.record(&mut collector);
        object.extend(collector.into_object());
        current.fields = Value::Object(object).to_string();
        Ok(())
    }
}

/// Sets `name` to `value`, replacing an earlier value in place or appending.
fn upsert(fields: &mut Vec<(String, Value)>, name: String, value: Value) {
    match fields.iter_mut().find(|(existing, _)| *existing == name) {
        Some(slot) => slot.1 = value,
        None => fields.push((name, value)),
    }
}

/// Parses stored span fields; anything that is not a JSON object yields an empty map.
fn parse_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    }
}

/// The event formatter: one hclog JSON object per line.
#[derive(Debug, Clone, Copy, Default)]
struct HclogFormat;

impl<S> FormatEvent<S, HclogFields> for HclogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, HclogFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut collector = FieldCollector::default();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(stored) = extensions.get::<FormattedFields<HclogFields>>() {
                    for (name, value) in parse_object(&stored.fields) {
                        // Bypasses `put`: a span's `message` stays a plain field.
                        upsert(&mut collector.fields, name, value);
                    }
                }
            }
        }
        event.record(&mut collector);
        let metadata = event.metadata();
        let line = format_line(
            metadata.level(),
            metadata.target(),
            collector.message.as_deref().unwrap_or(""),
            &collector.fields,
            SystemTime::now(),
        );
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tracing_subscriber::filter::LevelFilter;

    const TIMESTAMP_PATTERN: &str = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$";

    fn at(seconds: u64, nanos: u32) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos)
    }

    fn parse(line: &str) -> Map<String, Value> {
        match serde_json::from_str(line).expect("line is valid JSON") {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    /// 2026-11-23T02:03:04Z as Unix seconds.
    const T0: u64 = 1_795_399_384;

    #[test]
    fn timestamp_has_exactly_six_fraction_digits() {
        let pattern = regex::Regex::new(TIMESTAMP_PATTERN).unwrap();
        let cases = [
            (at(T0, 123_000), "2026-11-23T02:03:04.000123Z"),
            (at(T0, 0), "2026-11-23T02:03:04.000000Z"),
            (at(T0, 123_456_789), "2026-11-23T02:03:04.123456Z"),
            (at(T0, 999_999_999), "2026-11-23T02:03:04.999999Z"),
            (at(0, 0), "1970-01-01T00:00:00.000000Z"),
        ];
        for (time, expected) in cases {
            let stamp = format_timestamp(time);
            assert_eq!(stamp, expected);
            assert!(pattern.is_match(&stamp), "{stamp}");
            let line = format_line(&Level::INFO, "t", "m", &[], time);
            assert_eq!(parse(&line)["@timestamp"], Value::from(expected));
        }
    }

    #[test]
    fn timestamp_of_now_matches_hclog_layout() {
        let pattern = regex::Regex::new(TIMESTAMP_PATTERN).unwrap();
        let stamp = format_timestamp(SystemTime::now());
        assert!(pattern.is_match(&stamp), "{stamp}");
    }

    #[test]
    fn timestamp_before_epoch_is_still_valid() {
        let pattern = regex::Regex::new(TIMESTAMP_PATTERN).unwrap();
        let time = SystemTime::UNIX_EPOCH - Duration::from_micros(1);
        let stamp = format_timestamp(time);
        assert_eq!(stamp, "1969-12-31T23:59:59.999999Z");
        assert!(pattern.is_match(&stamp));
    }

    #[test]
    fn every_level_maps_to_its_hclog_name() {
        let cases = [
            (Level::TRACE, "trace"),
            (Level::DEBUG, "debug"),
            (Level::INFO, "info"),
            (Level::WARN, "warn"),
            (Level::ERROR, "error"),
        ];
        for (level, name) in cases {
            let line = format_line(&level, "t", "m", &[], at(T0, 0));
            assert_eq!(parse(&line)["@level"], Value::from(name));
            assert!(!line.contains("warning"));
        }
    }

    #[test]
    fn line_has_keys_in_fixed_order() {
        let fields = vec![("rows".to_owned(), Value::from(12))];
        let line = format_line(
            &Level::INFO,
            "restbridge::query",
            "query done",
            &fields,
            at(T0, 123_000),
        );
        assert_eq!(
            line,
            r#"{"@level":"info","@message":"query done","@module":"restbridge::query","@timestamp":"2026-11-23T02:03:04.000123Z","rows":12}"#
        );
    }

    #[test]
    fn fields_are_flattened_with_their_json_types() {
        let fields = vec![
            ("text".to_owned(), Value::from("abc")),
            ("count".to_owned(), Value::from(-3)),
            ("ratio".to_owned(), Value::from(0.5)),
            ("ok".to_owned(), Value::from(true)),
            ("nested".to_owned(), serde_json::json!({"a": [1, 2]})),
        ];
        let object = parse(&format_line(&Level::DEBUG, "t", "m", &fields, at(T0, 0)));
        assert_eq!(object["text"], Value::from("abc"));
        assert_eq!(object["count"], Value::from(-3));
        assert_eq!(object["ratio"], Value::from(0.5));
        assert_eq!(object["ok"], Value::from(true));
        assert_eq!(object["nested"], serde_json::json!({"a": [1, 2]}));
        assert_eq!(object.len(), 4 + fields.len());
    }

    #[test]
    fn fields_cannot_override_reserved_keys() {
        let fields = vec![
            ("@level".to_owned(), Value::from(5)),
            ("@message".to_owned(), Value::from(false)),
            ("@timestamp".to_owned(), Value::from(1)),
            ("@module".to_owned(), Value::Null),
            ("@caller".to_owned(), Value::from("x.rs:1")),
        ];
        let line = format_line(&Level::WARN, "mod", "hello", &fields, at(T0, 0));
        let object = parse(&line);
        assert_eq!(object["@level"], Value::from("warn"));
        assert_eq!(object["@message"], Value::from("hello"));
        assert_eq!(
            object["@timestamp"],
            Value::from("2026-11-23T02:03:04.000000Z")
        );
        assert_eq!(object["@module"], Value::from("mod"));
        assert!(!object.contains_key("@caller"));
        assert_eq!(object["_@level"], Value::from(5));
        assert_eq!(object["_@message"], Value::from(false));
        assert_eq!(object["_@timestamp"], Value::from(1));
        assert_eq!(object["_@module"], Value::Null);
        assert_eq!(object["_@caller"], Value::from("x.rs:1"));
        // Exactly one occurrence of each reserved key in the raw text.
        assert_eq!(line.matches("\"@level\"").count(), 1);
        assert_eq!(line.matches("\"@message\"").count(), 1);
    }

    #[test]
    fn duplicate_field_names_keep_the_last_value() {
        let fields = vec![
            ("a".to_owned(), Value::from(1)),
            ("b".to_owned(), Value::from(2)),
            ("a".to_owned(), Value::from(3)),
        ];
        let line = format_line(&Level::INFO, "t", "m", &fields, at(T0, 0));
        assert!(line.ends_with(r#","a":3,"b":2}"#), "{line}");
    }

    #[test]
    fn output_is_one_line_even_with_newlines_in_values() {
        let fields = vec![("detail".to_owned(), Value::from("a\nb\r\nc"))];
        let line = format_line(
            &Level::ERROR,
            "t\nx",
            "first\nsecond\u{2028}third",
            &fields,
            at(T0, 0),
        );
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        let object = parse(&line);
        assert_eq!(
            object["@message"],
            Value::from("first\nsecond\u{2028}third")
        );
        assert_eq!(object["detail"], Value::from("a\nb\r\nc"));
    }

    #[test]
    fn control_and_quote_characters_stay_valid_json() {
        let message = "quote \" backslash \\ esc \u{1b}[31m nul \u{0} tab \t";
        let line = format_line(&Level::INFO, "t", message, &[], at(T0, 0));
        assert!(!line.contains('\u{1b}'));
        assert_eq!(parse(&line)["@message"], Value::from(message));
    }

    #[test]
    fn reserved_keys_are_always_strings() {
        let line = format_line(&Level::INFO, "", "", &[], at(T0, 0));
        let object = parse(&line);
        for key in ["@level", "@message", "@timestamp", "@module"] {
            assert!(object[key].is_string(), "{key} in {line}");
        }
    }

    #[test]
    fn filter_prefers_valid_environment_value() {
        let (filter, error) = build_filter(Some("debug"), "error");
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::DEBUG));
        assert_eq!(error, None);
    }

    #[test]
    fn filter_falls_back_to_default_level() {
        let (filter, error) = build_filter(None, "warn");
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::WARN));
        assert_eq!(error, None);

        let (filter, error) = build_filter(Some("  "), "error");
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::ERROR));
        assert_eq!(error, None);
    }

    #[test]
    fn invalid_environment_value_is_reported_and_ignored() {
        let (filter, error) = build_filter(Some("restbridge=notalevel"), "info");
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::INFO));
        assert!(error.is_some());
    }

    #[test]
    fn invalid_default_falls_back_to_info() {
        let (filter, _) = build_filter(None, "x=nonsense");
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::INFO));
    }

    #[test]
    fn init_twice_does_not_panic() {
        init("info");
        init("debug");
    }

    /// A `MakeWriter` that collects everything written into a shared buffer.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<Map<String, Value>> {
            let bytes = self.0.lock().unwrap().clone();
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.is_empty() || text.ends_with('\n'));
            text.lines().map(parse).collect()
        }
    }

    fn capture_events(filter: &str, emit: impl FnOnce()) -> Vec<Map<String, Value>> {
        let capture = Capture::default();
        let subscriber = subscriber(EnvFilter::new(filter), capture.clone());
        tracing::subscriber::with_default(subscriber, emit);
        capture.lines()
    }

    #[derive(Debug)]
    struct Shape {
        #[allow(dead_code)]
        sides: u8,
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("request failed")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn formatter_writes_typed_fields_and_message() {
        let pattern = regex::Regex::new(TIMESTAMP_PATTERN).unwrap();
        let lines = capture_events("trace", || {
            let shape = Shape { sides: 3 };
            let error = Outer(std::io::Error::other("connection reset"));
            tracing::info!(
                target: "restbridge::test",
                text = "abc",
                count = 42_u64,
                delta = -7_i64,
                ratio = 0.25,
                nan = f64::NAN,
                flag = true,
                big = u128::MAX,
                ?shape,
                shown = %"display",
                error = &error as &(dyn std::error::Error + 'static),
                "hello {}",
                "world"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["@level"], Value::from("info"));
        assert_eq!(line["@message"], Value::from("hello world"));
        assert_eq!(line["@module"], Value::from("restbridge::test"));
        assert!(pattern.is_match(line["@timestamp"].as_str().unwrap()));
        assert_eq!(line["text"], Value::from("abc"));
        assert_eq!(line["count"], Value::from(42));
        assert_eq!(line["delta"], Value::from(-7));
        assert_eq!(line["ratio"], Value::from(0.25));
        assert_eq!(line["nan"], Value::from("NaN"));
        assert_eq!(line["flag"], Value::from(true));
        assert_eq!(line["big"], Value::from(u128::MAX.to_string()));
        assert_eq!(line["shape"], Value::from("Shape { sides: 3 }"));
        assert_eq!(line["shown"], Value::from("display"));
        assert_eq!(
            line["error"],
            Value::from("request failed: connection reset")
        );
        assert!(!line.contains_key("message"));
    }

    #[test]
    fn formatter_maps_every_level_and_respects_filter() {
        let lines = capture_events("debug", || {
            tracing::trace!("t");
            tracing::debug!("d");
            tracing::info!("i");
            tracing::warn!("w");
            tracing::error!("e");
        });
        let levels: Vec<&str> = lines
            .iter()
            .map(|l| l["@level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["debug", "info", "warn", "error"]);
        let messages: Vec<&str> = lines
            .iter()
            .map(|l| l["@message"].as_str().unwrap())
            .collect();
        assert_eq!(messages, ["d", "i", "w", "e"]);
    }

    #[test]
    fn formatter_event_fields_cannot_override_reserved_keys() {
        let lines = capture_events("info", || {
            tracing::info!(
                "@level" = 3,
                "@message" = true,
                "@timestamp" = "yesterday",
                "real message"
            );
        });
        let line = &lines[0];
        assert_eq!(line["@level"], Value::from("info"));
        assert_eq!(line["@message"], Value::from("real message"));
        assert!(line["@timestamp"].is_string());
        assert_ne!(line["@timestamp"], Value::from("yesterday"));
        assert_eq!(line["_@level"], Value::from(3));
        assert_eq!(line["_@message"], Value::from(true));
        assert_eq!(line["_@timestamp"], Value::from("yesterday"));
    }

    #[test]
    fn formatter_message_with_newline_stays_one_line() {
        let capture = Capture::default();
        let subscriber = subscriber(EnvFilter::new("info"), capture.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(detail = "x\ny", "line one\nline two");
        });
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        let line = parse(text.trim_end_matches('\n'));
        assert_eq!(line["@message"], Value::from("line one\nline two"));
        assert_eq!(line["detail"], Value::from("x\ny"));
    }

    #[test]
    fn formatter_event_without_message_has_empty_message() {
        let lines = capture_events("info", || tracing::info!(only = 1));
        assert_eq!(lines[0]["@message"], Value::from(""));
        assert_eq!(lines[0]["only"], Value::from(1));
    }

    #[test]
    fn formatter_includes_span_fields_outermost_first() {
        let lines = capture_events("info", || {
            let outer = tracing::info_span!("query", ref_id = "A", rule = "r1", attempt = 1);
            let _outer = outer.enter();
            let inner = tracing::info_span!("page", page = 2, attempt = tracing::field::Empty);
            inner.record("attempt", 2);
            let _inner = inner.enter();
            tracing::info!(rule = "event wins", "inside");
        });
        let line = &lines[0];
        assert_eq!(line["ref_id"], Value::from("A"));
        assert_eq!(line["page"], Value::from(2));
        assert_eq!(line["attempt"], Value::from(2));
        assert_eq!(line["rule"], Value::from("event wins"));
        assert_eq!(line["@message"], Value::from("inside"));
    }

    #[test]
    fn span_fields_cannot_override_reserved_keys() {
        let lines = capture_events("info", || {
            let span = tracing::info_span!("s", "@level" = 1, message = "span msg");
            let _entered = span.enter();
            tracing::info!("event msg");
        });
        let line = &lines[0];
        assert_eq!(line["@level"], Value::from("info"));
        assert_eq!(line["@message"], Value::from("event msg"));
        assert_eq!(line["_@level"], Value::from(1));
        assert_eq!(line["message"], Value::from("span msg"));
    }

    #[test]
    fn span_field_store_survives_garbage() {
        assert!(parse_object("not json").is_empty());
        assert!(parse_object("[1]").is_empty());
        assert_eq!(parse_object(r#"{"a":1}"#)["a"], Value::from(1));
    }

    #[test]
    fn panic_report_has_plain_line_then_hclog_error_line() {
        let report = panic_report(
            "index out of bounds",
            Some("src/query.rs:42"),
            "tokio-runtime-worker",
            None,
            at(T0, 5_000),
        );
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(report.ends_with('\n'));
        assert_eq!(lines[0], "panic: index out of bounds at src/query.rs:42");
        let json = parse(lines[1]);
        assert_eq!(json["@level"], Value::from("error"));
        assert_eq!(json["@message"], Value::from("index out of bounds"));
        assert_eq!(json["@module"], Value::from("panic"));
        assert_eq!(
            json["@timestamp"],
            Value::from("2026-11-23T02:03:04.000005Z")
        );
        assert_eq!(json["location"], Value::from("src/query.rs:42"));
        assert_eq!(json["thread"], Value::from("tokio-runtime-worker"));
        assert!(!json.contains_key("backtrace"));
    }

    #[test]
    fn panic_report_keeps_multiline_message_on_one_plain_line() {
        let report = panic_report("a\nb\r\nc", None, "main", Some("0: f\n1: g"), at(T0, 0));
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], r"panic: a\nb\r\nc at <unknown location>");
        assert!(lines[0].starts_with("panic: "));
        let json = parse(lines[1]);
        assert_eq!(json["@message"], Value::from("a\nb\r\nc"));
        assert_eq!(json["backtrace"], Value::from("0: f\n1: g"));
        assert_eq!(json["location"], Value::from("<unknown location>"));
    }

    #[test]
    fn payload_message_reads_str_and_string() {
        let static_payload: Box<dyn std::any::Any + Send> = Box::new("static text");
        assert_eq!(payload_message(static_payload.as_ref()), "static text");
        let owned_payload: Box<dyn std::any::Any + Send> = Box::new(String::from("owned"));
        assert_eq!(payload_message(owned_payload.as_ref()), "owned");
        let other_payload: Box<dyn std::any::Any + Send> = Box::new(7_u32);
        assert_eq!(payload_message(other_payload.as_ref()), "Box<dyn Any>");
    }

    /// Environment variable that turns [`child_process`] from a no-op into the real scenario.
    const CHILD_ENV: &str = "RESTBRIDGE_LOGGING_TEST_CHILD";

    /// Runs this test binary again, executing only [`child_process`] with `scenario`.
    fn run_child(scenario: &str, filter: Option<&str>) -> std::process::Output {
        let path = module_path!();
        let module = path.split_once("::").map_or(path, |(_, rest)| rest);
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", &format!("{module}::child_process")])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, scenario)
            .env_remove("RUST_BACKTRACE");
        match filter {
            Some(filter) => command.env(FILTER_ENV, filter),
            None => command.env_remove(FILTER_ENV),
        };
        command.output().unwrap()
    }

    /// Not a test of its own: the body of the subprocess tests below.
    #[test]
    #[ignore = "run as a subprocess by the end-to-end logging tests"]
    fn child_process() {
        match std::env::var(CHILD_ENV).as_deref() {
            Ok("log") => {
                init("info");
                tracing::debug!(target: "child", "hidden unless RESTBRIDGE_LOG allows it");
                tracing::info!(target: "child", n = 1, "visible\nline");
            }
            Ok("panic") => {
                install_panic_hook();
                let result = std::panic::catch_unwind(|| panic!("boom\nagain"));
                assert!(result.is_err());
                // The hook must not abort: the process is still here.
                eprintln!("still alive");
            }
            _ => {}
        }
    }

    fn stderr_lines(output: &std::process::Output) -> Vec<String> {
        String::from_utf8(output.stderr.clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn init_writes_hclog_json_to_stderr() {
        let output = run_child("log", None);
        assert!(output.status.success(), "{output:?}");
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = parse(&lines[0]);
        assert_eq!(line["@level"], Value::from("info"));
        assert_eq!(line["@message"], Value::from("visible\nline"));
        assert_eq!(line["@module"], Value::from("child"));
        assert_eq!(line["n"], Value::from(1));
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(!stdout.contains("visible"), "logs must not go to stdout");
    }

    #[test]
    fn init_honours_filter_from_environment() {
        let output = run_child("log", Some("debug"));
        assert!(output.status.success(), "{output:?}");
        let lines = stderr_lines(&output);
        let levels: Vec<String> = lines
            .iter()
            .map(|line| parse(line)["@level"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(levels, ["debug", "info"]);

        let output = run_child("log", Some("error"));
        assert!(stderr_lines(&output).is_empty(), "{output:?}");
    }

    #[test]
    fn init_reports_invalid_environment_filter() {
        let output = run_child("log", Some("child=loud"));
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let warning = parse(&lines[0]);
        assert_eq!(warning["@level"], Value::from("warn"));
        assert_eq!(warning["variable"], Value::from(FILTER_ENV));
        assert_eq!(parse(&lines[1])["@message"], Value::from("visible\nline"));
    }

    #[test]
    fn panic_hook_writes_plain_and_json_lines_and_keeps_running() {
        let output = run_child("panic", None);
        assert!(output.status.success(), "{output:?}");
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("panic: boom\\nagain at "),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("logging.rs:"), "{}", lines[0]);
        let json = parse(&lines[1]);
        assert_eq!(json["@level"], Value::from("error"));
        assert_eq!(json["@message"], Value::from("boom\nagain"));
        assert!(json["location"].as_str().unwrap().contains("logging.rs:"));
        assert_eq!(lines[2], "still alive");
    }

    #[test]
    fn panic_payload_from_real_panic_is_readable() {
        let caught = std::panic::catch_unwind(|| {
            let index = 3;
            panic!("bad index {index}");
        })
        .unwrap_err();
        assert_eq!(payload_message(caught.as_ref()), "bad index 3");
    }
}
