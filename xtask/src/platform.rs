//! Rust target triples → Grafana's binary names (protocol.md §5.2), and which targets this
//! machine can build.
//!
//! Grafana looks for `<executable>_<GOOS>_<GOARCH>[.exe]` in the plugin folder, in Go's
//! spelling: `x86_64-unknown-linux-gnu` is `linux_amd64`, `aarch64-apple-darwin` is
//! `darwin_arm64`, `x86_64-pc-windows-gnu` is `windows_amd64.exe`.

use std::path::Path;

/// A platform in Go's spelling (`GOOS`, `GOARCH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoPlatform {
    /// `linux`, `darwin`, `windows`, ...
    pub goos: &'static str,
    /// `amd64`, `arm64`, `arm`, `386`, ...
    pub goarch: &'static str,
}

impl GoPlatform {
    /// The file name Grafana starts for this platform: `gpx_restbridge_linux_amd64`,
    /// `gpx_restbridge_windows_amd64.exe`.
    pub fn binary_name(&self, executable: &str) -> String {
        let exe = if self.goos == "windows" { ".exe" } else { "" };
        format!("{executable}_{}_{}{exe}", self.goos, self.goarch)
    }
}

impl std::fmt::Display for GoPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.goos, self.goarch)
    }
}

/// Maps a Rust target triple to Go's `GOOS`/`GOARCH`; `None` for a triple Grafana has no
/// binary name for (an unknown architecture or OS, bare metal, wasm).
pub fn go_platform(triple: &str) -> Option<GoPlatform> {
    let mut parts = triple.split('-');
    let arch = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let goarch = match arch {
        "x86_64" => "amd64",
        "i386" | "i586" | "i686" => "386",
        "aarch64" | "arm64" => "arm64",
        "arm" | "armv5te" | "armv6" | "armv7" | "armv7a" | "thumbv7neon" => "arm",
        "riscv64" | "riscv64gc" => "riscv64",
        "powerpc64le" => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "loongarch64" => "loong64",
        _ => return None,
    };
    let has = |name: &str| rest.iter().any(|p| *p == name || p.starts_with(name));
    // Order matters: `aarch64-linux-android` is Android, not Linux.
    let goos = if has("android") {
        "android"
    } else if has("linux") {
        "linux"
    } else if has("darwin") {
        "darwin"
    } else if has("windows") {
        "windows"
    } else if has("freebsd") {
        "freebsd"
    } else if has("netbsd") {
        "netbsd"
    } else if has("openbsd") {
        "openbsd"
    } else if has("illumos") {
        "illumos"
    } else {
        return None;
    };
    Some(GoPlatform { goos, goarch })
}

/// What `cargo xtask dist` builds without `--target`: the host, plus the platforms the Go
/// SDK's build produces (protocol.md §5.2) whose toolchain is installed.
pub const DEFAULT_TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "armv7-unknown-linux-gnueabihf",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-gnu",
];

/// One binary to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The Rust target triple.
    pub triple: String,
    /// Its Go spelling.
    pub platform: GoPlatform,
    /// The host triple: built without `--target` (into `target/release/`).
    pub is_host: bool,
}

/// Chooses the builds. `requested` empty means "the host and every default target this
/// machine can build" (the others are returned as notices); a requested target that cannot
/// be built is an error. `can_build` answers for a non-host triple.
///
/// # Errors
/// A requested triple with no Go name, or one `can_build` refuses.
pub fn plan(
    requested: &[String],
    host: &str,
    mut can_build: impl FnMut(&str) -> Result<(), String>,
) -> Result<(Vec<Build>, Vec<String>), String> {
    let explicit = !requested.is_empty();
    let candidates: Vec<String> = if explicit {
        requested.to_vec()
    } else {
        std::iter::once(host)
            .chain(DEFAULT_TARGETS.iter().copied())
            .map(str::to_owned)
            .collect()
    };
    let mut builds: Vec<Build> = Vec::new();
    let mut notices = Vec::new();
    for triple in candidates {
        if builds.iter().any(|b| b.triple == triple) {
            continue;
        }
        let Some(platform) = go_platform(&triple) else {
            let msg = format!("{triple}: no Grafana binary name (GOOS/GOARCH) for this target");
            if explicit {
                return Err(msg);
            }
            notices.push(msg);
            continue;
        };
        if let Some(other) = builds.iter().find(|b| b.platform == platform) {
            let msg = format!(
                "{triple}: skipped, {platform} is already built from {}",
                other.triple
            );
            if explicit {
                return Err(msg);
            }
            notices.push(msg);
            continue;
        }
        let is_host = triple == host;
        if !is_host {
            if let Err(why) = can_build(&triple) {
                let msg = format!("{triple} ({platform}): {why}");
                if explicit {
                    return Err(msg);
                }
                notices.push(format!("skipping {msg}"));
                continue;
            }
        }
        builds.push(Build {
            triple,
            platform,
            is_host,
        });
    }
    Ok((builds, notices))
}

