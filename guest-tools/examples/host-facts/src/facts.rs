//! The pure part of `host_facts`: the script run on the remote host, the facts it yields, and
//! the parser from the script's output to those facts. Nothing here calls the host, so all of
//! it is unit tested natively.

use mcpssh_sdk::{JsonSchema, ToolError, kind};
use serde::Serialize;

/// Starts every line that opens a section of the script's output: `MARKER NAME`.
pub const MARKER: &str = "@@mcpssh-host-facts@@";

/// The POSIX `sh` script that gathers the raw facts, run as `sh -s` with the script on
/// standard input (so the remote user's login shell may be anything that can start `sh`).
///
/// It prints one section per fact, each opened by a [`MARKER`] line, and a final `end`
/// section; a command that is missing or fails leaves its section empty. `df` runs under
/// `timeout 10` where that exists, so a hung network mount costs one fact, not the call.
/// `df -PkT` (with the type column) falls back to `df -Pk` (section `df-untyped`) where `-T`
/// is unknown.
pub const SCRIPT: &str = r#"LC_ALL=C
export LC_ALL
m() { printf '\n%s %s\n' '@@mcpssh-host-facts@@' "$1"; }
t() { if command -v timeout >/dev/null 2>&1; then timeout 10 "$@"; else "$@"; fi; }
m os-release
cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
m kernel
uname -srm 2>/dev/null
m hostname
hostname 2>/dev/null || uname -n 2>/dev/null
m uptime
cat /proc/uptime 2>/dev/null
m loadavg
cat /proc/loadavg 2>/dev/null
m meminfo
cat /proc/meminfo 2>/dev/null
out=$(t df -PkT 2>/dev/null)
if [ -n "$out" ]; then
  m df
  printf '%s\n' "$out"
else
  m df-untyped
  t df -Pk 2>/dev/null
fi
m nproc
nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
m end
exit 0
"#;

/// File system types left out of `disks`: they hold no data worth a disk report.
pub const EXCLUDED_FS_TYPES: &[&str] = &["tmpfs", "devtmpfs", "overlay"];

/// Facts about the connected host.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct HostFacts {
    /// Always true: a fact the host could not provide is null (or, for `disks`, empty) and
    /// named in `unavailable`.
    pub success: bool,
    /// The operating system, from /etc/os-release.
    pub os: Option<Os>,
    /// The kernel, from `uname -srm`.
    pub kernel: Option<Kernel>,
    /// The host's name (`hostname`).
    pub hostname: Option<String>,
    /// Seconds since boot, from /proc/uptime.
    pub uptime_seconds: Option<u64>,
    /// Load averages, from /proc/loadavg.
    pub load_average: Option<LoadAverage>,
    /// Memory, from /proc/meminfo.
    pub memory: Option<Memory>,
    /// Online CPUs available to the remote user (`nproc`).
    pub cpu_count: Option<u32>,
    /// Mounted file systems from `df -PkT`, without tmpfs, devtmpfs and overlay, in `df`'s
    /// order.
    pub disks: Vec<Disk>,
    /// The facts above that could not be read, by field name (e.g. `uptime_seconds` on a host
    /// without /proc).
    pub unavailable: Vec<String>,
    /// Anything the model should know about how complete the facts are (e.g. the script was
    /// stopped at its timeout, or the output was cut).
    pub warnings: Vec<String>,
}

/// The operating system as /etc/os-release names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Os {
    /// `ID`, e.g. `debian`, `ubuntu`, `alpine`.
    pub id: Option<String>,
    /// `NAME`, e.g. `Debian GNU/Linux`.
    pub name: Option<String>,
    /// `VERSION`, e.g. `12 (bookworm)`.
    pub version: Option<String>,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: Option<String>,
    /// `PRETTY_NAME`, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub pretty_name: Option<String>,
}

/// The kernel, as `uname -srm` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Kernel {
    /// The kernel name (`uname -s`), e.g. `Linux`.
    pub name: String,
    /// The kernel release (`uname -r`), e.g. `6.1.0-18-amd64`.
    pub release: String,
    /// The hardware name (`uname -m`), e.g. `x86_64`, `aarch64`.
    pub machine: String,
}

/// Average number of runnable (and uninterruptible) tasks.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LoadAverage {
    /// Over the last minute.
    pub one: f64,
    /// Over the last 5 minutes.
    pub five: f64,
    /// Over the last 15 minutes.
    pub fifteen: f64,
}

