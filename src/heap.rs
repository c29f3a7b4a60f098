//! glibc malloc settings for the plugin process.
//!
//! A cache hit answers with a ~28 KB encoded frame per query (1,000 rows); with 16 queries in
//! flight about half a MiB of buffers is allocated and freed again and again. glibc's defaults
//! return the top of a heap to the kernel as soon as more than 128 KiB of it is free
//! (`M_TRIM_THRESHOLD`), so the next burst faults the same pages back in, zeroed by the
//! kernel. That was ~10 µs of system time per hit on the hit benchmark (26–28 → 14–16
//! µs; docs/benchmarks-load.md, "glibc heap trimming").
//!
//! [`tune`] sets the trim threshold to [`TRIM_THRESHOLD`] (4 MiB) and the mmap threshold to
//! [`MMAP_THRESHOLD`] (2 MiB). This is the state glibc's own dynamic thresholds reach after
//! the process has freed one 2 MiB buffer (mallopt(3): a freed mmapped chunk raises the mmap
//! threshold to its size and the trim threshold to twice that); fixing them keeps the hit path
//! from depending on whether such a buffer has been seen. Buffers of 2 MiB or more (large
//! upstream bodies) are still mapped and unmapped on their own, and at most ~4 MiB of free
//! heap per malloc arena stays resident.
//!
//! An administrator's own `GLIBC_TUNABLES=glibc.malloc.…` settings win: [`tune`] then leaves
//! malloc alone.

/// Free bytes at the top of a malloc heap that glibc keeps instead of returning them to the
/// kernel (mallopt(3) `M_TRIM_THRESHOLD`; glibc's default is 128 KiB).
pub const TRIM_THRESHOLD: usize = 4 << 20;

/// Allocations of this many bytes or more get their own memory mapping (mallopt(3)
/// `M_MMAP_THRESHOLD`; glibc's default starts at 128 KiB and rises up to 32 MiB).
pub const MMAP_THRESHOLD: usize = 2 << 20;

/// What [`tune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// Both thresholds were set.
    Applied,
    /// `GLIBC_TUNABLES` names a `glibc.malloc.` tunable: the administrator's settings stay.
    LeftToTunables,
    /// glibc refused a setting (mallopt returned 0), or this is not a glibc target.
    Unavailable,
}

/// Sets glibc's trim and mmap thresholds ([`TRIM_THRESHOLD`], [`MMAP_THRESHOLD`]) unless
/// `GLIBC_TUNABLES` already configures malloc. Call it once, at the start of the process,
/// before other threads exist. Never fails: a refusal is reported as
/// [`Tuning::Unavailable`] and malloc keeps its defaults.
pub fn tune() -> Tuning {
    let tunables = std::env::var_os("GLIBC_TUNABLES");
    if tunables.is_some_and(|t| t.to_string_lossy().contains("glibc.malloc.")) {
        return Tuning::LeftToTunables;
    }
    set_thresholds()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> Tuning {
    let (Ok(trim), Ok(mmap)) = (
        libc::c_int::try_from(TRIM_THRESHOLD),
        libc::c_int::try_from(MMAP_THRESHOLD),
    ) else {
        return Tuning::Unavailable;
    };
    // SAFETY: mallopt(3) only changes two parameters of glibc's allocator; it takes glibc's
    // own arena lock and is safe to call at any time, from any thread. Both values are
    // positive and within the ranges glibc accepts (the mmap threshold must not exceed
    // HEAP_MAX_SIZE / 2 = 32 MiB on 64-bit targets).
    let ok = unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, trim) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, mmap) == 1
    };
    if ok {
        Tuning::Applied
    } else {
        Tuning::Unavailable
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> Tuning {
    Tuning::Unavailable
}
