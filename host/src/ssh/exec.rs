//! Running one command on an open connection: stdin, environment, working directory,
//! capped output (head and tail kept), timeouts and cancellation that really stop the
//! remote process group, and progress reports while it runs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::ChannelMsg;
use tokio_util::sync::CancellationToken;

use super::connection::Connection;
use super::shell::CommandSetup;
use crate::error::{HostError, HostResult};

/// The marker line the wrapper prints first, so the host learns the remote process
/// group to kill on timeout or cancellation. It is removed from the output.
const PID_MARKER: &[u8] = b"\x1emcpssh-pid:";

/// The largest exec request sent: the command as wrapped, with its environment and
/// working directory. OpenSSH's sshd drops the whole connection (every session on it)
/// when a packet exceeds 256 KiB, so a request must stay well below that.
pub const MAX_EXEC_REQUEST_BYTES: usize = 128 * 1024;

/// How often a running command reports progress to a client that asked for it.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One command to run.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub command: String,
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(String, String)>,
    pub working_directory: Option<String>,
    pub timeout: Duration,
    pub output_limit: u64,
    pub pty: bool,
    /// End the command when it printed nothing for this long (none: never).
    pub idle_timeout: Option<Duration>,
}

/// Receives a command's output as it arrives.
pub trait OutputSink: Send {
    fn stdout(&mut self, data: &[u8]);
    fn stderr(&mut self, data: &[u8]);
}

/// The capped head-and-tail record of both streams that [`run`] returns.
struct CaptureSink {
    stdout: Capture,
    stderr: Capture,
}

impl OutputSink for CaptureSink {
    fn stdout(&mut self, data: &[u8]) {
        self.stdout.push(data);
    }
    fn stderr(&mut self, data: &[u8]) {
        self.stderr.push(data);
    }
}

/// One output stream, capped to a limit: the head and the tail are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedStream {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    pub cut_bytes: u64,
    pub total_bytes: u64,
}

/// How a command ended.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: Option<i32>,
    pub exit_signal: Option<String>,
    pub stdout: CapturedStream,
    pub stderr: CapturedStream,
    pub timed_out: bool,
    /// True when the command was stopped because it printed nothing for its idle timeout.
    pub idle_timed_out: bool,
    pub duration: Duration,
}

/// Receives progress while a command runs: seconds elapsed and the latest output line.
pub type ProgressFn = Arc<dyn Fn(f64, Option<String>) + Send + Sync>;

/// Collects a stream up to `limit` bytes: the first half and the last half are kept.
pub struct Capture {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    cut: u64,
    total: u64,
}

impl Capture {
    pub fn new(limit: u64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let tail_cap = limit / 2;
        Capture {
            head_cap: limit - tail_cap,
            tail_cap,
            head: Vec::new(),
            tail: VecDeque::new(),
            cut: 0,
            total: 0,
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let n = room.min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if data.len() >= self.tail_cap {
            self.cut += (self.tail.len() + data.len() - self.tail_cap) as u64;
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.cut += overflow as u64;
        self.tail.extend(data);
    }

    /// What was kept so far.
    pub fn snapshot(&self) -> CapturedStream {
        CapturedStream {
            head: self.head.clone(),
            tail: self.tail.iter().copied().collect(),
            cut_bytes: self.cut,
            total_bytes: self.total,
        }
    }

    fn finish(self) -> CapturedStream {
        CapturedStream {
            head: self.head,
            tail: self.tail.into(),
            cut_bytes: self.cut,
            total_bytes: self.total,
        }
    }
}

/// Kills the remote process group `pgid`: TERM, then KILL after up to a second. Groups
/// 0 and 1 (and numbers past the largest PID) are never signalled: see
/// [`parse_process_group`].
async fn kill_process_group(conn: &Connection, pgid: u32) {
    if !(2..=i32::MAX as u32).contains(&pgid) {
        tracing::warn!(
            pgid,
            "refusing to kill a remote process group that is not a real one"
        );
        return;
    }
    let script = format!(
        "exec /bin/sh -c 'kill -TERM -{pgid} 2>/dev/null; i=0; while kill -0 -{pgid} 2>/dev/null && [ $i -lt 10 ]; do sleep 0.1; i=$((i+1)); done; kill -KILL -{pgid} 2>/dev/null; true'"
    );
    let Ok((channel, _slot)) = conn.open_channel().await else {
        tracing::warn!(pgid, "cannot open a channel to kill a remote process group");
        return;
    };
    if channel.exec(true, script).await.is_err() {
        return;
    }
    let mut channel = channel;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while channel.wait().await.is_some() {}
    })
    .await;
}

