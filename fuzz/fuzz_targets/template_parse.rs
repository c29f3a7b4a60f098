//! Template parser and renderer: any text either fails to parse or renders in every
//! position without panicking, and the renderer keeps its promises: a header value never
//! carries CR/LF/NUL, masked and unmasked renders succeed or fail together (in a header the
//! unmasked one may also fail on a secret's CR/LF/NUL), a JSON-string
//! render is a valid JSON string body, and the URL builder's dot-segment rule holds.
//!
//! Input: the template text (UTF-8). The render context (times, interval, zone) is picked
//! from the input's length so a text-only corpus still reaches the extreme values.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use restbridge::template::{Position, RenderContext, Template};

/// Epoch milliseconds around the edges: 0, now-ish, the jiff range ends, i64 ends.
const TIMES: [i64; 8] = [
    0,
    1_704_067_200_000,
    -1,
    253_402_207_200_000, // 9999-12-31T22:00Z: a positive offset leaves the year range
    -377_705_116_800_000, // -9999-01-01
    -377_705_116_800_001,
    i64::MAX,
    i64::MIN,
];
const INTERVALS: [i64; 5] = [0, 1, 60_000, -5, i64::MIN];
const ZONES: [&str; 4] = ["", "Pacific/Kiritimati", "America/St_Johns", "Etc/GMT+12"];
const VALUES: [&str; 6] = ["", ".", "..", "a/b?c#d", "\r\n\0", "\u{1F600}%2e"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse(text) else {
        return;
    };
    assert_eq!(template.source(), text);
    let n = data.len();
    let zone = match ZONES[n % ZONES.len()] {
        "" => None,
        name => Some(jiff::tz::TimeZone::get(name).expect("bundled zone")),
    };
    let value = VALUES[(n / 3) % VALUES.len()];
    let params: HashMap<String, String> = template
        .params()
        .map(|p| (p.to_owned(), value.to_owned()))
        .collect();
    let secrets: HashMap<String, String> = template
        .secrets()
        .enumerate()
        .filter(|(i, _)| (n + i) % 5 != 0) // sometimes a key is missing
        .map(|(_, k)| (k.to_owned(), "s3cr\u{0}t/..".to_owned()))
        .collect();
    let ctx = |mask_secrets| RenderContext {
        params: &params,
        from_ms: TIMES[n % TIMES.len()],
        to_ms: TIMES[(n / 7) % TIMES.len()],
        interval_ms: INTERVALS[n % INTERVALS.len()],
        max_data_points: (n as i64) - 3,
        secrets: &secrets,
        mask_secrets,
        timezone: zone.as_ref(),
    };
    for pos in [
        Position::PathSegment,
        Position::Query,
        Position::JsonString,
        Position::Header,
        Position::Raw,
    ] {
        let real = template.render(&ctx(false), pos);
        let masked = template.render(&ctx(true), pos);
        if pos == Position::Header {
            // A secret value with CR/LF/NUL fails only unmasked (the mask has none).
            assert!(
                masked.is_ok() || real.is_err(),
                "masked render fails where unmasked succeeds: {masked:?}"
            );
        } else {
            assert_eq!(
                real.is_ok(),
                masked.is_ok(),
                "masked and unmasked renders disagree: {real:?} / {masked:?}"
            );
        }
        let Ok(out) = real else { continue };
        match pos {
            Position::Header => assert!(!out.contains(['\r', '\n', '\0']), "{out:?}"),
            Position::JsonString if !text.contains(":raw}") => {
                // Literal text is copied as written; only check when it has nothing a JSON
                // string cannot hold.
                if !text.contains(['"', '\\']) && !text.chars().any(|c| c < ' ') {
                    let quoted = format!("\"{out}\"");
                    assert!(
                        serde_json::from_str::<String>(&quoted).is_ok(),
                        "not a JSON string body: {quoted:?}"
                    );
                }
            }
            Position::PathSegment if !text.contains(":raw}") && !text.contains("__secure.") => {
                // Substituted text is percent-encoded, so no segment made from it is `.`/`..`
                // and no `?`/`#` can appear unless the literal text has one.
                if !text.contains(['?', '#']) {
                    assert!(!out.contains(['?', '#']), "{out:?}");
                }
                if template.params().next().is_some() && !text.contains(['.', '/']) {
                    assert!(
                        out.split('/').all(|s| s != "." && s != ".."),
                        "dot segment from a value: {out:?}"
                    );
                }
            }
            _ => {}
        }
    }
});
