//! Property (c): `to_f64` / `to_i64` (the `number` and `int` field conversions).

use proptest::prelude::*;
use restbridge::convert::{to_f64, to_i64};
use serde_json::{json, Value};

/// Bitwise float equality (NaN equals NaN, 0.0 differs from -0.0).
fn same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (None, None) => true,
        _ => false,
    }
}

/// What `to_f64` must give for a string: the special names, else Rust's own parse of the
/// trimmed text when finite.
fn expected_f64(s: &str) -> Option<f64> {
    match s.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "inf" | "+inf" | "Infinity" => Some(f64::INFINITY),
        "-Inf" | "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

/// Strings built from the characters of numbers (and a few that are not).
fn numberish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-+]?[0-9]{0,25}(\\.[0-9]{0,25})?([eE][-+]?[0-9]{1,4})?",
        "[ \t]{0,2}[-+]?[0-9.eE]{1,12}[ \t]{0,2}",
        "[-+0-9.eEinfatyINFATY _x]{0,12}",
    ]
}

/// Text with no reading as a number: letters that cannot spell a number, an exponent or
/// `inf`/`nan`/`infinity`, plus spaces and punctuation.
fn non_numeric() -> impl Strategy<Value = String> {
    "[ ]?[bcdghjklmopqrsuvwxzBCDGHJKLMOPQRSUVWXZ_!?/][bcdghjklmopqrsuvwxzBCDGHJKLMOPQRSUVWXZ0-9 _.!?/-]{0,10}"
}

proptest! {
    #![proptest_config(crate::config(256))]

    /// Every i64 survives `to_i64` exactly, as a JSON number and as a (padded) string: no
    /// float detour, so values beyond 2^53 keep their last digits.
    #[test]
    fn i64_round_trips_exactly(n in prop_oneof![
        any::<i64>(),
        (1i64 << 53) - 4..(1i64 << 53) + 4,
        Just(i64::MAX),
        Just(i64::MIN),
    ]) {
        prop_assert_eq!(to_i64(&json!(n)), Some(n));
        prop_assert_eq!(to_i64(&json!(n.to_string())), Some(n));
        prop_assert_eq!(to_i64(&json!(format!("  {n}\n"))), Some(n));
        let parsed: Value = serde_json::from_str(&n.to_string()).unwrap();
        prop_assert_eq!(to_i64(&parsed), Some(n));
        prop_assert!(same(to_f64(&json!(n)), Some(n as f64)));
    }

    /// u64 values above i64::MAX do not fit an int field.
    #[test]
    fn u64_above_i64_is_none(n in (i64::MAX as u64 + 1)..=u64::MAX) {
        prop_assert_eq!(to_i64(&json!(n)), None);
        prop_assert_eq!(to_i64(&json!(n.to_string())), None);
    }

    /// Integral floats convert to the same integer; fractional ones do not convert.
    #[test]
    fn floats_to_i64(f in -9.0e18f64..9.0e18) {
        let want = (f.fract() == 0.0).then_some(f as i64);
        prop_assert_eq!(to_i64(&json!(f)), want, "{}", f);
        prop_assert_eq!(to_i64(&json!(format!("{f:e}"))), want, "{:e}", f);
    }

    /// Finite floats survive `to_f64` bit for bit, as numbers and in both text forms.
    #[test]
    fn f64_round_trips(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        prop_assert!(same(to_f64(&json!(f)), Some(f)), "{}", f);
        prop_assert!(same(to_f64(&json!(format!("{f}"))), Some(f)), "{}", f);
        prop_assert!(same(to_f64(&json!(format!("{f:e}"))), Some(f)), "{:e}", f);
    }

    /// Numeric-looking strings agree with Rust's parse (special names aside).
    #[test]
    fn numeric_strings_agree_with_rust_parse(s in numberish()) {
        prop_assert!(same(to_f64(&json!(s)), expected_f64(&s)), "{:?}: {:?}", s, to_f64(&json!(s)));
        if let Ok(n) = s.trim().parse::<i64>() {
            prop_assert_eq!(to_i64(&json!(s)), Some(n), "{:?}", s);
        }
        if let Some(v) = to_i64(&json!(s)) {
            // Whatever converts to an int is a number the text spells exactly or an
            // integral float within ±9.2e18.
            let exact = s.trim().parse::<i64>().ok();
            let float = s.trim().parse::<f64>().ok().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18);
            prop_assert!(exact == Some(v) || float.map(|f| f as i64) == Some(v), "{:?} → {}", s, v);
        }
    }

    /// Text that is not a number gives `None` for both.
    #[test]
    fn non_numeric_strings_are_none(s in non_numeric()) {
        prop_assert_eq!(to_f64(&json!(s)), None, "{:?}", s);
        prop_assert_eq!(to_i64(&json!(s)), None, "{:?}", s);
    }

    /// Arbitrary strings: `to_f64` is exactly the special names plus Rust's finite parse.
    #[test]
    fn arbitrary_strings(s in any::<String>()) {
        prop_assert!(same(to_f64(&json!(s)), expected_f64(&s)), "{:?}", s);
    }
}

/// The special float names, padded or not; they are not ints.
#[test]
fn nan_and_infinities() {
    for pad in ["", " ", "\t "] {
        let t = |s: &str| json!(format!("{pad}{s}{pad}"));
        assert!(to_f64(&t("NaN")).is_some_and(f64::is_nan));
        assert_eq!(to_f64(&t("+Inf")), Some(f64::INFINITY));
        assert_eq!(to_f64(&t("-Inf")), Some(f64::NEG_INFINITY));
        assert_eq!(to_f64(&t("Infinity")), Some(f64::INFINITY));
        assert_eq!(to_f64(&t("-Infinity")), Some(f64::NEG_INFINITY));
        for s in ["NaN", "+Inf", "-Inf"] {
            assert_eq!(to_i64(&t(s)), None, "{s}");
        }
    }
    for v in [
        json!(null),
        json!(true),
        json!([1]),
        json!({"a": 1}),
        json!(""),
    ] {
        assert_eq!(to_f64(&v), None, "{v}");
        assert_eq!(to_i64(&v), None, "{v}");
    }
}