/// Kills the remote command if the exec is dropped before it finished.
struct KillOnDrop {
    conn: Option<Arc<Connection>>,
    pgid: Option<u32>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let (Some(conn), Some(pgid)) = (self.conn.take(), self.pgid) {
            crate::cleanup::spawn(async move { kill_process_group(&conn, pgid).await });
        }
    }
}

/// The process group a marker names, if it is one that may be killed: a plain decimal
/// number from 2 up to the largest PID. The remote side may be hostile: `0` would make
/// `kill -TERM -0` signal the kill's own group, `1` (or a number that wraps to it) would
/// make `kill -TERM -1` signal every process the user owns, and anything else (signs,
/// spaces, garbage) is not a PID either.
fn parse_process_group(text: &[u8]) -> Option<u32> {
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pid: u32 = std::str::from_utf8(text).ok()?.parse().ok()?;
    (2..=i32::MAX as u32).contains(&pid).then_some(pid)
}

/// Strips the PID marker line from the start of stdout, returning the PID once known.
struct PidMarker {
    /// Output held back until it is known whether it starts with the marker; none once
    /// that is decided (or when no marker is expected).
    pending: Option<Vec<u8>>,
    /// True once the marker line was seen: the wrapper ran.
    seen: bool,
}

impl PidMarker {
    /// A reader expecting the marker, or (`expected` false) passing everything through.
    fn new(expected: bool) -> PidMarker {
        PidMarker {
            pending: expected.then(Vec::new),
            seen: false,
        }
    }
}

impl PidMarker {
    /// Feeds stdout data; returns the data for the user and maybe the PID.
    fn feed(&mut self, data: &[u8]) -> (Vec<u8>, Option<u32>) {
        let Some(pending) = self.pending.as_mut() else {
            return (data.to_vec(), None);
        };
        pending.extend_from_slice(data);
        let Some(nl) = pending.iter().position(|&b| b == b'\n') else {
            if pending.len() > 64
                || !PID_MARKER.starts_with(&pending[..pending.len().min(PID_MARKER.len())])
            {
                return (self.pending.take().unwrap(), None);
            }
            return (Vec::new(), None);
        };
        let buf = self.pending.take().unwrap();
        let line = &buf[..nl];
        match line.strip_prefix(PID_MARKER) {
            Some(pid) => {
                self.seen = true;
                (buf[nl + 1..].to_vec(), parse_process_group(pid))
            }
            None => (buf, None),
        }
    }
}

/// Runs `req` on `conn`. A non-zero exit is `Ok`; a timeout is `Ok` with `timed_out`.
/// Cancellation kills the remote process group and returns `HostError::Cancelled`.
pub async fn run(
    conn: Arc<Connection>,
    req: ExecRequest,
    cancel: CancellationToken,
    progress: Option<ProgressFn>,
) -> HostResult<ExecOutput> {
    let mut sink = CaptureSink {
        stdout: Capture::new(req.output_limit),
        stderr: Capture::new(req.output_limit),
    };
    let mut out = run_into(conn, req, cancel, progress, &mut sink).await?;
    out.stdout = sink.stdout.finish();
    out.stderr = sink.stderr.finish();
    Ok(out)
}

