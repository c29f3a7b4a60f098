//! Time values from JSON → epoch nanoseconds (UTC), per config.md §4 "Time formats".
//!
//! Output is always an `i64` of nanoseconds since the Unix epoch, what Grafana's decoder
//! expects in a `Timestamp(ns)` column (protocol.md §3.5, §8 item 6).

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value;

/// A field's time `format` (config.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339 / ISO 8601 with or without zone, date-only, or numbers as epoch by magnitude
    /// (< 1e11 s, < 1e14 ms, < 1e17 µs, else ns).
    Auto,
    /// RFC 3339 with a zone or offset (zone-less ISO text is read in the field's timezone).
    Rfc3339,
    /// Epoch seconds (number or numeric string; fractions kept).
    EpochS,
    /// Epoch milliseconds.
    EpochMs,
    /// Epoch microseconds.
    EpochUs,
    /// Epoch nanoseconds.
    EpochNs,
    /// A strftime pattern such as `%Y-%m-%d %H:%M:%S` (jiff's strtime syntax).
    Strftime(String),
}

impl TimeFormat {
    /// Parses a `format` setting.
    ///
    /// # Errors
    /// A message when the text is neither a known name nor a pattern containing `%`.
    pub fn parse(text: &str) -> Result<TimeFormat, String> {
        Ok(match text.trim() {
            "" | "auto" => TimeFormat::Auto,
            "rfc3339" | "iso8601" => TimeFormat::Rfc3339,
            "epoch_s" | "epoch" | "unix" => TimeFormat::EpochS,
            "epoch_ms" => TimeFormat::EpochMs,
            "epoch_us" => TimeFormat::EpochUs,
            "epoch_ns" => TimeFormat::EpochNs,
            p if p.contains('%') => TimeFormat::Strftime(p.to_owned()),
            other => {
                return Err(format!(
                    "unknown time format '{other}' (use auto, rfc3339, epoch_s, epoch_ms, \
                     epoch_us, epoch_ns or a strftime pattern such as '%Y-%m-%d %H:%M:%S')"
                ))
            }
        })
    }
}

/// Converts one JSON value to epoch nanoseconds; `None` when it does not convert (the caller
/// turns that into a null plus a frame notice). JSON `null` also gives `None`.
pub fn to_epoch_ns(value: &Value, format: &TimeFormat, zone: &TimeZone) -> Option<i64> {
    match (format, value) {
        (_, Value::Null) => None,
        (TimeFormat::Auto, Value::Number(_)) => epoch_auto(&number_text(value)?),
        (TimeFormat::Auto, Value::String(s)) => {
            let s = s.trim();
            if looks_numeric(s) {
                epoch_auto(s)
            } else {
                parse_iso(s, zone)
            }
        }
        (TimeFormat::Rfc3339, Value::String(s)) => parse_iso(s.trim(), zone),
        (TimeFormat::EpochS, v) => decimal_scaled(&scalar_text(v)?, 9),
        (TimeFormat::EpochMs, v) => decimal_scaled(&scalar_text(v)?, 6),
        (TimeFormat::EpochUs, v) => decimal_scaled(&scalar_text(v)?, 3),
        (TimeFormat::EpochNs, v) => decimal_scaled(&scalar_text(v)?, 0),
        (TimeFormat::Strftime(p), Value::String(s)) => parse_strftime(p, s.trim(), zone),
        (TimeFormat::Strftime(p), Value::Number(_)) => {
            parse_strftime(p, &number_text(value)?, zone)
        }
        _ => None,
    }
}

/// The decimal text of a JSON number; floats use Rust's shortest round-trip form, which
/// gives back the digits the API sent (`1795367777.517`), so fractions are kept exactly.
fn number_text(v: &Value) -> Option<String> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        return Some(i.to_string());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.to_string());
    }
    let f = n.as_f64()?;
    f.is_finite().then(|| format!("{f}"))
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(_) => number_text(v),
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn looks_numeric(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E')
}

/// Epoch number of unknown unit: < 1e11 s, < 1e14 ms, < 1e17 µs, else ns (config.md §4).
fn epoch_auto(text: &str) -> Option<i64> {
    // The magnitude from the exact integer digits (an f64 would round 99999999999999999 up
    // to 1e17 and pick the wrong unit); exponent notation goes through f64.
    let body = text.trim_start_matches(['-', '+']);
    let magnitude: f64 = if body.contains(['e', 'E']) {
        text.parse::<f64>().ok()?.abs()
    } else {
        let int_part = body.split('.').next().unwrap_or_default();
        let digits = int_part.trim_start_matches('0');
        if digits.len() > 18 {
            1e18
        } else {
            let n: u64 = if digits.is_empty() {
                0
            } else {
                digits.parse().ok()?
            };
            // Compare exactly: below each threshold when n < threshold.
            if n < 100_000_000_000 {
                0.0
            } else if n < 100_000_000_000_000 {
                1e11
            } else if n < 100_000_000_000_000_000 {
                1e14
            } else {
                1e17
            }
        }
    };
    let shift = if magnitude < 1e11 {
        9
    } else if magnitude < 1e14 {
        6
    } else if magnitude < 1e17 {
        3
    } else {
        0
    };
    decimal_scaled(text, shift)
}

