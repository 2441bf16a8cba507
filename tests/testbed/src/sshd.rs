//! A throwaway OpenSSH `sshd` on 127.0.0.1 for one test.
//!
//! Everything it needs lives in its own temporary directory: the config, an ed25519 host
//! key, an ed25519 client key pair, `authorized_keys`, an empty `known_hosts` for the
//! client, the pid file, the log and a scratch directory owned by the test user. The
//! daemon (and every per-connection child it started) is killed when the [`Sshd`] is
//! dropped, also while a test panics; the log is printed then to help with the failure.

use std::{
    collections::{HashMap, HashSet},
    fs,
    io::Read,
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use crate::shared_cache_dir;

/// The OpenSSH daemon, by absolute path (sshd refuses to re-exec itself otherwise).
pub const SSHD: &str = "/usr/sbin/sshd";
/// The account the tests log in as. Its shell is `/bin/sh`, so that no `~/.bashrc` slows
/// every command down.
pub const TEST_USER: &str = "mcpssh-test";

/// How long to wait for a fresh sshd to answer with its banner.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Builder for [`Sshd`]: extra `sshd_config` lines and the log level.
#[derive(Debug, Clone)]
pub struct SshdBuilder {
    extra_config: Vec<String>,
    /// Users allowed to log in besides the test user.
    extra_users: Vec<String>,
    log_level: String,
    sftp_server: Option<String>,
    password_authentication: bool,
}

impl Default for SshdBuilder {
    fn default() -> Self {
        Self {
            extra_config: Vec::new(),
            extra_users: Vec::new(),
            log_level: "DEBUG1".to_owned(),
            sftp_server: None,
            password_authentication: false,
        }
    }
}

impl SshdBuilder {
    /// Add a line to `sshd_config` (after the defaults; sshd takes the first value of a
    /// keyword, so use this for keywords the defaults do not set, or `Match` blocks).
    /// Also let `user` log in (with the same authorized key as the test user).
    pub fn allow_user(mut self, user: impl Into<String>) -> Self {
        self.extra_users.push(user.into());
        self
    }

    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.extra_config.push(line.into());
        self
    }

    /// The `LogLevel` (default `DEBUG1`).
    pub fn log_level(mut self, level: impl Into<String>) -> Self {
        self.log_level = level.into();
        self
    }

    /// The command of the `sftp` subsystem (default: OpenSSH's `sftp-server`, else
    /// `internal-sftp`), e.g. `/usr/lib/openssh/sftp-server -P statvfs` to refuse an
    /// extension. sshd allows one `Subsystem sftp` line, so `config_line` cannot change it.
    pub fn sftp_server(mut self, command: impl Into<String>) -> Self {
        self.sftp_server = Some(command.into());
        self
    }

    /// Allow password logins (`PasswordAuthentication yes`, still `UsePAM no`: sshd checks
    /// `/etc/shadow` itself). Give the test user a password with [`test_user_password`].
    pub fn password_authentication(mut self, allow: bool) -> Self {
        self.password_authentication = allow;
        self
    }

    /// Start the daemon and wait until it answers.
    pub fn start(self) -> Result<Sshd> {
        prepare_system()?;
        let mut last_error = None;
        // A free port found by binding port 0 may be taken by someone else before sshd
        // binds it; then sshd exits and we try another.
        for _ in 0..5 {
            match Sshd::start_once(&self) {
                Ok(sshd) => return Ok(sshd),
                Err(e) => {
                    let retry = format!("{e:#}").contains("could not bind");
                    last_error = Some(e);
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("sshd did not start")))
    }
}

/// A running sshd. See the module documentation.
pub struct Sshd {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    host_key: PathBuf,
    host_public_key: String,
    host_key_fingerprint: String,
    client_key: PathBuf,
    client_public_key: String,
    known_hosts: PathBuf,
    scratch: PathBuf,
    log: PathBuf,
    config: PathBuf,
}

impl std::fmt::Debug for Sshd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sshd")
            .field("pid", &self.pid())
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl Sshd {
    /// Start an sshd with the default configuration.
    pub fn start() -> Result<Sshd> {
        SshdBuilder::default().start()
    }

    /// A builder, for extra `sshd_config` lines.
    pub fn builder() -> SshdBuilder {
        SshdBuilder::default()
    }

    fn start_once(builder: &SshdBuilder) -> Result<Sshd> {
        let dir = tempfile::Builder::new()
            .prefix("mcpssh-sshd-")
            .tempdir()
            .context("creating the sshd temp dir")?;
        // sshd reads authorized_keys as the test user: let it traverse the directory.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let path = |name: &str| dir.path().join(name);

        let host_key = path("ssh_host_ed25519_key");
        keygen(&host_key, "mcpssh-testbed host key")?;
        let host_public_key = read_public_key(&host_key)?;
        let host_key_fingerprint = fingerprint_of(&public_key_path(&host_key))?;

        let client_key = path("client_ed25519");
        keygen(&client_key, "mcpssh-testbed client key")?;
        let client_public_key = read_public_key(&client_key)?;

        let authorized_keys = path("authorized_keys");
        fs::write(&authorized_keys, format!("{client_public_key}\n"))?;
        fs::set_permissions(&authorized_keys, fs::Permissions::from_mode(0o644))?;

        let known_hosts = path("known_hosts");
        fs::write(&known_hosts, "")?;

        let scratch = path("scratch");
        fs::create_dir(&scratch)?;
        let (uid, gid) = test_user_ids()?;
        std::os::unix::fs::chown(&scratch, Some(uid), Some(gid))?;
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o755))?;

        let port = free_port()?;
        let log = path("sshd.log");
        let config = path("sshd_config");
        let sftp_server = match &builder.sftp_server {
            Some(command) => command.as_str(),
            None if Path::new("/usr/lib/openssh/sftp-server").exists() => {
                "/usr/lib/openssh/sftp-server"
            }
            None => "internal-sftp",
        };
        let mut config_text = format!(
            "# Written by mcpssh-testbed\n\
             Port {port}\n\
             ListenAddress 127.0.0.1\n\
             AddressFamily inet\n\
             HostKey {host_key}\n\
             PidFile {pid_file}\n\
             AuthorizedKeysFile {authorized_keys}\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication {password_authentication}\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             AllowUsers {allowed}\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             UseDNS no\n\
             MaxStartups 64\n\
             LogLevel {log_level}\n\
             Subsystem sftp {sftp_server}\n",
            host_key = host_key.display(),
            pid_file = path("sshd.pid").display(),
            authorized_keys = authorized_keys.display(),
            log_level = builder.log_level,
            allowed = std::iter::once(TEST_USER)
                .chain(builder.extra_users.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            password_authentication = if builder.password_authentication {
                "yes"
            } else {
                "no"
            },
        );
        for line in &builder.extra_config {
            config_text.push_str(line);
            config_text.push('\n');
        }
        fs::write(&config, config_text)?;

        fs::File::create(&log)?;
        let child = spawn_daemon(&config, &log)?;

        let mut sshd = Sshd {
            child: Some(child),
            port,
            dir,
            host_key,
            host_public_key,
            host_key_fingerprint,
            client_key,
            client_public_key,
            known_hosts,
            scratch,
            log,
            config,
        };
        sshd.wait_ready(0)?;
        Ok(sshd)
    }

    /// Waits until the daemon answers. Only the log from byte `log_from` on is this
    /// daemon's (a restarted one appends to its predecessor's log).
    fn wait_ready(&mut self, log_from: usize) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let own_log = |sshd: &Sshd| sshd.log().get(log_from..).unwrap_or_default().to_owned();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                let log = own_log(self);
                if log.contains("Bind to port") || log.contains("Cannot bind any address") {
                    bail!("sshd could not bind port {}: {status}\n{log}", self.port);
                }
                bail!("sshd exited during start-up ({status}); its log:\n{log}");
            }
            // The log line proves that *our* sshd owns the port (not a racing neighbour).
            if own_log(self).contains("Server listening on")
                && let Ok(banner) = read_banner(addr)
                && banner.starts_with("SSH-2.0")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "sshd did not answer on port {} within {READY_TIMEOUT:?}; its log:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start the daemon again after [`Sshd::stop`] (or kill it first if it runs): the
    /// same configuration, keys, port and scratch directory, for tests that kill the
    /// server in the middle of something and then reconnect. The log is appended to.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log_from = fs::metadata(&self.log)
                .map(|m| m.len() as usize)
                .unwrap_or(0);
            self.child = Some(spawn_daemon(&self.config, &self.log)?);
            match self.wait_ready(log_from) {
                Ok(()) => return Ok(()),
                // The port may linger for a moment after the old listener died.
                Err(e)
                    if format!("{e:#}").contains("could not bind") && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The pid of the listening daemon.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
    /// Always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The account to log in as (`mcpssh-test`).
    pub fn username(&self) -> &'static str {
        TEST_USER
    }
    /// The daemon's private ed25519 host key.
    pub fn host_key_path(&self) -> &Path {
        &self.host_key
    }
    /// The daemon's public host key, `ssh-ed25519 AAAA... comment`.
    pub fn host_public_key(&self) -> &str {
        &self.host_public_key
    }
    /// `SHA256:...` as printed by `ssh-keygen -lf`.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key_fingerprint
    }
    /// The client's private key (ed25519, no passphrase), authorised for [`TEST_USER`].
    pub fn client_key_path(&self) -> &Path {
        &self.client_key
    }
    pub fn client_public_key(&self) -> &str {
        &self.client_public_key
    }
    /// An initially empty `known_hosts` file for the client under test.
    pub fn known_hosts_path(&self) -> &Path {
        &self.known_hosts
    }
    /// The `known_hosts` line that trusts this daemon: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> String {
        let mut parts = self.host_public_key.split_whitespace();
        let algo = parts.next().unwrap_or_default();
        let key = parts.next().unwrap_or_default();
        format!("[{}]:{} {algo} {key}", self.host(), self.port)
    }
    /// The temporary directory holding everything of this daemon.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// A directory owned by the test user, for file tests (removed on drop).
    pub fn scratch_dir(&self) -> &Path {
        &self.scratch
    }
    pub fn config_path(&self) -> &Path {
        &self.config
    }
    pub fn log_path(&self) -> &Path {
        &self.log
    }
    /// The daemon's log so far.
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Session channels opened and freed so far, from the log (at `DEBUG1` or above):
    /// `server_input_channel_open: ctype session` and `free: server-session` lines. Their
    /// difference is the number open now.
    pub fn session_channels(&self) -> (usize, usize) {
        let log = self.log();
        let opened = log
            .matches("server_input_channel_open: ctype session")
            .count();
        let freed = log.matches("free: server-session").count();
        (opened, freed)
    }

    /// The environment that points `mcpssh` at this daemon (the defaults the tests use:
    /// key authentication, the empty known_hosts file, a shared compile cache, debug log,
    /// the system temp directory as the local root, where the tests keep their files, and
    /// no system-wide known_hosts file).
    pub fn mcp_env(&self) -> Vec<(String, String)> {
        [
            ("MCP_SSH_HOSTNAME", self.host().to_owned()),
            ("MCP_SSH_PORT", self.port.to_string()),
            ("MCP_SSH_USERNAME", TEST_USER.to_owned()),
            (
                "MCP_SSH_KEY_FILENAME",
                self.client_key.display().to_string(),
            ),
            (
                "MCP_SSH_KNOWN_HOSTS",
                self.known_hosts.display().to_string(),
            ),
            (
                "MCP_SSH_CACHE_DIR",
                shared_cache_dir().display().to_string(),
            ),
            ("MCP_SSH_LOG", "debug".to_owned()),
            (
                "MCP_SSH_LOCAL_ROOT",
                std::env::temp_dir().display().to_string(),
            ),
            // The machine's own /etc/ssh/ssh_known_hosts must not decide a test.
            ("MCP_SSH_GLOBAL_KNOWN_HOSTS", "none".to_owned()),
            // Nor the user's ~/.ssh/config: a test that needs one writes its own.
            ("MCP_SSH_CONFIG", "/dev/null".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A plain OpenSSH client command that runs `remote_command` as the test user on
    /// this daemon (batch mode, strict host key checking against a trusting known_hosts).
    pub fn ssh_command(&self, remote_command: &str) -> Command {
        self.ssh_command_as(TEST_USER, remote_command)
    }

    /// Like [`Sshd::ssh_command`], logging in as `user` (one the daemon allows).
    pub fn ssh_command_as(&self, user: &str, remote_command: &str) -> Command {
        self.openssh(user, &self.client_key, remote_command)
    }

    /// Like [`Sshd::ssh_command`], with the private key `key` instead of the client key.
    pub fn ssh_command_with_key(&self, key: &Path, remote_command: &str) -> Command {
        self.openssh(TEST_USER, key, remote_command)
    }

    /// OpenSSH's `ssh` logging in as `user` with `key` only, trusting the daemon's key.
    fn openssh(&self, user: &str, key: &Path, remote_command: &str) -> Command {
        let trusted = self.dir().join("known_hosts.trusted");
        if !trusted.exists() {
            let _ = fs::write(&trusted, format!("{}\n", self.known_hosts_line()));
        }
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(key)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", trusted.display()))
            .arg("-o")
            .arg("StrictHostKeyChecking=yes")
            .arg("-o")
            .arg("BatchMode=yes")
            .arg("-o")
            .arg("IdentitiesOnly=yes")
            .arg(format!("{user}@{}", self.host()))
            .arg("--")
            .arg(remote_command)
            .stdin(Stdio::null());
        cmd
    }

    /// Run a command through the plain `ssh` client; fails unless it exits 0. Returns stdout.
    pub fn ssh_run(&self, remote_command: &str) -> Result<String> {
        let out = self
            .ssh_command(remote_command)
            .output()
            .context("running ssh")?;
        if !out.status.success() {
            bail!(
                "ssh {remote_command:?} failed ({}): {}\nsshd log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Also accept `public_key` (an `authorized_keys` line) for the test user.
    pub fn authorize_key(&self, public_key: &str) -> Result<()> {
        use std::io::Write as _;
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(self.dir().join("authorized_keys"))?;
        writeln!(file, "{}", public_key.trim())?;
        Ok(())
    }

    /// Processes of the test user whose command line matches `pattern` (`pgrep -f`), as
    /// `pid command line` strings. Covers processes that escaped their session too.
    pub fn processes_matching(&self, pattern: &str) -> Vec<String> {
        processes_matching(pattern)
    }

    /// Wait until no process of the test user matches `pattern`; true when none is left.
    pub fn wait_processes_gone(&self, pattern: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.processes_matching(pattern).is_empty() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Authenticated SSH connections open now (per-connection monitors, `sshd: USER [priv]`).
    /// Connections still in the handshake or closing before authentication do not count.
    pub fn count_sessions(&self) -> usize {
        self.connection_cmdlines()
            .iter()
            .filter(|c| c.contains("[priv]"))
            .count()
    }

    /// Every per-connection sshd process, authenticated or not (one per TCP connection).
    pub fn count_connections(&self) -> usize {
        self.connection_cmdlines().len()
    }

    fn connection_cmdlines(&self) -> Vec<String> {
        let Some(pid) = self.pid() else {
            return Vec::new();
        };
        process_parents()
            .into_iter()
            .filter(|&(_, parent)| parent == pid)
            .map(|(child, _)| {
                let raw = fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&raw).replace('\0', " ")
            })
            .collect()
    }

    /// Every process descending from the daemon (connections, shells, commands).
    pub fn descendants(&self) -> Vec<u32> {
        match self.pid() {
            Some(pid) => descendants_of(pid, &process_parents()),
            None => Vec::new(),
        }
    }

    /// Stop the daemon and everything it started. Also done on drop.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        // Kill the tree from the top while it is still a tree: once the listener is gone
        // its children are re-parented and can no longer be told apart.
        for _ in 0..3 {
            let tree = descendants_of(pid, &process_parents());
            let _ = child.kill();
            for p in &tree {
                unsafe {
                    libc::kill(*p as libc::pid_t, libc::SIGKILL);
                }
            }
            if tree.is_empty() {
                break;
            }
        }
        let _ = child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- sshd log ({}), port {} ----\n{}\n---- end of sshd log ----",
                self.log.display(),
                self.port,
                tail(&self.log(), 20_000)
            );
        }
        self.stop();
    }
}

/// At most the last `max` bytes of `s`, on a char boundary.
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// `sshd -D -e -f CONFIG`, its output appended to `log`.
fn spawn_daemon(config: &Path, log: &Path) -> Result<Child> {
    let log_file = fs::OpenOptions::new().append(true).create(true).open(log)?;
    Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {SSHD}"))
}

fn read_banner(addr: SocketAddr) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    while !got.contains(&b'\n') && got.len() < 255 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn keygen(path: &Path, comment: &str) -> Result<()> {
    keygen_with(path, comment, "ed25519", "")
}

fn keygen_with(path: &Path, comment: &str, kind: &str, passphrase: &str) -> Result<()> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", comment]);
    if kind == "rsa" {
        cmd.args(["-b", "3072"]);
    }
    let out = cmd
        .arg("-f")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("running ssh-keygen")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The `.pub` file ssh-keygen writes beside a private key.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn read_public_key(private: &Path) -> Result<String> {
    Ok(fs::read_to_string(public_key_path(private))?
        .trim()
        .to_owned())
}

/// `SHA256:...` of a public (or private) key file, from `ssh-keygen -lf`.
pub fn fingerprint_of(key: &Path) -> Result<String> {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key)
        .output()
        .context("running ssh-keygen -lf")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no fingerprint in ssh-keygen output: {text}"))
}

/// Generate a fresh ed25519 key pair in `dir` (for tests that need a key the server does
/// not know, or a second host key). Returns (private key path, public key line).
pub fn generate_key(dir: &Path, name: &str) -> Result<(PathBuf, String)> {
    generate_key_with(dir, name, "ed25519", "")
}

/// Generate a key pair of `kind` (`ed25519`, `ecdsa`, `rsa`), encrypted with `passphrase`
/// unless it is empty. Returns (private key path, public key line).
pub fn generate_key_with(
    dir: &Path,
    name: &str,
    kind: &str,
    passphrase: &str,
) -> Result<(PathBuf, String)> {
    let path = dir.join(name);
    keygen_with(&path, name, kind, passphrase)?;
    let public = read_public_key(&path)?;
    Ok((path, public))
}

/// Processes of the test user matching `pattern` (`pgrep -u mcpssh-test -f -a`), as
/// `pid command line` strings. Panics when `pgrep` is missing or fails (a bad pattern): an
/// empty answer must mean "no such process", never "could not look".
pub fn processes_matching(pattern: &str) -> Vec<String> {
    processes_of_user_matching(TEST_USER, pattern)
}

/// The processes of `user` whose command line matches `pattern`; panics when pgrep
/// cannot answer.
pub fn processes_of_user_matching(user: &str, pattern: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-u", user, "-f", "-a", pattern])
        .output()
        .unwrap_or_else(|e| panic!("cannot run pgrep (procps) to look for `{pattern}`: {e}"));
    match out.status.code() {
        Some(0) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        // 1: no process matched.
        Some(1) => Vec::new(),
        _ => panic!(
            "pgrep -u {user} -f -a {pattern:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// pid -> parent pid of every process, from /proc.
fn process_parents() -> HashMap<u32, u32> {
    let mut parents = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok())
        {
            parents.insert(pid, ppid);
        }
    }
    parents
}

fn descendants_of(root: u32, parents: &HashMap<u32, u32>) -> Vec<u32> {
    let mut found: HashSet<u32> = HashSet::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&child, &parent) in parents {
            if parent == p && found.insert(child) {
                frontier.push(child);
            }
        }
    }
    found.into_iter().collect()
}

