//! `plugin.json` (protocol.md §5.1): checks, and the version/date stamp `dist` applies; the
//! package version read from `Cargo.toml`.

use std::path::Path;

use serde_json::Value;

/// What `dist` needs from a valid `plugin.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginJson {
    /// `id`, e.g. `restbridge-rest-datasource` (also the archive's top folder).
    pub id: String,
    /// `executable`, the binary's base name.
    pub executable: String,
    /// `info.version`.
    pub version: String,
}

/// The `version` of the `[package]` table of a `Cargo.toml` (a literal string, not
/// `version.workspace = true`).
pub fn package_version(cargo_toml: &str) -> Option<String> {
    let mut in_package = false;
    for line in cargo_toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "version" {
            let value = value.split('#').next().unwrap_or_default().trim();
            return value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
        }
    }
    None
}

/// The `name`s of the `[[bin]]` tables of a `Cargo.toml`.
pub fn bin_names(cargo_toml: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in cargo_toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if let (true, Some((key, value))) = (in_bin, line.split_once('=')) {
            if key.trim() == "name" {
                names.push(value.trim().trim_matches('"').to_owned());
            }
        }
    }
    names
}

/// True for a semantic version `MAJOR.MINOR.PATCH[-PRE][+BUILD]` (semver.org §2, §9, §10).
pub fn is_semver(v: &str) -> bool {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let ident =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| {
            p.split('.')
                .all(|id| ident(id) && (id.bytes().any(|b| !b.is_ascii_digit()) || numeric(id)))
        })
        && build.is_none_or(|b| b.split('.').all(ident))
}

/// True for the catalogue's id rule `^[0-9a-z]+\-([0-9a-z]+\-)?(app|panel|datasource)$`.
pub fn is_plugin_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    let word = |s: &&str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    (2..=3).contains(&parts.len())
        && parts.iter().all(word)
        && matches!(parts.last(), Some(&("app" | "panel" | "datasource")))
}

/// True for an npm-semver range Grafana accepts in `grafanaDependency`: space-separated
/// comparators (`>=10.4.0`, `<13`, `^11.0.0`, `~10.4`), optionally joined with `||`.
pub fn is_version_range(range: &str) -> bool {
    let comparator = |c: &str| {
        let v = c.trim_start_matches(['>', '<', '=', '^', '~']);
        let ops = &c[..c.len() - v.len()];
        let partial = {
            let core = v.split(['-', '+']).next().unwrap_or_default();
            let nums: Vec<&str> = core.split('.').collect();
            (1..=3).contains(&nums.len())
                && nums.iter().all(|n| {
                    *n == "x"
                        || *n == "*"
                        || (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
        };
        matches!(ops, "" | ">" | ">=" | "<" | "<=" | "=" | "^" | "~") && partial
    };
    !range.trim().is_empty()
        && range
            .split("||")
            .all(|alt| !alt.trim().is_empty() && alt.split_whitespace().all(comparator))
}

/// True for a `YYYY-MM-DD` calendar date.
pub fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    if !d.is_ascii() || b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |s: &str| s.parse::<u32>().ok();
    match (num(&d[..4]), num(&d[5..7]), num(&d[8..])) {
        (Some(y), Some(m), Some(day)) => {
            (1..=12).contains(&m) && day >= 1 && day <= days_in_month(y, m) && y >= 1970
        }
        _ => false,
    }
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Civil date and time (UTC) of a Unix timestamp: (year, month, day, hour, minute, second).
/// Howard Hinnant's `civil_from_days`.
pub fn civil_from_unix(secs: u64) -> (u32, u32, u32, u32, u32, u32) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let c = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    (
        c(year),
        c(month),
        c(day),
        c(rem / 3600),
        c(rem % 3600 / 60),
        c(rem % 60),
    )
}

/// Checks a `plugin.json` against protocol.md §5.1 and what RestBridge declares (a backend
/// datasource with alerting, metrics and annotations). Logo paths are resolved against `dir`.
///
/// # Errors
/// Every problem found, one line each.
pub fn validate(text: &str, dir: &Path) -> Result<PluginJson, Vec<String>> {
    let json: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(vec![format!("not JSON: {e}")]),
    };
    let mut problems = Vec::new();
    let str_at = |ptr: &str| json.pointer(ptr).and_then(Value::as_str);

    let id = str_at("/id").unwrap_or_default();
    if !is_plugin_id(id) {
        problems.push(format!(
            "id {id:?} does not match ^[0-9a-z]+-([0-9a-z]+-)?(app|panel|datasource)$"
        ));
    }
    if str_at("/type") != Some("datasource") {
        problems.push("type must be \"datasource\"".into());
    } else if !id.ends_with("-datasource") {
        problems.push(format!("id {id:?} of a datasource must end in -datasource"));
    }
    if str_at("/name").is_none_or(|n| n.trim().is_empty()) {
        problems.push("name is missing".into());
    }
    for flag in ["backend", "alerting", "metrics", "annotations"] {
        if json.get(flag).and_then(Value::as_bool) != Some(true) {
            problems.push(format!("{flag} must be true"));
        }
    }
    let executable = str_at("/executable").unwrap_or_default();
    if executable.is_empty()
        || !executable
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        problems.push(format!(
            "executable {executable:?} must be a bare file name (no path, no extension)"
        ));
    }

    match json.pointer("/info/keywords").and_then(Value::as_array) {
        Some(k) if k.iter().all(Value::is_string) => {}
        _ => problems.push("info.keywords must be an array of strings".into()),
    }
    for logo in ["small", "large"] {
        match str_at(&format!("/info/logos/{logo}")) {
            None => problems.push(format!("info.logos.{logo} is missing")),
            Some(p) if p.starts_with('/') || p.split('/').any(|s| s == "..") => {
                problems.push(format!(
                    "info.logos.{logo} {p:?} must be a path inside the plugin"
                ));
            }
            Some(p) if !dir.join(p).is_file() => {
                problems.push(format!(
                    "info.logos.{logo} {p:?}: no such file in {}",
                    dir.display()
                ));
            }
            Some(_) => {}
        }
    }
    let version = str_at("/info/version").unwrap_or_default();
    if !is_semver(version) {
        problems.push(format!(
            "info.version {version:?} is not a semantic version"
        ));
    }
    let updated = str_at("/info/updated").unwrap_or_default();
    if !is_date(updated) {
        problems.push(format!("info.updated {updated:?} is not a YYYY-MM-DD date"));
    }
    match str_at("/dependencies/grafanaDependency") {
        Some(r) if is_version_range(r) => {}
        Some(r) => problems.push(format!(
            "dependencies.grafanaDependency {r:?} is not an npm version range"
        )),
        None => problems.push("dependencies.grafanaDependency is missing".into()),
    }
    if json.pointer("/dependencies/grafanaVersion").is_some() {
        problems.push("dependencies.grafanaVersion is deprecated: use grafanaDependency".into());
    }

    if problems.is_empty() {
        Ok(PluginJson {
            id: id.to_owned(),
            executable: executable.to_owned(),
            version: version.to_owned(),
        })
    } else {
        Err(problems)
    }
}

