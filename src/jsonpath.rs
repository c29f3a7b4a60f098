//! JSONPath queries (RFC 9535) over `serde_json::Value` documents.
//!
//! A rule path is compiled once with [`JsonPath::compile`] and then evaluated against
//! any number of documents with [`JsonPath::select`] / [`JsonPath::select_one`].
//!
//! Compilation has two stages:
//!
//! 1. **Guard** (always first, before any parser sees the text): the query must be at
//!    most [`MAX_QUERY_LEN`] bytes long and must not nest `(` / `[` (counted together,
//!    outside string literals) more than [`MAX_NESTING`] levels deep. The engine has
//!    an exponential-time parse for nested function calls and overflows the stack on
//!    very long `&&` chains; the guard bounds both (RFC 9535 §4.1 asks implementations
//!    to protect themselves against such queries).
//! 2. **Engine compile** with `jsonpath-rfc9535`, which is the sole authority on
//!    whether a query is valid RFC 9535 JSONPath (syntax and function well-typedness,
//!    RFC 9535 §2.1.1 and §2.4.3).
//!
//! Evaluation of the overwhelmingly common "plain" paths — the root `$` followed by
//! name selectors, single index selectors and at most one wildcard — takes a small
//! iterative evaluator (no engine call); every other query is evaluated by the engine.
//! Both give the same nodelist; the unit tests check that on the RFC 9535 Compliance
//! Test Suite documents.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// Longest accepted query text, in bytes (UTF-8). Longer queries fail with
/// [`PathError::TooLong`] before any parsing.
pub const MAX_QUERY_LEN: usize = 4096;

/// Deepest accepted nesting of `(` and `[` counted together, outside string literals.
/// Deeper queries fail with [`PathError::TooDeep`] before any parsing.
pub const MAX_NESTING: usize = 8;

/// How many characters of an over-limit query are quoted in a guard error.
const EXCERPT_CHARS: usize = 64;

/// Our small seam over the engine (so the engine can be swapped): compile once, select many times.
pub trait Selector: Send + Sync + fmt::Debug {
    /// Appends the nodes selected from `root` (RFC 9535 §2.1 semantics: nodelist in document order) to `out`.
    ///
    /// Selection never fails: a query that matches nothing appends nothing
    /// (RFC 9535 §2.1.2). The appended values borrow from `root`.
    fn select_into<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>);
}

/// Why a query was refused by [`JsonPath::compile`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The query is longer than the guard allows (`len > max` bytes). Raised before
    /// parsing. `path` is an excerpt: the first 64 characters, followed by `…` when cut.
    #[error("JSONPath query {path:?} is {len} bytes long; the limit is {max} bytes")]
    TooLong {
        /// Excerpt of the refused query (first 64 characters, then `…`).
        path: String,
        /// Length of the query, in bytes.
        len: usize,
        /// The limit, [`MAX_QUERY_LEN`].
        max: usize,
    },
    /// The query nests `(` / `[` (counted together, outside string literals) deeper
    /// than the guard allows. Raised before parsing. `path` is an excerpt as for
    /// [`PathError::TooLong`].
    #[error("JSONPath query {path:?} nests brackets and parentheses {depth} levels deep; the limit is {max}")]
    TooDeep {
        /// Excerpt of the refused query (first 64 characters, then `…`).
        path: String,
        /// Deepest nesting found in the query.
        depth: usize,
        /// The limit, [`MAX_NESTING`].
        max: usize,
    },
    /// The engine refused the query: not valid RFC 9535 syntax (§2.1.1), an index
    /// outside the I-JSON integer range (§2.1), or a function expression that is not
    /// well-typed (§2.4.3). `message` is the engine's explanation, usually with a byte
    /// position (e.g. `syntax error at position 3: …`).
    #[error("invalid JSONPath query {path:?}: {message}")]
    Syntax {
        /// The whole refused query.
        path: String,
        /// The engine's description of the problem.
        message: String,
    },
}

