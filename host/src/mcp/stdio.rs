//! Serving MCP on stdin/stdout: the handler started over the stdio transport, with the
//! client's log and the tools folder's reloading attached, until the client goes away, a
//! signal arrives or the polling watchdog gives up; then in-flight calls are cancelled,
//! their clean-up awaited (bounded) and every SSH session closed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::mcp::elicitation::ElicitationHostKeyPrompt;
use crate::mcp::reload::ToolsFolderReloader;
use crate::mcp::server::McpSsh;
use crate::mcp::watchdog::PollWatchdog;

/// Serves MCP on stdin/stdout until the client goes away or a signal arrives, then
/// cancels in-flight calls and closes every SSH session.
pub async fn serve_stdio(app: App) -> Result<()> {
    let shutdown = CancellationToken::new();
    let watchdog = Arc::new(PollWatchdog::new(
        Duration::from_secs(app.settings.poll_interval),
        app.settings.missed_polls_threshold,
    ));
    let server = McpSsh::new(
        app.runtime.clone(),
        app.registry.clone(),
        app.settings.clone(),
        app.pool.clone(),
        watchdog.clone(),
        shutdown.clone(),
    )
    .with_policy(app.policy.clone(), app.audit.clone());
    // When the client closes stdin, cancel running calls at once: rmcp would otherwise
    // wait for them (up to 5 s) before its serve loop returns, and clients kill a
    // server 2 s after closing its stdin.
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let stdin = CancelOnEof {
        inner: stdin,
        on_eof: shutdown.clone(),
    };
    // New host keys are asked about through the client (MCP_SSH_STRICT_HOST_KEY_CHECKING=ask),
    // once it is connected.
    let host_key_prompt = Arc::new(ElicitationHostKeyPrompt::new());
    app.pool.set_host_key_prompt(host_key_prompt.clone());
    let running = server.clone().serve((stdin, stdout)).await?;
    host_key_prompt.connected(running.peer().clone());
    let stop = running.cancellation_token();
    crate::mcp::client_log::attach(running.peer().clone());
    let calls = server.clone();
    let reload = app.settings.tools_dir().map(|dir| {
        let reloader = ToolsFolderReloader::new(&app, dir, server, running.peer().clone());
        tokio::spawn(reloader.run(shutdown.clone()))
    });
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let quiet = CancellationToken::new();
    let watch = {
        let (watchdog, quiet) = (watchdog.clone(), quiet.clone());
        tokio::spawn(async move { watchdog.run(quiet).await })
    };
    let waiting = running.waiting();
    tokio::pin!(waiting);
    tokio::select! {
        r = &mut waiting => { tracing::info!(reason = ?r.ok(), "client closed the connection"); }
        _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); stop.cancel(); }
        _ = quiet.cancelled() => { stop.cancel(); }
        _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: shutting down"); stop.cancel(); }
    }
    shutdown.cancel();
    app.runtime.jobs().cancel_all(Duration::from_secs(3)).await;
    quiet.cancel();
    let _ = watch.await;
    if let Some(reload) = reload {
        let _ = reload.await;
    }
    // In-flight calls now stop: wait for them and for their clean-up (remote kills,
    // partial files removed), bounded, and not at all when nothing runs.
    let settle = async {
        calls.calls_finished().await;
        crate::cleanup::finish(Duration::from_secs(3)).await;
    };
    if tokio::time::timeout(Duration::from_secs(4), settle)
        .await
        .is_err()
    {
        tracing::warn!("calls still running at shutdown were abandoned");
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), app.pool.close_all()).await;
    Ok(())
}

/// An async reader that cancels a token when it reaches end of file.
struct CancelOnEof<R> {
    inner: R,
    on_eof: CancellationToken,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for CancelOnEof<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            tracing::info!("stdin closed: cancelling running calls");
            self.on_eof.cancel();
        }
        polled
    }
}
