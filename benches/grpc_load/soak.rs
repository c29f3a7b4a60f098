//! The soak run (faults issue, "No panics, no leaks"): `--minutes` (default 30) of a mix of
//! good and faulty queries under load, with cancels and settings updates, against the real
//! plugin process. Every `--checkpoint-minutes` (default 5) the load pauses, in-flight work
//! drains, and the plugin is read at rest: RSS, open file descriptors, OS threads, tokio
//! tasks (`restbridge_runtime_alive_tasks`) and upstream requests in flight. Those must be
//! flat from the first checkpoint (after warm-up) to the last; a wrong answer or a leak makes
//! the run fail.
//!
//! The query mix (each worker draws per query):
//!
//! | share | query | expected answer |
//! |---|---|---|
//! | 55 % | `good`: 1,000 rows, 64 keys, TTL 10 s (hits and misses) | 200, one frame, rows checked on every 50th |
//! | 8 % | `e500`: upstream 500 with an HTML page | an error status, a message |
//! | 8 % | `badjson`: upstream 200 with truncated JSON | an error status, a message |
//! | 6 % | `slow`: upstream answers after 3 s, rule timeout 1 s, a new key each | 504 |
//! | 6 % | `refused`: nothing listens on the rule's port | an error status |
//! | 6 % | `nosuch`: a rule id that does not exist | 400 |
//! | 5 % | `badparam`: a value outside the rule's allowed values | 400 |
//! | 6 % | cancel: `slow` (new key), dropped by the client after 150 ms | (the call is cancelled) |
//!
//! At every checkpoint the datasource's `lastUpdatedMS` also moves on, so the plugin
//! compiles a new instance (client, caches) and must free the old one.

use super::*;

/// How long the load pauses at a checkpoint before the reading: longer than tokio's 10 s
/// keep-alive of idle blocking threads, so threads that are only idle are gone.
const SETTLE: Duration = Duration::from_secs(12);

/// One reading of the plugin at rest.
#[derive(Debug, Clone, Copy, Default)]
struct Rest {
    at_s: f64,
    queries: usize,
    rss: u64,
    hwm: u64,
    fds: usize,
    threads: usize,
    tasks: f64,
    inflight: f64,
    cache_mib: f64,
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn thread_count(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Good,
    E500,
    BadJson,
    Slow,
    Refused,
    NoSuchRule,
    BadParam,
    Cancel,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Good,
        Kind::E500,
        Kind::BadJson,
        Kind::Slow,
        Kind::Refused,
        Kind::NoSuchRule,
        Kind::BadParam,
        Kind::Cancel,
    ];

    /// Draws a kind from a uniform number in 0..100 (the shares of the module table).
    fn draw(r: u64) -> Kind {
        match r % 100 {
            0..=54 => Kind::Good,
            55..=62 => Kind::E500,
            63..=70 => Kind::BadJson,
            71..=76 => Kind::Slow,
            77..=82 => Kind::Refused,
            83..=88 => Kind::NoSuchRule,
            89..=93 => Kind::BadParam,
            _ => Kind::Cancel,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Good => "good",
            Kind::E500 => "e500",
            Kind::BadJson => "badjson",
            Kind::Slow => "slow",
            Kind::Refused => "refused",
            Kind::NoSuchRule => "nosuch",
            Kind::BadParam => "badparam",
            Kind::Cancel => "cancel",
        }
    }
}

/// The datasource: one rule per kind of query.
fn soak_json_data() -> Value {
    let mut slow = rule("slow", "/slow", Some(0));
    slow["timeout"] = json!(1);
    let mut badparam = rule("badparam", "/good", Some(10));
    badparam["params"] = json!([{"name": "k", "default": "a", "options": ["a", "b"]}]);
    let mut refused = rule("refused", "http://127.0.0.1:1/x", Some(0));
    refused["request"]["url"] = json!("http://127.0.0.1:1/x");
    json!({
        "timeout": 5,
        "allowedHosts": ["127.0.0.1:1"],
        "cache": {"ttlSeconds": 10, "maxBytes": 32 << 20},
        "rules": [
            rule("good", "/good", Some(10)),
            rule("e500", "/e500", Some(0)),
            rule("badjson", "/badjson", Some(0)),
            slow,
            refused,
            badparam,
        ]
    })
}