/// Like [`run`], but hands the output to `sink` as it arrives instead of keeping it: the
/// streams of the result are empty.
pub async fn run_into(
    conn: Arc<Connection>,
    req: ExecRequest,
    cancel: CancellationToken,
    progress: Option<ProgressFn>,
    sink: &mut dyn OutputSink,
) -> HostResult<ExecOutput> {
    let started = Instant::now();
    let shell = &conn.info.shell;
    let script = super::shell::wrap(
        shell,
        &CommandSetup {
            command: &req.command,
            env: &req.env,
            working_directory: req.working_directory.as_deref(),
        },
    )
    .map_err(HostError::Invalid)?;
    if script.len() > MAX_EXEC_REQUEST_BYTES {
        return Err(HostError::Invalid(format!(
            "the command, with its environment and working directory, is {} bytes: more than \
             the {MAX_EXEC_REQUEST_BYTES} one SSH exec request may carry (servers drop the whole \
             connection on larger ones). Send a long script as stdin (command `sh -s`), or \
             upload it with scp_upload and run the file",
            script.len()
        )));
    }
    let (channel, _slot) = conn.open_channel().await?;
    let lost = |e: russh::Error| {
        HostError::Connection(format!(
            "the connection to {} failed while starting the command: {}",
            conn.info.name,
            super::russh_error::describe_russh_error(&e)
        ))
    };
    if req.pty {
        channel
            .request_pty(true, "xterm", 200, 50, 0, 0, &[])
            .await
            .map_err(lost)?;
    }
    for (name, value) in &req.env {
        // Best effort: most servers only accept a few names (AcceptEnv); the wrapper
        // exports every variable anyway.
        let _ = channel.set_env(false, name.clone(), value.clone()).await;
    }
    channel.exec(true, script).await.map_err(lost)?;
    // The request is on its way: the next command's channel opens while this one runs.
    conn.open_channel_ahead();
    let (mut reader, writer) = channel.split();
    let mut guard = KillOnDrop {
        conn: Some(conn.clone()),
        pgid: None,
    };

    let stdin = req.stdin.clone().unwrap_or_default();
    let stdin_task = async {
        if !stdin.is_empty() {
            let _ = writer.data(&stdin[..]).await;
        }
        let _ = writer.eof().await;
        std::future::pending::<()>().await
    };
    tokio::pin!(stdin_task);

    // The start of stderr, for the error when the wrapper did not run.
    let mut stderr_start = Vec::new();
    let mut marker = PidMarker::new(!shell.family.is_windows());
    let mut out = ExecOutput::default();
    let mut latest_line: Option<String> = None;
    // The timers live across the loop (one registration each, not one per message); the
    // idle one only when asked for, the progress one only for a client that wants progress.
    let timeout = tokio::time::sleep(req.timeout);
    tokio::pin!(timeout);
    let mut idle = req
        .idle_timeout
        .map(|limit| (limit, Box::pin(tokio::time::sleep(limit))));
    let mut ticker = progress.as_ref().map(|_| {
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY)
    });
    let mut stop: Option<StopReason> = None;

    loop {
        let mut output_seen = false;
        tokio::select! {
            msg = reader.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    let (data, pid) = marker.feed(&data);
                    if pid.is_some() { guard.pgid = pid; }
                    output_seen = !data.is_empty();
                    note_line(&mut latest_line, &data);
                    sink.stdout(&data);
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    output_seen = true;
                    note_line(&mut latest_line, &data);
                    keep_start(&mut stderr_start, &data);
                    sink.stderr(&data);
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => out.exit_code = Some(exit_status as i32),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => out.exit_signal = Some(signal_label(&signal_name)),
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
            _ = &mut stdin_task => {}
            _ = &mut timeout, if stop.is_none() => stop = Some(StopReason::Timeout),
            Some(()) = async { idle.as_mut()?.1.as_mut().await; Some(()) }, if stop.is_none() => {
                stop = Some(StopReason::Idle)
            }
            _ = cancel.cancelled(), if stop.is_none() => stop = Some(StopReason::Cancelled),
            Some(_) = async { Some(ticker.as_mut()?.tick().await) } => {
                if let Some(p) = &progress {
                    p(started.elapsed().as_secs_f64(), latest_line.clone());
                }
            }
        }
        if output_seen && let Some((limit, sleep)) = idle.as_mut() {
            sleep.as_mut().reset(tokio::time::Instant::now() + *limit);
        }
        if let Some(reason) = stop.take() {
            // Stop the remote command, then collect what it says as it dies, briefly.
            tracing::info!(session = %conn.info.name, ?reason, "stopping remote command");
            let _ = writer.signal(russh::Sig::TERM).await;
            if let Some(pgid) = guard.pgid.take() {
                // TERM now, KILL a second later if needed; the KILL pass runs on while
                // this call returns as soon as the command's channel closes.
                let conn = conn.clone();
                crate::cleanup::spawn(async move { kill_process_group(&conn, pgid).await });
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(msg) = reader.wait().await {
                    match msg {
                        ChannelMsg::Data { data } => sink.stdout(&marker.feed(&data).0),
                        ChannelMsg::ExtendedData { data, ext: 1 } => sink.stderr(&data),
                        ChannelMsg::ExitStatus { exit_status } => {
                            out.exit_code = Some(exit_status as i32)
                        }
                        ChannelMsg::ExitSignal { signal_name, .. } => {
                            out.exit_signal = Some(signal_label(&signal_name))
                        }
                        ChannelMsg::Close => break,
                        _ => {}
                    }
                }
            })
            .await;
            let _ = writer.close().await;
            guard.conn = None;
            if reason == StopReason::Cancelled {
                return Err(HostError::Cancelled);
            }
            out.timed_out = true;
            out.idle_timed_out = reason == StopReason::Idle;
            break;
        }
    }
    if out.timed_out && shell.family.is_windows() {
        sink.stderr(
            b"\nmcpssh: on Windows only the command's own process was stopped; processes it started may still run\n",
        );
    }
    guard.conn = None;
    let _ = writer.close().await;
    if let Some(rest) = marker.pending.take() {
        sink.stdout(&rest);
    }
    out.duration = started.elapsed();
    if out.exit_code.is_none() && out.exit_signal.is_none() && !out.timed_out && conn.is_closed() {
        return Err(HostError::Connection(format!(
            "the connection to {} dropped while the command ran; its outcome is unknown",
            conn.info.name
        )));
    }
    if marker.pending.is_none() && !marker.seen && !shell.family.is_windows() && !out.timed_out {
        return Err(wrapper_failed(&conn, &out, &stderr_start));
    }
    Ok(out)
}

