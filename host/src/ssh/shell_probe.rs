//! Detecting a session's login shell once, when it opens, with a probe that is harmless
//! in every family: first `exec /bin/sh -c '...'` (which every Unix shell runs the same
//! way), then, when that printed nothing useful, a probe that tells cmd.exe from
//! PowerShell.

use std::time::Duration;

use russh::ChannelMsg;

use super::connection::Connection;
use super::shell::{LoginShell, ShellFamily};

/// The Unix probe: every Unix shell family runs `exec /bin/sh -c '...'` the same way.
const UNIX_PROBE: &str = "exec /bin/sh -c 'echo \"mcpssh-shell:$SHELL\"'";
/// The Windows probe: cmd.exe prints `$PSHOME` literally, PowerShell its own folder.
const WINDOWS_PROBE: &str = "echo mcpssh-ps:$PSHOME";

/// Reads the family from what the Unix probe printed, if it ran.
fn parse_unix_probe(output: &str) -> Option<LoginShell> {
    let line = output
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("mcpssh-shell:"))?;
    let path = line.trim().to_string();
    Some(LoginShell {
        family: ShellFamily::of_unix_path(&path),
        path,
    })
}

/// Reads the family from what the Windows probe printed.
fn parse_windows_probe(output: &str) -> LoginShell {
    let line = output
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("mcpssh-ps:"))
        .map(str::trim);
    match line {
        Some("$PSHOME") => LoginShell {
            family: ShellFamily::Cmd,
            path: "cmd.exe".into(),
        },
        Some(home) if home.contains('\\') || home.to_ascii_lowercase().contains("powershell") => {
            LoginShell {
                family: ShellFamily::PowerShell,
                path: format!("{home}\\powershell.exe"),
            }
        }
        _ => LoginShell::unknown(),
    }
}

/// Runs one probe command and returns its stdout (at most a few KiB), or none.
async fn run_probe(conn: &Connection, command: &str) -> Option<String> {
    let (mut channel, _slot) = conn.open_channel().await.ok()?;
    channel.exec(true, command).await.ok()?;
    // The first command of the session then finds a channel open.
    conn.open_channel_ahead();
    // End of input at once: a forced command (e.g. `internal-sftp`) then ends too.
    channel.eof().await.ok()?;
    let mut out = Vec::new();
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } if out.len() < 4096 => out.extend_from_slice(&data),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Detects the login shell of `conn`'s user: the Unix probe, then (when it printed
/// nothing useful) the Windows probe. Never fails: an unknown shell is
/// [`ShellFamily::Unknown`].
pub async fn detect(conn: &Connection, timeout: Duration) -> LoginShell {
    let probe = async {
        if let Some(shell) = run_probe(conn, UNIX_PROBE)
            .await
            .as_deref()
            .and_then(parse_unix_probe)
        {
            return shell;
        }
        match run_probe(conn, WINDOWS_PROBE).await {
            Some(output) => parse_windows_probe(&output),
            None => LoginShell::unknown(),
        }
    };
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or_else(|_| LoginShell::unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_paths_and_probes() {
        for (path, family) in [
            ("/bin/bash", ShellFamily::Posix),
            ("/usr/bin/zsh", ShellFamily::Posix),
            ("/bin/dash", ShellFamily::Posix),
            ("/usr/bin/fish", ShellFamily::Fish),
            ("/bin/tcsh", ShellFamily::Csh),
            ("/usr/local/bin/nu", ShellFamily::OtherUnix),
        ] {
            let probed = parse_unix_probe(&format!("motd\r\nmcpssh-shell:{path}\r\n")).unwrap();
            assert_eq!((probed.family, probed.path.as_str()), (family, path));
        }
        assert_eq!(
            parse_unix_probe("mcpssh-shell:\n").unwrap().family,
            ShellFamily::Unknown
        );
        assert!(parse_unix_probe("'exec' is not recognized").is_none());
        assert_eq!(
            parse_windows_probe("mcpssh-ps:$PSHOME\r\n").family,
            ShellFamily::Cmd
        );
        assert_eq!(
            parse_windows_probe("mcpssh-ps:C:\\Windows\\System32\\WindowsPowerShell\\v1.0\r\n")
                .family,
            ShellFamily::PowerShell
        );
        // A restricted POSIX shell prints an empty variable: not PowerShell.
        assert_eq!(
            parse_windows_probe("mcpssh-ps:\n").family,
            ShellFamily::Unknown
        );
    }
}