/// Memory, in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Memory {
    /// Usable RAM (`MemTotal`).
    pub total_bytes: u64,
    /// Memory available for new work without swapping (`MemAvailable`; on kernels before 3.14
    /// the estimate `MemFree + Buffers + Cached`).
    pub available_bytes: Option<u64>,
    /// Swap space (`SwapTotal`).
    pub swap_total_bytes: Option<u64>,
    /// Unused swap space (`SwapFree`).
    pub swap_free_bytes: Option<u64>,
}

/// One mounted file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Disk {
    /// Where it is mounted, e.g. `/`, `/home`.
    pub mount: String,
    /// What is mounted, e.g. `/dev/sda1`.
    pub device: String,
    /// The file system type, e.g. `ext4`, `xfs`; null when `df` cannot show types.
    pub fs_type: Option<String>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Used bytes.
    pub used_bytes: u64,
    /// Bytes available to unprivileged users.
    pub available_bytes: u64,
    /// `df`'s use percentage (used of used + available), when it shows one.
    pub use_percent: Option<u32>,
}

/// The sections of the script's output, by name, in order. Text before the first marker
/// (e.g. a banner printed by the remote user's shell start-up files) is ignored.
pub fn sections(stdout: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix(MARKER) {
            out.push((rest.trim(), String::new()));
        } else if let Some((_, text)) = out.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// Turns the outcome of running [`SCRIPT`] into facts. An error only when the script did not
/// run at all (no section in its output).
pub fn facts_from_output(
    exit_code: Option<i32>,
    timed_out: bool,
    stdout: &str,
    stderr: &str,
    output_cut: bool,
) -> Result<HostFacts, ToolError> {
    let sections = sections(stdout);
    if sections.is_empty() {
        let stderr = stderr.trim();
        let why = if stderr.is_empty() {
            "it printed nothing".to_owned()
        } else {
            format!("stderr: {}", truncate(stderr, 2000))
        };
        if timed_out {
            return Err(ToolError::new(
                kind::TIMED_OUT,
                format!(
                    "the fact-gathering script timed out on the remote host before printing anything; {why}"
                ),
            ));
        }
        let exit =
            exit_code.map_or_else(|| "no exit code".to_owned(), |c| format!("exit code {c}"));
        return Err(ToolError::new(
            kind::OTHER,
            format!(
                "the fact-gathering script (`sh -s`) did not run on the remote host ({exit}); {why}"
            ),
        ));
    }
    let section = |name: &str| -> Option<&str> {
        sections
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| text.as_str())
    };

    let os = section("os-release").and_then(parse_os_release);
    let kernel = section("kernel").and_then(parse_kernel);
    let hostname = section("hostname").and_then(parse_hostname);
    let uptime_seconds = section("uptime").and_then(parse_uptime);
    let load_average = section("loadavg").and_then(parse_loadavg);
    let memory = section("meminfo").and_then(parse_meminfo);
    let cpu_count = section("nproc").and_then(parse_nproc);
    let disks = match (section("df"), section("df-untyped")) {
        (Some(text), _) => parse_df(text, true),
        (None, Some(text)) => parse_df(text, false),
        (None, None) => None,
    };

    let mut unavailable = Vec::new();
    for (name, missing) in [
        ("os", os.is_none()),
        ("kernel", kernel.is_none()),
        ("hostname", hostname.is_none()),
        ("uptime_seconds", uptime_seconds.is_none()),
        ("load_average", load_average.is_none()),
        ("memory", memory.is_none()),
        ("cpu_count", cpu_count.is_none()),
        ("disks", disks.is_none()),
    ] {
        if missing {
            unavailable.push(name.to_owned());
        }
    }

    let mut warnings = Vec::new();
    if section("end").is_none() {
        let last = sections.last().map_or("", |(n, _)| *n);
        warnings.push(if timed_out {
            format!("the script was stopped at its timeout in section `{last}` (a hung network mount?); later facts are missing")
        } else {
            format!("the script ended early, in section `{last}`; later facts are missing")
        });
    }
    if output_cut {
        warnings.push(
            "the script's output was larger than the output limit and was cut; some facts may be missing"
                .to_owned(),
        );
    }

    Ok(HostFacts {
        success: true,
        os,
        kernel,
        hostname,
        uptime_seconds,
        load_average,
        memory,
        cpu_count,
        disks: disks.unwrap_or_default(),
        unavailable,
        warnings,
    })
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// /etc/os-release: `KEY=value` lines, values optionally quoted (shell syntax). None when it
/// names nothing we report.
pub fn parse_os_release(text: &str) -> Option<Os> {
    let mut os = Os::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value);
        if value.is_empty() {
            continue;
        }
        let slot = match key.trim() {
            "ID" => &mut os.id,
            "NAME" => &mut os.name,
            "VERSION" => &mut os.version,
            "VERSION_ID" => &mut os.version_id,
            "PRETTY_NAME" => &mut os.pretty_name,
            _ => continue,
        };
        *slot = Some(value);
    }
    (os != Os::default()).then_some(os)
}

