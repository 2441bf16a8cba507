//! One of a connection's channel slots (the server's `MaxSessions`), held while a channel
//! is open, and a channel paired with the slot it holds.

use russh::Channel;
use russh::client::Msg;
use tokio::sync::OwnedSemaphorePermit;

/// Holds one of the connection's channel slots while a channel is open.
pub struct ChannelSlot {
    _permit: OwnedSemaphorePermit,
}

impl ChannelSlot {
    /// The slot `permit` stands for.
    pub(super) fn new(permit: OwnedSemaphorePermit) -> ChannelSlot {
        ChannelSlot { _permit: permit }
    }
}

/// A channel with the slot it holds.
pub type SlottedChannel = (Channel<Msg>, ChannelSlot);