/// Make the machine ready for test daemons: `/run/sshd` (sshd's privilege separation
/// directory) and the test user. Idempotent, once per process.
pub fn prepare_system() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| prepare_system_inner().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn prepare_system_inner() -> Result<()> {
    if !Path::new(SSHD).exists() {
        bail!("{SSHD} is missing: run scripts/setup (installs openssh-server)");
    }
    fs::create_dir_all("/run/sshd").context("creating /run/sshd (are we root?)")?;
    fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755))?;
    ensure_test_user()
}

/// Create the `mcpssh-test` user (shell `/bin/sh`, so no `~/.bashrc` slows every command)
/// if missing, and make sure its account is not locked.
pub fn ensure_test_user() -> Result<()> {
    ensure_account(TEST_USER, "/bin/sh")
}

/// An account named `mcpssh-<name>` whose login shell is `shell` (an absolute path),
/// created if missing. Returns the account name. Shells are installed by `scripts/setup`.
pub fn ensure_shell_user(name: &str, shell: &str) -> Result<String> {
    let user = format!("mcpssh-{name}");
    if !Path::new(shell).exists() {
        bail!("{shell} is missing: run scripts/setup (installs zsh, fish and tcsh)");
    }
    ensure_account(&user, shell)?;
    Ok(user)
}

