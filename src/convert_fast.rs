//! Fast path of the conversion (issue 6, benchmark 1): JSON bytes → typed frames without a
//! `serde_json::Value` DOM, for the common rule shapes.
//!
//! [`try_convert`] gives exactly what [`crate::convert::convert`] gives for
//! `serde_json::from_slice(body)` — same frames, values, nulls, notices (texts included),
//! labels, meta and errors — or `None` when the rule is not eligible (the caller then takes
//! the DOM path). [`FastPlan`] is the same compiled once per rule, with the caller's notices
//! (`convert_pages` of one page); the pipeline uses it for rules without pagination.
//!
//! # How
//!
//! One pass over the bytes with a small validating scanner of our own. It accepts exactly
//! the documents `serde_json::from_slice::<Value>` accepts (RFC 8259 grammar, whitespace
//! ` \t\n\r`, UTF-8, escapes with paired surrogates, no control characters in strings,
//! nesting below 128 levels, numbers in `f64` range, nothing after the value); the unit tests
//! check that differentially on mutated documents. sonic-rs's lazy iterators were tried and
//! not used: they accept `1e400`, lone surrogates and bytes after the value (serde_json
//! rejects all three, so "not JSON" would differ), and their checked skip recurses without a
//! limit (a test with 200 nested arrays overflowed the stack).
//!
//! The rule's paths are compiled into small tries: one for the frame node (labels,
//! `labelsFrom`, `^PATH` fields, where the rows are, column-mode fields) and one for a row
//! (the fields). The scanner walks only the members a trie names and skips (while
//! validating) the rest. When every row path is one member name (`$.a`, `$['b c']`, the usual
//! case) a row is one loop over its members. Each key is first compared, as written with its
//! quotes, with the key the previous row had at that point (one or two 8-byte words loaded
//! from the body, so the key itself is not scanned); otherwise it is read and looked up by
//! length and two 8-byte words in a small hash table. Selected values are kept as byte ranges
//! and converted into the typed columns after each row; after an array's first row, the
//! columns reserve room for as many rows as the rest of the body holds rows of that size:
//!
//! * numbers: the `serde_json::Number` serde_json would build, computed from the digits
//!   (integers; decimals with at most 19 digits and a decimal exponent within ±22 use
//!   serde_json's own formula, `significand as f64` times or divided by an exact power of
//!   ten); a number cell takes its `as_f64` directly; other numbers are parsed by serde_json;
//! * strings without escapes are used in place (else decoded by serde_json);
//! * `time` with format `auto`/`rfc3339`: `YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM)` (years
//!   1900–2200) is read directly, with the day number of the last date cached (the tests
//!   compare it with jiff's `Timestamp` parser, which the DOM path uses); other strings go to
//!   jiff / `to_epoch_ns`;
//! * everything else (objects, arrays, bools, numeric or odd time strings, …) becomes a small
//!   `Value` and goes through the DOM path's own `push_value`, so the conversion rules are
//!   shared, not copied.
//!
//! Shaping, notices and meta are the DOM path's code ([`crate::convert`]'s `finish`).
//!
//! DOM semantics reproduced: object members are looked up by exact key and a repeated key
//! keeps its **last** value (serde_json's map; a repeated key clears what the earlier one
//! selected below it); selecting the members of an object (`.*`, `[*]`) gives them in key
//! order (the map is a `BTreeMap`), repeated keys once.
//!
//! # Eligible rules
//!
//! Simple paths are `$` followed by `.name`, `['name']` / `["name"]` (no escapes), `[n]`
//! with `n >= 0`, and `.*` / `[*]` — the subset `crate::jsonpath` evaluates itself.
//! Negative indexes (`$[-1]`: the array's length is not known while streaming), slices,
//! filters, descendants, unions and anything with whitespace are not eligible.
//!
//! * `frames`: absent, a simple path without wildcard, or one ending in `[*]` / `.*` with no
//!   other wildcard;
//! * `rows`: a simple path ending in `[*]` / `.*` with no other wildcard, or a simple path
//!   without wildcard (one row); or absent (column mode);
//! * row mode: every field `@key`, `@index`, `^PATH` (simple, no wildcard) or a simple path
//!   without wildcard — or, for `type: json`, with one wildcard (`$.labels[*].name`, always a
//!   JSON list, as in the DOM path);
//! * column mode: every field `@key`, `@index`, `^PATH` or a simple path with at most one
//!   wildcard (`$.times[*]`, `$.data[*].x`, `$.x`);
//! * `labels`, `labelsFrom`: simple paths without wildcard;
//! * `timezone`: any; `${__response.PATH}` with a simple path without wildcard (read in a
//!   first pass over the document);
//! * where rows or a column wildcard are taken, no other path may go deeper through the same
//!   node (e.g. `rows: $.data[*]` with a label `$.data[0].x` is not eligible).
//!
//! All 33 rules of `config-examples/` are eligible (a unit test checks it).
//!
//! # Errors
//!
//! `Some(Err(FastError::NotJson(e)))`: the body is not JSON; `e` is serde_json's own error
//! for these bytes (the caller maps it to its "not JSON" error exactly as for the DOM path).
//! `Some(Err(FastError::Convert(e)))`: the document does not fit the rule or the format is
//! impossible — the DOM path's [`ConvertError`]. The rare failures that need the document
//! (a `labelsFrom` that is not an object, ragged column-mode fields) are not rebuilt here: the
//! conversion then runs the DOM path itself, so its messages are the DOM path's.

use std::borrow::Cow;

use jiff::tz::TimeZone;
use serde_json::{Number, Value};

use crate::convert::{
    build_labels, convert_pages, empty_column, finish, push_value, resolve_zones_by, str_to_f64,
    BadValues, ConvertError, NodeTable,
};
use crate::frame::{Column, Frame, Notice};
use crate::rule::{FieldSource, FieldSpec, NodePath, Rule, ZoneSpec};
use crate::timeparse::TimeFormat;

/// Why the fast path gives no frames (see the module docs).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FastError {
    /// The body is not JSON: serde_json's error for it (as the DOM path's parse would give).
    #[error("{0}")]
    NotJson(serde_json::Error),
    /// The document does not fit the rule, or the forced format is impossible.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

/// Converts `body` (JSON bytes) with `rule` without building a DOM.
///
/// Returns `None` when the rule is not eligible (module docs); otherwise what
/// `convert(rule, &serde_json::from_slice(body)?, executed_query)` gives, with a parse failure
/// as [`FastError::NotJson`].
pub fn try_convert(
    rule: &Rule,
    body: &[u8],
    executed_query: Option<String>,
) -> Option<Result<Vec<Frame>, FastError>> {
    Some(FastPlan::new(rule)?.convert(body, executed_query, Vec::new()))
}

/// True when [`try_convert`] handles `rule` (it would not return `None`).
pub fn is_eligible(rule: &Rule) -> bool {
    Plan::compile(rule).is_some()
}

/// A rule compiled for the fast path (its paths as tries), for converting bodies.
#[derive(Debug)]
pub struct FastPlan<'r> {
    plan: Plan<'r>,
}

