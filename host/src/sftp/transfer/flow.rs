//! Flow control for a transfer: how many bytes it keeps in flight, from the shortest
//! request time and the rate seen so far (see [`Flow`]).

use std::time::{Duration, Instant};

/// How many bytes a transfer keeps in flight.
///
/// Enough to fill the link, but no more: four times the bytes the link carries in the
/// shortest time a request took (an estimate of the bandwidth-delay product, which grows
/// as the measured rate grows), at least [`FLOW_MIN_BYTES`]. More would only queue up in
/// the server's buffers, which costs the server CPU (OpenSSH copies and clears its
/// buffers as they grow). And never more than [`FLOW_SECONDS`] of transfer at the rate
/// seen so far, so that on a slow link no request waits long enough to hit the
/// per-request timeout.
pub(super) struct Flow {
    started: Instant,
    min_latency: Option<Duration>,
}

/// Seconds of transfer the requests in flight may represent at most.
const FLOW_SECONDS: f64 = 10.0;
/// Bytes always allowed in flight: two of OpenSSH's largest requests, so that the
/// server has the next one queued while it works on one. Not more: OpenSSH's sshd slows
/// down as data piles up in its buffer towards `sftp-server` (it copies and clears the
/// buffer as it grows), and on loopback a 4 MiB upload took 123–171 ms with 2 MiB
/// allowed from the start against 38–102 ms with 512 KiB. The bandwidth-delay estimate
/// raises the allowance within a few round trips where the link needs more.
const FLOW_MIN_BYTES: u64 = 512 * 1024;
/// In flight: this many times the estimated bandwidth-delay product.
const FLOW_BDP_FACTOR: f64 = 4.0;

impl Flow {
    pub(super) fn new() -> Self {
        Flow {
            started: Instant::now(),
            min_latency: None,
        }
    }

    /// Notes how long one request took, from sending it to its answer.
    pub(super) fn observe(&mut self, latency: Duration) {
        self.min_latency = Some(self.min_latency.map_or(latency, |m| m.min(latency)));
    }

    /// A description for the log.
    pub(super) fn describe(&self, done: u64) -> String {
        format!(
            "shortest request {:.1} ms, in flight up to {} KiB",
            self.min_latency.map_or(0.0, |l| l.as_secs_f64() * 1000.0),
            self.allowed(done) / 1024
        )
    }

    /// The bytes allowed in flight once `done` bytes have completed.
    pub(super) fn allowed(&self, done: u64) -> u64 {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let bdp = self
            .min_latency
            .map_or(0.0, |l| rate * l.as_secs_f64() * FLOW_BDP_FACTOR);
        let cap = (rate * FLOW_SECONDS).max(FLOW_MIN_BYTES as f64);
        bdp.max(FLOW_MIN_BYTES as f64).min(cap) as u64
    }
}