/// The C cross-compiler (also the linker) Debian/Ubuntu packages install for a triple;
/// `ring` needs it as `CC` too.
pub fn default_cross_gcc(triple: &str) -> Option<&'static str> {
    Some(match triple {
        "x86_64-unknown-linux-gnu" => "x86_64-linux-gnu-gcc",
        "aarch64-unknown-linux-gnu" => "aarch64-linux-gnu-gcc",
        "armv7-unknown-linux-gnueabihf" => "arm-linux-gnueabihf-gcc",
        "i686-unknown-linux-gnu" => "i686-linux-gnu-gcc",
        "riscv64gc-unknown-linux-gnu" => "riscv64-linux-gnu-gcc",
        "powerpc64le-unknown-linux-gnu" => "powerpc64le-linux-gnu-gcc",
        "s390x-unknown-linux-gnu" => "s390x-linux-gnu-gcc",
        "x86_64-pc-windows-gnu" => "x86_64-w64-mingw32-gcc",
        "i686-pc-windows-gnu" => "i686-w64-mingw32-gcc",
        _ => return None,
    })
}

/// `CARGO_TARGET_<TRIPLE>_LINKER`, the variable that names a target's linker.
pub fn linker_env_var(triple: &str) -> String {
    let upper: String = triple
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("CARGO_TARGET_{upper}_LINKER")
}

/// Whether a linker for `triple` is at hand: `CARGO_TARGET_<TRIPLE>_LINKER`, a
/// `[target.<triple>]` table in one of `cargo_configs`, a musl target of the host's own
/// architecture (the host `cc` links it), or the Debian cross gcc on `PATH`.
///
/// # Errors
/// What is missing, with the fix.
pub fn find_linker(triple: &str, host: &str, cargo_configs: &[&Path]) -> Result<(), String> {
    let var = linker_env_var(triple);
    if std::env::var_os(&var).is_some_and(|v| !v.is_empty()) {
        return Ok(());
    }
    let table = format!("[target.{triple}]");
    let quoted = format!("[target.\"{triple}\"]");
    for config in cargo_configs {
        if let Ok(text) = std::fs::read_to_string(config) {
            if text.contains(&table) || text.contains(&quoted) {
                return Ok(());
            }
        }
    }
    let same_arch = triple.split('-').next() == host.split('-').next();
    if same_arch && triple.contains("-linux-musl") && host.contains("-linux-") {
        return Ok(());
    }
    match default_cross_gcc(triple) {
        Some(gcc) if on_path(gcc) => Ok(()),
        Some(gcc) => Err(format!("no linker: install `{gcc}` or set {var}")),
        None => Err(format!(
            "no linker: set {var} (or a [target.{triple}] linker)"
        )),
    }
}

