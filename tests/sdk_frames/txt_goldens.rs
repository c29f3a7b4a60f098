//! (3) Every `.txt` golden under `experimental/testdata` (and, for the summary, the
//! `all_types.golden.arrow` frame): base64-decode each `FRAME=`, read it with arrow-rs,
//! re-express it with our frame model, encode it with our encoder, and compare the decoded
//! result with the golden field by field.

use std::collections::{BTreeMap, BTreeSet};

use crate::all_types::ALL_TYPES;
use crate::golden::{self, Diff, Found, NanMode};
use crate::ipc;
use crate::support::{arrow as grafana, shared};

/// Folder of the `.txt` goldens below `../shared`.
const TXT_DIR: &str = "conformance/sdk-go-frames/experimental/testdata";

/// (frame name, field count, row count) per `FRAME=` line.
type FrameShape = (&'static str, usize, usize);

/// A `.txt` golden: file name, its frames, and the tolerated differences (with counts).
type TxtGolden = (&'static str, Vec<FrameShape>, Vec<(Diff, usize)>);

/// What each golden holds and which tolerated differences (with counts) our re-encoding shows.
fn expectations() -> Vec<TxtGolden> {
    let one_two = vec![("Frame One", 1, 5), ("Frame Two", 1, 3)];
    let custom_only = vec![
        (Diff::MetaKeyNotExpressible("custom".into()), 1),
        (Diff::MetaOmitted, 1),
    ];
    vec![
        ("frame-no-meta.golden.txt", one_two.clone(), vec![]),
        (
            "frame-custom-meta.golden.txt",
            one_two.clone(),
            custom_only.clone(),
        ),
        (
            "frame-empty-custom-meta.golden.txt",
            one_two.clone(),
            custom_only.clone(),
        ),
        (
            "frame-non-custom-meta.golden.txt",
            one_two,
            vec![(Diff::TypeVersionAdded, 1), (Diff::NoticeSeverityAdded, 1)],
        ),
        ("frame-json.txt", vec![("JSON frame", 2, 1)], vec![]),
        (
            "folder.golden.txt",
            vec![("", 2, 24)],
            vec![(Diff::MetaKeyNotExpressible("pathSeparator".into()), 1)],
        ),
        (
            "large.golden.txt",
            vec![("", 6, 527)],
            [
                custom_only,
                vec![(Diff::TstypeAdded, 6), (Diff::LegacyNameKeyNotWritten, 6)],
            ]
            .concat(),
        ),
    ]
}

/// Running totals for the summary line.
#[derive(Debug, Default)]
struct Tally {
    frames: usize,
    fields: usize,
    skipped: usize,
    skipped_types: BTreeSet<String>,
    found: Vec<Found>,
}

/// Re-encodes one golden frame with our encoder and compares; returns the tolerated diffs.
fn round_trip(place: &str, golden_bytes: &[u8], tally: &mut Tally) -> Vec<Found> {
    let g = golden::read_ipc_file(golden_bytes);
    let rebuilt = golden::rebuild(&g);
    for (i, name, ty) in &rebuilt.skipped {
        println!("  skipped {place} / field #{i} {name}: {ty}");
        tally.skipped_types.insert(ty.clone());
    }
    let bytes = rebuilt
        .frame
        .encode(&rebuilt.ref_id)
        .unwrap_or_else(|e| panic!("{place}: our encoder refused the frame: {e}"));
    ipc::assert_grafana_container(&format!("{place} (ours)"), &bytes);
    let checked = grafana::decode(&bytes); // Grafana's decoder rules on our output
    assert_eq!(checked.fields.len(), rebuilt.kept.len(), "{place}");
    let ours = golden::read_ipc_file(&bytes);
    let found = golden::compare(place, &g, &rebuilt.kept, &ours, NanMode::Bits);
    // rebuild() and compare() agree on which meta keys our model cannot carry.
    let dropped: BTreeSet<&str> = rebuilt
        .meta_not_expressible
        .iter()
        .map(String::as_str)
        .collect();
    let reported: BTreeSet<&str> = found
        .iter()
        .filter_map(|f| match &f.diff {
            Diff::MetaKeyNotExpressible(k) => Some(k.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, reported, "{place}: unexpressible meta keys");
    tally.frames += usize::from(!rebuilt.kept.is_empty());
    tally.fields += rebuilt.kept.len();
    tally.skipped += rebuilt.skipped.len();
    found
}

/// Go's own goldens satisfy the container rules we hold our output to (protocol.md §3.1).
fn check_go_container(place: &str, bytes: &[u8]) {
    let f = ipc::facts(bytes);
    assert!(f.leading_magic && f.trailing_magic, "{place}: ARROW1 magic");
    assert_eq!(
        f.dictionary_batches + f.dictionary_fields,
        0,
        "{place}: dictionaries"
    );
    assert_eq!(f.compressed_batches, 0, "{place}: compression");
    assert_eq!(f.record_batches, 1, "{place}: one record batch");
    assert_eq!(f.bad_blocks, 0, "{place}: block alignment");
}

fn tally_diffs(found: &[Found]) -> BTreeMap<Diff, usize> {
    let mut m = BTreeMap::new();
    for f in found {
        *m.entry(f.diff.clone()).or_insert(0) += 1;
    }
    m
}

#[test]
fn txt_goldens_round_trip_through_our_encoder() {
    let Some(dir) = shared::path(TXT_DIR) else {
        return;
    };
    let expect = expectations();
    // Every `.txt` in the folder is one we know about (a new golden must be looked at).
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".txt"))
        .collect();
    let known: BTreeSet<String> = expect.iter().map(|(f, _, _)| (*f).to_owned()).collect();
    assert_eq!(present, known, "the `.txt` goldens");

    let mut tally = Tally::default();
    for (file, shapes, diffs) in &expect {
        let text = std::fs::read_to_string(dir.join(file)).expect("read golden");
        let frames = golden::txt_frames(&text);
        assert_eq!(frames.len(), shapes.len(), "{file}: FRAME= lines");
        let mut found = Vec::new();
        for (i, (bytes, (name, fields, rows))) in frames.iter().zip(shapes).enumerate() {
            let place = format!("{file} / frame {i} {name:?}");
            check_go_container(&place, bytes);
            let g = golden::read_ipc_file(bytes);
            assert_eq!(
                (g.name(), g.fields.len(), g.rows()),
                (*name, *fields, *rows),
                "{place}: shape"
            );
            found.extend(round_trip(&place, bytes, &mut tally));
        }
        let got = tally_diffs(&found);
        println!(
            "{file}: {} frame(s), tolerated differences: {}",
            frames.len(),
            if got.is_empty() {
                "none".to_owned()
            } else {
                got.iter()
                    .map(|(d, n)| format!("{d} ×{n}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        );
        let want: BTreeMap<Diff, usize> = diffs.iter().cloned().collect();
        assert_eq!(got, want, "{file}: differences from the golden");
        tally.found.extend(found);
    }

    // all_types.golden.arrow through the same generic path (bit-exact NaN payloads).
    let all_types = shared::path(ALL_TYPES);
    if let Some(path) = &all_types {
        let bytes = std::fs::read(path).expect("read golden");
        check_go_container("all_types.golden.arrow", &bytes);
        let found = round_trip("all_types.golden.arrow", &bytes, &mut tally);
        let got = tally_diffs(&found);
        println!(
            "all_types.golden.arrow: 1 frame, tolerated differences: {}",
            got.iter()
                .map(|(d, n)| format!("{d} ×{n}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let want = BTreeMap::from([
            (Diff::MetaKeyNotExpressible("channel".into()), 1),
            (Diff::MetaKeyNotExpressible("custom".into()), 1),
            (Diff::MetaKeyNotExpressible("stats".into()), 1),
            (Diff::EmptyConfigOmitted, 1),
        ]);
        assert_eq!(got, want, "all_types.golden.arrow: differences");
        tally.found.extend(found);
    }

    for f in &tally.found {
        println!("  tolerated: {}: {}", f.place, f.diff);
    }
    println!(
        "sdk goldens: {} frames compared, {} fields, {} fields skipped (types RestBridge never produces: {})",
        tally.frames,
        tally.fields,
        tally.skipped,
        tally.skipped_types.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    golden::print_known_gaps();
    assert!(tally.frames > 0 && tally.fields > 0, "nothing was compared");
    // The goldens are pinned copies (SOURCES.md), so the counts are exact.
    if all_types.is_some() {
        assert_eq!((tally.frames, tally.fields, tally.skipped), (12, 33, 20));
    }
}

/// The comparison catches what it claims to: each single mutation of a rebuilt golden frame
/// makes `compare` fail (and the unmutated frame passes).
#[test]
fn comparison_detects_each_kind_of_mismatch() {
    use restbridge::frame::{Column, Frame};
    let (Some(all), Some(dir)) = (shared::path(ALL_TYPES), shared::path(TXT_DIR)) else {
        return;
    };
    let all = std::fs::read(all).expect("read");
    let notice = golden::txt_frames(
        &std::fs::read_to_string(dir.join("frame-non-custom-meta.golden.txt")).expect("read"),
    )
    .remove(0);
    let fails = |golden_bytes: &[u8], mode: NanMode, mutate: &dyn Fn(&mut Frame)| -> bool {
        let g = golden::read_ipc_file(golden_bytes);
        let mut r = golden::rebuild(&g);
        mutate(&mut r.frame);
        let bytes = r.frame.encode(&r.ref_id).expect("encode");
        let ours = golden::read_ipc_file(&bytes);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            golden::compare("mutant", &g, &r.kept, &ours, mode)
        }))
        .is_err()
    };
    type Mutation = (&'static str, Box<dyn Fn(&mut Frame)>);
    let on_all: Vec<Mutation> = vec![
        ("frame name", Box::new(|f| f.name.push('x'))),
        ("executedQueryString", Box::new(|f| f.executed_query = None)),
        ("typeVersion", Box::new(|f| f.type_version = [0, 1])),
        ("frame type", Box::new(|f| f.frame_type = "table".into())),
        ("field name", Box::new(|f| f.fields[3].name.push('x'))),
        (
            "label value",
            Box::new(|f| {
                f.fields[1]
                    .labels
                    .insert("aLabelKey".into(), "other".into());
            }),
        ),
        (
            "config value",
            Box::new(|f| {
                f.fields[10].config = Some(serde_json::Map::from_iter([(
                    "interval".to_owned(),
                    serde_json::json!(2000),
                )]));
            }),
        ),
        ("nullable flag", Box::new(|f| f.fields[2].nullable = true)),
        (
            "string value",
            Box::new(|f| {
                if let Column::String(v) = &mut f.fields[1].values {
                    // heart without VS16
                    let mut cells: Vec<Option<&str>> = v.iter().collect();
                    cells[1] = Some("\u{2764}");
                    *v = cells.into();
                }
            }),
        ),
        (
            "time → int64",
            Box::new(|f| {
                if let Column::Time(v) = &f.fields[12].values {
                    f.fields[12].values = Column::Int(v.clone());
                }
            }),
        ),
        (
            "json → string",
            Box::new(|f| {
                if let Column::Json(v) = &f.fields[13].values {
                    f.fields[13].values = Column::String(v.clone());
                }
            }),
        ),
        (
            "NaN payload",
            Box::new(|f| {
                if let Column::Number(v) = &mut f.fields[5].values {
                    v[1] = Some(f64::NAN);
                }
            }),
        ),
        (
            "a null moved",
            Box::new(|f| {
                if let Column::Bool(v) = &mut f.fields[9].values {
                    v.swap(1, 2);
                }
            }),
        ),
    ];
    assert!(
        !fails(&all, NanMode::Bits, &|_| {}),
        "unmutated all_types passes"
    );
    for (what, m) in &on_all {
        assert!(
            fails(&all, NanMode::Bits, m.as_ref()),
            "mutation not detected: {what}"
        );
    }
    // Rust's NaN differs from Go's only in payload; AnyNan accepts it, Bits does not.
    assert!(!fails(&all, NanMode::AnyNan, on_all[11].1.as_ref()));
    assert!(
        !fails(&notice, NanMode::Bits, &|_| {}),
        "unmutated notice frame passes"
    );
    assert!(fails(&notice, NanMode::Bits, &|f| f.notices[0].severity =
        "warning"));
    assert!(fails(&notice, NanMode::Bits, &|f| f.notices.clear()));
}
