//! `cargo xtask bench`: measures mcpssh against OpenSSH and a raw russh client in the
//! same run, on a throwaway local sshd, and prints a markdown table (also written to
//! `bench-results/latest.md`). Ratios matter more than absolute numbers on a shared
//! machine.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mcpssh_testbed::{CallToolResultExt, McpServer, Sshd};
use serde_json::json;

use crate::delay_proxy::DelayProxy;

/// Calls per latency series.
const EXEC_CALLS: usize = 200;
/// Calls for the per-call wasm cost.
const WASM_CALLS: usize = 2000;
/// The transfer benchmark's file size.
const TRANSFER_BYTES: usize = 256 * 1024 * 1024;
/// Calls in flight at once in the concurrency run.
const CONCURRENT_CALLS: usize = 100;
/// Exec calls per series beside a transfer.
const BESIDE_TRANSFER_CALLS: usize = 30;

/// Summary statistics of a series of durations, in milliseconds.
struct Stats {
    median: f64,
    p90: f64,
    p99: f64,
    /// Resident set size of the server after the series, where measured.
    rss_after: u64,
    /// The server's CPU time (user + system) per call, in microseconds, where measured:
    /// unlike latency, it hardly moves with the machine's load.
    cpu_per_call_us: f64,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    Stats {
        median: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        rss_after: 0,
        cpu_per_call_us: 0.0,
    }
}

/// One row of the result table.
struct Row {
    what: String,
    ours: String,
    reference: String,
    ratio: String,
}

/// The parts of the benchmark, selectable on the command line.
pub const SECTIONS: [&str; 6] = [
    "exec",
    "slow-link",
    "transfers",
    "startup",
    "concurrency",
    "wasm",
];

/// The one-way delay of the slow-link run: a 10 ms round trip.
const SLOW_LINK_ONE_WAY: Duration = Duration::from_millis(5);
/// Calls per series over the slow link.
const SLOW_LINK_CALLS: usize = 30;

/// Runs the sections named in `only` (all when empty). A full run writes
/// `bench-results/latest.md`; a partial one only prints its table.
pub async fn run(only: &[String]) -> Result<()> {
    if let Some(unknown) = only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
        bail!(
            "unknown bench section {unknown:?}; sections: {}",
            SECTIONS.join(", ")
        );
    }
    let wanted = |section: &str| only.is_empty() || only.iter().any(|s| s == section);
    // `MCPSSH_BENCH_BIN` measures a given binary (an older build, or one wrapped in a
    // profiler) instead of building the release binary.
    let bin = match std::env::var_os("MCPSSH_BENCH_BIN") {
        Some(path) => std::path::PathBuf::from(path),
        None => mcpssh_testbed::build_mcpssh(true)?,
    };
    let sshd = Sshd::start()?;
    let mut rows = Vec::new();
    if wanted("exec") {
        exec_rows(&bin, &sshd, &mut rows).await?;
    }
    if wanted("slow-link") {
        slow_link_rows(&bin, &sshd, &mut rows).await?;
    }
    if wanted("transfers") {
        transfer_rows(&bin, &sshd, &mut rows).await?;
    }
    if wanted("startup") {
        let start = startup(&bin, &sshd).await?;
        rows.push(Row {
            what: "start to answered `tools/list`: empty cache / unwritable cache dir / warm cache"
                .into(),
            ours: format!(
                "{:.0} / {:.0} / {:.0} ms",
                start.cold * 1000.0,
                start.unwritable * 1000.0,
                start.warm * 1000.0
            ),
            reference: "target ≤ 50 ms each".into(),
            ratio: "–".into(),
        });
    }
    if wanted("concurrency") {
        let (total, failures) = concurrent_calls(&bin, &sshd).await?;
        rows.push(Row {
            what: format!(
                "{CONCURRENT_CALLS} concurrent `ssh_execute` on one session (MaxSessions 10)"
            ),
            ours: format!("{:.0} ms total, {failures} failed", total * 1000.0),
            reference: "target 0 failures".into(),
            ratio: "–".into(),
        });
        let (idle, beside) = exec_beside_a_transfer(&bin, &sshd).await?;
        rows.push(Row {
            what: format!(
                "exec `true` while 256 MiB uploads run on the same session vs on an idle one, medians ({BESIDE_TRANSFER_CALLS} calls)"
            ),
            ours: format!("{:.2} ms", beside.median),
            reference: format!("{:.2} ms", idle.median),
            ratio: format!("{:.2}×", beside.median / idle.median),
        });
    }
    if wanted("wasm") {
        let wasm = wasm_cost(&sshd).await?;
        rows.push(Row {
            what: format!(
                "wasm cost per call (instantiate + call), median / p99 ({WASM_CALLS} calls)"
            ),
            ours: format!("{:.3} / {:.3} ms", wasm.median, wasm.p99),
            reference: "target ≤ 0.2 ms median".into(),
            ratio: "–".into(),
        });
    }
    report(&rows, only.is_empty())
}