impl<'r> FastPlan<'r> {
    /// The plan of `rule`, or `None` when the rule is not eligible (module docs).
    pub fn new(rule: &'r Rule) -> Option<FastPlan<'r>> {
        Plan::compile(rule).map(|plan| FastPlan { plan })
    }

    /// Converts `body` as `convert_pages(rule, &[&doc], executed_query, notices)` would
    /// convert its DOM `doc`; `notices` (e.g. a stale-cache warning) come first on the first
    /// frame.
    ///
    /// # Errors
    /// [`FastError::NotJson`] when serde_json rejects `body`; [`FastError::Convert`] as the
    /// DOM path.
    pub fn convert(
        &self,
        body: &[u8],
        executed_query: Option<String>,
        notices: Vec<Notice>,
    ) -> Result<Vec<Frame>, FastError> {
        let rule = self.plan.rule;
        match self.plan.run(body, notices.clone()) {
            Ok((tables, bad, notices)) => {
                finish(rule, tables, &bad, notices, executed_query).map_err(FastError::Convert)
            }
            // Not JSON (serde_json gives the message), or a failure that needs the document:
            // the DOM path decides, so the outcome is its outcome.
            Err(Stop::Invalid | Stop::Fallback) => {
                let doc: Value = serde_json::from_slice(body).map_err(FastError::NotJson)?;
                convert_pages(rule, &[&doc], executed_query, notices).map_err(FastError::Convert)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Paths

/// One step of a simple path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// Member by exact name.
    Name(Box<str>),
    /// Array element `n >= 0`.
    Index(usize),
    /// Every member / element.
    Wild,
}

/// Largest index RFC 9535 allows (2^53 − 1).
const MAX_INDEX: u64 = (1 << 53) - 1;

/// Parses a simple path (module docs), or `None`. The text was accepted by the JSONPath
/// engine already; this grammar is `crate::jsonpath`'s plain-path subset minus negative
/// indexes, so the steps mean what the engine means.
fn parse_path(text: &str) -> Option<Vec<Seg>> {
    let mut rest = text.strip_prefix('$')?;
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix('.') {
            if let Some(t) = tail.strip_prefix('*') {
                segs.push(Seg::Wild);
                rest = t;
                continue;
            }
            let first = tail.chars().next()?;
            if !is_name_first(first) {
                return None;
            }
            let end = tail
                .char_indices()
                .find(|&(_, c)| !is_name_first(c) && !c.is_ascii_digit())
                .map_or(tail.len(), |(at, _)| at);
            segs.push(Seg::Name(tail[..end].into()));
            rest = &tail[end..];
        } else if let Some(tail) = rest.strip_prefix('[') {
            if let Some(t) = tail.strip_prefix("*]") {
                segs.push(Seg::Wild);
                rest = t;
                continue;
            }
            let (seg, after) = match tail.as_bytes().first()? {
                q @ (b'\'' | b'"') => {
                    let quote = char::from(*q);
                    let body = &tail[1..];
                    let mut found = None;
                    for (at, c) in body.char_indices() {
                        if c == quote {
                            found = Some(at);
                            break;
                        }
                        if c == '\\' || c < '\u{20}' {
                            return None;
                        }
                    }
                    let at = found?;
                    (Seg::Name(body[..at].into()), &body[at + 1..])
                }
                _ => {
                    let len = tail.bytes().take_while(u8::is_ascii_digit).count();
                    let digits = &tail[..len];
                    if digits.is_empty() || (digits.starts_with('0') && digits.len() > 1) {
                        return None;
                    }
                    let n: u64 = digits.parse().ok()?;
                    if n > MAX_INDEX {
                        return None;
                    }
                    (Seg::Index(usize::try_from(n).ok()?), &tail[len..])
                }
            };
            segs.push(seg);
            rest = after.strip_prefix(']')?;
        } else {
            return None;
        }
    }
    Some(segs)
}

/// `name-first` of RFC 9535 §2.5.1.1.
fn is_name_first(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c >= '\u{80}'
}

/// A simple path without wildcard.
fn plain_path(text: &str) -> Option<Vec<Seg>> {
    parse_path(text).filter(|s| !s.contains(&Seg::Wild))
}

// ---------------------------------------------------------------------------------------
// Plan: the rule's paths as tries

/// What a trie node does with its value besides capturing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Nothing (descend into named / indexed children).
    None,
    /// Every member is a row (rows `P[*]` / `P.*`).
    RowsEach,
    /// The value is the one row (rows `P`).
    RowsOne,
    /// Column mode `P[*]…`: every member feeds column group `g`.
    ColEach(usize),
}

#[derive(Debug)]
struct TNode {
    parent: usize,
    /// Capture slots set to this node's value.
    caps: Vec<usize>,
    names: Names,
    indices: Vec<(usize, usize)>,
    act: Act,
    /// Capture slots in this subtree (cleared when a repeated key selects it again).
    slots_below: Vec<usize>,
    /// Column-mode fields fed in this subtree.
    fields_below: Vec<usize>,
    /// Rows are taken in this subtree.
    rows_below: bool,
}

impl TNode {
    fn new(parent: usize) -> TNode {
        TNode {
            parent,
            caps: Vec::new(),
            names: Names::default(),
            indices: Vec::new(),
            act: Act::None,
            slots_below: Vec::new(),
            fields_below: Vec::new(),
            rows_below: false,
        }
    }
}

#[derive(Debug)]
struct Trie {
    nodes: Vec<TNode>,
}

impl Trie {
    fn new() -> Trie {
        Trie {
            nodes: vec![TNode::new(0)],
        }
    }

    /// The node of a path without wildcard, created as needed.
    fn insert(&mut self, segs: &[Seg]) -> Option<usize> {
        let mut at = 0;
        for seg in segs {
            let existing = match seg {
                Seg::Name(n) => self.nodes[at]
                    .names
                    .list
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|x| x.1),
                Seg::Index(i) => self.nodes[at]
                    .indices
                    .iter()
                    .find(|(k, _)| k == i)
                    .map(|x| x.1),
                Seg::Wild => return None,
            };
            at = match existing {
                Some(c) => c,
                None => {
                    let c = self.nodes.len();
                    self.nodes.push(TNode::new(at));
                    match seg {
                        Seg::Name(n) => self.nodes[at].names.push(n.clone(), c),
                        Seg::Index(i) => self.nodes[at].indices.push((*i, c)),
                        Seg::Wild => return None,
                    }
                    c
                }
            };
        }
        Some(at)
    }

    /// Fills the `*_below` sets (children are always created after their parent).
    fn close(&mut self, group_fields: &[Vec<usize>]) {
        for i in (0..self.nodes.len()).rev() {
            let node = &mut self.nodes[i];
            node.slots_below.extend(node.caps.iter().copied());
            match node.act {
                Act::RowsEach | Act::RowsOne => node.rows_below = true,
                Act::ColEach(g) => node.fields_below.extend(group_fields[g].iter().copied()),
                Act::None => {}
            }
            if i > 0 {
                let parent = node.parent;
                let (slots, fields, rows) = (
                    node.slots_below.clone(),
                    node.fields_below.clone(),
                    node.rows_below,
                );
                let p = &mut self.nodes[parent];
                p.slots_below.extend(slots);
                p.fields_below.extend(fields);
                p.rows_below |= rows;
            }
        }
    }

    /// Where rows or a wildcard are taken, nothing may go deeper through the same node.
    fn consistent(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.act == Act::None || (n.names.list.is_empty() && n.indices.is_empty()))
    }
}

/// How the frame nodes are found.
#[derive(Debug)]
enum Frames {
    /// The document is the one frame node.
    Root,
    /// `frames: P` (no wildcard): zero or one frame node.
    One(Vec<Seg>),
    /// `frames: P[*]`: the members of P.
    Members(Vec<Seg>),
}

/// A column-mode wildcard: the suffix paths (relative to each member) of its fields.
#[derive(Debug)]
struct Group {
    trie: Trie,
    fields: Vec<usize>,
}

#[derive(Debug)]
struct Plan<'r> {
    rule: &'r Rule,
    frames: Frames,
    /// Paths relative to the frame node.
    frame_trie: Trie,
    /// Row mode: field paths relative to the row (capture slot = field index).
    row_trie: Trie,
    /// Every row path is one member name (`$.a`, `$['b']`): rows take [`walk_flat`].
    row_flat: bool,
    /// Flat rows: per entry of the row trie's root names, the capture slot when exactly
    /// one field reads that member.
    flat_slots: Vec<Option<usize>>,
    /// Row mode: every field is a path without wildcard (no `@key`, `@index`, `^PATH` or
    /// list field), so each row pushes its captures and nothing else.
    row_leaves: bool,
    /// Row mode, `type: json` fields with a wildcard (`$.labels[*].name`): the steps after
    /// the wildcard (the capture is the node before it). Always a JSON list, as in the DOM
    /// path.
    list_suffix: Vec<Option<Vec<Seg>>>,
    groups: Vec<Group>,
    row_mode: bool,
    /// Frame-level capture slots.
    slots: usize,
    labels_from_slot: Option<usize>,
    label_slots: Vec<usize>,
    /// Column mode: the capture slot of a field path without wildcard.
    col_slot: Vec<Option<usize>>,
    /// `^PATH` fields: the capture slot of the path (on the frame node).
    frame_slot: Vec<Option<usize>>,
    /// Per field: the `${__response.PATH}` zone path.
    zone_paths: Vec<Option<Vec<Seg>>>,
}