/// A compiled, guarded JSONPath query. Cheap to clone (Arc inside).
///
/// Created by [`JsonPath::compile`]; `Send + Sync`, so one compiled query can be
/// shared by every request that uses the same rule.
#[derive(Clone, Debug)]
pub struct JsonPath {
    /// The query text exactly as compiled.
    text: Arc<str>,
    /// The engine's compiled query (always present; it validated the text).
    inner: Arc<dyn Selector>,
    /// The direct evaluator, when the query is a plain path it can handle.
    fast: Option<Arc<FastPath>>,
}

impl JsonPath {
    /// Compiles `text` (an RFC 9535 JSONPath query, e.g. `$.data[*].value`).
    ///
    /// The guard runs first (length, then nesting); only a query that passes it is
    /// given to the engine.
    ///
    /// # Errors
    ///
    /// * [`PathError::TooLong`] when `text` is longer than [`MAX_QUERY_LEN`] bytes;
    /// * [`PathError::TooDeep`] when `(` / `[` nest deeper than [`MAX_NESTING`];
    /// * [`PathError::Syntax`] when the engine rejects the query (RFC 9535 §2.1.1,
    ///   §2.4.3).
    pub fn compile(text: &str) -> Result<JsonPath, PathError> {
        guard(text)?;
        let engine = jsonpath_rfc9535::JsonPath::parse(text).map_err(|err| PathError::Syntax {
            path: text.to_owned(),
            message: err.to_string(),
        })?;
        Ok(JsonPath {
            text: Arc::from(text),
            inner: Arc::new(Engine(engine)),
            fast: FastPath::parse(text).map(Arc::new),
        })
    }

    /// True when the query is a singular query (RFC 9535 §2.3.5.1): only name and index
    /// selectors, so it selects at most one node. Queries outside the plain subset (quoted
    /// names with escapes, ...) are conservatively reported as not singular.
    pub fn is_singular(&self) -> bool {
        self.fast
            .as_ref()
            .is_some_and(|f| f.after_wildcard.is_none())
    }

    /// The query text, exactly as given to [`JsonPath::compile`].
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Evaluates the query against `root` and returns the selected nodes in nodelist
    /// order (RFC 9535 §2.1.2: document order; object members in the map's order).
    /// Empty when nothing matches. The values borrow from `root`.
    #[must_use]
    pub fn select<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut out = Vec::new();
        self.select_into(root, &mut out);
        out
    }

    /// Exactly-one helper: Ok(None) when nothing selected, Ok(Some(v)) for one, Err(count) for several.
    ///
    /// # Errors
    ///
    /// `Err(n)` with the number of selected nodes (`n >= 2`) when the query selects
    /// more than one node.
    pub fn select_one<'a>(&self, root: &'a Value) -> Result<Option<&'a Value>, usize> {
        let nodes = self.select(root);
        match nodes.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => Err(many.len()),
        }
    }
}

