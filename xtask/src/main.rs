//! Project automation: `cargo xtask <command>` (the alias lives in .cargo/config.toml).
//!
//! - `demo`: build mcpssh, start a throwaway sshd, and drive every tool the server offers
//!   through a real MCP client, printing each call and its result.

mod bench;
mod delay_proxy;

use std::{
    collections::BTreeMap,
    io::IsTerminal,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use mcpssh_testbed::{
    CallToolResultExt, McpServer, Sshd,
    rmcp::model::{CallToolResult, Tool},
};
use serde_json::{Map, Value, json};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo [--release]   build mcpssh, start a throwaway sshd on 127.0.0.1 and drive every
                     tool through a real MCP client, printing each call and result
  bench [SECTION..]  build mcpssh (release), start a throwaway sshd and measure it against
                     raw russh and OpenSSH; prints a markdown table (bench-results/latest.md);
                     sections: exec, slow-link, transfers, startup, concurrency, wasm
                     (default: all)
  help               this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => {
            let release = args.iter().any(|a| a == "--release");
            tokio::runtime::Runtime::new()
                .context("starting tokio")
                .and_then(|rt| rt.block_on(demo(release)))
        }
        Some("bench") => tokio::runtime::Runtime::new()
            .context("starting tokio")
            .and_then(|rt| rt.block_on(bench::run(&args[1..]))),
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => {
            eprintln!("unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Terminal styling, only when stdout is a terminal.
struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn cyan(&self, t: &str) -> String {
        self.paint("36", t)
    }
}

/// The demo: one MCP session, one sshd, every tool in a sensible order.
struct Demo {
    server: McpServer,
    tools: BTreeMap<String, Tool>,
    used: Vec<String>,
    style: Style,
    /// Calls that were expected to succeed but did not.
    surprises: Vec<String>,
}

impl Demo {
    fn has(&self, tool: &str) -> bool {
        self.tools.contains_key(tool)
    }

    fn section(&self, title: &str) {
        println!("\n{}", self.style.bold(&format!("== {title}")));
    }

    /// Call a tool, print the call and its result. `expect_ok`: the story needs it to
    /// succeed (a failure is reported at the end and fails the demo).
    async fn call(&mut self, tool: &str, args: Value, expect_ok: bool) -> Result<Value> {
        if !self.used.iter().any(|u| u == tool) {
            self.used.push(tool.to_owned());
        }
        let shown = if args.is_null() {
            "{}".to_owned()
        } else {
            serde_json::to_string(&args)?
        };
        println!(
            "\n{} {} {}",
            self.style.cyan("▶"),
            self.style.bold(tool),
            shown
        );
        let started = Instant::now();
        let result = self.server.call_tool(tool, args).await?;
        let took = started.elapsed();
        self.print_result(tool, &result, took);
        if expect_ok && result.is_error() {
            self.surprises.push(format!(
                "{tool}: {}",
                result.json()["error"].as_str().unwrap_or("?")
            ));
        }
        Ok(result.json())
    }

    fn print_result(&self, tool: &str, result: &CallToolResult, took: Duration) {
        let s = &self.style;
        let v = result.json();
        let timing = s.dim(&format!("({} ms)", took.as_millis()));
        if result.is_error() {
            println!(
                "  {} {} {}: {}{}",
                s.red("✗ error"),
                v["error_kind"].as_str().unwrap_or("?"),
                timing,
                v["error"].as_str().unwrap_or(&result.text()),
                v["field"]
                    .as_str()
                    .map(|f| format!(" [field: {f}]"))
                    .unwrap_or_default()
            );
            return;
        }
        if tool.ends_with("ssh_execute") {
            let status = match (&v["exit_code"], &v["exit_signal"]) {
                (Value::Number(n), _) => format!("exit {n}"),
                (_, Value::String(sig)) => format!("killed by SIG{sig}"),
                _ => "no exit status".to_owned(),
            };
            let mut line = format!("  {} {status}", s.green("✓"));
            if v["timed_out"] == true {
                line.push_str(", timed out");
            }
            println!("{line} {timing}");
            for stream in ["stdout", "stderr"] {
                let text = v[stream].as_str().unwrap_or_default();
                if text.is_empty() {
                    continue;
                }
                println!("  {}:", s.dim(stream));
                for l in shorten(text, 1500).lines() {
                    println!("    {l}");
                }
                let cut = v[format!("{stream}_cut_bytes")].as_u64().unwrap_or(0);
                if cut > 0 {
                    println!(
                        "    {}",
                        s.dim(&format!(
                            "({} of {} bytes cut)",
                            cut,
                            v[format!("{stream}_total_bytes")]
                        ))
                    );
                }
            }
            return;
        }
        println!("  {} {timing}", s.green("✓"));
        let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
        for l in shorten(&pretty, 3000).lines() {
            println!("    {l}");
        }
    }

    /// The arguments for a tool that takes a remote path, whatever the parameter is called.
    fn path_args(&self, tool: &str, path: &str) -> Value {
        let props = self.properties(tool);
        let key = ["path", "remote_path", "directory", "remote_dir"]
            .into_iter()
            .find(|k| props.contains_key(*k))
            .map(str::to_owned)
            .or_else(|| self.required(tool).into_iter().next())
            .unwrap_or_else(|| "path".to_owned());
        json!({ key: path })
    }

    /// Arguments for a transfer tool: flat, or wrapped in `params` as the Python server did.
    fn transfer_args(&self, tool: &str, fields: Value) -> Value {
        let props = self.properties(tool);
        if !props.contains_key("local_path") && props.contains_key("params") {
            json!({ "params": fields })
        } else {
            fields
        }
    }

    fn properties(&self, tool: &str) -> Map<String, Value> {
        self.tools
            .get(tool)
            .and_then(|t| t.input_schema.get("properties"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    fn required(&self, tool: &str) -> Vec<String> {
        self.tools
            .get(tool)
            .and_then(|t| t.input_schema.get("required"))
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The first sentence of a description (tool descriptions are written for the model and
/// run long).
fn first_sentence(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    match line.find(". ") {
        Some(i) => &line[..=i],
        None => line,
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… ({} more bytes)", &text[..end], text.len() - end)
}

async fn demo(release: bool) -> Result<()> {
    let style = Style {
        on: std::io::stdout().is_terminal(),
    };
    println!("{}", style.bold("== Building mcpssh"));
    let bin = mcpssh_testbed::build_mcpssh(release)?;
    println!("{}", bin.display());

    println!("\n{}", style.bold("== Starting a throwaway sshd"));
    let sshd = Sshd::start().context("starting sshd (run scripts/setup first?)")?;
    println!(
        "sshd on {}:{} (pid {}), user {}, host key {}",
        sshd.host(),
        sshd.port(),
        sshd.pid().unwrap_or_default(),
        sshd.username(),
        sshd.host_key_fingerprint()
    );
    let mut env = sshd.mcp_env();
    env.retain(|(k, _)| k != "MCP_SSH_LOG");
    env.push(("MCP_SSH_LOG".into(), "warn".into()));
    println!("{}", style.dim("mcpssh environment:"));
    for (k, v) in &env {
        println!("  {}", style.dim(&format!("{k}={v}")));
    }

    let started = Instant::now();
    let server = McpServer::spawn(&bin, env.clone())
        .await
        .context("starting mcpssh")?;
    let info = server.server_info();
    println!(
        "\nconnected to MCP server {:?} (protocol {}) in {} ms",
        server.server_name().unwrap_or_default(),
        info.as_ref()
            .map(|i| i.protocol_version.to_string())
            .unwrap_or_default(),
        started.elapsed().as_millis()
    );

    let tools: BTreeMap<String, Tool> = server
        .list_tools()
        .await?
        .into_iter()
        .map(|t| (t.name.to_string(), t))
        .collect();
    let mut demo = Demo {
        server,
        tools,
        used: Vec::new(),
        style,
        surprises: Vec::new(),
    };

    demo.section(&format!("tools/list: {} tools", demo.tools.len()));
    for tool in demo.tools.values() {
        let a = tool.annotations.clone().unwrap_or_default();
        let mut hints = Vec::new();
        if a.read_only_hint == Some(true) {
            hints.push("read-only");
        }
        if a.destructive_hint == Some(true) {
            hints.push("destructive");
        }
        if a.idempotent_hint == Some(true) {
            hints.push("idempotent");
        }
        if a.open_world_hint == Some(true) {
            hints.push("open-world");
        }
        let args: Vec<String> = tool
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        println!(
            "  {:<16} {}",
            demo.style.bold(&tool.name),
            first_sentence(tool.description.as_deref().unwrap_or(""))
        );
        println!(
            "  {:<16} {}",
            "",
            demo.style.dim(&format!(
                "args: {} · {}",
                if args.is_empty() {
                    "none".to_owned()
                } else {
                    args.join(", ")
                },
                hints.join(", ")
            ))
        );
    }

    story(&mut demo, &sshd).await?;

    let unused: Vec<&String> = demo
        .tools
        .keys()
        .filter(|t| !demo.used.contains(t))
        .collect();
    demo.section("Summary");
    println!("tools exercised: {}", demo.used.join(", "));
    if !unused.is_empty() {
        println!(
            "tools the demo does not know how to drive: {}",
            unused
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let surprises = std::mem::take(&mut demo.surprises);
    let stderr = demo.server.stderr();
    demo.server.shutdown().await?;
    drop(sshd);
    if !surprises.is_empty() {
        eprintln!(
            "\nmcpssh stderr:\n{}",
            mcpssh_testbed::sshd::tail(&stderr, 8000)
        );
        bail!(
            "{} call(s) failed that should have worked:\n  {}",
            surprises.len(),
            surprises.join("\n  ")
        );
    }
    println!(
        "{}",
        demo.style
            .green("demo finished: every call behaved as expected")
    );
    Ok(())
}

/// A command as a job: started in the background, listed, followed to its end; another
/// one stopped.
async fn jobs(demo: &mut Demo) -> Result<()> {
    demo.section("A long command as a job: it returns at once with a job id, then is followed");
    let command = "for i in 1 2 3; do echo step $i; sleep 0.3; done";
    let started = demo
        .call(
            "ssh_execute",
            json!({"command": command, "background": true}),
            true,
        )
        .await?;
    if let Some(id) = started["job_id"].as_str().map(str::to_owned) {
        if demo.has("ssh_job_list") {
            demo.call("ssh_job_list", json!({}), true).await?;
        }
        let mut offset = 0;
        for _ in 0..10 {
            let page = demo
                .call(
                    "ssh_job_output",
                    json!({"job_id": id, "offset": offset, "wait_seconds": 5}),
                    true,
                )
                .await?;
            if page["complete"] == true || page.get("next_offset").is_none() {
                break;
            }
            offset = page["next_offset"].as_u64().unwrap_or(offset);
        }
    }
    if demo.has("ssh_job_cancel") {
        demo.section("Stop a job: the processes it started are killed");
        let long = demo
            .call(
                "ssh_execute",
                json!({"command": "sleep 600", "background": true}),
                true,
            )
            .await?;
        if let Some(id) = long["job_id"].as_str().map(str::to_owned) {
            demo.call("ssh_job_cancel", json!({"job_id": id}), true)
                .await?;
        }
    }
    Ok(())
}

/// Connect, run commands, move files around, clean up, disconnect.
async fn story(demo: &mut Demo, sshd: &Sshd) -> Result<()> {
    let scratch = sshd.scratch_dir().display().to_string();

    if demo.has("ssh_connect") {
        demo.section("Connect (host, user and key come from MCP_SSH_* variables)");
        demo.call("ssh_connect", json!({}), true).await?;
        demo.section("Connecting again reuses the session");
        demo.call("ssh_connect", json!({}), true).await?;
    }

    if demo.has("ssh_execute") {
        demo.section("Run commands");
        demo.call("ssh_execute", json!({"command": "uname -sr; id"}), true)
            .await?;
        demo.call(
            "ssh_execute",
            json!({"command": "echo to stdout; echo to stderr >&2; exit 3"}),
            true,
        )
        .await?;
        demo.section("stdin, environment and working directory");
        demo.call(
            "ssh_execute",
            json!({
                "command": "echo \"$GREETING from $(pwd)\"; sort",
                "stdin": "pear\napple\nfig\n",
                "env": {"GREETING": "hello"},
                "working_directory": scratch,
            }),
            true,
        )
        .await?;
        demo.section("A command that outlives its timeout is stopped");
        demo.call(
            "ssh_execute",
            json!({"command": "echo started; sleep 30", "timeout_seconds": 1}),
            true,
        )
        .await?;
        demo.section("Huge output is capped, head and tail kept");
        demo.call(
            "ssh_execute",
            json!({"command": "seq -s ' ' 1 200000", "max_output_bytes": 1024}),
            true,
        )
        .await?;
        demo.section("A bad argument is a tool error naming the field");
        demo.call(
            "ssh_execute",
            json!({"command": "true", "timeout_seconds": -5}),
            false,
        )
        .await?;
    }

    if demo.has("ssh_execute") && demo.has("ssh_job_output") {
        jobs(demo).await?;
    }

    let local = tempfile::Builder::new().prefix("mcpssh-demo-").tempdir()?;
    let local_file = local.path().join("notes.txt");
    std::fs::write(
        &local_file,
        "mcpssh demo file\nline two\n".repeat(100).as_bytes(),
    )?;
    let remote_file = format!("{scratch}/notes.txt");
    let downloaded = local.path().join("notes-back.txt");
    let mut renamed: Option<String> = None;

    if demo.has("scp_upload") {
        demo.section("Upload a file");
        let args = demo.transfer_args(
            "scp_upload",
            json!({"local_path": local_file.display().to_string(), "remote_path": remote_file}),
        );
        demo.call("scp_upload", args.clone(), true).await?;
        demo.section("Uploading again without permission to overwrite fails");
        demo.call("scp_upload", args.clone(), false).await?;
        if demo.properties("scp_upload").contains_key("on_conflict") {
            demo.section("RENAME keeps the existing file and writes beside it");
            let mut renaming = args;
            if let Some(params) = renaming.get_mut("params") {
                params["on_conflict"] = json!("RENAME");
            } else {
                renaming["on_conflict"] = json!("RENAME");
            }
            let out = demo.call("scp_upload", renaming, true).await?;
            if let Some(path) = out["remote_path"].as_str()
                && path != remote_file
            {
                renamed = Some(path.to_owned());
            }
        }
    }
    if demo.has("scp_listdir") {
        demo.section("List the remote directory");
        let args = demo.path_args("scp_listdir", &scratch);
        demo.call("scp_listdir", args, true).await?;
    }
    if demo.has("scp_disk_usage") {
        demo.section("Disk usage of the remote file system");
        let args = demo.path_args("scp_disk_usage", &scratch);
        demo.call("scp_disk_usage", args, true).await?;
    }
    if demo.has("scp_download") && demo.has("scp_upload") {
        demo.section("Download it back");
        let args = demo.transfer_args(
            "scp_download",
            json!({"local_path": downloaded.display().to_string(), "remote_path": remote_file}),
        );
        demo.call("scp_download", args, true).await?;
        let same = std::fs::read(&local_file).ok() == std::fs::read(&downloaded).ok();
        println!(
            "  {}",
            if same {
                demo.style
                    .green("the downloaded copy is identical to the original")
            } else {
                demo.style
                    .red("the downloaded copy differs from the original!")
            }
        );
        if !same {
            demo.surprises.push("scp_download: the copy differs".into());
        }
    }
    if demo.has("scp_download") && demo.has("scp_upload") {
        demo.section("A download aimed at a shell start-up file is refused (a protected path)");
        let args = demo.transfer_args(
            "scp_download",
            json!({"local_path": "~/.bashrc", "remote_path": remote_file, "on_conflict": "OVERWRITE"}),
        );
        demo.call("scp_download", args, false).await?;
    }
    if demo.has("scp_remove") && demo.has("scp_upload") {
        demo.section("Remove the remote file");
        let args = demo.path_args("scp_remove", &remote_file);
        demo.call("scp_remove", args.clone(), true).await?;
        if let Some(renamed) = &renamed {
            let args = demo.path_args("scp_remove", renamed);
            demo.call("scp_remove", args, true).await?;
        }
        demo.section("Removing it again: not found");
        demo.call("scp_remove", args, false).await?;
        if demo.has("scp_listdir") {
            let args = demo.path_args("scp_listdir", &scratch);
            demo.call("scp_listdir", args, true).await?;
        }
    }

    if demo.has("ssh_disconnect") {
        demo.section("Disconnect");
        demo.call("ssh_disconnect", json!({}), true).await?;
        demo.call("ssh_disconnect", json!({}), true).await?;
    }
    Ok(())
}