impl<'r> Plan<'r> {
    fn compile(rule: &'r Rule) -> Option<Plan<'r>> {
        let spec = &rule.response;
        let frames = match &spec.frames {
            None => Frames::Root,
            Some(NodePath::Plain(p)) => Frames::One(plain_path(p.as_str())?),
            Some(NodePath::Members(p)) => Frames::Members(plain_path(p.as_str())?),
        };
        let mut frame_trie = Trie::new();
        let mut slots = 0usize;
        let mut new_slot = || {
            slots += 1;
            slots - 1
        };
        let labels_from_slot = match &spec.labels_from {
            None => None,
            Some(p) => {
                let node = frame_trie.insert(&plain_path(p.as_str())?)?;
                let s = new_slot();
                frame_trie.nodes[node].caps.push(s);
                Some(s)
            }
        };
        let mut label_slots = Vec::with_capacity(spec.labels.len());
        for (_, p) in &spec.labels {
            let node = frame_trie.insert(&plain_path(p.as_str())?)?;
            let s = new_slot();
            frame_trie.nodes[node].caps.push(s);
            label_slots.push(s);
        }
        let mut frame_slot = vec![None; spec.fields.len()];
        for (i, f) in spec.fields.iter().enumerate() {
            match &f.source {
                FieldSource::Frame(p) => {
                    let node = frame_trie.insert(&plain_path(p.as_str())?)?;
                    let s = new_slot();
                    frame_trie.nodes[node].caps.push(s);
                    frame_slot[i] = Some(s);
                }
                FieldSource::Path(_) | FieldSource::Key | FieldSource::Index => {}
            }
        }
        let mut row_trie = Trie::new();
        let mut list_suffix = vec![None; spec.fields.len()];
        let mut groups: Vec<Group> = Vec::new();
        let mut col_slot = vec![None; spec.fields.len()];
        let row_mode = spec.rows.is_some();
        match &spec.rows {
            Some(rows) => {
                let (path, act) = match rows {
                    NodePath::Members(p) => (p, Act::RowsEach),
                    NodePath::Plain(p) => (p, Act::RowsOne),
                };
                let node = frame_trie.insert(&plain_path(path.as_str())?)?;
                frame_trie.nodes[node].act = act;
                for (i, f) in spec.fields.iter().enumerate() {
                    if let FieldSource::Path(p) = &f.source {
                        let segs = parse_path(p.as_str())?;
                        let prefix = match segs.iter().position(|s| *s == Seg::Wild) {
                            None => &segs[..],
                            Some(w) if f.kind == crate::settings::FieldType::Json => {
                                let suffix = &segs[w + 1..];
                                if suffix.contains(&Seg::Wild) {
                                    return None;
                                }
                                list_suffix[i] = Some(suffix.to_vec());
                                &segs[..w]
                            }
                            Some(_) => return None,
                        };
                        let node = row_trie.insert(prefix)?;
                        row_trie.nodes[node].caps.push(i);
                    }
                }
            }
            None => {
                for (i, f) in spec.fields.iter().enumerate() {
                    let FieldSource::Path(p) = &f.source else {
                        continue;
                    };
                    let segs = parse_path(p.as_str())?;
                    match segs.iter().position(|s| *s == Seg::Wild) {
                        None => {
                            let node = frame_trie.insert(&segs)?;
                            let s = new_slot();
                            frame_trie.nodes[node].caps.push(s);
                            col_slot[i] = Some(s);
                        }
                        Some(w) => {
                            let node = frame_trie.insert(&segs[..w])?;
                            let g = match frame_trie.nodes[node].act {
                                Act::ColEach(g) => g,
                                Act::None => {
                                    groups.push(Group {
                                        trie: Trie::new(),
                                        fields: Vec::new(),
                                    });
                                    frame_trie.nodes[node].act = Act::ColEach(groups.len() - 1);
                                    groups.len() - 1
                                }
                                _ => return None,
                            };
                            let leaf = groups[g].trie.insert(&segs[w + 1..])?;
                            groups[g].trie.nodes[leaf].caps.push(i);
                            groups[g].fields.push(i);
                        }
                    }
                }
            }
        }
        let zone_paths = spec
            .fields
            .iter()
            .map(|f| match &f.zone {
                ZoneSpec::Fixed(_) => Some(None),
                ZoneSpec::FromResponse(p) => plain_path(p.as_str()).map(Some),
            })
            .collect::<Option<Vec<_>>>()?;
        let group_fields: Vec<Vec<usize>> = groups.iter().map(|g| g.fields.clone()).collect();
        frame_trie.close(&group_fields);
        row_trie.close(&[]);
        for g in &mut groups {
            g.trie.close(&[]);
        }
        if !frame_trie.consistent() {
            return None;
        }
        let root = &row_trie.nodes[0];
        let row_flat = root.caps.is_empty()
            && root.indices.is_empty()
            && row_trie.nodes[1..]
                .iter()
                .all(|n| n.parent == 0 && n.names.list.is_empty() && n.indices.is_empty());
        let flat_slots = root
            .names
            .entries
            .iter()
            .map(|e| match row_trie.nodes[e.child].caps.as_slice() {
                [s] => Some(*s),
                _ => None,
            })
            .collect();
        let row_leaves = spec
            .fields
            .iter()
            .zip(&list_suffix)
            .all(|(f, suffix)| matches!(f.source, FieldSource::Path(_)) && suffix.is_none());
        Some(Plan {
            rule,
            frames,
            frame_trie,
            row_trie,
            row_flat,
            flat_slots,
            row_leaves,
            list_suffix,
            groups,
            row_mode,
            slots,
            labels_from_slot,
            label_slots,
            col_slot,
            frame_slot,
            zone_paths,
        })
    }

    /// The whole conversion up to shaping: tables, bad values, notices (zone notices).
    fn run(
        &self,
        body: &[u8],
        mut notices: Vec<Notice>,
    ) -> R<(Vec<NodeTable>, Vec<BadValues>, Vec<Notice>)> {
        let text = std::str::from_utf8(body).map_err(|_| Stop::Invalid)?;
        let spec = &self.rule.response;
        let zones = self.zones(text, &mut notices)?;
        let run = Run {
            plan: self,
            zones: &zones,
            text,
        };
        let mut scratch = Scratch {
            caps: vec![None; spec.fields.len()],
            hints: vec![usize::MAX; self.row_trie.nodes[0].names.entries.len() + 1],
            dates: DateCache::default(),
        };
        let mut sc = Sc::new(text);
        sc.ws();
        let nodes: Vec<NodeOut> = match &self.frames {
            Frames::Root => vec![run.frame_node(&mut sc, &mut scratch, None, 0)?],
            Frames::One(steps) => find(&mut sc, steps, &mut |sc: &mut Sc<'_>| {
                run.frame_node(sc, &mut scratch, None, 0)
            })?
            .into_iter()
            .collect(),
            Frames::Members(steps) => find(&mut sc, steps, &mut |sc: &mut Sc<'_>| {
                run.frames_each(sc, &mut scratch)
            })?
            .unwrap_or_default(),
        };
        sc.ws();
        if sc.pos != sc.b.len() {
            return Err(Stop::Invalid);
        }
        let mut bad: Vec<BadValues> = spec.fields.iter().map(|_| BadValues::default()).collect();
        let mut tables = Vec::with_capacity(nodes.len());
        for node in nodes {
            tables.push(run.table(node, &mut bad)?);
        }
        Ok((tables, bad, notices))
    }

    /// The zone of every field; `${__response.PATH}` zones are read in a first pass.
    fn zones(&self, text: &str, notices: &mut Vec<Notice>) -> R<Vec<TimeZone>> {
        let spec = &self.rule.response;
        let mut found: Vec<(&str, Option<Value>)> = Vec::new();
        for (f, steps) in spec.fields.iter().zip(&self.zone_paths) {
            let (ZoneSpec::FromResponse(p), Some(steps)) = (&f.zone, steps) else {
                continue;
            };
            let mut sc = Sc::new(text);
            sc.ws();
            let leaf = find(&mut sc, steps, &mut |sc: &mut Sc<'_>| sc.leaf())?;
            let value = match leaf {
                Some(l) => Some(leaf_value(text, l)?),
                None => None,
            };
            found.push((p.as_str(), value));
        }
        Ok(resolve_zones_by(spec, notices, |p| {
            found
                .iter()
                .find(|(t, _)| *t == p.as_str())
                .and_then(|(_, v)| v.as_ref())
        }))
    }
}

// ---------------------------------------------------------------------------------------
// Running a plan

/// Buffers reused across rows: the captures of one row (by field) and, for flat rows, the
/// learned key order (`hints[0]`: the entry of a row's first key; `hints[e + 1]`: the entry
/// of the key after entry `e`).
struct Scratch {
    caps: Vec<Option<Leaf>>,
    hints: Vec<usize>,
    dates: DateCache,
}

/// The typed output of one frame node while it is read.
struct NodeOut {
    key: Option<String>,
    index: usize,
    /// Frame-level captures (labels, `labelsFrom`, column-mode paths without wildcard).
    caps: Vec<Option<Leaf>>,
    /// Row mode: the columns, their bad values and the row count.
    cols: Vec<Column>,
    rows: usize,
    bad: Vec<BadValues>,
    /// Column mode: the values of each wildcard field.
    colvals: Vec<Vec<Leaf>>,
}

struct Run<'p, 'r, 't> {
    plan: &'p Plan<'r>,
    zones: &'p [TimeZone],
    text: &'t str,
}

impl<'t> Run<'_, '_, 't> {
    fn new_out(&self, key: Option<String>, index: usize) -> NodeOut {
        let fields = &self.plan.rule.response.fields;
        NodeOut {
            key,
            index,
            caps: vec![None; self.plan.slots],
            cols: if self.plan.row_mode {
                fields.iter().map(|f| empty_column(f.kind, 0)).collect()
            } else {
                Vec::new()
            },
            rows: 0,
            bad: fields.iter().map(|_| BadValues::default()).collect(),
            colvals: if self.plan.row_mode {
                Vec::new()
            } else {
                fields.iter().map(|_| Vec::new()).collect()
            },
        }
    }

    /// Every member of the value at `sc` is a frame node.
    fn frames_each(&self, sc: &mut Sc<'t>, scratch: &mut Scratch) -> R<Vec<NodeOut>> {
        let mut out = Vec::new();
        match sc.peek() {
            b'[' => {
                let mut more = sc.arr_first()?;
                while more {
                    let i = out.len();
                    out.push(self.frame_node(sc, scratch, None, i)?);
                    more = sc.arr_next()?;
                }
            }
            b'{' => {
                for (i, (key, start)) in sorted_members(sc)?.into_iter().enumerate() {
                    let mut sub = sc.at(start);
                    out.push(self.frame_node(&mut sub, scratch, Some(key), i)?);
                }
            }
            _ => sc.skip()?,
        }
        Ok(out)
    }

    fn frame_node(
        &self,
        sc: &mut Sc<'t>,
        scratch: &mut Scratch,
        key: Option<String>,
        index: usize,
    ) -> R<NodeOut> {
        let mut out = self.new_out(key, index);
        self.walk_frame(sc, scratch, 0, &mut out)?;
        Ok(out)
    }

