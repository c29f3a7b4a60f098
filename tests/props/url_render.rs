//! Property (a): a param value cannot change the scheme, host or port of the request URL, nor
//! leave its path segment or its query value, whatever its characters.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use restbridge::instance::{Instance, RenderInput};
use restbridge::settings::DataSourceSettings;
use serde_json::json;

/// The base URLs tried: bare host with port, a path prefix, IPv6 with a trailing slash.
const BASES: [&str; 3] = [
    "http://127.0.0.1:9090",
    "https://api.example.test/base/v1",
    "http://[::1]:8080/prefix/",
];

/// Rule URL templates and the segments each renders after the base path; `P` is the
/// param's segment (with the literal text around it as `(prefix, suffix)`).
enum Seg {
    Lit(&'static str),
    P(&'static str, &'static str),
}

const URLS: [(&str, &[Seg]); 4] = [
    (
        "/api/${p}/x",
        &[Seg::Lit("api"), Seg::P("", ""), Seg::Lit("x")],
    ),
    ("/api/${p}", &[Seg::Lit("api"), Seg::P("", "")]),
    (
        "api/pre-${p}-suf/x",
        &[Seg::Lit("api"), Seg::P("pre-", "-suf"), Seg::Lit("x")],
    ),
    (
        "/api/${p}/${p}/x",
        &[
            Seg::Lit("api"),
            Seg::P("", ""),
            Seg::P("", ""),
            Seg::Lit("x"),
        ],
    ),
];

/// One compiled instance per base URL, each with one rule per URL template (`r0`…`r3`).
fn instances() -> &'static Vec<Instance> {
    static CELL: OnceLock<Vec<Instance>> = OnceLock::new();
    CELL.get_or_init(|| {
        BASES
            .iter()
            .map(|base| {
                let rules: Vec<_> = URLS
                    .iter()
                    .enumerate()
                    .map(|(i, (url, _))| {
                        json!({
                            "id": format!("r{i}"),
                            "request": {"url": url, "query": {"q": "${p}", "fixed": "1"}},
                            "params": [{"name": "p"}],
                            "response": {"fields": [{"name": "v", "path": "$.v"}]},
                        })
                    })
                    .collect();
                let settings = DataSourceSettings {
                    uid: "props".into(),
                    name: "props".into(),
                    url: (*base).into(),
                    json_data: serde_json::to_vec(&json!({ "rules": rules })).unwrap(),
                    secure_json_data: BTreeMap::new(),
                    ..DataSourceSettings::default()
                };
                Instance::compile(&settings).unwrap_or_else(|e| panic!("{base}: {e}"))
            })
            .collect()
    })
}

/// Pieces that URL parsers, path normalisation or template parsing treat specially.
const NASTY: &[&str] = &[
    "/",
    "\\",
    "?",
    "#",
    "@",
    ":",
    ".",
    "..",
    "%2e",
    "%2E",
    "%2e%2e",
    "%2F",
    "%2f",
    "%5C",
    "%",
    "%%",
    "%0",
    "%00",
    "\r",
    "\n",
    "\t",
    "\0",
    " ",
    "+",
    "&",
    "=",
    ";",
    ",",
    "'",
    "\"",
    "<",
    ">",
    "[",
    "]",
    "{",
    "}",
    "${p}",
    "${__from}",
    "//evil.test",
    "http://evil.test/",
    "https:",
    "@evil.test",
    "evil.test:1",
    "\u{FEFF}",
    "\u{202E}",
    "\u{FF0E}",
    "\u{FF0F}",
    "\u{2044}",
    "\u{0130}",
    "é",
    "\u{1F600}",
    "\u{7F}",
    "\u{85}",
    "\u{2028}",
    "~",
    "-",
    "_",
];

/// Param values: sequences of nasty pieces and arbitrary characters, plus the exact dot
/// segments.
fn param_value() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => proptest::sample::select(NASTY).prop_map(str::to_owned),
        2 => any::<char>().prop_map(String::from),
        1 => "[a-zA-Z0-9]{1,4}",
    ];
    prop_oneof![
        8 => proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat()),
        2 => any::<String>(),
        1 => proptest::sample::select(vec![".", "..", "", "...", ". .", "./", "../"])
            .prop_map(str::to_owned),
    ]
}