/// Exec latency through MCP vs raw russh and OpenSSH, and the RSS after the run.
async fn exec_rows(bin: &Path, sshd: &Sshd, rows: &mut Vec<Row>) -> Result<()> {
    let (ours, raw, parts) = exec_latencies(bin, sshd).await?;
    let openssh = openssh_exec_latency(sshd, sshd.port(), EXEC_CALLS)?;
    rows.push(Row {
        what: format!("exec `true`, median / p90 ({EXEC_CALLS} calls) vs raw russh exec"),
        ours: format!("{:.2} / {:.2} ms", ours.median, ours.p90),
        reference: format!("{:.2} / {:.2} ms", raw.median, raw.p90),
        ratio: format!("{:.2}×", ours.median / raw.median),
    });
    rows.push(Row {
        what: "exec `true`, median vs OpenSSH `ssh` (ControlMaster)".into(),
        ours: format!("{:.2} ms", ours.median),
        reference: format!("{:.2} ms", openssh.median),
        ratio: format!("{:.2}×", ours.median / openssh.median),
    });
    rows.push(Row {
        what:
            "of which: MCP round trip (unknown tool) / + wasm instance and argument check, medians"
                .into(),
        ours: format!("{:.3} / {:.3} ms", parts.mcp_only, parts.with_wasm),
        reference: "–".into(),
        ratio: "–".into(),
    });
    rows.push(Row {
        what: "server CPU time (user + system) per `ssh_execute` call".into(),
        ours: format!("{:.0} µs", ours.cpu_per_call_us),
        reference: "–".into(),
        ratio: "–".into(),
    });
    rows.push(Row {
        what: "server RSS after the exec run".into(),
        ours: format!("{:.1} MB", ours.rss_after as f64 / 1e6),
        reference: "target ≤ 40 MB".into(),
        ratio: "–".into(),
    });
    Ok(())
}

/// Exec latency over a link with a 10 ms round trip (a delaying proxy in front of the
/// sshd), where round trips, not CPU, decide: mcpssh and a raw russh exec in alternation,
/// then OpenSSH `ssh` through a ControlMaster.
async fn slow_link_rows(bin: &Path, sshd: &Sshd, rows: &mut Vec<Row>) -> Result<()> {
    let proxy = DelayProxy::start(sshd.port(), SLOW_LINK_ONE_WAY).await?;
    let mut env = quiet_env(sshd);
    env.retain(|(k, _)| k != "MCP_SSH_PORT");
    env.push(("MCP_SSH_PORT".into(), proxy.port().to_string()));
    let server = McpServer::spawn(bin, env).await?;
    let raw = raw_russh_session(sshd, proxy.port()).await?;
    let (mut ours, mut reference) = (Vec::new(), Vec::new());
    for i in 0..SLOW_LINK_CALLS + 3 {
        let mcp = timed_exec_true(&server).await?;
        let t = Instant::now();
        let mut channel = raw.channel_open_session().await?;
        channel.exec(true, "true").await?;
        while channel.wait().await.is_some() {}
        if i >= 3 {
            ours.push(mcp);
            reference.push(t.elapsed());
        }
    }
    server.shutdown().await?;
    let (ours, reference) = (stats(ours), stats(reference));
    let openssh =
        tokio::task::block_in_place(|| openssh_exec_latency(sshd, proxy.port(), SLOW_LINK_CALLS))?;
    let rtt = SLOW_LINK_ONE_WAY.as_millis() * 2;
    let link = format!("exec `true` over a {rtt} ms round-trip link");
    for (against, reference) in [
        (
            format!("median ({SLOW_LINK_CALLS} calls) vs raw russh exec"),
            &reference,
        ),
        ("vs OpenSSH `ssh` (ControlMaster)".to_string(), &openssh),
    ] {
        rows.push(Row {
            what: format!("{link}, {against}"),
            ours: format!("{:.1} ms", ours.median),
            reference: format!("{:.1} ms", reference.median),
            ratio: format!("{:.2}×", ours.median / reference.median),
        });
    }
    Ok(())
}

