//! RestBridge build tasks, run as `cargo xtask <task>` (the alias is in `.cargo/config.toml`).
//!
//! `cargo xtask dist [--skip-frontend] [--target TRIPLE]... [--out DIR]` builds the plugin as
//! Grafana loads it (protocol.md §5.2, §5.3):
//!
//! 1. checks `plugin.json` (protocol.md §5.1) and reads the version from `Cargo.toml`;
//! 2. builds the frontend (`npm ci && npm run build` in `frontend/`) and copies its `dist/`
//!    (`module.js`, ...);
//! 3. builds the release binary for the host and for every other target whose rustup target
//!    and linker are installed (or exactly the `--target`s given), and copies each as
//!    `gpx_restbridge_<goos>_<goarch>[.exe]`, mode 0755;
//! 4. copies `plugin.json` with the version (and today's date, or `SOURCE_DATE_EPOCH`'s)
//!    stamped in, `img/`, `README.md`, `CHANGELOG.md`, `LICENSE`;
//! 5. zips `dist/` as `target/<plugin id>-<version>.zip`, top folder = plugin id.

mod archive;
mod manifest;
mod platform;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask dist [--skip-frontend] [--target TRIPLE]... [--out DIR]

  --skip-frontend   package without module.js (no frontend build; Grafana then only logs
                    \"Plugin missing module.js\" and the datasource is set up by provisioning)
  --target TRIPLE   build this Rust target (repeatable); default: the host, plus every one of
                    linux arm64/arm, darwin amd64/arm64, windows amd64 whose rustup target
                    and linker are installed (the others are skipped with a notice)
  --out DIR         the plugin folder to (re)create (default: dist/ in the repository)

The archive is written to the Cargo target directory as <plugin id>-<version>.zip.";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = match args.first().and_then(|a| a.to_str()) {
        Some("dist") if args.iter().any(|a| a == "-h" || a == "--help") => {
            print_usage();
            return ExitCode::SUCCESS;
        }
        Some("dist") => DistArgs::parse(&args[1..]).and_then(|a| dist(&a)),
        Some("help" | "-h" | "--help") | None => {
            print_usage();
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown task {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_usage() {
    use std::io::Write;
    // `cargo xtask --help | head` closes the pipe early: not an error.
    let _ = writeln!(std::io::stdout(), "{USAGE}");
}

#[derive(Debug, Default)]
struct DistArgs {
    skip_frontend: bool,
    targets: Vec<String>,
    out: Option<PathBuf>,
}

impl DistArgs {
    fn parse(args: &[OsString]) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let arg = arg.to_str().ok_or("arguments must be UTF-8")?;
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (arg, None),
            };
            let mut value = || -> Result<String, String> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => it
                        .next()
                        .and_then(|v| v.to_str())
                        .map(str::to_owned)
                        .ok_or(format!("{flag} needs a value\n\n{USAGE}")),
                }
            };
            match flag {
                "--skip-frontend" => parsed.skip_frontend = true,
                "--target" => parsed.targets.push(value()?),
                "--out" => parsed.out = Some(PathBuf::from(value()?)),
                _ => return Err(format!("unknown option {arg:?}\n\n{USAGE}")),
            }
        }
        Ok(parsed)
    }
}

/// The repository root (this crate lives in `<root>/xtask`).
fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// `CARGO_TARGET_DIR` (relative to the root) or `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("xtask: running {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn host_triple() -> Result<String, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let info = output(Command::new(rustc).arg("-vV")).ok_or("cannot run `rustc -vV`")?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_owned())
        .ok_or_else(|| "`rustc -vV` printed no host line".to_owned())
}

