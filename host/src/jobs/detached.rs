//! Detached jobs: a command started on the remote host in a session of its own
//! (`setsid`, standard input from /dev/null, stdout and stderr to a file under
//! `~/.mcpssh/jobs/ID/`), so it survives the SSH connection dropping and mcpssh
//! restarting. The host follows the file with an ordinary job of the same id (a `tail`
//! that ends when the command does and exits with its status), and starts that follower
//! again when it is asked for a detached job it does not follow (after a restart or a
//! dropped connection). Everything here runs as POSIX `sh`; the command itself runs in
//! the login shell (`$SHELL -c`). Ids are `d-` and 16 lowercase hex digits, so they can
//! be put into scripts as they are.
//!
//! The files stay after the job ends, so it can be followed again; starting a detached
//! job removes those of earlier jobs whose process is gone and whose output has not
//! changed for [`KEEP_DAYS`] days, so the folder does not grow without end.

use crate::ssh::shell::shell_quote;

/// Exit status of the launcher when the job directory cannot be made.
pub const NO_DIRECTORY: i32 = 97;
/// Exit status of the launcher when `setsid` is missing.
pub const NO_SETSID: i32 = 98;
/// Exit status of the follower when the host has no such detached job.
pub const NO_SUCH_JOB: i32 = 96;

/// Days an ended detached job's files are kept after its last output.
pub const KEEP_DAYS: u32 = 7;

/// The same for a job folder that does not say which machine started it (made by an
/// older mcpssh): longer, as it may be another machine's on a shared home.
pub const KEEP_DAYS_UNKNOWN_MACHINE: u32 = 30;

/// A fresh detached job id.
pub fn new_id() -> String {
    format!("d-{:016x}", rand::random::<u64>())
}

