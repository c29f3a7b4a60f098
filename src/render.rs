//! A readable text rendering of frames, for the command-line tool and test snapshots:
//! name, type, labels, fields with types, rows.

use std::fmt::Write;

use crate::frame::{Column, Frame};

/// Formats epoch nanoseconds as RFC 3339 UTC (`2024-01-01T00:00:00Z`, fractions only when
/// non-zero).
pub fn format_time(ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => ts.to_string(),
        Err(_) => format!("{ns}ns"),
    }
}

/// One cell as text; nulls are `null`.
pub fn cell(c: &Column, row: usize) -> String {
    fn opt<T>(v: &[Option<T>], row: usize, f: impl Fn(&T) -> String) -> String {
        match v.get(row) {
            Some(Some(x)) => f(x),
            _ => "null".to_owned(),
        }
    }
    match c {
        Column::Time(v) => opt(v, row, |t| format_time(*t)),
        Column::Number(v) => opt(v, row, |f| format!("{f}")),
        Column::Int(v) => opt(v, row, |i| i.to_string()),
        Column::String(v) | Column::Json(v) => v.get(row).unwrap_or("null").to_owned(),
        Column::Bool(v) => opt(v, row, |b| b.to_string()),
    }
}

/// Renders frames as text. `max_rows` limits the rows shown per frame (`None` = all).
pub fn frames_to_text(frames: &[Frame], max_rows: Option<usize>) -> String {
    let mut out = String::new();
    if frames.is_empty() {
        out.push_str("(no frames)\n");
    }
    for (i, f) in frames.iter().enumerate() {
        let _ = write!(out, "frame {}/{}: name={:?}", i + 1, frames.len(), f.name);
        if !f.frame_type.is_empty() {
            let _ = write!(
                out,
                " type={} typeVersion=[{},{}]",
                f.frame_type, f.type_version[0], f.type_version[1]
            );
        }
        let _ = writeln!(out, " rows={}", f.rows());
        if let Some(q) = &f.executed_query {
            let _ = writeln!(out, "  executedQueryString: {q}");
        }
        for n in &f.notices {
            let _ = writeln!(out, "  notice ({}): {}", n.severity, n.text);
        }
        for fld in &f.fields {
            let _ = write!(
                out,
                "  field {:?}: {}{}",
                fld.name,
                fld.values.type_name(),
                if fld.nullable { " (nullable)" } else { "" }
            );
            if !fld.labels.is_empty() {
                let labels: Vec<String> = fld
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect();
                let _ = write!(out, " labels {{{}}}", labels.join(", "));
            }
            if let Some(c) = &fld.config {
                let _ = write!(out, " config {}", serde_json::Value::Object(c.clone()));
            }
            out.push('\n');
        }
        if f.fields.is_empty() {
            continue;
        }
        let rows = f.rows();
        let shown = max_rows.map_or(rows, |m| m.min(rows));
        let mut table: Vec<Vec<String>> = Vec::with_capacity(shown + 1);
        table.push(f.fields.iter().map(|x| x.name.clone()).collect());
        for r in 0..shown {
            table.push(f.fields.iter().map(|x| cell(&x.values, r)).collect());
        }
        let widths: Vec<usize> = (0..f.fields.len())
            .map(|c| {
                table
                    .iter()
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for (ri, row) in table.iter().enumerate() {
            out.push_str("  |");
            for (c, text) in row.iter().enumerate() {
                let pad = widths[c] - text.chars().count();
                let _ = write!(out, " {text}{} |", " ".repeat(pad));
            }
            out.push('\n');
            if ri == 0 {
                out.push_str("  |");
                for w in &widths {
                    let _ = write!(out, "{}|", "-".repeat(w + 2));
                }
                out.push('\n');
            }
        }
        if shown < rows {
            let _ = writeln!(out, "  … {} more row(s)", rows - shown);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Field;

    #[test]
    fn renders_a_small_table() {
        let f = Frame {
            name: "r".into(),
            fields: vec![
                Field::new("time", Column::Time(vec![Some(1_704_067_200_000_000_000)])),
                Field::new("v", Column::Number(vec![None])),
            ],
            ..Frame::default()
        };
        let text = frames_to_text(&[f], None);
        assert!(text.contains("frame 1/1: name=\"r\" rows=1"), "{text}");
        assert!(text.contains("field \"v\": float64 (nullable)"), "{text}");
        assert!(text.contains("| 2024-01-01T00:00:00Z | null |"), "{text}");
    }
}