/// 256 MiB up and down vs OpenSSH `sftp` and `scp`, and the RSS around them.
async fn transfer_rows(bin: &Path, sshd: &Sshd, rows: &mut Vec<Row>) -> Result<()> {
    let transfer = transfers(bin, sshd).await?;
    for (direction, ours, sftp, scp) in [
        (
            "upload",
            transfer.upload,
            transfer.sftp_put,
            transfer.scp_put,
        ),
        (
            "download",
            transfer.download,
            transfer.sftp_get,
            transfer.scp_get,
        ),
    ] {
        let mib = TRANSFER_BYTES as f64 / (1024.0 * 1024.0);
        rows.push(Row {
            what: format!("{direction} 256 MiB vs OpenSSH `sftp` (set-up excluded)"),
            ours: format!("{:.0} MiB/s", mib / ours),
            reference: format!("{:.0} MiB/s", mib / sftp),
            ratio: format!("{:.2}×", sftp / ours),
        });
        rows.push(Row {
            what: format!("{direction} 256 MiB vs OpenSSH `scp` (set-up excluded)"),
            ours: format!("{:.0} MiB/s", mib / ours),
            reference: format!("{:.0} MiB/s", mib / scp),
            ratio: format!("{:.2}×", scp / ours),
        });
    }
    rows.push(Row {
        what: "server RSS: before / peak during the 256 MiB transfers".into(),
        ours: format!(
            "{:.1} / {:.1} MB",
            transfer.rss_before as f64 / 1e6,
            transfer.rss_peak as f64 / 1e6
        ),
        reference: "flat: must not grow with the file".into(),
        ratio: "–".into(),
    });
    Ok(())
}

/// Prints the table; a full run also writes it to `bench-results/latest.md`.
fn report(rows: &[Row], full: bool) -> Result<()> {
    let mut table =
        String::from("| measurement | mcpssh | reference | ratio |\n|---|---|---|---|\n");
    for r in rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.what, r.ours, r.reference, r.ratio
        ));
    }
    let machine = format!(
        "{} cores, {}; {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::process::Command::new("uname")
            .arg("-sr")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
    );
    let report =
        format!("{table}\nMachine: {machine}; sshd: OpenSSH on 127.0.0.1 (login shell /bin/sh).\n");
    println!("\n{report}");
    if !full {
        return Ok(());
    }
    let out = mcpssh_testbed::workspace_root().join("bench-results");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("latest.md"), &report)?;
    println!("written to {}", out.join("latest.md").display());
    Ok(())
}

/// Medians, in milliseconds, of calls that stop before running a command.
struct CallParts {
    /// Refused by the MCP layer: an unknown tool.
    mcp_only: f64,
    /// Refused by `ssh_execute`'s own argument check, in its wasm instance.
    with_wasm: f64,
}

/// One `ssh_execute` of `true` through `server`, timed; an error result is an error.
async fn timed_exec_true(server: &McpServer) -> Result<Duration> {
    let t = Instant::now();
    let r = server
        .call_tool("ssh_execute", json!({"command": "true"}))
        .await?;
    if r.is_error.unwrap_or(false) {
        bail!("ssh_execute failed: {}", r.json());
    }
    Ok(t.elapsed())
}