/// True for a well-formed detached job id.
pub fn is_detached_id(id: &str) -> bool {
    id.strip_prefix("d-").is_some_and(|hex| {
        hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `exec /bin/sh -c SCRIPT ARGS...`, quoted for any Unix login shell.
fn posix(script: &str, args: &[&str]) -> String {
    let mut line = format!("exec /bin/sh -c {} mcpssh", shell_quote(script));
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    line
}

/// The command that starts `command` detached as job `id` and returns at once.
pub fn launcher(id: &str, command: &str) -> String {
    debug_assert!(is_detached_id(id));
    posix(
        &format!(
            "{prune} d=\"$HOME/.mcpssh/jobs/{id}\"; umask 077; mkdir -p \"$d\" || exit {NO_DIRECTORY}; \
             command -v setsid >/dev/null 2>&1 || exit {NO_SETSID}; \
             uname -n > \"$d/host\" 2>/dev/null; \
             setsid /bin/sh -c '\"$0\" -c \"$1\"; echo $? > \"$2/exit\"' \"${{SHELL:-/bin/sh}}\" \"$1\" \"$d\" \
             </dev/null >\"$d/out\" 2>&1 & echo $! > \"$d/pid\"",
            prune = prune_ended()
        ),
        &[command],
    )
}

/// Script that removes the folders of ended jobs: a `d-` folder right under the jobs
/// folder, started on this machine (`host`, as `uname -n` says: a home shared with other
/// machines keeps their jobs; a folder without `host` after [`KEEP_DAYS_UNKNOWN_MACHINE`]
/// days), whose `out` has not changed for [`KEEP_DAYS`] days and
/// whose process group (led by `pid`) is gone. The processes are the user's own, so
/// `kill -0` finds them while any runs; a pid taken since by another user's process
/// (`kill -0` refused, `/proc/PID` there) keeps the folder too, as does a pid that is not
/// a number.
fn prune_ended() -> String {
    format!(
        "j=\"$HOME/.mcpssh/jobs\"; h=\"$(uname -n 2>/dev/null)\"; [ -d \"$j\" ] && [ -n \"$h\" ] && \
         find \"$j\" -type f -name out -mtime +{KEEP_DAYS} 2>/dev/null | while IFS= read -r o; do \
         d=\"${{o%/out}}\"; case \"${{d#\"$j\"/}}\" in */*) continue;; d-*) ;; *) continue;; esac; \
         if [ -f \"$d/host\" ]; then [ \"$(cat \"$d/host\")\" = \"$h\" ] || continue; \
         else [ -n \"$(find \"$o\" -mtime +{KEEP_DAYS_UNKNOWN_MACHINE} 2>/dev/null)\" ] || continue; fi; \
         p=\"$(cat \"$d/pid\" 2>/dev/null)\"; case \"$p\" in ''|*[!0-9]*) continue;; esac; \
         kill -0 -\"$p\" 2>/dev/null && continue; kill -0 \"$p\" 2>/dev/null && continue; \
         [ -d \"/proc/$p\" ] && continue; \
         rm -rf -- \"$d\"; done;"
    )
}

/// The command that prints job `id`'s output from the start, follows it until the job
/// ends, and exits with the job's exit status.
pub fn follower(id: &str) -> String {
    debug_assert!(is_detached_id(id));
    posix(
        &format!(
            "d=\"$HOME/.mcpssh/jobs/{id}\"; \
             [ -f \"$d/pid\" ] || {{ echo \"no detached job {id} on this host\" >&2; exit {NO_SUCH_JOB}; }}; \
             tail -c +1 -f --pid=\"$(cat \"$d/pid\")\" \"$d/out\"; \
             [ -f \"$d/exit\" ] && exit \"$(cat \"$d/exit\")\"; exit 255"
        ),
        &[],
    )
}

/// The command that stops job `id`'s whole process group: TERM, then KILL a second later.
pub fn killer(id: &str) -> String {
    debug_assert!(is_detached_id(id));
    posix(
        &format!(
            "p=\"$(cat \"$HOME/.mcpssh/jobs/{id}/pid\")\" || exit 0; \
             case \"$p\" in ''|*[!0-9]*|0|1) exit 0;; esac; \
             kill -TERM -\"$p\" 2>/dev/null; sleep 1; kill -KILL -\"$p\" 2>/dev/null; true"
        ),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_and_checked() {
        let (a, b) = (new_id(), new_id());
        assert!(is_detached_id(&a) && is_detached_id(&b) && a != b);
        for bad in [
            "d-",
            "d-0123",
            "d-0123456789abcdeF",
            "d-0123456789abcdeg",
            "job-1",
            "d-0123456789abcdef0",
        ] {
            assert!(!is_detached_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_clean_up_removes_only_long_ended_jobs_of_this_machine() {
        let home = tempfile::tempdir().unwrap();
        let jobs = home.path().join(".mcpssh/jobs");
        let this_machine = String::from_utf8(
            std::process::Command::new("uname")
                .arg("-n")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id().to_string();
        gone.wait().unwrap();
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let live_pid = live.id().to_string();
        // (folder, machine, days since its last output, pid)
        let folders = [
            ("d-mine-ended", Some(this_machine.as_str()), 10, &gone_pid),
            ("d-mine-recent", Some(this_machine.as_str()), 1, &gone_pid),
            ("d-mine-running", Some(this_machine.as_str()), 10, &live_pid),
            ("d-elsewhere", Some("another-machine\n"), 10, &gone_pid),
            ("d-unknown-10", None, 10, &gone_pid),
            ("d-unknown-40", None, 40, &gone_pid),
            ("not-a-job", Some(this_machine.as_str()), 10, &gone_pid),
        ];
        for (name, machine, days, pid) in folders {
            let d = jobs.join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("out"), "x").unwrap();
            std::fs::write(d.join("pid"), pid).unwrap();
            if let Some(machine) = machine {
                std::fs::write(d.join("host"), machine).unwrap();
            }
            let touched = std::process::Command::new("touch")
                .arg("-d")
                .arg(format!("{days} days ago"))
                .arg(d.join("out"))
                .status()
                .unwrap();
            assert!(touched.success());
        }
        let ran = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(prune_ended())
            .env("HOME", home.path())
            .status()
            .unwrap();
        assert!(ran.success());
        live.kill().unwrap();
        live.wait().unwrap();
        let left: std::collections::BTreeSet<String> = std::fs::read_dir(&jobs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let expected: std::collections::BTreeSet<String> = [
            "d-mine-recent",
            "d-mine-running",
            "d-elsewhere",
            "d-unknown-10",
            "not-a-job",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(left, expected);
    }

    #[test]
    fn the_command_is_passed_as_an_argument_never_spliced_into_the_script() {
        let line = launcher("d-0123456789abcdef", "echo 'a b'; rm -rf \"$HOME\"");
        assert!(
            line.ends_with(&shell_quote("echo 'a b'; rm -rf \"$HOME\"")),
            "{line}"
        );
    }
}