/// The error for a command whose wrapper never ran (no PID marker): the login shell
/// rejected or ignored it, so whatever the exit status says, the command did not run as
/// asked.
fn wrapper_failed(conn: &Connection, out: &ExecOutput, stderr_start: &[u8]) -> HostError {
    let shell = &conn.info.shell;
    let said: String = String::from_utf8_lossy(stderr_start)
        .chars()
        .take(300)
        .collect();
    let shown = if shell.path.is_empty() {
        "an unknown shell".to_string()
    } else {
        format!("{} ({} family)", shell.path, shell.family.name())
    };
    HostError::Other(format!(
        "the remote login shell, {shown}, did not run mcpssh's command set-up, so the command \
         did not run as asked (exit status {}; it said: {:?}). Check the account's login shell \
         (`getent passwd USER` on the server) and its start-up files",
        out.exit_code
            .map_or_else(|| "none".to_string(), |c| c.to_string()),
        said.trim()
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Timeout,
    Idle,
    Cancelled,
}

/// Keeps the first bytes of a stream, up to 1 KiB.
fn keep_start(start: &mut Vec<u8>, data: &[u8]) {
    let room = 1024usize.saturating_sub(start.len());
    start.extend_from_slice(&data[..room.min(data.len())]);
}

/// Remembers the last complete (or partial) line of output, for progress messages.
pub(crate) fn note_line(latest: &mut Option<String>, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) {
        let line: String = line.chars().take(200).collect();
        *latest = Some(line);
    }
}

/// The signal's name without the `SIG` prefix.
fn signal_label(sig: &russh::Sig) -> String {
    let name = match sig {
        russh::Sig::Custom(s) => s.clone(),
        other => format!("{other:?}"),
    };
    name.trim_start_matches("SIG").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `data` to a fresh marker reader in chunks of the given sizes (cycled),
    /// returning what it passed on and the PID it found.
    fn feed_in_chunks(data: &[u8], sizes: &[usize]) -> (Vec<u8>, Option<u32>) {
        let mut marker = PidMarker::new(true);
        let (mut out, mut pid) = (Vec::new(), None);
        let mut rest = data;
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, after) = rest.split_at((*size).clamp(1, rest.len()));
            let (passed, found) = marker.feed(chunk);
            out.extend(passed);
            pid = pid.or(found);
            rest = after;
        }
        if let Some(pending) = marker.pending.take() {
            out.extend(pending);
        }
        (out, pid)
    }

    proptest! {
        /// However the stream is cut, output that does not start with the marker comes
        /// through unchanged, and the marker line is removed from output that does.
        #[test]
        fn the_pid_marker_is_stripped_however_the_stream_is_cut(
            pid in 2u32..4_000_000,
            payload in prop::collection::vec(any::<u8>(), 0..300),
            sizes in prop::collection::vec(1usize..40, 1..6),
        ) {
            let mut stream = format!("\x1emcpssh-pid:{pid}\n").into_bytes();
            stream.extend(&payload);
            let (out, found) = feed_in_chunks(&stream, &sizes);
            prop_assert_eq!(found, Some(pid));
            prop_assert_eq!(out, payload.clone());
            if !payload.starts_with(b"\x1e") {
                let (out, found) = feed_in_chunks(&payload, &sizes);
                prop_assert_eq!(found, None);
                prop_assert_eq!(out, payload);
            }
        }
    }

    fn captured(limit: u64, chunks: &[&[u8]]) -> CapturedStream {
        let mut c = Capture::new(limit);
        for chunk in chunks {
            c.push(chunk);
        }
        c.finish()
    }

    #[test]
    fn small_output_is_kept_whole() {
        let s = captured(10, &[b"abc", b"def"]);
        assert_eq!([s.head, s.tail].concat(), b"abcdef");
        assert_eq!((s.cut_bytes, s.total_bytes), (0, 6));
    }

    #[test]
    fn large_output_keeps_head_and_tail() {
        let data: Vec<u8> = (0..100u8).collect();
        for chunking in [1usize, 3, 7, 100] {
            let chunks: Vec<&[u8]> = data.chunks(chunking).collect();
            let s = captured(10, &chunks);
            assert_eq!(s.head, (0..5u8).collect::<Vec<_>>(), "chunk {chunking}");
            assert_eq!(s.tail, (95..100u8).collect::<Vec<_>>(), "chunk {chunking}");
            assert_eq!(s.cut_bytes, 90);
            assert_eq!(s.total_bytes, 100);
        }
    }

    #[test]
    fn exactly_the_limit_is_not_cut() {
        let s = captured(10, &[b"0123456789"]);
        assert_eq!(s.cut_bytes, 0);
        assert_eq!([s.head, s.tail].concat(), b"0123456789");
    }

    #[test]
    fn pid_marker_is_stripped_across_chunks() {
        let mut m = PidMarker::new(true);
        assert_eq!(m.feed(b"\x1emcpssh-p"), (vec![], None));
        assert_eq!(m.feed(b"id:4242\nhello"), (b"hello".to_vec(), Some(4242)));
        assert_eq!(m.feed(b" world"), (b" world".to_vec(), None));
    }

    #[test]
    fn markers_naming_no_real_process_group_give_no_pid() {
        for bad in [
            &b"0"[..],
            b"1",
            b"-1",
            b"+5",
            b" 5",
            b"",
            b"4294967297",
            b"2147483648",
            b"12abc",
            b"99999999999999999999",
        ] {
            let mut m = PidMarker::new(true);
            let line = [PID_MARKER, bad, b"\nrest"].concat();
            assert_eq!(m.feed(&line), (b"rest".to_vec(), None), "{bad:?}");
        }
        assert_eq!(parse_process_group(b"2"), Some(2));
        assert_eq!(parse_process_group(b"4242\r"), Some(4242));
        assert_eq!(parse_process_group(b"2147483647"), Some(2147483647));
    }

    #[test]
    fn output_without_marker_passes_through() {
        let mut m = PidMarker::new(true);
        assert_eq!(
            m.feed(b"plain output\n"),
            (b"plain output\n".to_vec(), None)
        );
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(super::super::shell::shell_quote("it's"), r"'it'\''s'");
    }
}
