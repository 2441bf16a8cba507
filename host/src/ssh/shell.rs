//! The remote user's login shell: which family it is, and how a command is wrapped so that it runs
//! with that shell's own semantics, exactly as `ssh host 'command'` would run it, while
//! mcpssh still learns the process group to kill and sets the environment and directory.
//!
//! - POSIX shells (sh, bash, dash, zsh, ksh, ...) read the wrapper directly.
//! - csh, tcsh, fish and other Unix shells get `exec /bin/sh -c '...'` with the wrapper
//!   octal-escaped into characters every one of them passes through unchanged inside
//!   single quotes; the wrapper ends in `exec <login shell> -c <command>`.
//! - Windows OpenSSH runs commands with cmd.exe or PowerShell: the command gets the
//!   environment and directory in that shell's syntax; there is no process group to kill.
//!
//! Detection is in `shell_probe`; this module knows nothing of connections.

/// The marker the wrapper prints first, with the shell's PID.
pub const PID_MARKER_PRINTF: &str = "printf '\\036mcpssh-pid:%s\\n' \"$$\"";

/// Which syntax the remote user's login shell speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellFamily {
    /// sh, bash, dash, zsh, ksh, ash, busybox and the like.
    Posix,
    /// csh and tcsh.
    Csh,
    /// fish.
    Fish,
    /// Another Unix shell that takes `-c` (nushell, xonsh, ...).
    OtherUnix,
    /// Windows OpenSSH with cmd.exe.
    Cmd,
    /// Windows OpenSSH with PowerShell.
    PowerShell,
    /// The probe learned nothing (an exec-less account, a restricted shell): commands
    /// are sent as for a POSIX shell, and a missing PID marker is reported as an error.
    Unknown,
}

impl ShellFamily {
    /// The name shown to the model and the user.
    pub fn name(self) -> &'static str {
        match self {
            ShellFamily::Posix => "posix",
            ShellFamily::Csh => "csh",
            ShellFamily::Fish => "fish",
            ShellFamily::OtherUnix => "other",
            ShellFamily::Cmd => "cmd",
            ShellFamily::PowerShell => "powershell",
            ShellFamily::Unknown => "unknown",
        }
    }

    /// True on Windows, where no process group can be killed.
    pub fn is_windows(self) -> bool {
        matches!(self, ShellFamily::Cmd | ShellFamily::PowerShell)
    }

    /// The family of a Unix shell, from its path.
    pub fn of_unix_path(path: &str) -> ShellFamily {
        let name = path.rsplit('/').next().unwrap_or(path);
        let name = name.trim_start_matches('-');
        match name {
            "sh" | "bash" | "dash" | "zsh" | "ksh" | "ksh93" | "mksh" | "pdksh" | "oksh"
            | "ash" | "busybox" | "yash" | "posh" | "rbash" | "lksh" => ShellFamily::Posix,
            "csh" | "tcsh" | "bsd-csh" => ShellFamily::Csh,
            "fish" => ShellFamily::Fish,
            "" => ShellFamily::Unknown,
            _ => ShellFamily::OtherUnix,
        }
    }
}

/// The login shell of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginShell {
    pub family: ShellFamily,
    /// The shell's path as the server reported it (`$SHELL`), or a name on Windows, or
    /// empty when unknown.
    pub path: String,
}

impl LoginShell {
    /// What is assumed before (or without) a probe.
    pub fn unknown() -> LoginShell {
        LoginShell {
            family: ShellFamily::Unknown,
            path: String::new(),
        }
    }
}

/// Quotes a string for a POSIX shell (and for csh and fish, which read `'...'\''...'`
/// the same way).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What a command needs besides its text.
pub struct CommandSetup<'a> {
    pub command: &'a str,
    pub env: &'a [(String, String)],
    pub working_directory: Option<&'a str>,
}

/// The exec request for `setup` on a login shell of `shell`, or why it cannot be built.
pub fn wrap(shell: &LoginShell, setup: &CommandSetup) -> Result<String, String> {
    match shell.family {
        ShellFamily::Posix | ShellFamily::Unknown => Ok(posix_wrapper(setup, None)),
        ShellFamily::Csh | ShellFamily::Fish | ShellFamily::OtherUnix => {
            let script = posix_wrapper(setup, Some(&shell.path));
            Ok(format!(
                "exec /bin/sh -c 'eval \"$(printf \"{}\")\"'",
                octal_escape(&script)
            ))
        }
        ShellFamily::Cmd => cmd_wrapper(setup),
        ShellFamily::PowerShell => Ok(powershell_wrapper(setup)),
    }
}

/// The POSIX sh wrapper: the PID marker, the environment, the directory, then the
/// command: inline, or, with `login_shell`, handed to that shell with `exec SHELL -c`.
fn posix_wrapper(setup: &CommandSetup, login_shell: Option<&str>) -> String {
    let mut script = String::from(PID_MARKER_PRINTF);
    script.push('\n');
    for (name, value) in setup.env {
        script.push_str(&format!("{name}={}; export {name}\n", shell_quote(value)));
    }
    if let Some(dir) = setup.working_directory {
        script.push_str(&format!(
            "cd {} || {{ echo \"mcpssh: cannot change to the working directory\" >&2; exit 126; }}\n",
            shell_quote(dir)
        ));
    }
    match login_shell {
        None => script.push_str(setup.command),
        Some(shell) => script.push_str(&format!(
            "exec {} -c {}",
            shell_quote(shell),
            shell_quote(setup.command)
        )),
    }
    script
}