fn versioned(ctx: &PluginContext, version: i64) -> PluginContext {
    let mut c = ctx.clone();
    if let Some(s) = c.data_source_instance_settings.as_mut() {
        s.last_updated_ms = version;
    }
    c
}

/// Checks one answer against what its kind must produce.
fn check(
    kind: Kind,
    r: Result<
        Result<tonic::Response<pluginv2::QueryDataResponse>, tonic::Status>,
        tokio::time::error::Elapsed,
    >,
    verify_rows: bool,
) -> Result<(), String> {
    if kind == Kind::Cancel {
        // The client gave up after 150 ms: the plugin must abort the upstream call.
        return match r {
            Err(_) => Ok(()),
            Ok(Ok(resp)) => Err(format!(
                "cancel: answered within 150 ms although the upstream takes 3 s: {:?}",
                resp.get_ref()
                    .responses
                    .get("A")
                    .map(|a| (a.status, a.error.clone()))
            )),
            Ok(Err(e)) => Err(format!("cancel: the call failed within 150 ms: {e}")),
        };
    }
    let resp = match r {
        Err(_) => return Err(format!("{}: no answer within {RPC_TIMEOUT:?}", kind.name())),
        Ok(Err(e)) => return Err(format!("{}: the whole call failed: {e}", kind.name())),
        Ok(Ok(resp)) => resp.into_inner(),
    };
    let Some(a) = resp.responses.get("A") else {
        return Err(format!("{}: no refId A", kind.name()));
    };
    match kind {
        Kind::Good => {
            if a.status != 200 || a.frames.len() != 1 {
                return Err(format!("good: status {} ({})", a.status, a.error));
            }
            if verify_rows {
                verify_frame(&resp, 1000)?;
            }
        }
        Kind::Slow if a.status != 504 => {
            return Err(format!("slow: status {} ({}), want 504", a.status, a.error));
        }
        Kind::NoSuchRule | Kind::BadParam if a.status != 400 => {
            return Err(format!(
                "{}: status {} ({}), want 400",
                kind.name(),
                a.status,
                a.error
            ));
        }
        _ if a.status < 400 || a.error.is_empty() => {
            return Err(format!(
                "{}: status {} with error {:?}, want an error status and message",
                kind.name(),
                a.status,
                a.error
            ));
        }
        _ => {}
    }
    Ok(())
}