/// Exec latency of `true`, measured in alternation so that a slow spell of the machine
/// falls on both alike: `ssh_execute` through the MCP server on one open session, and a
/// raw russh exec on an open connection (open a channel, exec, wait for close). The
/// server's RSS after the series goes with the first result, and the
/// medians of two calls that run no command, to show where the time goes.
async fn exec_latencies(bin: &Path, sshd: &Sshd) -> Result<(Stats, Stats, CallParts)> {
    let server = McpServer::spawn(bin, quiet_env(sshd)).await?;
    let mcp_exec = || timed_exec_true(&server);
    let raw = raw_russh_session(sshd, sshd.port()).await?;
    let raw_exec = || async {
        let t = Instant::now();
        let mut channel = raw.channel_open_session().await?;
        channel.exec(true, "true").await?;
        while channel.wait().await.is_some() {}
        Ok::<Duration, anyhow::Error>(t.elapsed())
    };
    for _ in 0..10 {
        mcp_exec().await?;
        raw_exec().await?;
    }
    let mut ours = Vec::with_capacity(EXEC_CALLS);
    let mut reference = Vec::with_capacity(EXEC_CALLS);
    let cpu_before = server.pid().map(cpu_time).unwrap_or_default();
    for _ in 0..EXEC_CALLS {
        ours.push(mcp_exec().await?);
        reference.push(raw_exec().await?);
    }
    let cpu_used = server.pid().map(cpu_time).unwrap_or_default() - cpu_before;
    // Where the time goes: a call refused by the MCP layer (no tool runs) is the JSON-RPC
    // round trip on both sides; one refused by the tool's argument check adds the wasm
    // instance and the guest.
    let mut mcp_only = Vec::with_capacity(EXEC_CALLS);
    let mut with_wasm = Vec::with_capacity(EXEC_CALLS);
    for _ in 0..EXEC_CALLS {
        let t = Instant::now();
        let _ = server.call_tool_raw("no_such_tool", json!({})).await?;
        mcp_only.push(t.elapsed());
        let t = Instant::now();
        let _ = server.call_tool("ssh_execute", json!({})).await?;
        with_wasm.push(t.elapsed());
    }
    let rss_after = server
        .pid()
        .map(|pid| proc_status(pid, "VmRSS"))
        .unwrap_or(0);
    server.shutdown().await?;
    let parts = CallParts {
        mcp_only: stats(mcp_only).median,
        with_wasm: stats(with_wasm).median,
    };
    let ours = Stats {
        rss_after,
        cpu_per_call_us: cpu_used.as_secs_f64() * 1e6 / EXEC_CALLS as f64,
        ..stats(ours)
    };
    Ok((ours, stats(reference), parts))
}

struct AcceptAll;

impl russh::client::Handler for AcceptAll {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// A russh client connection with default settings (plus `TCP_NODELAY`), authenticated
/// with the test key: the reference for exec latency.
async fn raw_russh_session(sshd: &Sshd, port: u16) -> Result<russh::client::Handle<AcceptAll>> {
    let config = Arc::new(russh::client::Config {
        nodelay: true,
        ..Default::default()
    });
    let mut handle = russh::client::connect(config, ("127.0.0.1", port), AcceptAll).await?;
    let key = russh::keys::load_secret_key(sshd.client_key_path(), None)?;
    let hash = handle.best_supported_rsa_hash().await?.flatten();
    let auth = handle
        .authenticate_publickey(
            sshd.username(),
            russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await?;
    if !auth.success() {
        bail!("raw russh: authentication failed");
    }
    Ok(handle)
}

/// OpenSSH `ssh` running `true` `calls` times through a ControlMaster connection to
/// `port` (the sshd's, or a proxy's in front of it) opened beforehand.
fn openssh_exec_latency(sshd: &Sshd, port: u16, calls: usize) -> Result<Stats> {
    let control = tempfile::tempdir()?;
    let socket = control.path().join("cm");
    let ssh = |extra: &[&str]| {
        let mut cmd = std::process::Command::new("ssh");
        cmd.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                control.path().join("kh").display()
            ))
            .arg("-o")
            .arg(format!("ControlPath={}", socket.display()))
            .arg("-i")
            .arg(sshd.client_key_path())
            .args(["-p", &port.to_string()])
            .args(extra)
            .arg(format!("{}@127.0.0.1", sshd.username()));
        cmd
    };
    let status = ssh(&[
        "-o",
        "ControlMaster=yes",
        "-o",
        "ControlPersist=120",
        "-f",
        "-N",
    ])
    .status()?;
    if !status.success() {
        bail!("could not start the OpenSSH control master");
    }
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls + 10 {
        let t = Instant::now();
        let out = ssh(&["-o", "ControlMaster=no"])
            .arg("true")
            .output()
            .context("ssh")?;
        if !out.status.success() {
            bail!("ssh true failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        if i >= 10 {
            samples.push(t.elapsed());
        }
    }
    let _ = ssh(&["-O", "exit"]).output();
    Ok(stats(samples))
}

/// Instantiate + call of a built-in tool whose SSH side is never reached (the guest
/// refuses the arguments before calling the host), in-process.
async fn wasm_cost(sshd: &Sshd) -> Result<Stats> {
    use clap_free_settings::settings_for;
    let app = mcpssh::app::App::start(settings_for(sshd)).await?;
    for _ in 0..50 {
        app.call("ssh_execute", "{}").await?;
    }
    let mut samples = Vec::with_capacity(WASM_CALLS);
    for _ in 0..WASM_CALLS {
        let t = Instant::now();
        let outcome = app.call("ssh_execute", "{}").await?;
        samples.push(t.elapsed());
        if !matches!(outcome, mcpssh::plugin::CallOutcome::ToolError(_)) {
            bail!("expected an argument error, got {outcome:?}");
        }
    }
    Ok(stats(samples))
}

/// Settings for the in-process measurement, built the way the binary builds them.
mod clap_free_settings {
    use mcpssh::config::Settings;
    use mcpssh_testbed::Sshd;