impl Selector for JsonPath {
    fn select_into<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>) {
        match &self.fast {
            Some(fast) => fast.select_into(root, out),
            None => self.inner.select_into(root, out),
        }
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The guard: length first (cheap, and bounds the scan), then nesting depth.
fn guard(text: &str) -> Result<(), PathError> {
    if text.len() > MAX_QUERY_LEN {
        return Err(PathError::TooLong {
            path: excerpt(text),
            len: text.len(),
            max: MAX_QUERY_LEN,
        });
    }
    let depth = nesting_depth(text);
    if depth > MAX_NESTING {
        return Err(PathError::TooDeep {
            path: excerpt(text),
            depth,
            max: MAX_NESTING,
        });
    }
    Ok(())
}

/// The deepest simultaneous nesting of `(` and `[` in `text`, counted together.
///
/// String literals (`'…'` and `"…"`, where a backslash escapes the next character,
/// RFC 9535 §2.3.1.1) are skipped, so brackets inside names and filter literals do
/// not count. Unbalanced closers never take the depth below zero. Works on bytes:
/// the characters it looks at are ASCII, which never occur inside a multi-byte
/// UTF-8 sequence.
fn nesting_depth(text: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for &byte in text.as_bytes() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == open {
                quote = None;
            }
            continue;
        }
        match byte {
            b'\'' | b'"' => quote = Some(byte),
            b'(' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The first [`EXCERPT_CHARS`] characters of `text`, with `…` appended when cut.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The engine behind the [`Selector`] seam.
#[derive(Debug)]
struct Engine(jsonpath_rfc9535::JsonPath);

impl Selector for Engine {
    fn select_into<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>) {
        out.extend(self.0.query_values(root));
    }
}

/// One step of a plain path that selects at most one child.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Name selector (RFC 9535 §2.3.1): the member with exactly this name.
    Name(Box<str>),
    /// Index selector (RFC 9535 §2.3.3): negative counts from the end.
    Index(i64),
}

/// A plain path: `$`, then name and index selectors, with at most one wildcard
/// (RFC 9535 §2.3.2) anywhere. Evaluated directly and iteratively.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FastPath {
    /// Steps before the wildcard (all steps when there is none).
    prefix: Vec<Step>,
    /// `Some(steps after the wildcard)` when the path has a wildcard.
    after_wildcard: Option<Vec<Step>>,
}

/// Largest index magnitude RFC 9535 §2.1 allows (I-JSON: 2^53 - 1).
const MAX_SAFE_INDEX: i64 = (1 << 53) - 1;

impl FastPath {
    /// Recognises a plain path, or returns `None` so the engine evaluates the query.
    ///
    /// Deliberately strict: anything outside the plain subset — whitespace, escapes
    /// in quoted names, several selectors in one bracket, slices, filters, descendant
    /// segments, a second wildcard — is left to the engine. Only called after the
    /// engine accepted the text, so it never decides validity.
    fn parse(text: &str) -> Option<FastPath> {
        let mut rest = text.strip_prefix('$')?;
        let mut prefix = Vec::new();
        let mut after_wildcard: Option<Vec<Step>> = None;
        while !rest.is_empty() {
            let (step, tail) = if let Some(tail) = rest.strip_prefix('.') {
                parse_dot(tail)?
            } else if let Some(tail) = rest.strip_prefix('[') {
                parse_bracket(tail)?
            } else {
                return None;
            };
            rest = tail;
            match (step, &mut after_wildcard) {
                (None, None) => after_wildcard = Some(Vec::new()),
                (None, Some(_)) => return None,
                (Some(step), None) => prefix.push(step),
                (Some(step), Some(suffix)) => suffix.push(step),
            }
        }
        Some(FastPath {
            prefix,
            after_wildcard,
        })
    }
}

/// After a `.`: `*` (wildcard, returned as `None`) or a member-name-shorthand
/// (RFC 9535 §2.5.1.1: `name-first *name-char`).
fn parse_dot(text: &str) -> Option<(Option<Step>, &str)> {
    if let Some(tail) = text.strip_prefix('*') {
        return Some((None, tail));
    }
    let first = text.chars().next()?;
    if !is_name_first(first) {
        return None;
    }
    let end = text
        .char_indices()
        .find(|&(_, c)| !is_name_first(c) && !c.is_ascii_digit())
        .map_or(text.len(), |(at, _)| at);
    let (name, tail) = text.split_at(end);
    Some((Some(Step::Name(name.into())), tail))
}

/// `name-first = ALPHA / "_" / %x80-D7FF / %xE000-10FFFF` (RFC 9535 §2.5.1.1).
fn is_name_first(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c >= '\u{80}'
}