    /// Walks the value at `sc` as frame-trie node `at`.
    fn walk_frame(
        &self,
        sc: &mut Sc<'t>,
        scratch: &mut Scratch,
        at: usize,
        out: &mut NodeOut,
    ) -> R<()> {
        let trie = &self.plan.frame_trie;
        let node = &trie.nodes[at];
        let start = sc.pos;
        let first = sc.peek();
        let kind = match node.act {
            Act::RowsEach => {
                match first {
                    b'[' => {
                        let mut i = 0;
                        let mut more = sc.arr_first()?;
                        while more {
                            let row_start = sc.pos;
                            self.row(sc, scratch, out, None, i)?;
                            if i == 0 && !matches!(self.plan.frames, Frames::Members(_)) {
                                reserve_rows(out, sc.b.len() - sc.pos, sc.pos - row_start);
                            }
                            i += 1;
                            more = sc.arr_next()?;
                        }
                    }
                    b'{' => {
                        for (i, (key, start)) in sorted_members(sc)?.into_iter().enumerate() {
                            let mut sub = sc.at(start);
                            self.row(&mut sub, scratch, out, Some(key), i)?;
                        }
                    }
                    _ => sc.skip()?,
                }
                None
            }
            Act::RowsOne => {
                self.row(sc, scratch, out, None, 0)?;
                None
            }
            Act::ColEach(g) => {
                let group = &self.plan.groups[g];
                match first {
                    b'[' => {
                        let mut more = sc.arr_first()?;
                        while more {
                            self.col_member(sc, scratch, group, out)?;
                            more = sc.arr_next()?;
                        }
                    }
                    b'{' => {
                        for (_, start) in sorted_members(sc)? {
                            let mut sub = sc.at(start);
                            self.col_member(&mut sub, scratch, group, out)?;
                        }
                    }
                    _ => sc.skip()?,
                }
                None
            }
            Act::None => match first {
                b'{' if !node.names.list.is_empty() => {
                    let mut k = sc.obj_first()?;
                    while let Some(key) = k {
                        match node.names.child(sc, key)? {
                            Some(c) => {
                                reset_frame(&trie.nodes[c], out);
                                self.walk_frame(sc, scratch, c, out)?;
                            }
                            None => sc.skip()?,
                        }
                        k = sc.obj_next()?;
                    }
                    Some(Kind::Obj)
                }
                b'[' if !node.indices.is_empty() => {
                    let mut i = 0;
                    let mut more = sc.arr_first()?;
                    while more {
                        match node.indices.iter().find(|(n, _)| *n == i) {
                            Some(&(_, c)) => {
                                reset_frame(&trie.nodes[c], out);
                                self.walk_frame(sc, scratch, c, out)?;
                            }
                            None => sc.skip()?,
                        }
                        i += 1;
                        more = sc.arr_next()?;
                    }
                    Some(Kind::Arr)
                }
                _ if node.caps.is_empty() => {
                    sc.skip()?;
                    None
                }
                _ => Some(sc.leaf()?.kind()),
            },
        };
        if !node.caps.is_empty() {
            let kind = match (kind, first) {
                (Some(k), _) => k,
                (None, b'{') => Kind::Obj,
                (None, b'[') => Kind::Arr,
                // A scalar that a row / wildcard action read: read it again (it is short).
                (None, _) => sc.at(start).leaf()?.kind(),
            };
            let leaf = Leaf::new(start, sc.pos, kind);
            for &s in &node.caps {
                out.caps[s] = Some(leaf);
            }
        }
        Ok(())
    }

    /// One member of a column-mode wildcard: its group's fields take what they select.
    fn col_member(
        &self,
        sc: &mut Sc<'t>,
        scratch: &mut Scratch,
        group: &Group,
        out: &mut NodeOut,
    ) -> R<()> {
        for &f in &group.fields {
            scratch.caps[f] = None;
        }
        walk_row(sc, &group.trie, 0, &mut scratch.caps)?;
        for &f in &group.fields {
            if let Some(l) = scratch.caps[f] {
                out.colvals[f].push(l);
            }
        }
        Ok(())
    }

    /// One row: captures its fields, then appends them to the node's columns.
    fn row(
        &self,
        sc: &mut Sc<'t>,
        scratch: &mut Scratch,
        out: &mut NodeOut,
        key: Option<String>,
        index: usize,
    ) -> R<()> {
        scratch.caps.iter_mut().for_each(|c| *c = None);
        if self.plan.row_flat {
            walk_flat(sc, &self.plan.row_trie, &self.plan.flat_slots, scratch)?;
        } else {
            walk_row(sc, &self.plan.row_trie, 0, &mut scratch.caps)?;
        }
        out.rows += 1;
        let fields = &self.plan.rule.response.fields;
        if self.plan.row_leaves {
            let cells = fields
                .iter()
                .zip(out.cols.iter_mut())
                .zip(out.bad.iter_mut())
                .zip(self.zones)
                .zip(scratch.caps.iter());
            for ((((f, col), bad), zone), cap) in cells {
                push_leaf(col, f, zone, *cap, self.text, bad, &mut scratch.dates)?;
            }
            return Ok(());
        }
        let cells = fields
            .iter()
            .zip(out.cols.iter_mut())
            .zip(out.bad.iter_mut())
            .zip(self.zones)
            .zip(scratch.caps.iter());
        for (i, ((((f, col), bad), zone), cap)) in cells.enumerate() {
            match &f.source {
                FieldSource::Path(_) => match &self.plan.list_suffix[i] {
                    None => push_leaf(col, f, zone, *cap, self.text, bad, &mut scratch.dates)?,
                    Some(suffix) => {
                        let list = json_list(self.text, *cap, suffix)?;
                        push_value(col, f, zone, Some(&list), bad);
                    }
                },
                FieldSource::Key => {
                    let v = key.as_ref().map(|k| Value::String(k.clone()));
                    push_value(col, f, zone, v.as_ref(), bad);
                }
                FieldSource::Index => push_value(col, f, zone, Some(&Value::from(index)), bad),
                // Filled when the frame node is finished (its path may come later).
                FieldSource::Frame(_) => {}
            }
        }
        Ok(())
    }

    /// The finished frame node as the DOM path's table (labels, columns); its bad values
    /// join `bad`.
    fn table(&self, mut out: NodeOut, bad: &mut [BadValues]) -> R<NodeTable> {
        let spec = &self.plan.rule.response;
        let labels_from = match self.plan.labels_from_slot.and_then(|s| out.caps[s]) {
            Some(l) => Some(leaf_value(self.text, l)?),
            None => None,
        };
        let mut label_values = Vec::with_capacity(self.plan.label_slots.len());
        for &s in &self.plan.label_slots {
            label_values.push(match out.caps[s] {
                Some(l) => Some(leaf_value(self.text, l)?),
                None => None,
            });
        }
        let selected: Vec<Result<Option<&Value>, usize>> =
            label_values.iter().map(|v| Ok(v.as_ref())).collect();
        // A message here is a mismatch: the DOM path words it (module docs).
        let labels =
            build_labels(spec, Ok(labels_from.as_ref()), &selected).map_err(|_| Stop::Fallback)?;
        let columns = if self.plan.row_mode {
            let fields = &self.plan.rule.response.fields;
            for (i, f) in fields.iter().enumerate() {
                if let Some(v) = self.frame_field(&out, i)? {
                    for _ in 0..out.rows {
                        push_value(
                            &mut out.cols[i],
                            f,
                            &self.zones[i],
                            v.as_ref(),
                            &mut out.bad[i],
                        );
                    }
                }
            }
            std::mem::take(&mut out.cols)
        } else {
            self.column_mode(&mut out)?
        };
        for (b, node_bad) in bad.iter_mut().zip(out.bad) {
            b.merge(node_bad);
        }
        Ok(NodeTable { labels, columns })
    }

    /// The value of `^PATH` field `i` on the frame node (`None`: not such a field).
    #[allow(clippy::option_option)]
    fn frame_field(&self, out: &NodeOut, i: usize) -> R<Option<Option<Value>>> {
        let Some(slot) = self.plan.frame_slot[i] else {
            return Ok(None);
        };
        Ok(Some(match out.caps[slot] {
            Some(l) => Some(leaf_value(self.text, l)?),
            None => None,
        }))
    }

    /// Column mode, as the DOM path's `column_mode`.
    fn column_mode(&self, out: &mut NodeOut) -> R<Vec<Column>> {
        let fields = &self.plan.rule.response.fields;
        let mut selected: Vec<Option<Vec<Leaf>>> = Vec::with_capacity(fields.len());
        for (i, f) in fields.iter().enumerate() {
            selected.push(match (&f.source, self.plan.col_slot[i]) {
                (FieldSource::Path(_), Some(slot)) => Some(out.caps[slot].into_iter().collect()),
                (FieldSource::Path(_), None) => Some(std::mem::take(&mut out.colvals[i])),
                _ => None,
            });
        }
        let mut len: Option<usize> = None;
        for values in selected.iter().flatten() {
            match len {
                None => len = Some(values.len()),
                // Ragged columns: the DOM path gives the error (module docs).
                Some(l) if l != values.len() => return Err(Stop::Fallback),
                Some(_) => {}
            }
        }
        let rows = len.unwrap_or(1);
        let mut dates = DateCache::default();
        let mut columns = Vec::with_capacity(fields.len());
        for (i, (f, sel)) in fields.iter().zip(selected).enumerate() {
            let frame_value = match f.source {
                FieldSource::Frame(_) => self.frame_field(out, i)?.flatten(),
                _ => None,
            };
            let (zone, bad) = (&self.zones[i], &mut out.bad[i]);
            let mut col = empty_column(f.kind, rows);
            match sel {
                Some(values) => {
                    for v in values {
                        push_leaf(&mut col, f, zone, Some(v), self.text, bad, &mut dates)?;
                    }
                }
                None => {
                    let v = match f.source {
                        FieldSource::Key => out.key.as_ref().map(|k| Value::String(k.clone())),
                        FieldSource::Frame(_) => frame_value,
                        _ => Some(Value::from(out.index)),
                    };
                    for _ in 0..rows {
                        push_value(&mut col, f, zone, v.as_ref(), bad);
                    }
                }
            }
            columns.push(col);
        }
        Ok(columns)
    }
}

/// At most this many rows are reserved ahead (see [`reserve_rows`]).
const RESERVE_ROWS_MAX: usize = 1 << 16;