/// A shell-quoted os-release value: `"..."` (with `\` escapes), `'...'`, or bare.
fn unquote(raw: &str) -> String {
    let raw = raw.trim();
    if raw.len() >= 2 && raw.starts_with('\'') && raw.ends_with('\'') {
        return raw[1..raw.len() - 1].to_owned();
    }
    let inner = if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        &raw[1..raw.len() - 1]
    } else {
        raw
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `uname -srm`: name, release, machine.
pub fn parse_kernel(text: &str) -> Option<Kernel> {
    let words: Vec<&str> = first_line(text)?.split_whitespace().collect();
    if words.len() < 3 {
        return None;
    }
    Some(Kernel {
        name: words[0].to_owned(),
        release: words[1..words.len() - 1].join(" "),
        machine: words[words.len() - 1].to_owned(),
    })
}

/// `hostname`: one word.
pub fn parse_hostname(text: &str) -> Option<String> {
    let line = first_line(text)?;
    (!line.contains(char::is_whitespace)).then(|| line.to_owned())
}

/// /proc/uptime: seconds since boot (fractional) and idle seconds; whole seconds.
pub fn parse_uptime(text: &str) -> Option<u64> {
    let seconds: f64 = first_line(text)?.split_whitespace().next()?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| seconds.floor() as u64)
}

/// /proc/loadavg: `1.00 0.50 0.25 1/123 4567`.
pub fn parse_loadavg(text: &str) -> Option<LoadAverage> {
    let mut words = first_line(text)?.split_whitespace();
    let mut next = || -> Option<f64> {
        let v: f64 = words.next()?.parse().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    };
    Some(LoadAverage {
        one: next()?,
        five: next()?,
        fifteen: next()?,
    })
}

/// /proc/meminfo: `Key:   value kB` lines. None without `MemTotal`.
pub fn parse_meminfo(text: &str) -> Option<Memory> {
    let get = |key: &str| -> Option<u64> {
        text.lines().find_map(|line| {
            let (k, rest) = line.split_once(':')?;
            if k.trim() != key {
                return None;
            }
            let mut words = rest.split_whitespace();
            let value: u64 = words.next()?.parse().ok()?;
            match words.next() {
                None => Some(value),
                Some(unit) if unit.eq_ignore_ascii_case("kB") => value.checked_mul(1024),
                Some(_) => None,
            }
        })
    };
    let total_bytes = get("MemTotal")?;
    let available_bytes = get("MemAvailable").or_else(|| {
        get("MemFree")?
            .checked_add(get("Buffers")?)?
            .checked_add(get("Cached")?)
    });
    Some(Memory {
        total_bytes,
        available_bytes,
        swap_total_bytes: get("SwapTotal"),
        swap_free_bytes: get("SwapFree"),
    })
}

/// `nproc`: a positive count.
pub fn parse_nproc(text: &str) -> Option<u32> {
    first_line(text)?.parse().ok().filter(|n| *n > 0)
}

/// `df -PkT` (`typed`) or `df -Pk` output: a header, then one line per file system with
/// 1024-byte blocks. None when no line could be read at all; file systems of the
/// [`EXCLUDED_FS_TYPES`] are left out of the result.
///
/// Device names and mount points may contain spaces: a line is split at the first run of three
/// numbers followed by a capacity (`NN%` or `-`); what is left of it is the device (and, when
/// typed, the type as its last word), what is right of it the mount point (runs of spaces in it
/// become single spaces).
pub fn parse_df(text: &str, typed: bool) -> Option<Vec<Disk>> {
    let mut rows = 0usize;
    let mut disks = Vec::new();
    for line in text.lines() {
        let Some(disk) = parse_df_line(line, typed) else {
            continue;
        };
        rows += 1;
        let excluded = match &disk.fs_type {
            Some(t) => EXCLUDED_FS_TYPES.contains(&t.as_str()),
            None => EXCLUDED_FS_TYPES.contains(&disk.device.as_str()),
        };
        if !excluded {
            disks.push(disk);
        }
    }
    (rows > 0).then_some(disks)
}