/// Percent-decodes a path segment back to text.
fn decode(seg: &str) -> String {
    percent_decode_str(seg)
        .decode_utf8()
        .unwrap_or_else(|e| panic!("segment {seg:?} is not UTF-8 once decoded: {e}"))
        .into_owned()
}

fn check(base_index: usize, url_index: usize, p: &str) -> Result<(), TestCaseError> {
    let instance = &instances()[base_index];
    let rule = &instance.rules[&format!("r{url_index}")];
    let params = HashMap::from([("p".to_owned(), p.to_owned())]);
    let input = RenderInput {
        params: &params,
        from_ms: 1_704_067_200_000,
        to_ms: 1_704_070_800_000,
        interval_ms: 60_000,
        max_data_points: 100,
    };
    let outcome = instance.render(rule, &input);
    // Dot segments are refused (the url crate would resolve `%2E%2E` like `..`); everything
    // else must render.
    if matches!(p, "." | "..") {
        prop_assert!(outcome.is_err(), "{p:?} rendered: {outcome:?}");
        return Ok(());
    }
    let (request, masked) = match outcome {
        Ok(r) => r,
        Err(e) => return Err(TestCaseError::fail(format!("{p:?} failed: {e}"))),
    };
    let url = &request.url;
    let base = &instance.base;
    prop_assert_eq!(url.scheme(), base.scheme());
    prop_assert_eq!(url.host_str(), base.host_str());
    prop_assert_eq!(url.port_or_known_default(), base.port_or_known_default());
    prop_assert_eq!(url.username(), "");
    prop_assert_eq!(url.password(), None);
    prop_assert_eq!(url.fragment(), None);
    prop_assert_eq!(masked.as_str(), url.as_str(), "no secrets: masked == real");

    // Path: the base path's segments, then exactly the template's segments.
    let base_segs: Vec<&str> = base.path().split('/').filter(|s| !s.is_empty()).collect();
    let segs: Vec<&str> = url
        .path()
        .strip_prefix('/')
        .unwrap_or("")
        .split('/')
        .collect();
    let expected = URLS[url_index].1;
    prop_assert_eq!(
        segs.len(),
        base_segs.len() + expected.len(),
        "path {} of {:?}",
        url.path(),
        p
    );
    prop_assert_eq!(&segs[..base_segs.len()], &base_segs[..]);
    for (seg, want) in segs[base_segs.len()..].iter().zip(expected) {
        match want {
            Seg::Lit(text) => prop_assert_eq!(*seg, *text),
            Seg::P(prefix, suffix) => {
                prop_assert_eq!(
                    decode(seg),
                    format!("{prefix}{p}{suffix}"),
                    "segment {}",
                    seg
                )
            }
        }
    }

    // Query: `q` decodes back to the value, and no other key appears.
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    prop_assert_eq!(
        pairs,
        vec![
            ("fixed".to_owned(), "1".to_owned()),
            ("q".to_owned(), p.to_owned()),
        ],
        "query {:?}",
        url.query()
    );
    Ok(())
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn params_stay_in_their_segment_and_query_value(
        p in param_value(),
        base_index in 0..BASES.len(),
        url_index in 0..URLS.len(),
    ) {
        check(base_index, url_index, &p)?;
    }
}

/// The hand-picked values of [`NASTY`], each alone, on every base and URL.
#[test]
fn every_nasty_piece_alone() {
    let mut values: Vec<String> = NASTY.iter().map(|s| (*s).to_owned()).collect();
    values.extend(NASTY.iter().map(|s| format!("{s}{s}")));
    values.extend(
        [
            "../../admin",
            "..%2F..%2Fadmin",
            "%2e%2e/%2e%2e",
            "a/../../b",
        ]
        .map(String::from),
    );
    for (b, base) in BASES.iter().enumerate() {
        for (u, (url, _)) in URLS.iter().enumerate() {
            for p in &values {
                if let Err(e) = check(b, u, p) {
                    panic!("base {base} url {url}: {p:?}: {e}");
                }
            }
        }
    }
}