    pub fn settings_for(sshd: &Sshd) -> Settings {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let port = sshd.port().to_string();
        let cache = mcpssh_testbed::shared_cache_dir();
        let known_hosts = sshd.known_hosts_path().display().to_string();
        let key = sshd.client_key_path().display().to_string();
        let cache = cache.display().to_string();
        let args = [
            "mcpssh",
            "--hostname",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            sshd.username(),
            "--key-filename",
            &key,
            "--known-hosts",
            &known_hosts,
            "--cache-dir",
            &cache,
        ];
        Cli::parse_from(args).settings
    }
}

/// The testbed's environment with logging as a user would run it (the testbed's debug
/// logging would be measured too).
fn quiet_env(sshd: &Sshd) -> Vec<(String, String)> {
    let mut env = sshd.mcp_env();
    env.retain(|(k, _)| k != "MCP_SSH_LOG");
    env.push(("MCP_SSH_LOG".into(), "warn".into()));
    env
}

/// The CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let after_name = stat.rsplit_once(") ")?.1;
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(0);
    // `/proc` counts in USER_HZ, which is 100 on every Linux architecture.
    Duration::from_millis(ticks * 10)
}

/// A `/proc/<pid>/status` memory field, in bytes.
fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Seconds per transfer of the benchmark file, ours and OpenSSH's, and server memory.
struct Transfers {
    upload: f64,
    download: f64,
    sftp_put: f64,
    sftp_get: f64,
    scp_put: f64,
    scp_get: f64,
    rss_before: u64,
    rss_peak: u64,
}

/// The median of a series of run times.
fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(|a, b| a.total_cmp(b));
    runs[runs.len() / 2]
}

/// Rounds of the transfer comparison. Each round runs every contender once, one after
/// the other, so that a slow spell of the machine (this is a shared VM: writeback, other
/// guests) falls on all of them alike instead of on whoever ran during it.
const TRANSFER_ROUNDS: usize = 5;