/// Sets `info.version` and `info.updated`. The two values are replaced in place when each
/// appears once, so the file keeps its layout; otherwise the JSON is rewritten.
///
/// # Errors
/// The text is not a JSON object with an `info` object.
pub fn stamp(text: &str, version: &str, updated: &str) -> Result<String, String> {
    let mut json: Value =
        serde_json::from_str(text).map_err(|e| format!("plugin.json is not JSON: {e}"))?;
    let info = json
        .get_mut("info")
        .and_then(Value::as_object_mut)
        .ok_or("plugin.json has no info object")?;
    let old_version = info
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let old_updated = info
        .get("updated")
        .and_then(Value::as_str)
        .map(str::to_owned);
    info.insert("version".into(), Value::from(version));
    info.insert("updated".into(), Value::from(updated));

    let in_place = old_version
        .and_then(|old| replace_once(text, "version", &old, version))
        .and_then(|t| {
            let old = old_updated?;
            replace_once(&t, "updated", &old, updated)
        });
    let out = match in_place {
        Some(t) if serde_json::from_str::<Value>(&t).ok().as_ref() == Some(&json) => t,
        _ => {
            let mut t = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
            t.push('\n');
            t
        }
    };
    Ok(out)
}

/// Replaces the one `"key": "old"` member of `text` with `"key": "new"`; `None` unless it
/// occurs exactly once.
fn replace_once(text: &str, key: &str, old: &str, new: &str) -> Option<String> {
    let key_json = serde_json::to_string(key).ok()?;
    let old_json = serde_json::to_string(old).ok()?;
    let new_json = serde_json::to_string(new).ok()?;
    let mut found = None;
    for (at, _) in text.match_indices(&key_json) {
        let after_key = &text[at + key_json.len()..];
        let rest = after_key.trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with(&old_json) {
            if found.is_some() {
                return None;
            }
            let start = text.len() - rest.len();
            found = Some(start..start + old_json.len());
        }
    }
    let range = found?;
    Some(format!(
        "{}{new_json}{}",
        &text[..range.start],
        &text[range.end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The repository's plugin.json is what protocol.md §5.1 asks for, and names the binary
    /// Cargo builds.
    #[test]
    fn repo_plugin_json_is_valid() {
        let root = repo();
        let text = read(&root.join("plugin.json"));
        let plugin = validate(&text, &root).unwrap_or_else(|p| panic!("{}", p.join("\n")));
        assert_eq!(plugin.id, "restbridge-rest-datasource");
        assert_eq!(plugin.executable, "gpx_restbridge");
        let cargo = read(&root.join("Cargo.toml"));
        assert!(
            bin_names(&cargo).contains(&plugin.executable),
            "plugin.json executable {:?} is not a [[bin]] of Cargo.toml",
            plugin.executable
        );
    }

    #[test]
    fn stamping_keeps_the_layout_and_changes_only_version_and_date() {
        let root = repo();
        let text = read(&root.join("plugin.json"));
        let out = stamp(&text, "9.8.7-rc.1", "2031-02-03").unwrap_or_default();
        let plugin = validate(&out, &root).unwrap_or_else(|p| panic!("{}", p.join("\n")));
        assert_eq!(plugin.version, "9.8.7-rc.1");
        assert!(out.contains("\"updated\": \"2031-02-03\""), "{out}");
        // Same lines, except the two stamped ones.
        let changed = text
            .lines()
            .zip(out.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(text.lines().count(), out.lines().count());
        assert_eq!(changed, 2, "{out}");
    }

    #[test]
    fn stamping_rewrites_when_the_version_is_ambiguous() {
        let text = r#"{"info": {"version": "1.0.0", "updated": "2020-01-01"},
                       "dependencies": {"plugins": [{"id": "x", "version": "1.0.0"}]}}"#;
        let out = stamp(text, "2.0.0", "2021-01-01").unwrap_or_default();
        let v: Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(v.pointer("/info/version"), Some(&Value::from("2.0.0")));
        assert_eq!(v.pointer("/info/updated"), Some(&Value::from("2021-01-01")));
        assert_eq!(
            v.pointer("/dependencies/plugins/0/version"),
            Some(&Value::from("1.0.0"))
        );
    }

    #[test]
    fn validation_reports_every_problem() {
        let text = r#"{"id": "RestBridge", "type": "datasource", "name": "x", "backend": true,
            "executable": "bin/gpx", "info": {"keywords": [], "logos": {"small": "img/none.svg",
            "large": "../logo.svg"}, "version": "0.1", "updated": "2026-02-30"},
            "dependencies": {"grafanaDependency": "latest"}}"#;
        let problems = validate(text, &repo()).err().unwrap_or_default();
        let all = problems.join("\n");
        for needle in [
            "id \"RestBridge\"",
            "alerting must be true",
            "metrics must be true",
            "annotations must be true",
            "executable",
            "info.logos.small",
            "info.logos.large",
            "info.version",
            "info.updated",
            "grafanaDependency",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn plugin_ids() {
        for ok in [
            "restbridge-rest-datasource",
            "grafana-datasource",
            "a1-b2-panel",
            "x-app",
        ] {
            assert!(is_plugin_id(ok), "{ok}");
        }
        for bad in [
            "RestBridge-rest-datasource",
            "restbridge-rest-api-datasource",
            "restbridge-rest",
            "datasource",
            "-rest-datasource",
            "rest_bridge-datasource",
        ] {
            assert!(!is_plugin_id(bad), "{bad}");
        }
    }

    #[test]
    fn semver_and_ranges() {
        for ok in ["0.1.0", "1.2.3-rc.1", "1.0.0-alpha-1+build.5", "10.20.30"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "0.1", "01.0.0", "1.0.0-", "1.0.0-01", "v1.0.0", "1.0.0+", "",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
        for ok in [
            ">=10.4.0",
            ">=10.4.0 <13",
            "^11.0.0",
            "~10.4",
            ">=9 || >=10.4.0-0",
        ] {
            assert!(is_version_range(ok), "{ok}");
        }
        for bad in ["", "latest", ">=", "=>10.0.0", ">=10.4.0 ||"] {
            assert!(!is_version_range(bad), "{bad}");
        }
    }

    #[test]
    fn cargo_toml_fields() {
        let toml = "[workspace]\nmembers = [\"xtask\"]\nversion = \"9.9.9\"\n\n[package]\nname = \"restbridge\"\nversion = \"0.1.0\" # comment\n\n[[bin]]\nname = \"gpx_restbridge\"\npath = \"src/main.rs\"\n\n[dependencies]\nversion = \"1\"\n";
        assert_eq!(package_version(toml).as_deref(), Some("0.1.0"));
        assert_eq!(bin_names(toml), ["gpx_restbridge"]);
        assert_eq!(
            package_version("[package]\nversion.workspace = true\n"),
            None
        );
        let root = repo();
        let version = package_version(&read(&root.join("Cargo.toml")));
        assert!(version.as_deref().is_some_and(is_semver), "{version:?}");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil_from_unix(1_798_761_599), (2026, 12, 31, 23, 59, 59));
        assert!(is_date("2024-02-29") && !is_date("2023-02-29") && !is_date("2026-13-01"));
        assert!(!is_date("2026-1-01"));
    }
}