pub(super) async fn run_soak(o: &Opts) -> Result<Summary, String> {
    let html = Bytes::from_static(b"<html><body><h1>500 Internal Server Error</h1></body></html>");
    let good = rows_body(1000);
    let truncated = good.slice(..good.len() / 2);
    let stub = Stub::start_with_status(vec![
        ("/good", 200, good.clone(), Duration::ZERO),
        ("/e500", 500, html, Duration::ZERO),
        ("/badjson", 200, truncated, Duration::ZERO),
        ("/slow", 200, good.clone(), Duration::from_secs(3)),
    ])
    .await?;
    let plugin = PluginGuard::spawn(&o.plugin, &o.transport, &[])?;
    let clients = plugin.data_clients(o.channels.unwrap_or(1)).await?;
    let base = context("soak", &stub.url(), &soak_json_data());
    let version = Arc::new(std::sync::atomic::AtomicI64::new(1));
    let total = Duration::from_secs_f64(o.minutes * 60.0);
    let every = Duration::from_secs_f64(o.checkpoint_minutes * 60.0);
    println!(
        "== soak: {:.1} min, concurrency {}, checkpoints every {:.1} min (load paused {} s before \
         each reading), plugin pid {}",
        o.minutes,
        o.concurrency,
        o.checkpoint_minutes,
        SETTLE.as_secs(),
        plugin.pid
    );
    let paused = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(AtomicUsize::new(0));
    let count = Arc::new(AtomicUsize::new(0));
    let per_kind: Arc<Vec<AtomicUsize>> =
        Arc::new(Kind::ALL.iter().map(|_| AtomicUsize::new(0)).collect());
    let wrong: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..o.concurrency {
        let mut c = clients[w % clients.len()].clone();
        let (base, version, paused, done, busy, count, per_kind, wrong) = (
            base.clone(),
            version.clone(),
            paused.clone(),
            done.clone(),
            busy.clone(),
            count.clone(),
            per_kind.clone(),
            wrong.clone(),
        );
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0xD1B5_4A32_D192_ED03);
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !done.load(Ordering::Relaxed) {
                if paused.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                busy.fetch_add(1, Ordering::SeqCst);
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
                let kind = Kind::draw(r >> 32);
                let ctx = versioned(&base, version.load(Ordering::Relaxed));
                let (rule_id, k) = match kind {
                    Kind::Good => ("good", (r % 64).to_string()),
                    Kind::NoSuchRule => ("no_such_rule", "0".to_owned()),
                    Kind::BadParam => ("badparam", "zzz".to_owned()),
                    // Distinct keys: never coalesced onto another call (whose error may
                    // be about to arrive), so each one is a real upstream call to abort.
                    Kind::Cancel | Kind::Slow => ("slow", (r >> 8).to_string()),
                    other => (other.name(), "0".to_owned()),
                };
                let limit = if kind == Kind::Cancel {
                    Duration::from_millis(150)
                } else {
                    RPC_TIMEOUT
                };
                let req = request(&ctx, rule_id, &k);
                let got = tokio::time::timeout(limit, c.query_data(req)).await;
                n += 1;
                let verdict = check(kind, got, kind == Kind::Good && n.is_multiple_of(50));
                count.fetch_add(1, Ordering::Relaxed);
                if let Some(i) = Kind::ALL.iter().position(|k| *k == kind) {
                    per_kind[i].fetch_add(1, Ordering::Relaxed);
                }
                if let Err(e) = verdict {
                    if let Ok(mut w) = wrong.lock() {
                        if w.len() < 20 {
                            w.push(e);
                        }
                    }
                }
                busy.fetch_sub(1, Ordering::SeqCst);
            }
        }));
    }

    let start = Instant::now();
    let cpu0 = plugin.cpu();
    let mut rests: Vec<Rest> = Vec::new();
    let mut next = every;
    let mut peak_under_load = 0u64;
    loop {
        let end = next.min(total);
        // Under load: sample RSS every --sample-secs until the checkpoint.
        while start.elapsed() < end {
            let left = end.saturating_sub(start.elapsed());
            tokio::time::sleep(left.min(Duration::from_secs(o.sample_secs))).await;
            let (rss, _) = plugin.rss();
            if rss == 0 {
                done.store(true, Ordering::Relaxed);
                return Err(format!("the plugin died; stderr: {:?}", plugin.tail()));
            }
            peak_under_load = peak_under_load.max(rss);
        }
        // Checkpoint: pause, let in-flight queries finish, settle, read.
        paused.store(true, Ordering::SeqCst);
        let drain = Instant::now();
        while busy.load(Ordering::SeqCst) > 0 && drain.elapsed() < RPC_TIMEOUT * 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(SETTLE).await;
        let m = plugin.metrics().await?;
        let (rss, hwm) = plugin.rss();
        let rest = Rest {
            at_s: start.elapsed().as_secs_f64(),
            queries: count.load(Ordering::Relaxed),
            rss,
            hwm,
            fds: fd_count(plugin.pid),
            threads: thread_count(plugin.pid),
            tasks: m.tasks,
            inflight: m.inflight,
            cache_mib: m.cache_bytes / (1024.0 * 1024.0),
        };
        println!(
            "   checkpoint t={:>6.0} s  queries {:>9}  RSS {:>6.1} MiB (peak {:>6.1})  fds {:>3}  \
             threads {:>2}  tokio tasks {:>3}  upstream in flight {}  cache {:.1} MiB",
            rest.at_s,
            rest.queries,
            mib(rest.rss),
            mib(rest.hwm),
            rest.fds,
            rest.threads,
            rest.tasks,
            rest.inflight,
            rest.cache_mib
        );
        let _ = std::io::stdout().flush();
        rests.push(rest);
        if start.elapsed() >= total {
            break;
        }
        // A settings update: the next queries compile a new instance.
        version.fetch_add(1, Ordering::SeqCst);
        paused.store(false, Ordering::SeqCst);
        next += every;
    }
    done.store(true, Ordering::Relaxed);
    paused.store(false, Ordering::SeqCst);
    for t in tasks {
        let _ = tokio::time::timeout(RPC_TIMEOUT * 2, t).await;
    }
    let cpu = plugin.cpu() - cpu0;
    let n = count.load(Ordering::Relaxed);
    let mix: Vec<String> = Kind::ALL
        .iter()
        .zip(per_kind.iter())
        .map(|(k, c)| format!("{} {}", k.name(), c.load(Ordering::Relaxed)))
        .collect();
    let wrong = wrong.lock().map(|w| w.clone()).unwrap_or_default();
    println!(
        "   {n} queries in {:.1} min ({:.0}/s; {}), plugin CPU {:.0} µs per query, peak RSS under \
         load {:.1} MiB, upstream requests: good {} e500 {} badjson {} slow {}",
        start.elapsed().as_secs_f64() / 60.0,
        n as f64 / start.elapsed().as_secs_f64(),
        mix.join(", "),
        cpu * 1e6 / n.max(1) as f64,
        mib(peak_under_load),
        stub.hits("/good"),
        stub.hits("/e500"),
        stub.hits("/badjson"),
        stub.hits("/slow"),
    );
    // Flat: from the first checkpoint (warm) to the last.
    let (Some(first), Some(last)) = (rests.first().copied(), rests.last().copied()) else {
        return Err("soak: no checkpoint".into());
    };
    let rss_slack = (first.rss / 10).max(8 << 20);
    let mut leaks = Vec::new();
    if last.rss > first.rss + rss_slack {
        leaks.push(format!(
            "RSS {:.1} → {:.1} MiB (more than {:.1} MiB growth)",
            mib(first.rss),
            mib(last.rss),
            mib(rss_slack)
        ));
    }
    if last.fds > first.fds + 2 {
        leaks.push(format!("open fds {} → {}", first.fds, last.fds));
    }
    if last.threads > first.threads + 2 {
        leaks.push(format!("threads {} → {}", first.threads, last.threads));
    }
    if last.tasks > first.tasks + 2.0 {
        leaks.push(format!("tokio tasks {} → {}", first.tasks, last.tasks));
    }
    if last.inflight > 0.0 {
        leaks.push(format!(
            "{} upstream requests still in flight at rest",
            last.inflight
        ));
    }
    let flat = leaks.is_empty();
    println!(
        "   first → last checkpoint: RSS {:.1} → {:.1} MiB, fds {} → {}, threads {} → {}, tokio \
         tasks {} → {}: {}",
        mib(first.rss),
        mib(last.rss),
        first.fds,
        last.fds,
        first.threads,
        last.threads,
        first.tasks,
        last.tasks,
        if flat {
            "flat".to_owned()
        } else {
            format!("NOT FLAT: {}", leaks.join("; "))
        }
    );
    if !wrong.is_empty() {
        return Err(format!(
            "soak: wrong answers (first {}): {:?}",
            wrong.len(),
            wrong
        ));
    }
    if !flat {
        return Err(format!("soak: not flat: {}", leaks.join("; ")));
    }
    Ok(Summary {
        scenario: "soak".into(),
        line: format!(
            "| soak | {:.1} min | {n} | {:.1} → {:.1} | {} → {} | {} → {} | {} → {} | {:.1} | flat |",
            o.minutes,
            mib(first.rss),
            mib(last.rss),
            first.fds,
            last.fds,
            first.threads,
            last.threads,
            first.tasks,
            last.tasks,
            mib(peak_under_load)
        ),
    })
}