/// After the first row of an array (`row_len` bytes, `rest` bytes of body after it): room
/// in every column for as many more rows as the rest of the body holds rows of that size
/// (at most [`RESERVE_ROWS_MAX`]), so that the columns do not grow step by step. The guess
/// only sizes buffers: a wrong one costs memory or growth, never a wrong value. Only done
/// when the body has one frame node, so that what is reserved stays within a small multiple
/// of the body's size (a row of `f` fields takes at least ~6·`f` bytes of JSON and 16·`f`
/// bytes of columns).
fn reserve_rows(out: &mut NodeOut, rest: usize, row_len: usize) {
    let rows = (rest / row_len.max(1)).min(RESERVE_ROWS_MAX);
    for c in &mut out.cols {
        c.reserve(rows);
    }
}

/// Clears what a frame-trie subtree produced (a repeated key selects it again; the last
/// value wins, as in serde_json's map).
fn reset_frame(node: &TNode, out: &mut NodeOut) {
    for &s in &node.slots_below {
        out.caps[s] = None;
    }
    if node.rows_below {
        for c in &mut out.cols {
            *c = c.empty_like();
        }
        out.rows = 0;
        out.bad.iter_mut().for_each(|b| *b = BadValues::default());
    }
    for &f in &node.fields_below {
        out.colvals[f].clear();
    }
}

/// [`walk_row`] for a trie whose paths are all one member name: one loop over the row's
/// members, no recursion (a repeated key overwrites: the last value wins). Keys are first
/// compared with the one the previous row had after the same key.
#[inline]
fn walk_flat(sc: &mut Sc<'_>, trie: &Trie, flat: &[Option<usize>], scratch: &mut Scratch) -> R<()> {
    if sc.peek() != b'{' {
        return sc.skip();
    }
    let names = &trie.nodes[0].names;
    let mut prev = 0;
    let mut more = sc.obj_open()?;
    while more {
        let predicted = scratch.hints[prev];
        // The key the previous row had here, compared as written (quotes included), saves
        // scanning the key; anything else is read and looked up.
        let found = match names.quoted_at(predicted, sc.b, sc.pos) {
            Some(n) => {
                sc.pos += n;
                sc.colon()?;
                Some(predicted)
            }
            None => {
                let key = sc.key()?;
                let e = names.entry(sc, key)?;
                if let Some(e) = e {
                    scratch.hints[prev] = e;
                }
                e
            }
        };
        match found {
            Some(e) => {
                let leaf = sc.leaf()?;
                match flat.get(e) {
                    // The usual case: one field reads this member.
                    Some(&Some(s)) => scratch.caps[s] = Some(leaf),
                    _ => {
                        for &s in &trie.nodes[names.entries[e].child].caps {
                            scratch.caps[s] = Some(leaf);
                        }
                    }
                }
                prev = e + 1;
            }
            None => sc.skip()?,
        }
        more = sc.obj_more()?;
    }
    Ok(())
}

/// Walks the value at `sc` as node `at` of a row trie, capturing into `caps`.
fn walk_row(sc: &mut Sc<'_>, trie: &Trie, at: usize, caps: &mut [Option<Leaf>]) -> R<()> {
    let node = &trie.nodes[at];
    let start = sc.pos;
    let kind = match sc.peek() {
        b'{' if !node.names.list.is_empty() => {
            let mut k = sc.obj_first()?;
            while let Some(key) = k {
                match node.names.child(sc, key)? {
                    Some(c) => {
                        for &s in &trie.nodes[c].slots_below {
                            caps[s] = None;
                        }
                        walk_row(sc, trie, c, caps)?;
                    }
                    None => sc.skip()?,
                }
                k = sc.obj_next()?;
            }
            Kind::Obj
        }
        b'[' if !node.indices.is_empty() => {
            let mut i = 0;
            let mut more = sc.arr_first()?;
            while more {
                match node.indices.iter().find(|(n, _)| *n == i) {
                    Some(&(_, c)) => walk_row(sc, trie, c, caps)?,
                    None => sc.skip()?,
                }
                i += 1;
                more = sc.arr_next()?;
            }
            Kind::Arr
        }
        _ if node.caps.is_empty() => {
            sc.skip()?;
            return Ok(());
        }
        _ => sc.leaf()?.kind(),
    };
    if !node.caps.is_empty() {
        let leaf = Leaf::new(start, sc.pos, kind);
        for &s in &node.caps {
            caps[s] = Some(leaf);
        }
    }
    Ok(())
}

/// The member names a trie node looks for, with a small hash table over them (a row
/// object's keys are looked up once per row): a key is compared by length and its first
/// 16 bytes as two words, and only longer keys need a byte comparison.
#[derive(Debug, Default)]
struct Names {
    /// (name, child), in insertion order; `entries[i]` describes `list[i]`.
    list: Vec<(Box<str>, usize)>,
    entries: Vec<NameEntry>,
    /// Bucket of a key → indices into `entries`.
    buckets: Vec<Vec<usize>>,
}

#[derive(Debug, Clone)]
struct NameEntry {
    len: usize,
    words: [u64; 2],
    child: usize,
    /// The key as written with its quotes (`"name"`, `len + 2 <= 16` bytes, zero-padded
    /// little-endian words): a raw key is this entry when those bytes are at its `"`.
    quoted: Option<[u64; 2]>,
}

const NAME_BUCKETS: usize = 64;

/// A cheap hash of a key: its length, first and last byte.
#[inline(always)]
fn name_bucket(k: &[u8]) -> usize {
    let (first, last) = match (k.first(), k.last()) {
        (Some(&f), Some(&l)) => (usize::from(f), usize::from(l)),
        _ => (0, 0),
    };
    (k.len().wrapping_mul(31) ^ first.wrapping_mul(7) ^ last) % NAME_BUCKETS
}

/// The first 16 bytes of `k`, zero-padded, as two little-endian words.
fn name_words(k: &[u8]) -> [u64; 2] {
    let mut buf = [0u8; 16];
    for (d, s) in buf.iter_mut().zip(k) {
        *d = *s;
    }
    let (a, b) = buf.split_at(8);
    [
        <[u8; 8]>::try_from(a).map_or(0, u64::from_le_bytes),
        <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes),
    ]
}

/// The `n <= 8` bytes of `b` at `at` as a zero-padded little-endian word (one load when
/// eight bytes are there, as they are for a key followed by the rest of the document).
#[inline(always)]
fn masked_word(b: &[u8], at: usize, n: usize) -> u64 {
    match b.get(at..at + 8).map(<[u8; 8]>::try_from) {
        Some(Ok(w)) => {
            let w = u64::from_le_bytes(w);
            if n >= 8 {
                w
            } else {
                w & ((1u64 << (8 * n)) - 1)
            }
        }
        _ => name_words(b.get(at..at + n).unwrap_or_default())[0],
    }
}

impl Names {
    fn push(&mut self, name: Box<str>, child: usize) {
        if self.buckets.is_empty() {
            self.buckets = vec![Vec::new(); NAME_BUCKETS];
        }
        let k = name.as_bytes();
        self.buckets[name_bucket(k)].push(self.entries.len());
        // A name with `"`, `\` or a control character never matches its quoted bytes.
        let plain = !k.iter().any(|&c| STRING_STOP[usize::from(c)]);
        let quoted = (plain && k.len() + 2 <= 16).then(|| {
            let mut q = Vec::with_capacity(k.len() + 2);
            q.push(b'"');
            q.extend_from_slice(k);
            q.push(b'"');
            name_words(&q)
        });
        self.entries.push(NameEntry {
            len: k.len(),
            words: name_words(k),
            child,
            quoted,
        });
        self.list.push((name, child));
    }

    /// True when entry `e` is the raw (unescaped) key `b[start..end]`.
    #[inline(always)]
    fn is(&self, e: usize, b: &[u8], start: usize, end: usize) -> bool {
        let Some(entry) = self.entries.get(e) else {
            return false;
        };
        let len = end - start;
        entry.len == len
            && entry.words[0] == masked_word(b, start, len.min(8))
            && (len <= 8
                || (entry.words[1] == masked_word(b, start + 8, (len - 8).min(8))
                    && (len <= 16 || self.list[e].0.as_bytes() == &b[start..end])))
    }

    /// The length of entry `e`'s key with its quotes when the bytes of `b` at `at` (a
    /// key's opening `"`) are exactly that key, else `None`. Eight bytes are read at a time;
    /// near the end of `b` the bytes are read one by one.
    #[inline(always)]
    fn quoted_at(&self, e: usize, b: &[u8], at: usize) -> Option<usize> {
        let entry = self.entries.get(e)?;
        let q = entry.quoted?;
        let n = entry.len + 2;
        if masked_word(b, at, n.min(8)) != q[0] {
            return None;
        }
        if n > 8 && masked_word(b, at + 8, n - 8) != q[1] {
            return None;
        }
        // `masked_word` pads with zeros past the end of `b`: the key must fit.
        (at + n <= b.len()).then_some(n)
    }

    /// The entry of an object key (decoded first when it has escapes).
    #[inline(always)]
    fn entry(&self, sc: &Sc<'_>, key: Key) -> R<Option<usize>> {
        if key.escaped {
            let text = sc.key_text(key)?;
            let k = text.as_bytes();
            let words = name_words(k);
            let Some(bucket) = self.buckets.get(name_bucket(k)) else {
                return Ok(None);
            };
            return Ok(bucket.iter().copied().find(|&e| {
                let entry = &self.entries[e];
                entry.len == k.len()
                    && entry.words == words
                    && (k.len() <= 16 || self.list[e].0.as_bytes() == k)
            }));
        }
        let (b, start, end) = (sc.b, key.start, key.end);
        let Some(bucket) = self.buckets.get(name_bucket(&b[start..end])) else {
            return Ok(None);
        };
        Ok(bucket.iter().copied().find(|&e| self.is(e, b, start, end)))
    }

    /// The child named by an object key.
    #[inline(always)]
    fn child(&self, sc: &Sc<'_>, key: Key) -> R<Option<usize>> {
        Ok(self.entry(sc, key)?.map(|e| self.entries[e].child))
    }
}