fn installed_targets() -> Option<Vec<String>> {
    let list = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    Some(list.lines().map(|l| l.trim().to_owned()).collect())
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} → {}: {e}", from.display(), to.display()))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    for (rel, is_dir) in archive::walk(from).map_err(|e| format!("{}: {e}", from.display()))? {
        if is_dir {
            let dir = to.join(&rel);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        } else {
            copy(&from.join(&rel), &to.join(&rel))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod 0755 {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<(), String> {
    Ok(())
}

/// Empties `out`, refusing a non-empty folder that is not a previous plugin folder.
fn reset_out_dir(out: &Path, id: &str) -> Result<(), String> {
    if out.exists() {
        let is_empty = std::fs::read_dir(out)
            .map_err(|e| format!("{}: {e}", out.display()))?
            .next()
            .is_none();
        let is_ours = std::fs::read_to_string(out.join("plugin.json"))
            .is_ok_and(|t| t.contains(&format!("\"{id}\"")));
        if !is_empty && !is_ours {
            return Err(format!(
                "{} exists and is not a {id} plugin folder; not deleting it (choose another --out)",
                out.display()
            ));
        }
        std::fs::remove_dir_all(out).map_err(|e| format!("rm -r {}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))
}

/// Seconds since the epoch: `SOURCE_DATE_EPOCH` (reproducible builds) or now.
fn build_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
}

/// Checks that the frontend can be built (before the long Rust build).
fn frontend_preflight(root: &Path, skip: bool) -> Result<bool, String> {
    if skip {
        eprintln!(
            "xtask: notice: --skip-frontend: no module.js in the package; Grafana logs \
             \"Plugin missing module.js\", runs the backend, and the datasource is set up by \
             provisioning"
        );
        return Ok(false);
    }
    let package_json = root.join("frontend").join("package.json");
    if !package_json.is_file() {
        return Err(format!(
            "{} not found, so module.js cannot be built.\n\
             Pass --skip-frontend to package the backend alone (provisioning-only, no UI editors).",
            package_json.display()
        ));
    }
    if output(Command::new("npm").arg("--version")).is_none() {
        return Err(
            "npm not found on PATH: install Node.js and npm to build module.js, \
             or pass --skip-frontend to package the backend alone"
                .to_owned(),
        );
    }
    Ok(true)
}

fn build_frontend(root: &Path, out: &Path) -> Result<(), String> {
    let frontend = root.join("frontend");
    run(Command::new("npm").arg("ci").current_dir(&frontend))?;
    run(Command::new("npm")
        .args(["run", "build"])
        .current_dir(&frontend))?;
    let built = frontend.join("dist");
    if !built.join("module.js").is_file() {
        return Err(format!(
            "`npm run build` did not produce {}",
            built.join("module.js").display()
        ));
    }
    // Everything the frontend build emits (module.js, chunks, source maps, ...); plugin.json,
    // img/ and the documents are then written over by ours.
    copy_tree(&built, out)
}

fn dist(args: &DistArgs) -> Result<(), String> {
    let root = repo_root();
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let out = args
        .out
        .as_ref()
        .map_or_else(|| root.join("dist"), |o| cwd.join(o));

    // 1. Inputs.
    let cargo_toml = read(&root.join("Cargo.toml"))?;
    let version =
        manifest::package_version(&cargo_toml).ok_or("Cargo.toml: no version in [package]")?;
    if !manifest::is_semver(&version) {
        return Err(format!("Cargo.toml version {version:?} is not semver"));
    }
    let plugin_text = read(&root.join("plugin.json"))?;
    let plugin = manifest::validate(&plugin_text, &root)
        .map_err(|p| format!("plugin.json:\n  {}", p.join("\n  ")))?;
    if !manifest::bin_names(&cargo_toml).contains(&plugin.executable) {
        return Err(format!(
            "plugin.json executable {:?} is not a [[bin]] of Cargo.toml",
            plugin.executable
        ));
    }
    for doc in ["README.md", "CHANGELOG.md", "LICENSE"] {
        if !root.join(doc).is_file() {
            return Err(format!("{doc} is missing in {}", root.display()));
        }
    }
    let with_frontend = frontend_preflight(&root, args.skip_frontend)?;

    let host = host_triple()?;
    let installed = installed_targets();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut configs = vec![root.join(".cargo").join("config.toml")];
    if let Some(home) = cargo_home {
        configs.push(home.join("config.toml"));
    }
    let config_refs: Vec<&Path> = configs.iter().map(PathBuf::as_path).collect();
    let (builds, notices) = platform::plan(&args.targets, &host, |triple| {
        match &installed {
            Some(list) if !list.iter().any(|t| t == triple) => {
                return Err(format!(
                    "rustup target not installed (`rustup target add {triple}`)"
                ))
            }
            None => return Err("rustup not found, only the host target is known".to_owned()),
            Some(_) => {}
        }
        platform::find_linker(triple, &host, &config_refs)
    })?;
    for notice in &notices {
        eprintln!("xtask: notice: {notice}");
    }
    if builds.is_empty() {
        return Err("nothing to build".to_owned());
    }

    // 2. Frontend.
    reset_out_dir(&out, &plugin.id)?;
    if with_frontend {
        build_frontend(&root, &out)?;
    }

    // 3. Binaries.
    let target = target_dir(&root);
    for build in &builds {
        let mut cmd = Command::new(cargo());
        cmd.current_dir(&root).args([
            "build",
            "--release",
            "--package",
            "restbridge",
            "--bin",
            &plugin.executable,
        ]);
        let mut built = target.clone();
        if !build.is_host {
            cmd.args(["--target", &build.triple]);
            built.push(&build.triple);
        }
        run(&mut cmd)?;
        let exe = if build.platform.goos == "windows" {
            ".exe"
        } else {
            ""
        };
        built.push("release");
        built.push(format!("{}{exe}", plugin.executable));
        let dest = out.join(build.platform.binary_name(&plugin.executable));
        copy(&built, &dest)?;
        make_executable(&dest)?;
    }

    // 4. Metadata and documents.
    let time = manifest::civil_from_unix(build_time());
    let updated = format!("{:04}-{:02}-{:02}", time.0, time.1, time.2);
    let stamped = manifest::stamp(&plugin_text, &version, &updated)?;
    std::fs::write(out.join("plugin.json"), &stamped)
        .map_err(|e| format!("{}: {e}", out.join("plugin.json").display()))?;
    copy_tree(&root.join("img"), &out.join("img"))?;
    for doc in ["README.md", "CHANGELOG.md", "LICENSE"] {
        copy(&root.join(doc), &out.join(doc))?;
    }
    let check = manifest::validate(&stamped, &out)
        .map_err(|p| format!("{}/plugin.json:\n  {}", out.display(), p.join("\n  ")))?;
    if check.version != version {
        return Err(format!(
            "dist plugin.json has version {}, Cargo.toml {version}",
            check.version
        ));
    }

    // 5. Archive.
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let zip_path = target.join(format!("{}-{version}.zip", plugin.id));
    let files = archive::zip_dir(&out, &plugin.id, &plugin.executable, &zip_path, time)?;

    println!("dist: {} (version {version})", out.display());
    for build in &builds {
        println!(
            "  {}  ({})",
            build.platform.binary_name(&plugin.executable),
            build.triple
        );
    }
    if !with_frontend {
        println!("  (no module.js: --skip-frontend)");
    }
    println!("archive: {} ({files} files)", zip_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<DistArgs, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        DistArgs::parse(&args)
    }

    #[test]
    fn dist_options() {
        let a = parse(&[
            "--skip-frontend",
            "--target",
            "aarch64-unknown-linux-gnu",
            "--target=x86_64-pc-windows-gnu",
            "--out",
            "/tmp/d",
        ])
        .unwrap_or_default();
        assert!(a.skip_frontend);
        assert_eq!(
            a.targets,
            ["aarch64-unknown-linux-gnu", "x86_64-pc-windows-gnu"]
        );
        assert_eq!(a.out.as_deref(), Some(Path::new("/tmp/d")));
        assert!(parse(&["--target"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    #[test]
    fn frontend_is_required_unless_skipped() {
        let root = temp_root("no-frontend");
        let err = frontend_preflight(&root, false).err().unwrap_or_default();
        assert!(err.contains("package.json not found"), "{err}");
        assert!(err.contains("--skip-frontend"), "{err}");
        assert_eq!(frontend_preflight(&root, true), Ok(false));
        let _ = std::fs::remove_dir_all(&root);
    }

    /// `npm ci && npm run build` on a package without dependencies, and the copy of its
    /// `dist/` (skipped without npm).
    #[test]
    fn frontend_build_lands_in_the_plugin_folder() {
        if output(Command::new("npm").arg("--version")).is_none() {
            eprintln!("skipping: npm not installed");
            return;
        }
        let root = temp_root("frontend");
        let frontend = root.join("frontend");
        std::fs::create_dir_all(&frontend).unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, body: &str| {
            std::fs::write(frontend.join(name), body).unwrap_or_else(|e| panic!("{e}"));
        };
        write(
            "package.json",
            r#"{"name": "fake-frontend", "version": "1.0.0", "private": true,
                "scripts": {"build": "node build.js"}}"#,
        );
        write(
            "package-lock.json",
            r#"{"name": "fake-frontend", "version": "1.0.0", "lockfileVersion": 3,
                "requires": true,
                "packages": {"": {"name": "fake-frontend", "version": "1.0.0"}}}"#,
        );
        write(
            "build.js",
            "const fs = require('fs');\n\
             fs.mkdirSync('dist/img', {recursive: true});\n\
             fs.writeFileSync('dist/module.js', 'export const plugin = 1;\\n');\n\
             fs.writeFileSync('dist/module.js.map', '{}');\n\
             fs.writeFileSync('dist/img/screenshot.png', 'png');\n",
        );
        assert_eq!(frontend_preflight(&root, false), Ok(true));
        let out = root.join("dist");
        std::fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{e}"));
        build_frontend(&root, &out).unwrap_or_else(|e| panic!("{e}"));
        for f in ["module.js", "module.js.map", "img/screenshot.png"] {
            assert!(out.join(f).is_file(), "{f} not copied");
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