/// After a `[`: `*]` (wildcard, `None`), a quoted name without escapes, or an integer
/// index, followed by `]`.
fn parse_bracket(text: &str) -> Option<(Option<Step>, &str)> {
    if let Some(tail) = text.strip_prefix("*]") {
        return Some((None, tail));
    }
    let (step, tail) = match text.as_bytes().first()? {
        quote @ (b'\'' | b'"') => parse_quoted(&text[1..], char::from(*quote))?,
        _ => parse_index(text)?,
    };
    Some((Some(step), tail.strip_prefix(']')?))
}

/// A string literal body up to its closing `quote` (RFC 9535 §2.3.1.1), accepted only
/// when it has no escape sequences and no control characters.
fn parse_quoted(text: &str, quote: char) -> Option<(Step, &str)> {
    for (at, c) in text.char_indices() {
        if c == quote {
            let tail = &text[at + c.len_utf8()..];
            return Some((Step::Name(text[..at].into()), tail));
        }
        if c == '\\' || c < '\u{20}' {
            return None;
        }
    }
    None
}

/// `int = "0" / (["-"] DIGIT1 *DIGIT)` within ±(2^53 − 1) (RFC 9535 §2.1, §2.3.3.1).
fn parse_index(text: &str) -> Option<(Step, &str)> {
    let (negative, digits_and_tail) = match text.strip_prefix('-') {
        Some(tail) => (true, tail),
        None => (false, text),
    };
    let len = digits_and_tail
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let (digits, tail) = digits_and_tail.split_at(len);
    if digits.is_empty() || (digits.starts_with('0') && (negative || digits.len() > 1)) {
        return None;
    }
    let mut value: i64 = 0;
    for digit in digits.bytes() {
        value = value
            .checked_mul(10)?
            .checked_add(i64::from(digit - b'0'))?;
        if value > MAX_SAFE_INDEX {
            return None;
        }
    }
    Some((Step::Index(if negative { -value } else { value }), tail))
}

/// Follows `steps` from `node`; `None` as soon as a step selects nothing.
fn walk<'a>(mut node: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    for step in steps {
        node = match step {
            Step::Name(name) => member(node.as_object()?, name)?,
            Step::Index(index) => element(node.as_array()?, *index)?,
        };
    }
    Some(node)
}

/// Objects up to this many members are searched by a linear scan of the keys, which
/// beats the map's own lookup (B-tree compares or, with `preserve_order`, hashing) on
/// the small records typical of REST payloads.
const LINEAR_SCAN_MAX: usize = 16;

/// The member named `name` (RFC 9535 §2.3.1.2: exact, unnormalised key comparison).
fn member<'a>(members: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    if members.len() <= LINEAR_SCAN_MAX {
        members
            .iter()
            .find_map(|(key, value)| (key == name).then_some(value))
    } else {
        members.get(name)
    }
}

/// Array element at `index`, negative counting from the end (RFC 9535 §2.3.3.2).
fn element(elements: &[Value], index: i64) -> Option<&Value> {
    let position = if index >= 0 {
        usize::try_from(index).ok()?
    } else {
        let back = usize::try_from(index.unsigned_abs()).ok()?;
        elements.len().checked_sub(back)?
    };
    elements.get(position)
}