/// True when an object key is `name`.
fn key_is(sc: &Sc<'_>, key: Key, name: &str) -> R<bool> {
    Ok(if key.escaped {
        *sc.key_text(key)? == *name
    } else {
        &sc.b[key.start..key.end] == name.as_bytes()
    })
}

/// The members of the object at `sc` as (key, value start), in key order, a repeated key
/// once with its last value — the iteration order of serde_json's `BTreeMap`.
fn sorted_members(sc: &mut Sc<'_>) -> R<Vec<(String, usize)>> {
    let mut members: Vec<(String, usize)> = Vec::new();
    let mut k = sc.obj_first()?;
    while let Some(key) = k {
        let name = sc.key_text(key)?.into_owned();
        members.push((name, sc.pos));
        sc.skip()?;
        k = sc.obj_next()?;
    }
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, usize)> = Vec::with_capacity(members.len());
    for m in members {
        match out.last_mut() {
            Some(last) if last.0 == m.0 => *last = m,
            _ => out.push(m),
        }
    }
    Ok(out)
}

/// Follows `steps` (no wildcard) from the value at `sc` and runs `f` on what they select;
/// a repeated key selects its last value. The whole value is read either way.
fn find<'t, T>(
    sc: &mut Sc<'t>,
    steps: &[Seg],
    f: &mut dyn FnMut(&mut Sc<'t>) -> R<T>,
) -> R<Option<T>> {
    let Some((first, rest)) = steps.split_first() else {
        return f(sc).map(Some);
    };
    let mut found = None;
    match (first, sc.peek()) {
        (Seg::Name(name), b'{') => {
            let mut k = sc.obj_first()?;
            while let Some(key) = k {
                if key_is(sc, key, name)? {
                    found = find(sc, rest, f)?;
                } else {
                    sc.skip()?;
                }
                k = sc.obj_next()?;
            }
        }
        (Seg::Index(i), b'[') => {
            let mut j = 0;
            let mut more = sc.arr_first()?;
            while more {
                if j == *i {
                    found = find(sc, rest, f)?;
                } else {
                    sc.skip()?;
                }
                j += 1;
                more = sc.arr_next()?;
            }
        }
        _ => sc.skip()?,
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------
// Leaf values → typed columns

/// The DOM value of a captured range (parsed by serde_json: small values only).
fn leaf_value(text: &str, leaf: Leaf) -> R<Value> {
    match leaf.kind() {
        Kind::Null => Ok(Value::Null),
        Kind::Bool(b) => Ok(Value::Bool(b)),
        Kind::Num(n) => num_value(n, &text[leaf.start..leaf.end]),
        _ => serde_json::from_str(&text[leaf.start..leaf.end]).map_err(|_| Stop::Fallback),
    }
}

/// A row's `type: json` wildcard field as the DOM path makes it: the members of the node
/// before the wildcard (an object's in key order), each followed along `suffix`, as a JSON
/// array (empty when nothing is selected).
fn json_list(text: &str, base: Option<Leaf>, suffix: &[Seg]) -> R<Value> {
    let base = match base {
        Some(l) if matches!(l.tag, Tag::Obj | Tag::Arr) => leaf_value(text, l)?,
        _ => return Ok(Value::Array(Vec::new())),
    };
    let follow = |v: &Value| -> Option<Value> {
        let mut node = v;
        for seg in suffix {
            node = match (seg, node) {
                (Seg::Name(n), Value::Object(m)) => m.get(&**n)?,
                (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(node.clone())
    };
    Ok(Value::Array(match &base {
        Value::Array(items) => items.iter().filter_map(follow).collect(),
        Value::Object(members) => members.values().filter_map(follow).collect(),
        _ => Vec::new(),
    }))
}

/// Exact powers of ten, as serde_json's table has them.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The `Value::Number` serde_json builds for a number token (module docs).
fn num_value(n: Num, raw: &str) -> R<Value> {
    if !n.exact() {
        return serde_json::from_str(raw).map_err(|_| Stop::Fallback);
    }
    let float = |f: f64| Number::from_f64(f).map_or(Value::Null, Value::Number);
    Ok(if n.int() {
        if !n.neg() {
            Value::Number(n.sig.into())
        } else {
            // serde_json: `-0` and magnitudes beyond i64 become floats.
            let neg = (n.sig as i64).wrapping_neg();
            if neg >= 0 {
                float(-(n.sig as f64))
            } else {
                Value::Number(neg.into())
            }
        }
    } else {
        let mut f = n.sig as f64;
        let e = n.exp.unsigned_abs() as usize;
        if n.exp >= 0 {
            f *= POW10[e];
        } else {
            f /= POW10[e];
        }
        float(if n.neg() { -f } else { f })
    })
}

/// `as_f64` of the number [`num_value`] builds for an exact token.
#[inline]
fn exact_f64(n: Num) -> f64 {
    if n.int() {
        // U64 → `u as f64`; I64 → `i as f64`; `-0` and below i64::MIN → `-(sig as f64)`:
        // all equal to the negated magnitude (rounding is symmetric).
        let f = n.sig as f64;
        if n.neg() {
            -f
        } else {
            f
        }
    } else {
        let mut f = n.sig as f64;
        let e = n.exp.unsigned_abs() as usize;
        if n.exp >= 0 {
            f *= POW10[e];
        } else {
            f /= POW10[e];
        }
        if n.neg() {
            -f
        } else {
            f
        }
    }
}

/// Appends one captured value (`None`: the path selected nothing) to a typed column, as
/// the DOM path's `push_value` would for its `Value`: the common cases here, the others in
/// [`push_leaf_general`].
#[inline(always)]
fn push_leaf(
    col: &mut Column,
    f: &FieldSpec,
    zone: &TimeZone,
    leaf: Option<Leaf>,
    text: &str,
    bad: &mut BadValues,
    dates: &mut DateCache,
) -> R<()> {
    if let Some(leaf) = leaf {
        match (&mut *col, leaf.kind()) {
            (Column::String(c), Kind::Str { escaped: false }) => {
                c.push_str(&text[leaf.start + 1..leaf.end - 1]);
                return Ok(());
            }
            (Column::Number(c), Kind::Num(n)) if n.exact() => {
                c.push(Some(exact_f64(n)));
                return Ok(());
            }
            // `to_i64` of an integer that fits: serde_json's U64 / I64 (`-0`: 0 either way).
            (Column::Int(c), Kind::Num(n)) if n.exact() && n.int() && n.sig <= i64::MAX as u64 => {
                let v = n.sig as i64;
                c.push(Some(if n.neg() { -v } else { v }));
                return Ok(());
            }
            (Column::Time(c), Kind::Str { escaped: false })
                if matches!(f.time_format, TimeFormat::Auto | TimeFormat::Rfc3339) =>
            {
                // Untrimmed text: a match starts with a digit and ends with `Z` or a digit,
                // so it is its own trim.
                let raw = &text.as_bytes()[leaf.start + 1..leaf.end - 1];
                if let Some(ns) = rfc3339_strict(raw, dates) {
                    c.push(Some(ns));
                    return Ok(());
                }
            }
            (col, Kind::Null) => {
                push_null(col);
                return Ok(());
            }
            _ => {}
        }
    }
    push_leaf_general(col, f, zone, leaf, text, bad)
}

/// A null cell (what `push_value` does for a missing value or JSON `null`).
#[inline]
fn push_null(col: &mut Column) {
    match col {
        Column::Time(c) | Column::Int(c) => c.push(None),
        Column::Number(c) => c.push(None),
        Column::String(c) | Column::Json(c) => c.push_null(),
        Column::Bool(c) => c.push(None),
    }
}

#[cold]
#[inline(never)]
fn push_leaf_general(
    col: &mut Column,
    f: &FieldSpec,
    zone: &TimeZone,
    leaf: Option<Leaf>,
    text: &str,
    bad: &mut BadValues,
) -> R<()> {
    let Some(leaf) = leaf else {
        push_value(col, f, zone, None, bad);
        return Ok(());
    };
    match leaf.kind() {
        Kind::Null => push_value(col, f, zone, None, bad),
        Kind::Bool(b) => push_value(col, f, zone, Some(&Value::Bool(b)), bad),
        Kind::Num(n) => match (col, n.exact()) {
            // `to_f64` of the Number serde_json builds (`num_value`), without building it.
            (Column::Number(c), true) => c.push(Some(exact_f64(n))),
            // `to_i64` of an integer that fits: serde_json's U64 / I64 (`-0`: 0 either way).
            (Column::Int(c), true) if n.int() && n.sig <= i64::MAX as u64 => {
                let v = n.sig as i64;
                c.push(Some(if n.neg() { -v } else { v }));
            }
            (col, _) => {
                let v = num_value(n, &text[leaf.start..leaf.end])?;
                push_value(col, f, zone, Some(&v), bad);
            }
        },
        Kind::Str { escaped } => {
            let s: Cow<'_, str> = if escaped {
                Cow::Owned(
                    serde_json::from_str::<String>(&text[leaf.start..leaf.end])
                        .map_err(|_| Stop::Fallback)?,
                )
            } else {
                Cow::Borrowed(&text[leaf.start + 1..leaf.end - 1])
            };
            push_str(col, f, zone, s, bad);
        }
        Kind::Obj | Kind::Arr => {
            let v: Value =
                serde_json::from_str(&text[leaf.start..leaf.end]).map_err(|_| Stop::Fallback)?;
            push_value(col, f, zone, Some(&v), bad);
        }
    }
    Ok(())
}

/// A JSON string into a typed column (`push_value` of `Value::String`).
fn push_str(
    col: &mut Column,
    f: &FieldSpec,
    zone: &TimeZone,
    s: Cow<'_, str>,
    bad: &mut BadValues,
) {
    match col {
        Column::String(c) => c.push_str(&s),
        Column::Number(c) => {
            let v = str_to_f64(&s);
            c.push(v);
            if v.is_none() {
                bad.record(Some(&Value::String(s.into_owned())));
            }
        }
        Column::Time(c) if matches!(f.time_format, TimeFormat::Auto | TimeFormat::Rfc3339) => {
            match iso_with_offset(&s) {
                Some(v) => {
                    c.push(v);
                    if v.is_none() {
                        bad.record(Some(&Value::String(s.into_owned())));
                    }
                }
                None => push_value(col, f, zone, Some(&Value::String(s.into_owned())), bad),
            }
        }
        _ => push_value(col, f, zone, Some(&Value::String(s.into_owned())), bad),
    }
}

/// `to_epoch_ns` of a string for formats `auto` / `rfc3339` when the text is a timestamp
/// with an offset (`Some(result)`), else `None` (the caller asks `to_epoch_ns`). Identical
/// to it: the trimmed text has a ':' so `auto` does not read it as an epoch number, and
/// `parse_iso` tries `Timestamp` first and returns its result.
fn iso_with_offset(s: &str) -> Option<Option<i64>> {
    let t = s.trim();
    if let Some(ns) = rfc3339_strict(t.as_bytes(), &mut DateCache::default()) {
        return Some(Some(ns));
    }
    if !t.contains(':') {
        return None;
    }
    let ts = t.parse::<jiff::Timestamp>().ok()?;
    Some(i64::try_from(ts.as_nanosecond()).ok())
}

/// The common RFC 3339 form `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` with a year in
/// 1900..=2200 and a valid date and time (no leap second, no `-00:00`), as epoch ns — what
/// jiff's `Timestamp` parser gives for it (the tests compare both); `None` for anything else.
fn rfc3339_strict(b: &[u8], dates: &mut DateCache) -> Option<i64> {
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date: [u8; 10] = b[..10].try_into().ok()?;
    let days = match dates.last {
        Some((d, days)) if d == date => days,
        _ => {
            let days = civil_days(&date)?;
            dates.last = Some((date, days));
            days
        }
    };
    let d = |i: usize| b[i].wrapping_sub(b'0');
    let (h0, h1, mi0, mi1, s0, s1) = (d(11), d(12), d(14), d(15), d(17), d(18));
    if h0.max(h1).max(mi0).max(mi1).max(s0).max(s1) > 9 {
        return None;
    }
    let n2 = |a: u8, b: u8| i64::from(a) * 10 + i64::from(b);
    let (hour, minute, second) = (n2(h0, h1), n2(mi0, mi1), n2(s0, s1));
    let two = |i: usize| -> Option<i64> {
        match (b.get(i), b.get(i + 1)) {
            (Some(a @ b'0'..=b'9'), Some(c @ b'0'..=b'9')) => {
                Some(i64::from(a - b'0') * 10 + i64::from(c - b'0'))
            }
            _ => None,
        }
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while let Some(d @ b'0'..=b'9') = b.get(i) {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(d - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos *= 10i64.pow(9 - digits as u32);
    }
    let offset = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (two(i + 1)?, two(i + 4)?);
            if oh > 23 || om > 59 || (sign == b'-' && oh == 0 && om == 0) {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    Some(secs * 1_000_000_000 + nanos)
}

/// The last `YYYY-MM-DD` [`rfc3339_strict`] read and its day number (rows of a time series
/// mostly share the date).
#[derive(Debug, Default)]
struct DateCache {
    last: Option<([u8; 10], i64)>,
}

/// Days since 1970-01-01 of `YYYY-MM-DD` with a year in 1900..=2200 and a valid date.
fn civil_days(date: &[u8; 10]) -> Option<i64> {
    if date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let d = |i: usize| date[i].wrapping_sub(b'0');
    let (y0, y1, y2, y3, mo0, mo1, d0, d1) = (d(0), d(1), d(2), d(3), d(5), d(6), d(8), d(9));
    if y0.max(y1).max(y2).max(y3).max(mo0).max(mo1).max(d0).max(d1) > 9 {
        return None;
    }
    let n2 = |a: u8, b: u8| i64::from(a) * 10 + i64::from(b);
    let year = n2(y0, y1) * 100 + n2(y2, y3);
    let (month, day) = (n2(mo0, mo1), n2(d0, d1));
    if !(1900..=2200).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
    {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------
// The scanner

/// Why a pass stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// serde_json would reject the document.
    Invalid,
    /// The DOM path has to decide (an error that needs its exact wording).
    Fallback,
}

type R<T> = Result<T, Stop>;

/// A selected value: its byte range in the body and what it is ([`Leaf::kind`]).
///
/// Plain data (four 8-byte words, every byte defined) rather than a field of enum type:
/// with `Kind` inside, the compiler copied each captured leaf through the stack with
/// overlapping unaligned moves, which stall store forwarding — perf annotate of `Run::row`
/// put ~16 % of its samples on that copy.
#[derive(Debug, Clone, Copy)]
struct Leaf {
    start: usize,
    end: usize,
    /// `Kind::Num`: the significand; otherwise 0.
    sig: u64,
    /// `Kind::Num`: the exponent; otherwise 0.
    exp: i32,
    tag: Tag,
    /// `Kind::Bool`: the value; `Kind::Str`: escaped; `Kind::Num`: its flags.
    bits: u8,
    _pad: u16,
}

/// [`Kind`]'s variant, as stored in a [`Leaf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    Null,
    Bool,
    Num,
    Str,
    Obj,
    Arr,
}

impl Leaf {
    #[inline(always)]
    fn new(start: usize, end: usize, kind: Kind) -> Leaf {
        let (tag, bits, sig, exp) = match kind {
            Kind::Null => (Tag::Null, 0, 0, 0),
            Kind::Bool(b) => (Tag::Bool, u8::from(b), 0, 0),
            Kind::Num(n) => (Tag::Num, n.flags, n.sig, n.exp),
            Kind::Str { escaped } => (Tag::Str, u8::from(escaped), 0, 0),
            Kind::Obj => (Tag::Obj, 0, 0, 0),
            Kind::Arr => (Tag::Arr, 0, 0, 0),
        };
        Leaf {
            start,
            end,
            sig,
            exp,
            tag,
            bits,
            _pad: 0,
        }
    }

    /// What the value is.
    #[inline(always)]
    fn kind(&self) -> Kind {
        match self.tag {
            Tag::Null => Kind::Null,
            Tag::Bool => Kind::Bool(self.bits != 0),
            Tag::Num => Kind::Num(Num {
                sig: self.sig,
                exp: self.exp,
                flags: self.bits,
            }),
            Tag::Str => Kind::Str {
                escaped: self.bits != 0,
            },
            Tag::Obj => Kind::Obj,
            Tag::Arr => Kind::Arr,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Null,
    Bool(bool),
    Num(Num),
    /// A string (range includes the quotes).
    Str {
        escaped: bool,
    },
    Obj,
    Arr,
}

/// A number token as serde_json reads it: sign, significand (all digits), decimal exponent.
///
/// The three flags are bits of one byte, so that a [`Leaf`] stores a number in plain fields.
#[derive(Debug, Clone, Copy)]
struct Num {
    sig: u64,
    exp: i32,
    /// [`Num::NEG`], [`Num::INT`], [`Num::EXACT`].
    flags: u8,
}

impl Num {
    /// Negative.
    const NEG: u8 = 1;
    /// No fraction and no exponent.
    const INT: u8 = 2;
    /// `sig`/`exp` give serde_json's value exactly (module docs).
    const EXACT: u8 = 4;

    #[inline(always)]
    fn new(neg: bool, sig: u64, exp: i32, int: bool, exact: bool) -> Num {
        let mut flags = 0;
        if neg {
            flags |= Num::NEG;
        }
        if int {
            flags |= Num::INT;
        }
        if exact {
            flags |= Num::EXACT;
        }
        Num { sig, exp, flags }
    }

    #[inline(always)]
    fn neg(self) -> bool {
        self.flags & Num::NEG != 0
    }

    #[inline(always)]
    fn int(self) -> bool {
        self.flags & Num::INT != 0
    }

    #[inline(always)]
    fn exact(self) -> bool {
        self.flags & Num::EXACT != 0
    }
}

/// An object key (range without the quotes).
#[derive(Debug, Clone, Copy)]
struct Key {
    start: usize,
    end: usize,
    escaped: bool,
}

/// serde_json's recursion limit: the 128th nested `[` / `{` is an error.
const MAX_DEPTH: u32 = 128;

/// Bytes that end the plain run of a string: `"`, `\` and control characters.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` (little-endian) that is `"`, `\` or below 0x20; the
/// lowest set bit marks the first such byte exactly (the usual carry caveat only affects
/// bytes after it).
#[inline(always)]
fn string_stops(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let quote = zero(w ^ (ONES * u64::from(b'"')));
    let backslash = zero(w ^ (ONES * u64::from(b'\\')));
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    quote | backslash | control
}

/// A validating cursor over the body (a `&str`: UTF-8 was checked once).
struct Sc<'t> {
    text: &'t str,
    b: &'t [u8],
    pos: usize,
    depth: u32,
}

impl<'t> Sc<'t> {
    fn new(text: &'t str) -> Sc<'t> {
        Sc {
            text,
            b: text.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    /// A cursor at an already validated value of the same body.
    fn at(&self, pos: usize) -> Sc<'t> {
        Sc {
            text: self.text,
            b: self.b,
            pos,
            depth: 0,
        }
    }

    #[inline(always)]
    fn peek(&self) -> u8 {
        self.b.get(self.pos).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(Stop::Invalid);
        }
        self.pos += 1;
        self.ws();
        Ok(())
    }

    /// At `{`: the first key (cursor at its value), or `None` for `{}`.
    #[inline(always)]
    fn obj_first(&mut self) -> R<Option<Key>> {
        if self.obj_open()? {
            self.key().map(Some)
        } else {
            Ok(None)
        }
    }

    /// After a member's value: the next key, or `None` at `}`.
    #[inline(always)]
    fn obj_next(&mut self) -> R<Option<Key>> {
        if self.obj_more()? {
            self.key().map(Some)
        } else {
            Ok(None)
        }
    }

    /// At `{`: true when a member follows (cursor at its key's `"`), false for `{}`.
    #[inline(always)]
    fn obj_open(&mut self) -> R<bool> {
        self.enter()?;
        match self.peek() {
            b'}' => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            b'"' => Ok(true),
            _ => Err(Stop::Invalid),
        }
    }

    /// After a member's value: true when another member follows (cursor at its key's
    /// `"`), false at `}` (cursor after it).
    #[inline(always)]
    fn obj_more(&mut self) -> R<bool> {
        if self.peek() <= b' ' {
            self.ws();
        }
        match self.peek() {
            b',' => {
                self.pos += 1;
                if self.peek() != b'"' {
                    self.ws();
                    if self.peek() != b'"' {
                        return Err(Stop::Invalid);
                    }
                }
                Ok(true)
            }
            b'}' => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(Stop::Invalid),
        }
    }

    /// At a key's `"`: reads the key and the `:` after it (cursor at the value).
    #[inline(always)]
    fn key(&mut self) -> R<Key> {
        let start = self.pos + 1;
        let escaped = self.string()?;
        let key = Key {
            start,
            end: self.pos - 1,
            escaped,
        };
        self.colon()?;
        Ok(key)
    }

    /// After a key: the `:` and the whitespace around it (cursor at the value).
    #[inline(always)]
    fn colon(&mut self) -> R<()> {
        if self.peek() != b':' {
            self.ws();
            if self.peek() != b':' {
                return Err(Stop::Invalid);
            }
        }
        self.pos += 1;
        if self.peek() <= b' ' {
            self.ws();
        }
        Ok(())
    }

    /// The text of a key (decoded when it has escapes).
    fn key_text(&self, key: Key) -> R<Cow<'t, str>> {
        if key.escaped {
            serde_json::from_str::<String>(&self.text[key.start - 1..key.end + 1])
                .map(Cow::Owned)
                .map_err(|_| Stop::Fallback)
        } else {
            Ok(Cow::Borrowed(&self.text[key.start..key.end]))
        }
    }

    /// At `[`: true when there is a first element (cursor at it).
    fn arr_first(&mut self) -> R<bool> {
        self.enter()?;
        if self.peek() == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After an element: true when another follows (cursor at it).
    fn arr_next(&mut self) -> R<bool> {
        self.ws();
        match self.peek() {
            b',' => {
                self.pos += 1;
                self.ws();
                Ok(true)
            }
            b']' => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(Stop::Invalid),
        }
    }

    /// Skips (and validates) one value.
    fn skip(&mut self) -> R<()> {
        match self.peek() {
            b'{' => {
                let mut k = self.obj_first()?;
                while k.is_some() {
                    self.skip()?;
                    k = self.obj_next()?;
                }
                Ok(())
            }
            b'[' => {
                let mut more = self.arr_first()?;
                while more {
                    self.skip()?;
                    more = self.arr_next()?;
                }
                Ok(())
            }
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => Err(Stop::Invalid),
        }
    }

    /// Reads one value and says what it is.
    #[inline(always)]
    fn leaf(&mut self) -> R<Leaf> {
        let start = self.pos;
        let kind = match self.peek() {
            b'{' => {
                self.skip()?;
                Kind::Obj
            }
            b'[' => {
                self.skip()?;
                Kind::Arr
            }
            b'"' => Kind::Str {
                escaped: self.string()?,
            },
            b't' => {
                self.literal(b"true")?;
                Kind::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Kind::Bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                Kind::Null
            }
            b'-' | b'0'..=b'9' => Kind::Num(self.number()?),
            _ => return Err(Stop::Invalid),
        };
        Ok(Leaf::new(start, self.pos, kind))
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> R<()> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Stop::Invalid)
        }
    }

    /// At `"`: validates the string (escapes, paired surrogates, no control characters)
    /// and moves past it; true when it has escapes.
    #[inline(always)]
    fn string(&mut self) -> R<bool> {
        let b = self.b;
        let mut i = self.pos + 1;
        let mut escaped = false;
        loop {
            // The first `"`, `\` or control character: eight bytes at a time.
            let stop = loop {
                if let Some(chunk) = b.get(i..i + 8) {
                    let word = <[u8; 8]>::try_from(chunk).map_err(|_| Stop::Invalid)?;
                    let stops = string_stops(u64::from_le_bytes(word));
                    if stops != 0 {
                        break i + (stops.trailing_zeros() / 8) as usize;
                    }
                    i += 8;
                } else {
                    match b[i.min(b.len())..]
                        .iter()
                        .position(|&c| STRING_STOP[usize::from(c)])
                    {
                        Some(p) => break i + p,
                        None => return Err(Stop::Invalid),
                    }
                }
            };
            match b[stop] {
                b'"' => {
                    self.pos = stop + 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    i = self.escape(stop + 1)?;
                }
                _ => return Err(Stop::Invalid),
            }
        }
    }

    /// An escape after `\` at `i`; returns the index after it (serde_json's rules: a
    /// leading surrogate must be followed by `\u` and a trailing one, which never stands
    /// alone).
    fn escape(&self, i: usize) -> R<usize> {
        match self.b.get(i) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
            Some(b'u') => {
                let n = self.hex4(i + 1)?;
                if (0xDC00..=0xDFFF).contains(&n) {
                    return Err(Stop::Invalid);
                }
                if !(0xD800..=0xDBFF).contains(&n) {
                    return Ok(i + 5);
                }
                let j = i + 5;
                if self.b.get(j..j + 2) != Some(b"\\u") {
                    return Err(Stop::Invalid);
                }
                let n2 = self.hex4(j + 2)?;
                if !(0xDC00..=0xDFFF).contains(&n2) {
                    return Err(Stop::Invalid);
                }
                Ok(j + 6)
            }
            _ => Err(Stop::Invalid),
        }
    }

    fn hex4(&self, i: usize) -> R<u16> {
        let digits = self.b.get(i..i + 4).ok_or(Stop::Invalid)?;
        let mut n: u16 = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(Stop::Invalid),
            };
            n = n * 16 + u16::from(v);
        }
        Ok(n)
    }

    /// At `-` or a digit: validates a number token and moves past it. Tokens whose range
    /// serde_json might refuse (huge exponents, more digits than a u64 surely holds) are
    /// checked by serde_json itself.
    fn number(&mut self) -> R<Num> {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        let neg = b.get(i) == Some(&b'-');
        if neg {
            i += 1;
        }
        // The significand wraps beyond 19 digits; such tokens are `odd` (below).
        let mut sig: u64 = 0;
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(&d @ b'1'..=b'9') => {
                sig = u64::from(d - b'0');
                i += 1;
                while let Some(&d @ b'0'..=b'9') = b.get(i) {
                    sig = sig.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                    i += 1;
                }
            }
            _ => return Err(Stop::Invalid),
        }
        let int_end = i;
        let (mut frac_start, mut frac_end) = (i, i);
        if b.get(i) == Some(&b'.') {
            i += 1;
            frac_start = i;
            while let Some(&d @ b'0'..=b'9') = b.get(i) {
                sig = sig.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                i += 1;
            }
            if i == frac_start {
                return Err(Stop::Invalid);
            }
            frac_end = i;
        }
        let mut exp_written: i64 = 0;
        let mut has_exp = false;
        let mut odd = false;
        if let Some(b'e' | b'E') = b.get(i) {
            has_exp = true;
            i += 1;
            let positive = match b.get(i) {
                Some(b'+') => {
                    i += 1;
                    true
                }
                Some(b'-') => {
                    i += 1;
                    false
                }
                _ => true,
            };
            let digits = i;
            while let Some(&d @ b'0'..=b'9') = b.get(i) {
                if i - digits < 9 {
                    exp_written = exp_written * 10 + i64::from(d - b'0');
                } else {
                    // Beyond what an i32 surely holds: serde_json's overflow rules apply.
                    odd = true;
                }
                i += 1;
            }
            if i == digits {
                return Err(Stop::Invalid);
            }
            if !positive {
                exp_written = -exp_written;
            }
        }
        self.pos = i;
        let frac_digits = frac_end - frac_start;
        // At most 19 digits never overflow serde_json's u64 significand.
        odd |= (int_end - int_start) + frac_digits > 19;
        let exp = exp_written - frac_digits as i64;
        // Below 2^64 × 10^288 nothing overflows f64; beyond, serde_json decides.
        if odd || exp > 288 {
            serde_json::from_str::<Value>(&self.text[start..i]).map_err(|_| Stop::Invalid)?;
        }
        let int = !has_exp && frac_end == frac_start;
        Ok(Num::new(
            neg,
            sig,
            exp.clamp(-400, 400) as i32,
            int,
            !odd && (int || (-22..=22).contains(&exp)),
        ))
    }
}

#[cfg(test)]
#[path = "convert_fast_tests.rs"]
mod tests;
