//! The stdio transport between the test client and the server under test: the server's
//! stdin, which a test can close by hand (and nothing else: no signal, no MCP message), and
//! a record of the progress and log notifications taken as each one comes off the wire.
//!
//! rmcp hands every incoming notification to a task of its own, so a client handler may run
//! after the response that followed the notification on the wire. Recording in the
//! transport instead keeps the wire order: once a response has arrived, every notification
//! sent before it is in the record.

// MCP log notifications are deprecated by SEP-2577, but servers still send them.
#![allow(deprecated)]

use std::{
    collections::HashMap,
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use rmcp::{
    RoleClient,
    model::{
        JsonRpcMessage, JsonRpcNotification, LoggingMessageNotificationParam,
        ProgressNotificationParam, ProgressToken, ServerNotification,
    },
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{Transport, async_rw::AsyncRwTransport},
};
use tokio::{
    io::AsyncWrite,
    process::{ChildStdin, ChildStdout},
};

/// The server's stdin. Clones share the pipe; [`ServerStdin::close`] closes it for all of
/// them, after which writes fail with `BrokenPipe`.
#[derive(Clone)]
pub struct ServerStdin(Arc<Mutex<Option<ChildStdin>>>);

impl ServerStdin {
    pub fn new(pipe: ChildStdin) -> Self {
        Self(Arc::new(Mutex::new(Some(pipe))))
    }

    /// Close the pipe: the server reads end of file.
    pub fn close(&self) {
        drop(self.0.lock().unwrap().take());
    }
}

impl AsyncWrite for ServerStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.0.lock().unwrap().as_mut() {
            Some(pipe) => Pin::new(pipe).poll_write(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.lock().unwrap().as_mut() {
            Some(pipe) => Pin::new(pipe).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.lock().unwrap().as_mut() {
            Some(pipe) => Pin::new(pipe).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Progress and log notifications, in the order they came off the wire.
#[derive(Clone, Default)]
pub struct Received {
    progress: Arc<Mutex<HashMap<ProgressToken, Vec<ProgressNotificationParam>>>>,
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
}

impl Received {
    /// Progress notifications received for `token` so far.
    pub fn progress_for(&self, token: &ProgressToken) -> Vec<ProgressNotificationParam> {
        self.progress
            .lock()
            .unwrap()
            .get(token)
            .cloned()
            .unwrap_or_default()
    }

    /// Log notifications (`notifications/message`) received so far.
    pub fn logs(&self) -> Vec<LoggingMessageNotificationParam> {
        self.logs.lock().unwrap().clone()
    }

    fn record(&self, message: &RxJsonRpcMessage<RoleClient>) {
        match message {
            JsonRpcMessage::Notification(JsonRpcNotification {
                notification: ServerNotification::ProgressNotification(n),
                ..
            }) => self
                .progress
                .lock()
                .unwrap()
                .entry(n.params.progress_token.clone())
                .or_default()
                .push(n.params.clone()),
            JsonRpcMessage::Notification(JsonRpcNotification {
                notification: ServerNotification::LoggingMessageNotification(n),
                ..
            }) => self.logs.lock().unwrap().push(n.params.clone()),
            _ => {}
        }
    }
}

/// Newline-delimited JSON-RPC over the server's stdout and stdin, recording notifications.
pub struct RecordingTransport {
    inner: AsyncRwTransport<RoleClient, ChildStdout, ServerStdin>,
    received: Received,
}

impl RecordingTransport {
    pub fn new(stdout: ChildStdout, stdin: ServerStdin, received: Received) -> Self {
        Self {
            inner: AsyncRwTransport::new(stdout, stdin),
            received,
        }
    }
}

impl Transport<RoleClient> for RecordingTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        let received = self.received.clone();
        let next = self.inner.receive();
        async move {
            // Nothing is awaited between receiving and recording, so a receive cancelled
            // by rmcp's select loop loses nothing.
            let message = next.await;
            if let Some(message) = &message {
                received.record(message);
            }
            message
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
