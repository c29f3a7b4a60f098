//! Property (b): time values → epoch nanoseconds (`restbridge::timeparse`).

use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;
use proptest::prelude::*;
use restbridge::timeparse::{to_epoch_ns, TimeFormat};
use serde_json::{json, Value};

/// The explicit epoch formats and their power of ten to nanoseconds.
const UNITS: [(TimeFormat, u32); 4] = [
    (TimeFormat::EpochS, 9),
    (TimeFormat::EpochMs, 6),
    (TimeFormat::EpochUs, 3),
    (TimeFormat::EpochNs, 0),
];

fn ns(v: &Value, f: &TimeFormat) -> Option<i64> {
    to_epoch_ns(v, f, &TimeZone::UTC)
}

/// `i × 10^shift` when it fits an i64 (what an exact conversion must give).
fn scaled(i: i128, shift: u32) -> Option<i64> {
    i64::try_from(i * 10i128.pow(shift)).ok()
}

/// Integers biased towards the ends of each unit's range and the `auto` magnitude bounds.
fn epoch_int() -> impl Strategy<Value = i64> {
    let edges: Vec<i64> = [
        0i64,
        1,
        100_000_000_000, // 1e11: s → ms
        100_000_000_000_000,
        100_000_000_000_000_000,
        9_223_372_036,
        9_223_372_036_854,
        9_223_372_036_854_775,
        i64::MAX,
    ]
    .iter()
    .flat_map(|&e| [e, e - 1, e + (e < i64::MAX) as i64, -e, -e + 1])
    .chain([i64::MIN, i64::MIN + 1])
    .collect();
    prop_oneof![
        2 => any::<i64>(),
        2 => -9_223_372_037i64..9_223_372_037,
        1 => -10_000_000_000_000_000i64..10_000_000_000_000_000,
        1 => proptest::sample::select(edges),
    ]
}

/// A decimal text: sign, integer digits, optional fraction of up to 12 digits.
fn decimal_text() -> impl Strategy<Value = (bool, bool, u64, Option<String>)> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![0u64..10_000, 0u64..10_000_000_000, any::<u64>()],
        proptest::option::of("[0-9]{0,12}"),
    )
}

/// The exact value of a decimal text scaled by 10^shift, fraction digits beyond the unit
/// truncated (toward zero), or `None` when it does not fit an i64.
fn decimal_expected(neg: bool, int: u64, frac: Option<&str>, shift: u32) -> Option<i64> {
    let mut acc = i128::from(int) * 10i128.pow(shift);
    let digits: Vec<u32> = frac
        .unwrap_or("")
        .bytes()
        .take(shift as usize)
        .map(|b| u32::from(b - b'0'))
        .collect();
    for (k, d) in digits.iter().enumerate() {
        acc += i128::from(*d) * 10i128.pow(shift - 1 - k as u32);
    }
    i64::try_from(if neg { -acc } else { acc }).ok()
}

/// The unit `auto` must pick for a magnitude (config.md §4: < 1e11 s, < 1e14 ms, < 1e17 µs,
/// else ns).
fn auto_unit(magnitude: u128) -> usize {
    if magnitude < 100_000_000_000 {
        0
    } else if magnitude < 100_000_000_000_000 {
        1
    } else if magnitude < 100_000_000_000_000_000 {
        2
    } else {
        3
    }
}

