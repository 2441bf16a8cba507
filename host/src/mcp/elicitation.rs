//! Asking the user through the MCP client: an elicitation in form mode with no fields, so
//! the user accepts or declines what the message shows and is never asked for a secret.
//! The policy's approvals (`policy::Approver`) and the questions about new host keys
//! (`ssh::host_key_prompt`) both ask this way.

use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::RoleServer;
use rmcp::model::{ElicitRequestParams, ElicitationAction};
use rmcp::service::{ElicitationMode, Peer};
use serde_json::json;
use tokio::sync::watch;

use crate::policy::{Approval, Approver};
use crate::ssh::host_key_prompt::{HostKeyPrompt, PromptAnswer};

/// Shows `message` to the user through `peer` and waits for accept or decline.
async fn ask(peer: Peer<RoleServer>, message: String) -> Approval {
    if !peer
        .supported_elicitation_modes()
        .contains(&ElicitationMode::Form)
    {
        return Approval::Unavailable("this client cannot ask the user".into());
    }
    let schema = serde_json::from_value(json!({"type": "object", "properties": {}}))
        .expect("an empty object schema");
    let request = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: schema,
    };
    match peer.create_elicitation(request).await {
        Ok(result) if result.action == ElicitationAction::Accept => Approval::Accepted,
        Ok(_) => Approval::Declined,
        Err(e) => Approval::Unavailable(format!("asking the user failed ({e})")),
    }
}

/// The policy's approvals, asked of the user through the client that made the call.
pub struct ElicitationApprover {
    peer: Peer<RoleServer>,
}

impl ElicitationApprover {
    pub fn new(peer: Peer<RoleServer>) -> Self {
        ElicitationApprover { peer }
    }
}

impl Approver for ElicitationApprover {
    fn approve(&self, message: String) -> BoxFuture<'static, Approval> {
        Box::pin(ask(self.peer.clone(), message))
    }
}

/// How long a question waits for the client to be connected: a request is answered only
/// after the handshake, so in practice not at all.
const CLIENT_WAIT: Duration = Duration::from_secs(5);

/// Questions about new host keys, asked of the user through the connected client. Made
/// before the client connects (a first request may come before the server's own start-up
/// has gone on past the handshake); [`ElicitationHostKeyPrompt::connected`] names the
/// client.
pub struct ElicitationHostKeyPrompt {
    peer: watch::Receiver<Option<Peer<RoleServer>>>,
    set_peer: watch::Sender<Option<Peer<RoleServer>>>,
}

impl ElicitationHostKeyPrompt {
    pub fn new() -> Self {
        let (set_peer, peer) = watch::channel(None);
        ElicitationHostKeyPrompt { peer, set_peer }
    }

    /// The client questions go to from now on.
    pub fn connected(&self, peer: Peer<RoleServer>) {
        self.set_peer.send_replace(Some(peer));
    }
}

impl Default for ElicitationHostKeyPrompt {
    fn default() -> Self {
        Self::new()
    }
}

impl HostKeyPrompt for ElicitationHostKeyPrompt {
    fn ask(&self, question: String) -> BoxFuture<'static, PromptAnswer> {
        let mut peer = self.peer.clone();
        Box::pin(async move {
            let connected = async { peer.wait_for(Option::is_some).await.ok()?.clone() };
            let Ok(Some(peer)) = tokio::time::timeout(CLIENT_WAIT, connected).await else {
                return PromptAnswer::Unavailable("no MCP client is connected".into());
            };
            match ask(peer, question).await {
                Approval::Accepted => PromptAnswer::Accepted,
                Approval::Declined => PromptAnswer::Declined,
                Approval::Unavailable(why) => PromptAnswer::Unavailable(why),
            }
        })
    }
}