/// Parses decimal text exactly and multiplies it by 10^`shift`, truncating digits beyond
/// nanoseconds. Exponent notation falls back to f64 arithmetic.
fn decimal_scaled(text: &str, shift: u32) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.contains(['e', 'E']) {
        let f: f64 = text.parse().ok()?;
        let scaled = (f * 10f64.powi(shift as i32)).round();
        return (scaled.is_finite() && scaled.abs() < 9.2e18).then_some(scaled as i64);
    }
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut acc: i128 = 0;
    for b in int_part.bytes() {
        acc = acc.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        if acc > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let factor = 10i128.pow(shift);
    acc = acc.checked_mul(factor)?;
    let mut frac_val: i128 = 0;
    let mut digits = 0u32;
    for b in frac_part.bytes().take(shift as usize) {
        frac_val = frac_val * 10 + i128::from(b - b'0');
        digits += 1;
    }
    acc += frac_val * 10i128.pow(shift - digits);
    let signed = if neg { -acc } else { acc };
    i64::try_from(signed).ok()
}

fn ts_ns(ts: Timestamp) -> Option<i64> {
    i64::try_from(ts.as_nanosecond()).ok()
}

/// RFC 3339 / ISO 8601: with zone or offset → that instant; zone-less date-time or date-only
/// → read in `zone`.
fn parse_iso(s: &str, zone: &TimeZone) -> Option<i64> {
    if let Ok(ts) = s.parse::<Timestamp>() {
        return ts_ns(ts);
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return ts_ns(zone.to_ambiguous_zoned(dt).compatible().ok()?.timestamp());
    }
    if let Ok(d) = s.parse::<Date>() {
        return ts_ns(
            zone.to_ambiguous_zoned(d.to_datetime(jiff::civil::Time::midnight()))
                .compatible()
                .ok()?
                .timestamp(),
        );
    }
    None
}

fn parse_strftime(pattern: &str, s: &str, zone: &TimeZone) -> Option<i64> {
    let tm = jiff::fmt::strtime::parse(pattern, s).ok()?;
    if let Ok(ts) = tm.to_timestamp() {
        return ts_ns(ts);
    }
    let dt = match tm.to_datetime() {
        Ok(dt) => dt,
        Err(_) => tm
            .to_date()
            .ok()?
            .to_datetime(jiff::civil::Time::midnight()),
    };
    ts_ns(zone.to_ambiguous_zoned(dt).compatible().ok()?.timestamp())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const T2024: i64 = 1_704_067_200_000_000_000;

    fn utc(v: Value, f: &TimeFormat) -> Option<i64> {
        to_epoch_ns(&v, f, &TimeZone::UTC)
    }

    #[test]
    fn auto_numbers_by_magnitude() {
        let a = TimeFormat::Auto;
        assert_eq!(utc(json!(1_704_067_200), &a), Some(T2024));
        assert_eq!(utc(json!(1_704_067_200_000i64), &a), Some(T2024));
        assert_eq!(utc(json!(1_704_067_200_000_000i64), &a), Some(T2024));
        assert_eq!(utc(json!(1_704_067_200_000_000_000i64), &a), Some(T2024));
        // Prometheus-style float seconds keep their milliseconds exactly.
        assert_eq!(
            utc(json!(1795367777.517), &a),
            Some(1_795_367_777_517_000_000)
        );
        assert_eq!(utc(json!("1704067200.5"), &a), Some(T2024 + 500_000_000));
    }

    #[test]
    fn auto_strings() {
        let a = TimeFormat::Auto;
        assert_eq!(utc(json!("2024-01-01T00:00:00Z"), &a), Some(T2024));
        assert_eq!(utc(json!("2024-01-01T01:00:00+01:00"), &a), Some(T2024));
        assert_eq!(
            utc(json!("2024-01-01T00:00:00.123456789Z"), &a),
            Some(T2024 + 123_456_789)
        );
        assert_eq!(utc(json!("2024-01-01T00:00:00"), &a), Some(T2024));
        assert_eq!(utc(json!("2024-01-01"), &a), Some(T2024));
        assert_eq!(utc(json!("not a time"), &a), None);
        assert_eq!(utc(json!(true), &a), None);
        assert_eq!(utc(Value::Null, &a), None);
    }

    #[test]
    fn zone_less_times_use_the_zone() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let v = json!("2024-01-01T01:00:00");
        assert_eq!(to_epoch_ns(&v, &TimeFormat::Auto, &berlin), Some(T2024));
        // Summer time: +02:00.
        let v = json!("2024-07-01T02:00:00");
        let expected = "2024-07-01T00:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_nanosecond() as i64;
        assert_eq!(to_epoch_ns(&v, &TimeFormat::Auto, &berlin), Some(expected));
    }

    #[test]
    fn explicit_epochs() {
        assert_eq!(utc(json!("1704067200"), &TimeFormat::EpochS), Some(T2024));
        assert_eq!(
            utc(json!(1704067200123i64), &TimeFormat::EpochMs),
            Some(T2024 + 123_000_000)
        );
        assert_eq!(
            utc(json!(1704067200.5), &TimeFormat::EpochMs),
            Some(1_704_067_200_500_000)
        );
        assert_eq!(
            utc(json!("-1.5"), &TimeFormat::EpochS),
            Some(-1_500_000_000)
        );
        assert_eq!(utc(json!("x"), &TimeFormat::EpochS), None);
        assert_eq!(utc(json!(1e30), &TimeFormat::EpochS), None);
    }

    #[test]
    fn strftime_patterns() {
        let f = TimeFormat::parse("%Y-%m-%d %H:%M").unwrap();
        assert_eq!(utc(json!("2024-01-01 00:00"), &f), Some(T2024));
        let f = TimeFormat::parse("%d/%m/%Y").unwrap();
        assert_eq!(utc(json!("01/01/2024"), &f), Some(T2024));
        assert!(TimeFormat::parse("YYYY").is_err());
    }
}
