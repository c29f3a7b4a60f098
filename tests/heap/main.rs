//! `restbridge::heap::tune` changes glibc's allocator the way its docs say: buffers under
//! 2 MiB come from the heap and stay there when freed (no trim, no fresh page faults on the
//! next burst), buffers of 2 MiB or more are mapped on their own.
//!
//! A harness-less test binary: `main` runs on the process's only thread, so every allocation
//! below goes to glibc's main arena and `mallinfo2` (glibc ≥ 2.33) sees exactly what it did.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

fn main() -> ExitCode {
    imp::run()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::hint::black_box;
    use std::process::ExitCode;

    use restbridge::heap::{self, Tuning, MMAP_THRESHOLD, TRIM_THRESHOLD};

    const MIB: usize = 1 << 20;

    fn info() -> libc::mallinfo2 {
        // SAFETY: mallinfo2 only reads glibc's allocator statistics.
        unsafe { libc::mallinfo2() }
    }

    pub fn run() -> ExitCode {
        let mut failed = Vec::new();
        let mut check = |ok: bool, what: String| {
            println!("{} {what}", if ok { "ok  " } else { "FAIL" });
            if !ok {
                failed.push(what);
            }
        };

        if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.")) {
            check(
                heap::tune() == Tuning::LeftToTunables,
                "GLIBC_TUNABLES names malloc tunables: tune() leaves malloc alone".into(),
            );
            println!("notice: GLIBC_TUNABLES configures malloc; the threshold checks are skipped");
        } else {
            check(
                heap::tune() == Tuning::Applied,
                "tune() sets both thresholds".into(),
            );

            // 1 MiB: above glibc's default 128 KiB mmap threshold, below ours.
            let before = info();
            let v = black_box(vec![1u8; MIB]);
            let during = info();
            check(
                during.hblkhd < before.hblkhd + MIB,
                format!(
                    "a 1 MiB buffer comes from the heap, not its own mapping (mapped bytes {} → {})",
                    before.hblkhd, during.hblkhd
                ),
            );
            drop(v);
            let after = info();
            check(
                after.keepcost >= MIB && after.keepcost < TRIM_THRESHOLD + MIB,
                format!(
                    "freed, it stays at the top of the heap, not trimmed (releasable top {} bytes)",
                    after.keepcost
                ),
            );
            check(
                after.arena >= during.arena,
                format!(
                    "the heap keeps its size after the free ({} → {} bytes)",
                    during.arena, after.arena
                ),
            );

            // At the mmap threshold: its own mapping, returned on free.
            let big = black_box(vec![1u8; MMAP_THRESHOLD + MIB]);
            let mapped = info();
            check(
                mapped.hblkhd >= after.hblkhd + MMAP_THRESHOLD + MIB,
                format!(
                    "a {} MiB buffer gets its own mapping (mapped bytes {} → {})",
                    (MMAP_THRESHOLD + MIB) / MIB,
                    after.hblkhd,
                    mapped.hblkhd
                ),
            );
            drop(big);
            check(
                info().hblkhd <= after.hblkhd,
                "and the mapping is returned when it is freed".into(),
            );
        }

        if failed.is_empty() {
            println!("heap: all checks passed");
            ExitCode::SUCCESS
        } else {
            println!("heap: {} check(s) failed", failed.len());
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn run() -> std::process::ExitCode {
        println!("notice: not a glibc target; restbridge::heap::tune does nothing here");
        std::process::ExitCode::SUCCESS
    }
}