async fn transfers(bin: &Path, sshd: &Sshd) -> Result<Transfers> {
    let work = tempfile::tempdir()?;
    let local = work.path().join("bench.bin");
    let back = work.path().join("back.bin");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&local)?;
        let mut block = vec![0u8; 1 << 20];
        for i in 0..TRANSFER_BYTES / block.len() {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8;
            }
            f.write_all(&block)?;
        }
    }
    let source = sshd.scratch_dir().join("source.bin");
    std::fs::copy(&local, &source)?;
    let remote = sshd.scratch_dir().join("bench.bin");
    // Every transfer writes a new file: replacing or truncating a 256 MiB file first
    // frees its blocks, which costs the file system more than the transfer itself on
    // some disks (ext4 with online discard, as here).
    let fresh = |path: &Path| -> Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    };
    let settle = || {
        let _ = std::process::Command::new("sync").status();
        std::thread::sleep(Duration::from_millis(300));
    };

    let server = McpServer::spawn(bin, quiet_env(sshd)).await?;
    server.call_tool("ssh_connect", json!({})).await?;
    let pid = server.pid().unwrap_or(0);
    let rss_before = proc_status(pid, "VmRSS");

    // OpenSSH, with the connection set-up measured separately and subtracted.
    let ssh_opts = |cmd: &mut std::process::Command| {
        cmd.args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            work.path().join("kh").display()
        ))
        .arg("-i")
        .arg(sshd.client_key_path());
    };
    let target = format!("{}@127.0.0.1", sshd.username());
    let timed = |mut cmd: std::process::Command| -> Result<f64> {
        let t = Instant::now();
        let out = cmd.output()?;
        if !out.status.success() {
            bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let sftp = |batch: String| -> Result<f64> {
        let file = work.path().join("batch");
        std::fs::write(&file, batch)?;
        let mut cmd = std::process::Command::new("sftp");
        ssh_opts(&mut cmd);
        cmd.arg("-P")
            .arg(sshd.port().to_string())
            .arg("-b")
            .arg(&file)
            .arg(&target);
        timed(cmd)
    };
    let scp = |from: String, to: String| -> Result<f64> {
        let mut cmd = std::process::Command::new("scp");
        ssh_opts(&mut cmd);
        cmd.arg("-P").arg(sshd.port().to_string()).arg(from).arg(to);
        timed(cmd)
    };
    let empty = work.path().join("empty");
    std::fs::write(&empty, b"")?;
    let remote_empty = sshd.scratch_dir().join("empty");
    let ours = |tool: &'static str, from: &Path, to: &Path| {
        let (local_path, remote_path) = if tool == "scp_upload" {
            (from, to)
        } else {
            (to, from)
        };
        let args = json!({"local_path": local_path, "remote_path": remote_path});
        let server = &server;
        async move {
            let t = Instant::now();
            let r = server.call_tool(tool, args).await?;
            let took = t.elapsed().as_secs_f64();
            if r.is_error.unwrap_or(false) {
                bail!("{tool} failed: {}", r.json());
            }
            Ok::<f64, anyhow::Error>(took)
        }
    };

    let mut runs: [Vec<f64>; 6] = Default::default();
    let [up, sftp_put, scp_put, down, sftp_get, scp_get] = &mut runs;
    for _ in 0..TRANSFER_ROUNDS {
        let sftp_setup = sftp("pwd\n".into())?;
        let scp_setup = scp(
            empty.display().to_string(),
            format!("{target}:{}", remote_empty.display()),
        )?;
        let remote_spec = format!("{target}:{}", remote.display());
        let source_spec = format!("{target}:{}", source.display());

        fresh(&remote)?;
        settle();
        up.push(ours("scp_upload", &local, &remote).await?);
        fresh(&remote)?;
        settle();
        sftp_put
            .push(sftp(format!("put {} {}\n", local.display(), remote.display()))? - sftp_setup);
        fresh(&remote)?;
        settle();
        scp_put.push(scp(local.display().to_string(), remote_spec)? - scp_setup);

        fresh(&back)?;
        settle();
        down.push(ours("scp_download", &source, &back).await?);
        fresh(&back)?;
        settle();
        sftp_get.push(sftp(format!("get {} {}\n", source.display(), back.display()))? - sftp_setup);
        fresh(&back)?;
        settle();
        scp_get.push(scp(source_spec, back.display().to_string())? - scp_setup);
    }
    let rss_peak = proc_status(pid, "VmHWM");
    server.shutdown().await?;
    eprintln!(
        "transfer seconds per round: mcpssh up {up:.3?} down {down:.3?}; sftp put {sftp_put:.3?} get {sftp_get:.3?}; scp put {scp_put:.3?} get {scp_get:.3?}"
    );
    let [upload, sftp_put, scp_put, download, sftp_get, scp_get] = runs.map(median);
    Ok(Transfers {
        upload,
        download,
        sftp_put,
        sftp_get,
        scp_put,
        scp_get,
        rss_before,
        rss_peak,
    })
}

/// Start-up times, median seconds from spawn to an answered `tools/list`.
struct Startup {
    /// Each start with a new, empty cache directory.
    cold: f64,
    /// The cache directory cannot be created (read-only home, sandboxed client).
    unwritable: f64,
    /// The same cache directory every time, filled by the first start.
    warm: f64,
}