impl Selector for FastPath {
    fn select_into<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>) {
        let Some(base) = walk(root, &self.prefix) else {
            return;
        };
        let Some(suffix) = &self.after_wildcard else {
            out.push(base);
            return;
        };
        match base {
            Value::Array(elements) if suffix.is_empty() => out.extend(elements),
            Value::Object(members) if suffix.is_empty() => out.extend(members.values()),
            Value::Array(elements) => {
                out.reserve(elements.len());
                out.extend(elements.iter().filter_map(|e| walk(e, suffix)));
            }
            Value::Object(members) => {
                out.reserve(members.len());
                out.extend(members.values().filter_map(|m| walk(m, suffix)));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `$` followed by `n` nested filters: `$[?@[?@[?@]]]` for n = 3 (depth n).
    fn nested_filters(n: usize) -> String {
        format!("${}{}", "[?@".repeat(n), "]".repeat(n))
    }

    #[test]
    fn length_limit_is_inclusive() {
        let ok = format!("$.{}", "a".repeat(MAX_QUERY_LEN - 2));
        assert_eq!(ok.len(), 4096);
        let path = JsonPath::compile(&ok).unwrap();
        assert_eq!(path.as_str(), ok);

        let too_long = format!("$.{}", "a".repeat(MAX_QUERY_LEN - 1));
        let err = JsonPath::compile(&too_long).unwrap_err();
        assert!(
            matches!(&err, PathError::TooLong { len: 4097, max: 4096, path } if path.starts_with("$.aaa") && path.ends_with('…')),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("4097") && message.contains("4096"),
            "{message}"
        );
        assert!(message.contains("$.aaaa"), "{message}");

        // Bytes, not characters: 2 + 2047 × 2 = 4096 bytes.
        let multibyte = format!("$.{}", "é".repeat(2047));
        assert!(JsonPath::compile(&multibyte).is_ok());
        let multibyte = format!("$.{}", "é".repeat(2048));
        assert!(matches!(
            JsonPath::compile(&multibyte),
            Err(PathError::TooLong { len: 4098, .. })
        ));
    }

    #[test]
    fn nesting_limit_is_inclusive() {
        let eight = nested_filters(8);
        assert_eq!(nesting_depth(&eight), 8);
        assert!(JsonPath::compile(&eight).is_ok(), "{eight}");

        let nine = nested_filters(9);
        let err = JsonPath::compile(&nine).unwrap_err();
        assert_eq!(
            err,
            PathError::TooDeep {
                path: nine.clone(),
                depth: 9,
                max: 8
            }
        );
        let message = err.to_string();
        assert!(
            message.contains(&nine) && message.contains("limit is 8"),
            "{message}"
        );

        // Parentheses and brackets count together.
        let mixed_ok = "$[?((((((length(@.a)==1))))))]"; // [ + 6 ( + length( = 8
        assert_eq!(nesting_depth(mixed_ok), 8);
        assert!(JsonPath::compile(mixed_ok).is_ok());
        let mixed_deep = "$[?(((((((length(@.a)==1)))))))]";
        assert!(matches!(
            JsonPath::compile(mixed_deep),
            Err(PathError::TooDeep {
                depth: 9,
                max: 8,
                ..
            })
        ));

        // Sequential segments do not nest.
        let sequential = format!("${}", "[0]".repeat(100));
        assert_eq!(nesting_depth(&sequential), 1);
        assert!(JsonPath::compile(&sequential).is_ok());
    }

    #[test]
    fn brackets_inside_string_literals_do_not_count() {
        let cases = [
            "$['((((((((([[[[[[[[[']",
            r#"$["[[[[[[[[[[((((((((((("]"#,
            r"$['it\'s [[[[[[[[[[']",
            r#"$["say \"[[[[[[[[[[\" ]]]"]"#,
            r#"$["it's [[[[[[[[[["]"#,
            r#"$['"[[[[[[[[[[']"#,
            r"$['\\'][0]",
            "$[?@.a=='(((((((((((' && @.b==\"[[[[[[[[[[[\"]",
        ];
        for case in cases {
            assert!(nesting_depth(case) <= 2, "{case}: {}", nesting_depth(case));
            assert!(JsonPath::compile(case).is_ok(), "{case}");
        }
        // After a string closes, counting resumes.
        let after = format!("$['(']{}", nested_filters(9).trim_start_matches('$'));
        assert_eq!(nesting_depth(&after), 9);
        assert!(matches!(
            JsonPath::compile(&after),
            Err(PathError::TooDeep { .. })
        ));
    }

    #[test]
    fn syntax_error_names_the_path() {
        for bad in ["$.a[", "$..", "a.b", "$[?length(@.*)<3]", "$[01]", " $"] {
            let err = JsonPath::compile(bad).unwrap_err();
            let PathError::Syntax { path, message } = &err else {
                panic!("{bad}: expected a syntax error, got {err:?}");
            };
            assert_eq!(path, bad);
            assert!(!message.is_empty());
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn select_one_counts() {
        let doc = json!({"a": [1, 2], "b": {"c": 3}});
        let one = JsonPath::compile("$.b.c").unwrap();
        assert_eq!(one.select_one(&doc), Ok(Some(&json!(3))));
        let none = JsonPath::compile("$.b.missing").unwrap();
        assert_eq!(none.select_one(&doc), Ok(None));
        let several = JsonPath::compile("$.a[*]").unwrap();
        assert_eq!(several.select_one(&doc), Err(2));
        let filtered = JsonPath::compile("$..[?@ > 0]").unwrap();
        assert!(filtered.fast.is_none());
        assert_eq!(filtered.select_one(&doc), Err(3));
        let single_filtered = JsonPath::compile("$.a[?@ == 2]").unwrap();
        assert_eq!(single_filtered.select_one(&doc), Ok(Some(&json!(2))));
    }

    #[test]
    fn fast_path_recognises_plain_paths_only() {
        let accepted = [
            "$",
            "$.a",
            "$['a']",
            "$[\"a\"]",
            "$[0]",
            "$[-1]",
            "$.*",
            "$[*]",
            "$.a[*].b",
            "$.a.b[2]['c d'][\"e.f\"].*",
            "$.é_1",
            "$['']",
            "$[9007199254740991]",
            "$[-9007199254740991]",
        ];
        for text in accepted {
            let path = JsonPath::compile(text).unwrap();
            assert!(path.fast.is_some(), "{text} should take the fast path");
        }
        let refused = [
            "$..a",
            "$[0,1]",
            "$[0:1]",
            "$[?@]",
            "$.a.*.b.*",
            "$[*][*]",
            "$[ 0]",
            "$ .a",
            r"$['a\'b']",
            r#"$["a\u0041"]"#,
            "$[@.a]",
        ];
        for text in refused {
            if let Ok(path) = JsonPath::compile(text) {
                assert!(path.fast.is_none(), "{text} should go to the engine");
            }
            assert!(FastPath::parse(text).is_none(), "{text}");
        }
        // Invalid queries the fast-path parser must not take for plain paths.
        for text in [
            "$[01]",
            "$[-0]",
            "$[9007199254740992]",
            "$.1a",
            "$.a-b",
            "$[",
            "$['a]",
            "$.",
            "$x",
            "$['\u{1}']",
        ] {
            assert!(FastPath::parse(text).is_none(), "{text}");
            assert!(JsonPath::compile(text).is_err(), "{text}");
        }
    }

    /// Runs `text` through the fast path and the engine on `doc`; asserts equality.
    fn assert_same(path: &JsonPath, doc: &Value) {
        let fast = path.fast.as_ref().expect("fast path expected");
        let mut by_fast = Vec::new();
        fast.select_into(doc, &mut by_fast);
        let mut by_engine = Vec::new();
        path.inner.select_into(doc, &mut by_engine);
        assert_eq!(
            by_fast,
            by_engine,
            "{} on {doc}: fast path and engine differ",
            path.as_str()
        );
    }

    #[test]
    fn fast_path_matches_engine_on_samples() {
        let docs = [
            json!({"a": [{"b": 1}, {"b": 2}, {"c": 3}, 4], "o": {"x": {"b": 5}, "y": 6, "z": {"b": 7}}}),
            json!([[1, 2, 3], {"0": "zero"}, [], "s", null]),
            json!("scalar"),
            json!({"": {"": 1}, "c d": 2, "e.f": 3, "é_1": 4}),
        ];
        let paths = [
            "$",
            "$.a",
            "$.a[0]",
            "$.a[-1]",
            "$.a[-4]",
            "$.a[-5]",
            "$.a[4]",
            "$.a[*]",
            "$.a[*].b",
            "$.a.*.b",
            "$.o.*.b",
            "$.o[*]",
            "$.*",
            "$[*]",
            "$[*][0]",
            "$[*][-1]",
            "$[0][*]",
            "$[1]['0']",
            "$[1][0]",
            "$['']['']",
            "$['c d']",
            "$[\"e.f\"]",
            "$.é_1",
            "$[0].a",
            "$.a[0].b.c",
            "$[-9007199254740991]",
            "$[9007199254740991]",
        ];
        for text in paths {
            let path = JsonPath::compile(text).unwrap();
            for doc in &docs {
                assert_same(&path, doc);
            }
        }
    }

    /// The CTS file, when the conformance data sits beside the checkout.
    fn cts() -> Option<Value> {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/jsonpath-cts/cts.json"
        );
        let text = std::fs::read_to_string(file).ok()?;
        Some(serde_json::from_str(&text).expect("cts.json is JSON"))
    }

    #[test]
    fn fast_path_matches_engine_on_cts() {
        let Some(cts) = cts() else {
            println!("skipping: ../shared/conformance/jsonpath-cts not found (conformance data lives outside the repo)");
            return;
        };
        let tests = cts["tests"].as_array().expect("tests array");
        let documents: Vec<&Value> = tests.iter().filter_map(|t| t.get("document")).collect();
        let mut fast_selectors = 0;
        for test in tests {
            let selector = test["selector"].as_str().expect("selector");
            if test.get("invalid_selector") == Some(&Value::Bool(true)) {
                assert!(
                    FastPath::parse(selector).is_none(),
                    "fast path takes invalid CTS selector {selector:?} ({})",
                    test["name"]
                );
                continue;
            }
            let Ok(path) = JsonPath::compile(selector) else {
                continue; // refused by the guard; the CTS runner reports those
            };
            if path.fast.is_none() {
                continue;
            }
            fast_selectors += 1;
            for doc in &documents {
                assert_same(&path, doc);
            }
        }
        println!(
            "fast path vs engine: {fast_selectors} CTS selectors × {} documents agree",
            documents.len()
        );
        assert!(
            fast_selectors >= 30,
            "only {fast_selectors} CTS selectors took the fast path"
        );
    }

    #[test]
    fn fast_path_is_iterative_on_deep_documents() {
        // 1365 × "[0]" after "$" is exactly 4096 bytes.
        let steps = (MAX_QUERY_LEN - 1) / 3;
        let text = format!("${}", "[0]".repeat(steps));
        let path = JsonPath::compile(&text).unwrap();
        assert!(path.fast.is_some());
        let wildcard = JsonPath::compile(&format!("$[*]{}", "[0]".repeat(steps - 1))).unwrap();
        assert!(wildcard.fast.is_some());

        let mut doc = json!("leaf");
        for _ in 0..steps {
            doc = Value::Array(vec![doc]);
        }
        // Evaluate on a deliberately small stack: recursion per step would overflow it.
        let found = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn_scoped(scope, || {
                    let mut out = path.select(&doc);
                    out.extend(wildcard.select(&doc));
                    out.into_iter().cloned().collect::<Vec<_>>()
                })
                .unwrap()
                .join()
                .unwrap()
        });
        assert_eq!(found, vec![json!("leaf"), json!("leaf")]);
        assert_same(&path, &doc);
    }

    #[test]
    fn compiled_paths_are_shareable() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<JsonPath>();
        let path = JsonPath::compile("$.a").unwrap();
        let copy = path.clone();
        assert!(Arc::ptr_eq(&path.inner, &copy.inner));
        assert_eq!(copy.to_string(), "$.a");
        let as_selector: &dyn Selector = &copy;
        let doc = json!({"a": 1});
        let mut out = Vec::new();
        as_selector.select_into(&doc, &mut out);
        assert_eq!(out, vec![&json!(1)]);
    }
}