fn parse_df_line(line: &str, typed: bool) -> Option<Disk> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let capacity = |w: &str| -> Option<Option<u32>> {
        if w == "-" {
            return Some(None);
        }
        w.strip_suffix('%')?.parse().ok().map(Some)
    };
    let first = if typed { 2 } else { 1 };
    for k in first..words.len().saturating_sub(4) {
        let (Ok(size), Ok(used), Ok(avail)) = (
            words[k].parse::<u64>(),
            words[k + 1].parse::<u64>(),
            words[k + 2].parse::<u64>(),
        ) else {
            continue;
        };
        let Some(use_percent) = capacity(words[k + 3]) else {
            continue;
        };
        let (device, fs_type) = if typed {
            (words[..k - 1].join(" "), Some(words[k - 1].to_owned()))
        } else {
            (words[..k].join(" "), None)
        };
        return Some(Disk {
            mount: words[k + 4..].join(" "),
            device,
            fs_type,
            size_bytes: size.checked_mul(1024)?,
            used_bytes: used.checked_mul(1024)?,
            available_bytes: avail.checked_mul(1024)?,
            use_percent,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "\
Welcome to a noisy .profile!

@@mcpssh-host-facts@@ os-release
PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"
NAME=\"Debian GNU/Linux\"
VERSION_ID=\"12\"
VERSION=\"12 (bookworm)\"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL=\"https://www.debian.org/\"

@@mcpssh-host-facts@@ kernel
Linux 6.1.0-18-amd64 x86_64

@@mcpssh-host-facts@@ hostname
web1

@@mcpssh-host-facts@@ uptime
4673.71 1256.58

@@mcpssh-host-facts@@ loadavg
2.21 3.53 3.29 1/118 19598

@@mcpssh-host-facts@@ meminfo
MemTotal:       24684084 kB
MemFree:        16317684 kB
MemAvailable:   23919184 kB
Buffers:          123456 kB
Cached:          4567890 kB
SwapTotal:       2097148 kB
SwapFree:        2097148 kB
HugePages_Total:       0

@@mcpssh-host-facts@@ df
Filesystem              Type     1024-blocks     Used Available Capacity Mounted on
devtmpfs                devtmpfs    12334460        0  12334460       0% /dev
tmpfs                   tmpfs       24684084        0  24684084       0% /dev/shm
/dev/vda                ext4       264212084 26818476  68467412      29% /
overlay                 overlay     10000000  5000000   5000000      50% /var/lib/docker/overlay2/x/merged
/dev/vdb1               xfs          1048576   524288    524288      50% /srv/my data

@@mcpssh-host-facts@@ nproc
2

@@mcpssh-host-facts@@ end
";

    fn debian() -> HostFacts {
        facts_from_output(Some(0), false, DEBIAN, "", false).unwrap()
    }

    #[test]
    fn a_debian_host() {
        let f = debian();
        assert!(f.success);
        assert_eq!(
            f.os,
            Some(Os {
                id: Some("debian".into()),
                name: Some("Debian GNU/Linux".into()),
                version: Some("12 (bookworm)".into()),
                version_id: Some("12".into()),
                pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
            })
        );
        assert_eq!(
            f.kernel,
            Some(Kernel {
                name: "Linux".into(),
                release: "6.1.0-18-amd64".into(),
                machine: "x86_64".into()
            })
        );
        assert_eq!(f.hostname.as_deref(), Some("web1"));
        assert_eq!(f.uptime_seconds, Some(4673));
        assert_eq!(
            f.load_average,
            Some(LoadAverage {
                one: 2.21,
                five: 3.53,
                fifteen: 3.29
            })
        );
        assert_eq!(
            f.memory,
            Some(Memory {
                total_bytes: 24_684_084 * 1024,
                available_bytes: Some(23_919_184 * 1024),
                swap_total_bytes: Some(2_097_148 * 1024),
                swap_free_bytes: Some(2_097_148 * 1024),
            })
        );
        assert_eq!(f.cpu_count, Some(2));
        assert_eq!(
            f.disks,
            vec![
                Disk {
                    mount: "/".into(),
                    device: "/dev/vda".into(),
                    fs_type: Some("ext4".into()),
                    size_bytes: 264_212_084 * 1024,
                    used_bytes: 26_818_476 * 1024,
                    available_bytes: 68_467_412 * 1024,
                    use_percent: Some(29),
                },
                Disk {
                    mount: "/srv/my data".into(),
                    device: "/dev/vdb1".into(),
                    fs_type: Some("xfs".into()),
                    size_bytes: 1024 * 1024 * 1024,
                    used_bytes: 512 * 1024 * 1024,
                    available_bytes: 512 * 1024 * 1024,
                    use_percent: Some(50),
                },
            ]
        );
        assert!(f.unavailable.is_empty(), "{:?}", f.unavailable);
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    }

    #[test]
    fn serializes_to_the_output_schema_shape() {
        let v = serde_json::to_value(debian()).unwrap();
        assert_eq!(v["success"], true);
        assert_eq!(v["kernel"]["release"], "6.1.0-18-amd64");
        assert_eq!(v["disks"][0]["mount"], "/");
        assert_eq!(v["memory"]["total_bytes"], 24_684_084u64 * 1024);
        assert_eq!(v["load_average"]["fifteen"], 3.29);
    }

    #[test]
    fn the_script_prints_every_section_the_parser_reads() {
        for name in [
            "os-release",
            "kernel",
            "hostname",
            "uptime",
            "loadavg",
            "meminfo",
            "df",
            "df-untyped",
            "nproc",
            "end",
        ] {
            assert!(SCRIPT.contains(&format!("m {name}\n")), "{name}");
        }
        assert!(SCRIPT.contains(&format!("'{MARKER}'")));
        assert!(!SCRIPT.contains('\r'));
    }

    #[test]
    fn no_section_is_an_error_naming_the_reason() {
        let e = facts_from_output(Some(127), false, "", "sh: not found\n", false).unwrap_err();
        assert_eq!(e.kind(), "other");
        assert!(e.message().contains("exit code 127"), "{e}");
        assert!(e.message().contains("sh: not found"), "{e}");
        let e = facts_from_output(None, true, "banner only\n", "", false).unwrap_err();
        assert_eq!(e.kind(), "timed-out");
    }

    #[test]
    fn a_host_without_proc_reports_what_is_missing() {
        // macOS-like: no /proc, no -T, no nproc.
        let out = "\
@@mcpssh-host-facts@@ os-release
@@mcpssh-host-facts@@ kernel
Darwin 23.4.0 arm64
@@mcpssh-host-facts@@ hostname
mac.local
@@mcpssh-host-facts@@ uptime
@@mcpssh-host-facts@@ loadavg
@@mcpssh-host-facts@@ meminfo
@@mcpssh-host-facts@@ df-untyped
Filesystem     1024-blocks      Used Available Capacity  Mounted on
/dev/disk3s1s1   482797652  10067884 229409404     5%    /
devfs                  200       200         0   100%    /dev
map auto_home            0         0         0     -     /System/Volumes/Data/home
@@mcpssh-host-facts@@ nproc
8
@@mcpssh-host-facts@@ end
";
        let f = facts_from_output(Some(0), false, out, "", false).unwrap();
        assert_eq!(f.os, None);
        assert_eq!(f.kernel.as_ref().unwrap().name, "Darwin");
        assert_eq!(f.hostname.as_deref(), Some("mac.local"));
        assert_eq!(f.cpu_count, Some(8));
        assert_eq!(
            f.unavailable,
            ["os", "uptime_seconds", "load_average", "memory"]
        );
        let mounts: Vec<&str> = f.disks.iter().map(|d| d.mount.as_str()).collect();
        assert_eq!(mounts, ["/", "/dev", "/System/Volumes/Data/home"]);
        assert_eq!(f.disks[0].fs_type, None);
        assert_eq!(f.disks[2].device, "map auto_home");
        assert_eq!(f.disks[2].use_percent, None);
    }

    #[test]
    fn a_timed_out_script_keeps_the_facts_it_printed() {
        let cut = DEBIAN.split("@@mcpssh-host-facts@@ df").next().unwrap();
        let out = format!(
            "{cut}@@mcpssh-host-facts@@ df\nFilesystem Type 1024-blocks Used Available Capacity Mounted on\n"
        );
        let f = facts_from_output(None, true, &out, "", false).unwrap();
        assert_eq!(f.cpu_count, None);
        assert!(f.memory.is_some());
        assert_eq!(f.unavailable, ["cpu_count", "disks"]);
        assert_eq!(f.warnings.len(), 1);
        assert!(f.warnings[0].contains("section `df`"), "{:?}", f.warnings);
        let f = facts_from_output(Some(0), false, DEBIAN, "", true).unwrap();
        assert!(f.warnings[0].contains("cut"));
    }

    /// The real script under the local `sh`, parsed: every Linux fact is there.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_script_runs_under_the_local_sh() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(SCRIPT.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let f = facts_from_output(
            out.status.code(),
            false,
            &stdout,
            &String::from_utf8_lossy(&out.stderr),
            false,
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        for always in [
            "kernel",
            "hostname",
            "uptime_seconds",
            "load_average",
            "memory",
            "cpu_count",
        ] {
            assert!(
                !f.unavailable.iter().any(|u| u == always),
                "{always}: {stdout}"
            );
        }
        assert_eq!(f.kernel.unwrap().name, "Linux");
    }

    #[test]
    fn os_release_quoting() {
        let os = parse_os_release(
            "# comment\nNAME='Single Quoted'\nID=alpine\nVERSION=\"with \\\"escapes\\\" \\$HOME\"\nPRETTY_NAME=\nVERSION_ID=3.19.1\nJUNK\n",
        )
        .unwrap();
        assert_eq!(os.name.as_deref(), Some("Single Quoted"));
        assert_eq!(os.id.as_deref(), Some("alpine"));
        assert_eq!(os.version.as_deref(), Some("with \"escapes\" $HOME"));
        assert_eq!(os.version_id.as_deref(), Some("3.19.1"));
        assert_eq!(os.pretty_name, None);
        assert_eq!(parse_os_release("HOME_URL=x\n\n"), None);
        assert_eq!(parse_os_release(""), None);
        assert_eq!(unquote("\""), "\"");
    }

    #[test]
    fn single_fact_parsers_reject_garbage() {
        assert_eq!(parse_kernel("Linux\n"), None);
        assert_eq!(parse_kernel(""), None);
        assert_eq!(parse_hostname("two words\n"), None);
        assert_eq!(parse_hostname("\n  \n"), None);
        assert_eq!(parse_hostname("\nname\n").as_deref(), Some("name"));
        assert_eq!(parse_uptime("abc 1\n"), None);
        assert_eq!(parse_uptime("-5 1\n"), None);
        assert_eq!(parse_uptime("NaN 1\n"), None);
        assert_eq!(parse_uptime("12.99 1\n"), Some(12));
        assert_eq!(parse_loadavg("0.1 0.2\n"), None);
        assert_eq!(parse_loadavg("0.1 x 0.3\n"), None);
        assert_eq!(parse_nproc("0\n"), None);
        assert_eq!(parse_nproc("four\n"), None);
        assert_eq!(parse_nproc("\n16\n"), Some(16));
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(
            parse_df(
                "Filesystem Type 1024-blocks Used Available Capacity Mounted on\n",
                true
            ),
            None
        );
        assert_eq!(parse_df("", true), None);
    }

    #[test]
    fn old_kernels_estimate_available_memory() {
        let m = parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 20 kB\n")
            .unwrap();
        assert_eq!(m.total_bytes, 102_400);
        assert_eq!(m.available_bytes, Some(35 * 1024));
        assert_eq!(m.swap_total_bytes, None);
        let m = parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\n").unwrap();
        assert_eq!(m.available_bytes, None);
    }

    #[test]
    fn df_lines_with_spaces_and_only_excluded_file_systems() {
        let typed = "\
Filesystem Type 1024-blocks Used Available Capacity Mounted on
//nas/share name cifs 100 40 60 40% /mnt/nas share
tmpfs tmpfs 10 0 10 0% /run
";
        let disks = parse_df(typed, true).unwrap();
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].device, "//nas/share name");
        assert_eq!(disks[0].fs_type.as_deref(), Some("cifs"));
        assert_eq!(disks[0].mount, "/mnt/nas share");
        // Only excluded file systems: readable, but no disk to report.
        assert_eq!(
            parse_df("tmpfs tmpfs 10 0 10 0% /run\n", true),
            Some(vec![])
        );
        // Untyped output excludes by device name.
        assert_eq!(parse_df("tmpfs 10 0 10 0% /run\n", false), Some(vec![]));
        // A number as mount point does not confuse the split.
        let d = parse_df("/dev/sdb1 ext4 10 5 5 50% /data/2024\n", true).unwrap();
        assert_eq!(d[0].mount, "/data/2024");
        assert_eq!(d[0].device, "/dev/sdb1");
    }
}