/// Creates `user` with login shell `shell` (as root) or sets its shell, and unlocks its
/// password field: sshd without PAM refuses even key logins into a locked (`!`) account.
fn ensure_account(user: &str, shell: &str) -> Result<()> {
    // One account change at a time: tests run in parallel threads.
    static ACCOUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let run = |args: &[&str], what: &str| -> Result<std::process::Output> {
        Command::new(args[0])
            .args(&args[1..])
            .output()
            .with_context(|| format!("running {what}"))
    };
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd
        .lines()
        .find(|l| l.split(':').next() == Some(user))
        .map(str::to_owned);
    match entry {
        None => {
            let out = run(
                &["useradd", "--create-home", "--shell", shell, user],
                "useradd",
            )?;
            // 9: the name is taken (another process created it meanwhile).
            if !out.status.success() && out.status.code() != Some(9) {
                bail!(
                    "useradd {user} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Some(line) if line.rsplit(':').next() != Some(shell) => {
            let out = run(&["usermod", "--shell", shell, user], "usermod")?;
            if !out.status.success() {
                bail!("usermod --shell {shell} {user} failed");
            }
        }
        Some(_) => {}
    }
    let shadow = fs::read_to_string("/etc/shadow").unwrap_or_default();
    let locked = shadow.lines().any(|l| {
        let mut f = l.split(':');
        f.next() == Some(user) && f.next().is_some_and(|p| p.starts_with('!'))
    });
    if locked {
        let out = run(&["usermod", "-p", "*", user], "usermod")?;
        if !out.status.success() {
            bail!(
                "usermod -p '*' {user} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// The test user's password: a random one, set once per process with `chpasswd` (as
/// root). Only daemons built with [`SshdBuilder::password_authentication`] accept it; key
/// logins are not affected, so tests using keys may run meanwhile.
pub fn test_user_password() -> Result<String> {
    static PASSWORD: OnceLock<Result<String, String>> = OnceLock::new();
    PASSWORD
        .get_or_init(|| set_test_user_password().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn set_test_user_password() -> Result<String> {
    use std::io::Write as _;
    prepare_system()?;
    let mut random = [0u8; 12];
    fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let password = format!("pw-{password}");
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running chpasswd")?;
    child
        .stdin
        .take()
        .context("chpasswd stdin")?
        .write_all(format!("{TEST_USER}:{password}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "chpasswd for {TEST_USER} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(password)
}

/// uid and gid of the test user.
pub fn test_user_ids() -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").arg(flag).arg(TEST_USER).output()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .with_context(|| format!("id {flag} {TEST_USER}"))
    };
    Ok((id("-u")?, id("-g")?))
}
