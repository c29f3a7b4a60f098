//! The plugin archive Grafana installs: a zip whose one top folder is the plugin id
//! (`restbridge-rest-datasource/plugin.json`, ...), binaries mode 0755.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// Every file and folder under `dir`, relative to it, folders before their contents, sorted.
///
/// # Errors
/// A folder that cannot be read.
pub fn walk(dir: &Path) -> std::io::Result<Vec<(PathBuf, bool)>> {
    let mut out = Vec::new();
    walk_into(dir, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk_into(base: &Path, rel: &Path, out: &mut Vec<(PathBuf, bool)>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(base.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let rel = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            out.push((rel.clone(), true));
            walk_into(base, &rel, out)?;
        } else {
            out.push((rel, false));
        }
    }
    Ok(())
}

/// Zips `dir` into `zip_path` under the top folder `top`. Files whose name starts with
/// `executable_` get mode 0755, the others 0644. `time` is (y, m, d, h, min, s) UTC.
///
/// # Errors
/// I/O and zip errors, with the file concerned.
pub fn zip_dir(
    dir: &Path,
    top: &str,
    executable: &str,
    zip_path: &Path,
    time: (u32, u32, u32, u32, u32, u32),
) -> Result<usize, String> {
    let ctx = |what: &Path| {
        let what = what.display().to_string();
        move |e: std::io::Error| format!("{what}: {e}")
    };
    let (y, mo, d, h, mi, s) = time;
    let narrow = |v: u32| u8::try_from(v).unwrap_or(0);
    let stamp = u16::try_from(y)
        .ok()
        .and_then(|y| {
            DateTime::from_date_and_time(y, narrow(mo), narrow(d), narrow(h), narrow(mi), narrow(s))
                .ok()
        })
        .unwrap_or_default();
    let base = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(stamp);

    let file = File::create(zip_path).map_err(ctx(zip_path))?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let zerr = |e: zip::result::ZipError| format!("{}: {e}", zip_path.display());
    zip.add_directory(format!("{top}/"), base.unix_permissions(0o755))
        .map_err(zerr)?;
    let mut files = 0;
    let prefix = format!("{executable}_");
    for (rel, is_dir) in walk(dir).map_err(ctx(dir))? {
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let name = format!("{top}/{name}");
        if is_dir {
            zip.add_directory(format!("{name}/"), base.unix_permissions(0o755))
                .map_err(zerr)?;
            continue;
        }
        let is_binary =
            rel.parent() == Some(Path::new("")) && rel.to_string_lossy().starts_with(&prefix);
        let mode = if is_binary { 0o755 } else { 0o644 };
        let path = dir.join(&rel);
        let data = std::fs::read(&path).map_err(ctx(&path))?;
        let options = base
            .unix_permissions(mode)
            .large_file(data.len() >= u32::MAX as usize);
        zip.start_file(name, options).map_err(zerr)?;
        zip.write_all(&data).map_err(ctx(zip_path))?;
        files += 1;
    }
    let mut out = zip.finish().map_err(zerr)?;
    out.flush().map_err(ctx(zip_path))?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn zip_has_one_top_folder_and_binary_modes() {
        let tmp = std::env::temp_dir().join(format!("xtask-zip-test-{}", std::process::id()));
        let dist = tmp.join("dist");
        let mk = |p: &str, body: &str| {
            let path = dist.join(p);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(path, body).unwrap_or_else(|e| panic!("{e}"));
        };
        mk("plugin.json", "{}");
        mk("img/logo.svg", "<svg/>");
        mk("gpx_x_linux_amd64", "ELF");
        let zip_path = tmp.join("p.zip");
        let n = zip_dir(
            &dist,
            "org-x-datasource",
            "gpx_x",
            &zip_path,
            (2026, 1, 2, 3, 4, 6),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, 3);

        let file = File::open(&zip_path).unwrap_or_else(|e| panic!("{e}"));
        let mut archive = zip::ZipArchive::new(file).unwrap_or_else(|e| panic!("{e}"));
        let mut seen = Vec::new();
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).unwrap_or_else(|e| panic!("{e}"));
            let mut body = String::new();
            if entry.is_file() {
                entry
                    .read_to_string(&mut body)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            let name = entry
                .name()
                .map(|n| n.into_owned())
                .unwrap_or_else(|e| panic!("{e}"));
            seen.push((name, entry.unix_mode().map(|m| m & 0o777), body));
        }
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "org-x-datasource/",
                "org-x-datasource/gpx_x_linux_amd64",
                "org-x-datasource/img/",
                "org-x-datasource/img/logo.svg",
                "org-x-datasource/plugin.json",
            ]
        );
        assert_eq!(seen[1].1, Some(0o755));
        assert_eq!(seen[1].2, "ELF");
        assert_eq!(seen[3].1, Some(0o644));
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