proptest! {
    #![proptest_config(crate::config(256))]

    /// Integers (JSON numbers and their decimal strings) convert exactly in every unit, and
    /// give `None` exactly when the nanoseconds do not fit an i64.
    #[test]
    fn epoch_integers_round_trip(i in epoch_int()) {
        for (format, shift) in &UNITS {
            let want = scaled(i128::from(i), *shift);
            prop_assert_eq!(ns(&json!(i), format), want, "number {} as {:?}", i, format);
            prop_assert_eq!(ns(&json!(i.to_string()), format), want, "string {} as {:?}", i, format);
            prop_assert_eq!(ns(&json!(format!(" {i}\t")), format), want, "padded {} as {:?}", i, format);
        }
    }

    /// Decimal strings convert exactly: digits beyond nanoseconds are truncated, never
    /// rounded through a float.
    #[test]
    fn epoch_decimal_strings_round_trip((neg, plus, int, frac) in decimal_text()) {
        let sign = if neg { "-" } else if plus { "+" } else { "" };
        let text = match &frac {
            Some(f) => format!("{sign}{int}.{f}"),
            None => format!("{sign}{int}"),
        };
        for (format, shift) in &UNITS {
            let want = decimal_expected(neg, int, frac.as_deref(), *shift);
            prop_assert_eq!(ns(&json!(text), format), want, "{} as {:?}", text, format);
        }
    }

    /// A JSON float converts like the text Rust prints for it (its shortest round-trip
    /// form, which is the text an API sent).
    #[test]
    fn epoch_floats_agree_with_their_text(f in -1.0e12f64..1.0e12) {
        for (format, _) in &UNITS {
            prop_assert_eq!(ns(&json!(f), format), ns(&json!(format!("{f}")), format), "{} as {:?}", f, format);
        }
    }

    /// `auto` picks the unit by magnitude and then agrees with that explicit unit, for
    /// numbers and numeric strings.
    #[test]
    fn auto_agrees_with_the_unit_its_magnitude_picks(i in epoch_int()) {
        let unit = auto_unit(i.unsigned_abs().into());
        let unit = &UNITS[unit].0;
        prop_assert_eq!(ns(&json!(i), &TimeFormat::Auto), ns(&json!(i), unit), "number {}", i);
        prop_assert_eq!(
            ns(&json!(i.to_string()), &TimeFormat::Auto),
            ns(&json!(i.to_string()), unit),
            "string {}", i
        );
    }

    /// `auto` on decimal strings: the magnitude of the integer part picks the unit.
    #[test]
    fn auto_agrees_on_decimal_strings(
        (neg, _plus, int, frac) in decimal_text(),
    ) {
        let text = match &frac {
            Some(f) => format!("{}{int}.{f}", if neg { "-" } else { "" }),
            None => format!("{}{int}", if neg { "-" } else { "" }),
        };
        // Keep away from a bound where the fraction could tip the magnitude over it.
        let unit = auto_unit(int.into());
        let next_bound_ok = auto_unit(u128::from(int) + 1) == unit;
        prop_assume!(next_bound_ok);
        prop_assert_eq!(
            ns(&json!(text), &TimeFormat::Auto),
            ns(&json!(text), &UNITS[unit].0),
            "{}", text
        );
    }

    /// RFC 3339 texts written from random instants (random offsets, 0–9 fraction digits)
    /// parse back to the same instant (the fraction truncated to the digits written), with
    /// `rfc3339` and with `auto`; `None` exactly when the instant is outside the i64
    /// nanosecond range (years 1677–2262).
    #[test]
    fn rfc3339_round_trips(
        secs in -62_135_596_800i64..253_402_300_799, // 0001-01-01 .. 9999-12-31
        nanos in 0i32..1_000_000_000,
        offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59),
        digits in 0usize..=9,
        zulu in any::<bool>(),
    ) {
        let ts = Timestamp::new(secs, nanos).unwrap();
        let offset_minutes = if zulu { 0 } else { offset_minutes };
        let offset = Offset::from_seconds(offset_minutes * 60).unwrap();
        let dt = ts.to_zoned(TimeZone::fixed(offset)).datetime();
        let frac = format!("{nanos:09}");
        let frac = &frac[..digits];
        let zone = if zulu {
            "Z".to_owned()
        } else {
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let m = offset_minutes.abs();
            format!("{sign}{:02}:{:02}", m / 60, m % 60)
        };
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{frac}{zone}",
            dt.year(), dt.month(), dt.day(), dt.hour(), dt.minute(), dt.second(),
            if digits > 0 { "." } else { "" },
        );
        let kept_nanos = if digits == 0 {
            0
        } else {
            frac.parse::<i64>().unwrap() * 10i64.pow(9 - digits as u32)
        };
        let want = i64::try_from(i128::from(secs) * 1_000_000_000 + i128::from(kept_nanos)).ok();
        prop_assert_eq!(ns(&json!(text), &TimeFormat::Rfc3339), want, "{}", text);
        prop_assert_eq!(ns(&json!(text), &TimeFormat::Auto), want, "auto {}", text);
        // A zone-less text is read in the field's zone: the same instant in a fixed zone of
        // the same offset.
        let local = &text[..text.len() - zone.len()];
        prop_assert_eq!(
            to_epoch_ns(&json!(local), &TimeFormat::Rfc3339, &TimeZone::fixed(offset)),
            want,
            "zone-less {}", local
        );
    }
}

/// The ends of the i64 nanosecond range, in every unit that reaches them.
#[test]
fn epoch_range_ends() {
    assert_eq!(ns(&json!(i64::MAX), &TimeFormat::EpochNs), Some(i64::MAX));
    assert_eq!(
        ns(&json!("9223372036.854775807"), &TimeFormat::EpochS),
        Some(i64::MAX)
    );
    assert_eq!(
        ns(&json!("9223372036.854775808"), &TimeFormat::EpochS),
        None
    );
    assert_eq!(ns(&json!(9_223_372_037i64), &TimeFormat::EpochS), None);
    assert_eq!(
        ns(&json!(-9_223_372_036i64), &TimeFormat::EpochS),
        Some(-9_223_372_036_000_000_000)
    );
}