async fn startup(bin: &Path, sshd: &Sshd) -> Result<Startup> {
    let once = |cache: &Path| {
        let mut env = quiet_env(sshd);
        env.retain(|(k, _)| k != "MCP_SSH_CACHE_DIR");
        env.push(("MCP_SSH_CACHE_DIR".into(), cache.display().to_string()));
        async move {
            let t = Instant::now();
            let server = McpServer::spawn(bin, env).await?;
            server.list_tools().await?;
            let elapsed = t.elapsed().as_secs_f64();
            server.shutdown().await?;
            anyhow::Ok(elapsed)
        }
    };
    let median = |mut runs: Vec<f64>| {
        runs.sort_by(|a, b| a.total_cmp(b));
        runs[runs.len() / 2]
    };
    let (mut cold, mut unwritable, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    let shared = tempfile::tempdir()?;
    for _ in 0..5 {
        let empty = tempfile::tempdir()?;
        cold.push(once(empty.path()).await?);
        // Below a regular file: nobody, root included, can create it.
        unwritable.push(once(Path::new("/dev/null/mcpssh-cache")).await?);
        once(shared.path()).await?;
        warm.push(once(shared.path()).await?);
    }
    Ok(Startup {
        cold: median(cold),
        unwritable: median(unwritable),
        warm: median(warm),
    })
}

/// Many `ssh_execute` calls in flight at once on one session.
/// Exec latency of `true` on a session idle and while 256 MiB uploads run on it (one after
/// another, for as long as the sampling lasts): how much a command waits behind a transfer.
/// Medians of `BESIDE_TRANSFER_CALLS` calls each.
async fn exec_beside_a_transfer(bin: &Path, sshd: &Sshd) -> Result<(Stats, Stats)> {
    use std::sync::atomic::{AtomicBool, Ordering};

    let work = tempfile::tempdir()?;
    let local = work.path().join("upload.bin");
    std::fs::write(&local, vec![7u8; TRANSFER_BYTES])?;
    let remote = sshd.scratch_dir().join("beside.bin");
    let server = McpServer::spawn(bin, quiet_env(sshd)).await?;
    server.call_tool("ssh_connect", json!({})).await?;
    let exec = || timed_exec_true(&server);
    let mut idle = Vec::new();
    for _ in 0..BESIDE_TRANSFER_CALLS {
        idle.push(exec().await?);
    }
    let sampling = AtomicBool::new(true);
    let uploads = async {
        let mut count = 0;
        while sampling.load(Ordering::Relaxed) || count == 0 {
            let r = server
                .call_tool(
                    "scp_upload",
                    json!({
                        "local_path": local.display().to_string(),
                        "remote_path": remote.display().to_string(),
                        "on_conflict": "OVERWRITE",
                    }),
                )
                .await?;
            if r.is_error.unwrap_or(false) {
                bail!("scp_upload failed: {}", r.json());
            }
            count += 1;
        }
        Ok::<usize, anyhow::Error>(count)
    };
    let beside = async {
        // Let the first upload get going.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut samples = Vec::new();
        for _ in 0..BESIDE_TRANSFER_CALLS {
            samples.push(exec().await?);
        }
        sampling.store(false, Ordering::Relaxed);
        Ok::<Vec<Duration>, anyhow::Error>(samples)
    };
    let (uploads, beside) = tokio::join!(uploads, beside);
    uploads?;
    let beside = beside?;
    server.shutdown().await?;
    Ok((stats(idle), stats(beside)))
}

async fn concurrent_calls(bin: &Path, sshd: &Sshd) -> Result<(f64, usize)> {
    let server = McpServer::spawn(bin, quiet_env(sshd)).await?;
    server.call_tool("ssh_connect", json!({})).await?;
    let t = Instant::now();
    let calls = (0..CONCURRENT_CALLS)
        .map(|i| server.call_tool("ssh_execute", json!({"command": format!("echo {i}")})));
    let results = futures::future::join_all(calls).await;
    let total = t.elapsed().as_secs_f64();
    let failures = results
        .iter()
        .enumerate()
        .filter(|(i, r)| match r {
            Ok(r) => r.is_error.unwrap_or(false) || r.json()["stdout"] != format!("{i}\n"),
            Err(_) => true,
        })
        .count();
    server.shutdown().await?;
    Ok((total, failures))
}
