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

/// Calls per latency series.
const EXEC_CALLS: usize = 200;
/// Calls for the per-call wasm cost.
const WASM_CALLS: usize = 2000;

/// Summary statistics of a series of durations, in milliseconds.
struct Stats {
    median: f64,
    p90: f64,
    p99: f64,
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
    }
}

/// One row of the result table.
struct Row {
    what: String,
    ours: String,
    reference: String,
    ratio: String,
}

pub async fn run() -> Result<()> {
    let bin = mcpssh_testbed::build_mcpssh(true)?;
    let sshd = Sshd::start()?;
    let mut rows = Vec::new();

    let ours = mcp_exec_latency(&bin, &sshd).await?;
    let raw = russh_exec_latency(&sshd).await?;
    let openssh = openssh_exec_latency(&sshd)?;
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
    let wasm = wasm_cost(&sshd).await?;
    rows.push(Row {
        what: format!("wasm cost per call (instantiate + call), median / p99 ({WASM_CALLS} calls)"),
        ours: format!("{:.3} / {:.3} ms", wasm.median, wasm.p99),
        reference: "target ≤ 0.2 ms median".into(),
        ratio: "–".into(),
    });

    let mut table =
        String::from("| measurement | mcpssh | reference | ratio |\n|---|---|---|---|\n");
    for r in &rows {
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
    let out = mcpssh_testbed::workspace_root().join("bench-results");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("latest.md"), &report)?;
    println!("written to {}", out.join("latest.md").display());
    Ok(())
}

/// `ssh_execute` of `true` through the MCP server on one open session.
async fn mcp_exec_latency(bin: &Path, sshd: &Sshd) -> Result<Stats> {
    // Logging as a user would run it: the testbed's debug logging would be measured too.
    let mut env = sshd.mcp_env();
    env.retain(|(k, _)| k != "MCP_SSH_LOG");
    env.push(("MCP_SSH_LOG".into(), "warn".into()));
    let server = McpServer::spawn(bin, env).await?;
    for _ in 0..10 {
        let r = server
            .call_tool("ssh_execute", json!({"command": "true"}))
            .await?;
        if r.is_error.unwrap_or(false) {
            bail!("ssh_execute failed: {}", r.json());
        }
    }
    let mut samples = Vec::with_capacity(EXEC_CALLS);
    for _ in 0..EXEC_CALLS {
        let t = Instant::now();
        server
            .call_tool("ssh_execute", json!({"command": "true"}))
            .await?;
        samples.push(t.elapsed());
    }
    server.shutdown().await?;
    Ok(stats(samples))
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

/// A raw russh exec of `true` on an open connection: open a channel, exec, wait for close.
async fn russh_exec_latency(sshd: &Sshd) -> Result<Stats> {
    let config = Arc::new(russh::client::Config {
        nodelay: true,
        ..Default::default()
    });
    let mut handle = russh::client::connect(config, ("127.0.0.1", sshd.port()), AcceptAll).await?;
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
    let mut samples = Vec::with_capacity(EXEC_CALLS);
    for i in 0..EXEC_CALLS + 10 {
        let t = Instant::now();
        let mut channel = handle.channel_open_session().await?;
        channel.exec(true, "true").await?;
        while channel.wait().await.is_some() {}
        if i >= 10 {
            samples.push(t.elapsed());
        }
    }
    Ok(stats(samples))
}

/// OpenSSH `ssh` running `true` through a ControlMaster connection opened beforehand.
fn openssh_exec_latency(sshd: &Sshd) -> Result<Stats> {
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
            .args(["-p", &sshd.port().to_string()])
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
    let mut samples = Vec::with_capacity(EXEC_CALLS);
    for i in 0..EXEC_CALLS + 10 {
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
