//! The `mcpssh` command: serve MCP over stdio (the default), list the tools, or call one
//! tool directly.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcpssh::app::App;
use mcpssh::config::Settings;
use mcpssh::plugin::CallOutcome;

/// An MCP server for SSH command execution and SFTP file transfer, with every tool a
/// sandboxed WebAssembly component. Every flag can also be set by the environment
/// variable shown with it.
#[derive(Parser)]
#[command(name = "mcpssh", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    settings: Settings,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdin/stdout (the default).
    Serve,
    /// Inspect the tools that would be served.
    Tools {
        #[command(subcommand)]
        action: ToolsAction,
    },
    /// Work with an audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Run one tool against the configured host and print its structured result.
    Call {
        /// The tool's name (with the configured prefix).
        tool: String,
        /// The arguments, a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
    },
    /// Check the configuration the way the server would use it (config files, host,
    /// host key, identities, login, SFTP, tools, local roots) and print a checklist.
    /// Records nothing and prints no secret; exits 0 only when the host works.
    Doctor,
}

#[derive(Subcommand)]
enum AuditAction {
    /// Print an audit log for people: one line per request (when, tool, user@host, how it
    /// ended, what the policy decided, what was asked).
    Show {
        /// The audit log file.
        file: std::path::PathBuf,
        /// Only the last N requests.
        #[arg(long)]
        last: Option<usize>,
    },
    /// Check a hash-chained audit log: exit 0 when every line is intact and in order,
    /// else 1 naming the first bad line.
    Verify {
        /// The audit log file.
        file: std::path::PathBuf,
        /// The HMAC key file the log was written with (MCP_SSH_AUDIT_KEY_FILE).
        #[arg(long)]
        key_file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum ToolsAction {
    /// List the tools with their source and the capabilities they import.
    List,
}

fn init_logging(settings: &Settings) {
    let filter = settings
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr: stdout carries MCP messages only. The client gets the server's
    // own events at the level it asks for (logging/setLevel).
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter::filter_fn};
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_filter(filter),
        )
        .with(
            mcpssh::mcp::client_log::ClientLogLayer
                .with_filter(filter_fn(|m| m.target().starts_with("mcpssh"))),
        )
        .init();
}

fn main() -> ExitCode {
    match runtime() {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("mcpssh: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime: one worker thread unless `TOKIO_WORKER_THREADS` says otherwise. A
/// call's steps (the MCP message, the wasm guest, the SSH packets) then follow each other
/// on one thread instead of waking a second CPU at each hand-over, which costs more than
/// it saves (README, "Speed": calls and transfers were both faster with one worker). A
/// connection's encryption runs in one task whatever the count, and blocking work (local
/// files, compiling) has threads of its own.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}

async fn run() -> ExitCode {
    mcpssh::allocator::tune_for_transfers();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One clear line: an MCP client shows the first line of stderr.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("mcpssh: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Some(Command::Audit {
            action: AuditAction::Verify { file, key_file },
        }) => return verify_audit_log(file, key_file.as_deref()),
        Some(Command::Audit {
            action: AuditAction::Show { file, last },
        }) => return show_audit_log(file, *last),
        _ => {}
    }
    let settings = cli.settings.with_environment_secrets();
    init_logging(&settings);
    if matches!(cli.command, Some(Command::Doctor)) {
        let checklist = mcpssh::doctor::run(settings).await;
        let code = if checklist.failed() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
        return print_out(checklist.render().trim_end(), code);
    }
    let app = match App::start(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("mcpssh: cannot start: {e:#}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match mcpssh::mcp::serve_stdio(app).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mcpssh: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Tools {
            action: ToolsAction::List,
        } => {
            let mut lines = Vec::new();
            for entry in app.registry.tools() {
                lines.push(format!(
                    "{}\t{}\timports: {}",
                    entry.public_name,
                    entry.source,
                    if entry.component.capabilities.is_empty() {
                        "nothing".into()
                    } else {
                        entry.component.capabilities.join(", ")
                    }
                ));
            }
            for error in app.registry.load_errors() {
                lines.push(format!("NOT LOADED\t{error}"));
            }
            print_out(&lines.join("\n"), ExitCode::SUCCESS)
        }
        Command::Audit { .. } => unreachable!("handled before start-up"),
        Command::Doctor => unreachable!("handled before start-up"),
        Command::Call { tool, arguments } => {
            let outcome = app.call(&tool, &arguments).await;
            app.pool.close_all().await;
            match outcome {
                Ok(CallOutcome::Success(value)) => print_out(&pretty(&value), ExitCode::SUCCESS),
                Ok(CallOutcome::ToolError(value)) => print_out(&pretty(&value), ExitCode::from(1)),
                Ok(CallOutcome::Failed { kind, message }) => {
                    eprintln!("mcpssh: {kind}: {message}");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("mcpssh: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// `mcpssh audit show FILE`: the log for people, one line per request.
fn show_audit_log(file: &std::path::Path, last: Option<usize>) -> ExitCode {
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let lines = mcpssh::policy::audit_view::show(&text, last);
            if lines.is_empty() {
                return print_out(
                    &format!("{}: no requests recorded", file.display()),
                    ExitCode::SUCCESS,
                );
            }
            print_out(&lines.join("\n"), ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("mcpssh: cannot read {}: {e}", file.display());
            ExitCode::from(2)
        }
    }
}

/// `mcpssh audit verify FILE`: one line, exit 0 when the chain is intact.
fn verify_audit_log(file: &std::path::Path, key_file: Option<&std::path::Path>) -> ExitCode {
    use mcpssh::policy::{audit, verify};
    let key = match key_file.map(audit::read_key).transpose() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("mcpssh: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("mcpssh: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match verify::verify(&text, key.as_deref()) {
        Ok(v) => print_out(
            &format!(
                "{}: intact: {} lines, seq {} to {}; last hash {}",
                file.display(),
                v.lines,
                v.first_seq,
                v.first_seq + v.lines - 1,
                v.last_hash
            ),
            ExitCode::SUCCESS,
        ),
        Err(e) => {
            eprintln!("mcpssh: {}: NOT intact: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Prints `text` and a newline to stdout and returns `code`; a closed stdout (`mcpssh
/// call ... | head`) is not an error worth a panic, just exit code 1.
fn print_out(text: &str, code: ExitCode) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(_) => ExitCode::FAILURE,
    }
}
