//! One session channel per connection opened ahead of need, so that a command (or any
//! other channel user) does not wait for the server to open one: a round trip to the
//! server saved per command (about 0.2 ms on loopback, one network round trip elsewhere).
//!
//! The channel is opened in the background once a command's request is on its way (so
//! the server sees the request first), only while the connection has channel slots to
//! spare (see `Connection::open_channel_ahead`), and handed out only if nothing arrived
//! on it while it waited: a channel the server closed (or
//! whose connection dropped) is closed here and a fresh one opened instead.

use futures::FutureExt;
use russh::Channel;
use russh::client::Msg;

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use super::channel_slot::{ChannelSlot, SlottedChannel};
use crate::kept_ahead::KeptAhead;

/// The channel kept ready on one connection, shared with the task that opens it.
#[derive(Default)]
pub struct ReadyChannel {
    slot: KeptAhead<SlottedChannel>,
    /// Wakes callers waiting for a channel slot when a channel is kept: it holds one.
    kept: Notify,
}

impl ReadyChannel {
    /// The kept channel, if there is one and nothing arrived on it while it waited.
    pub fn take(&self) -> Option<SlottedChannel> {
        let (mut channel, slot) = self.slot.take()?;
        match channel.wait().now_or_never() {
            None => Some((channel, slot)),
            Some(message) => {
                tracing::debug!(
                    ?message,
                    "the channel kept ready was closed; opening another"
                );
                discard(channel, slot);
                None
            }
        }
    }

    /// See [`KeptAhead::claim_making`].
    pub fn claim_opening(&self) -> bool {
        self.slot.claim_making()
    }

    /// Keeps `channel` for the next user, waking those waiting for a slot.
    pub fn keep(&self, channel: SlottedChannel) {
        if let Some((channel, slot)) = self.slot.keep(channel) {
            discard(channel, slot);
        }
        self.kept.notify_waiters();
    }

    /// Completes once a channel is kept after this was called (then try [`take`]).
    ///
    /// [`take`]: ReadyChannel::take
    pub fn kept(&self) -> Notified<'_> {
        self.kept.notified()
    }

    /// Ends a claim that opened nothing.
    pub fn opening_failed(&self) {
        self.slot.give_up();
    }

    /// Closes the kept channel, if any (the connection is closing).
    pub fn clear(&self) {
        if let Some((channel, slot)) = self.slot.take() {
            discard(channel, slot);
        }
    }
}

/// Closes a channel no one will use, off the caller's path; its slot is freed after.
fn discard(channel: Channel<Msg>, slot: ChannelSlot) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = channel.close().await;
            drop(slot);
        });
    }
}