/// Escapes `text` for a printf format inside sh double quotes inside single quotes that
/// sh, csh, tcsh and fish all leave alone: letters, digits and a few safe punctuation
/// marks stay, every other byte becomes `\ooo`.
fn octal_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b" _.,:/=+@-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out
}

/// cmd.exe: `set "NAME=value"` and `cd /d "dir"`, then the command. cmd has no quoting
/// that protects `%` or `"`, so such values are refused rather than mangled.
fn cmd_wrapper(setup: &CommandSetup) -> Result<String, String> {
    let unsafe_for_cmd = |s: &str| s.contains(['"', '%', '\n', '\r']);
    let mut line = String::new();
    for (name, value) in setup.env {
        if unsafe_for_cmd(value) {
            return Err(format!(
                "the value of {name} holds `\"`, `%` or a line break, which cmd.exe cannot take \
                 safely; set it inside the command instead"
            ));
        }
        line.push_str(&format!("set \"{name}={value}\" && "));
    }
    if let Some(dir) = setup.working_directory {
        if unsafe_for_cmd(dir) {
            return Err(
                "the working directory holds `\"`, `%` or a line break, which cmd.exe cannot take safely"
                    .into(),
            );
        }
        line.push_str(&format!(
            "(cd /d \"{dir}\" || (echo mcpssh: cannot change to the working directory 1>&2 & exit 126)) && "
        ));
    }
    line.push_str(setup.command);
    Ok(line)
}

/// PowerShell: `$env:NAME = '...'` and `Set-Location`, then the command.
fn powershell_wrapper(setup: &CommandSetup) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut script = String::new();
    for (name, value) in setup.env {
        script.push_str(&format!("$env:{name} = {}; ", quote(value)));
    }
    if let Some(dir) = setup.working_directory {
        script.push_str(&format!(
            "try {{ Set-Location -LiteralPath {} -ErrorAction Stop }} catch {{ \
             [Console]::Error.WriteLine('mcpssh: cannot change to the working directory'); exit 126 }}; ",
            quote(dir)
        ));
    }
    script.push_str(setup.command);
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup<'a>(
        command: &'a str,
        env: &'a [(String, String)],
        dir: Option<&'a str>,
    ) -> CommandSetup<'a> {
        CommandSetup {
            command,
            env,
            working_directory: dir,
        }
    }

    #[test]
    fn posix_shells_read_the_wrapper_directly() {
        let env = [("GREETING".to_string(), "it's me".to_string())];
        let shell = LoginShell {
            family: ShellFamily::Posix,
            path: "/bin/bash".into(),
        };
        let line = wrap(&shell, &setup("echo $GREETING", &env, Some("/tmp"))).unwrap();
        assert_eq!(
            line,
            "printf '\\036mcpssh-pid:%s\\n' \"$$\"\n\
             GREETING='it'\\''s me'; export GREETING\n\
             cd '/tmp' || { echo \"mcpssh: cannot change to the working directory\" >&2; exit 126; }\n\
             echo $GREETING"
        );
    }

    #[test]
    fn other_unix_shells_get_a_wrapper_safe_in_single_quotes_of_every_family() {
        let env = [("A".to_string(), "x'!\\\n$y".to_string())];
        for family in [ShellFamily::Csh, ShellFamily::Fish, ShellFamily::OtherUnix] {
            let shell = LoginShell {
                family,
                path: "/usr/bin/fish".into(),
            };
            let line = wrap(
                &shell,
                &setup("echo $status; echo 'a'", &env, Some("/srv/it's")),
            )
            .unwrap();
            let quoted = line
                .strip_prefix("exec /bin/sh -c '")
                .and_then(|l| l.strip_suffix('\''))
                .unwrap();
            // Nothing that csh (`!`, newline), fish (`\'`, `\\`) or sh single quotes (`'`)
            // would act on.
            assert!(!quoted.contains(['\'', '!', '\n']), "{quoted}");
            assert!(
                !quoted.contains("\\\\") && !quoted.contains("\\'"),
                "{quoted}"
            );
            assert!(quoted.starts_with("eval \"$(printf \"") && quoted.ends_with("\")\""));
        }
    }

    #[test]
    fn octal_escapes_decode_back_with_printf() {
        let text = "printf '%s' \"$$\"\nA='x'\\''y'; exec '/usr/bin/fish' -c 'echo ü!'";
        let escaped = octal_escape(text);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf \"{escaped}\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    }

    #[test]
    fn windows_wrappers_set_environment_and_directory_in_their_own_syntax() {
        let env = [("NAME".to_string(), "it's".to_string())];
        let cmd = LoginShell {
            family: ShellFamily::Cmd,
            path: "cmd.exe".into(),
        };
        assert_eq!(
            wrap(&cmd, &setup("dir", &env, Some("C:\\work"))).unwrap(),
            "set \"NAME=it's\" && (cd /d \"C:\\work\" || (echo mcpssh: cannot change to the working directory 1>&2 & exit 126)) && dir"
        );
        let bad = [("P".to_string(), "100%".to_string())];
        assert!(wrap(&cmd, &setup("dir", &bad, None)).is_err());
        let ps = LoginShell {
            family: ShellFamily::PowerShell,
            path: "powershell.exe".into(),
        };
        assert_eq!(
            wrap(&ps, &setup("Get-ChildItem", &env, None)).unwrap(),
            "$env:NAME = 'it''s'; Get-ChildItem"
        );
    }
}