/// True when `program` is an executable file in a `PATH` directory.
pub fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("exe").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(triple: &str) -> Option<(&'static str, &'static str)> {
        go_platform(triple).map(|p| (p.goos, p.goarch))
    }

    #[test]
    fn triples_map_to_go_spelling() {
        let cases = [
            ("x86_64-unknown-linux-gnu", Some(("linux", "amd64"))),
            ("x86_64-unknown-linux-musl", Some(("linux", "amd64"))),
            ("aarch64-unknown-linux-gnu", Some(("linux", "arm64"))),
            ("aarch64-unknown-linux-musl", Some(("linux", "arm64"))),
            ("armv7-unknown-linux-gnueabihf", Some(("linux", "arm"))),
            ("arm-unknown-linux-gnueabihf", Some(("linux", "arm"))),
            ("armv7-unknown-linux-musleabihf", Some(("linux", "arm"))),
            ("i686-unknown-linux-gnu", Some(("linux", "386"))),
            ("riscv64gc-unknown-linux-gnu", Some(("linux", "riscv64"))),
            ("powerpc64le-unknown-linux-gnu", Some(("linux", "ppc64le"))),
            ("s390x-unknown-linux-gnu", Some(("linux", "s390x"))),
            ("loongarch64-unknown-linux-gnu", Some(("linux", "loong64"))),
            ("x86_64-apple-darwin", Some(("darwin", "amd64"))),
            ("aarch64-apple-darwin", Some(("darwin", "arm64"))),
            ("x86_64-pc-windows-gnu", Some(("windows", "amd64"))),
            ("x86_64-pc-windows-msvc", Some(("windows", "amd64"))),
            ("aarch64-pc-windows-msvc", Some(("windows", "arm64"))),
            ("i686-pc-windows-msvc", Some(("windows", "386"))),
            ("x86_64-unknown-freebsd", Some(("freebsd", "amd64"))),
            ("aarch64-linux-android", Some(("android", "arm64"))),
            ("wasm32-unknown-unknown", None),
            ("thumbv7em-none-eabihf", None),
            ("aarch64-apple-ios", None),
            ("", None),
        ];
        for (triple, want) in cases {
            assert_eq!(go(triple), want, "{triple}");
        }
    }

    #[test]
    fn binary_names_follow_grafana() {
        let name = |t: &str| go_platform(t).map(|p| p.binary_name("gpx_restbridge"));
        assert_eq!(
            name("x86_64-unknown-linux-gnu").as_deref(),
            Some("gpx_restbridge_linux_amd64")
        );
        assert_eq!(
            name("aarch64-apple-darwin").as_deref(),
            Some("gpx_restbridge_darwin_arm64")
        );
        assert_eq!(
            name("armv7-unknown-linux-gnueabihf").as_deref(),
            Some("gpx_restbridge_linux_arm")
        );
        assert_eq!(
            name("x86_64-pc-windows-gnu").as_deref(),
            Some("gpx_restbridge_windows_amd64.exe")
        );
    }

    #[test]
    fn every_default_target_has_a_go_name() {
        for t in DEFAULT_TARGETS {
            assert!(go_platform(t).is_some(), "{t}");
        }
    }

    #[test]
    fn default_plan_keeps_the_host_and_skips_what_cannot_build() {
        let host = "x86_64-unknown-linux-gnu";
        let (builds, notices) = plan(&[], host, |t| {
            if t == "aarch64-unknown-linux-gnu" {
                Ok(())
            } else {
                Err("no linker".into())
            }
        })
        .unwrap_or_default();
        let triples: Vec<&str> = builds.iter().map(|b| b.triple.as_str()).collect();
        assert_eq!(
            triples,
            ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
        );
        assert!(builds[0].is_host && !builds[1].is_host);
        // armv7, two darwins, windows: one notice each; the host is not listed twice.
        assert_eq!(notices.len(), 4, "{notices:?}");
        assert!(notices.iter().all(|n| n.starts_with("skipping ")));
    }

    #[test]
    fn default_plan_on_a_musl_host_does_not_build_linux_amd64_twice() {
        let host = "x86_64-unknown-linux-musl";
        let (builds, notices) = plan(&[], host, |_| Ok(())).unwrap_or_default();
        assert_eq!(builds[0].triple, host);
        assert!(!builds
            .iter()
            .any(|b| b.triple == "x86_64-unknown-linux-gnu"));
        assert!(notices.iter().any(|n| n.contains("already built")));
    }

    #[test]
    fn explicit_targets_must_build() {
        let host = "x86_64-unknown-linux-gnu";
        let refuse = |_: &str| -> Result<(), String> { Err("no linker".into()) };
        let req = |ts: &[&str]| ts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(plan(&req(&["aarch64-apple-darwin"]), host, refuse).is_err());
        assert!(plan(&req(&["wasm32-unknown-unknown"]), host, refuse).is_err());
        let (builds, notices) = plan(&req(&[host, host]), host, refuse).unwrap_or_default();
        assert_eq!(builds.len(), 1);
        assert!(notices.is_empty());
    }

    #[test]
    fn linker_variable_name() {
        assert_eq!(
            linker_env_var("aarch64-unknown-linux-gnu"),
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER"
        );
    }
}
