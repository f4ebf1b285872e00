//! Delivery tracking shared between the pipeline (sends) and librdkafka's delivery callbacks.

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use rdkafka::{
    client::ClientContext,
    error::KafkaError,
    producer::{DeliveryResult, ProducerContext},
};

use std::sync::Arc;

#[derive(Debug, Default)]
struct Batch {
    sent: u64,
    acked: u64,
    closed: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Batches not yet fully acknowledged; the front one has id `front_id`.
    batches: VecDeque<Batch>,
    front_id: u64,
    acked_through: u64,
    in_flight: u64,
    delivery_error: Option<String>,
    client_error: Option<String>,
    client_error_logged: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Tracker {
    state: Mutex<State>,
    delivered: tokio::sync::Notify,
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a record into the open batch and returns that batch's id.
    pub fn record_sent(&self) -> u64 {
        let mut s = self.lock();
        if s.batches.is_empty() {
            s.front_id = s.acked_through + 1;
        }
        if s.batches.back().is_none_or(|b| b.closed) {
            s.batches.push_back(Batch::default());
        }
        s.batches.back_mut().expect("open batch").sent += 1;
        s.in_flight += 1;
        s.front_id + s.batches.len() as u64 - 1
    }

    /// Takes back a record that librdkafka refused to queue.
    pub fn record_unsent(&self, batch: u64) {
        let mut s = self.lock();
        let idx = (batch - s.front_id) as usize;
        s.batches[idx].sent -= 1;
        s.in_flight -= 1;
    }

    /// Closes the open batch (an empty one if nothing was sent since the last close).
    pub fn close_batch(&self) -> u64 {
        let mut s = self.lock();
        if s.batches.is_empty() {
            s.front_id = s.acked_through + 1;
        }
        if s.batches.back().is_none_or(|b| b.closed) {
            s.batches.push_back(Batch::default());
        }
        s.batches.back_mut().expect("open batch").closed = true;
        let id = s.front_id + s.batches.len() as u64 - 1;
        Self::advance(&mut s);
        id
    }

    fn delivered(&self, batch: u64, result: Result<(), String>) {
        let mut s = self.lock();
        if batch == 0 {
            // A progress record (exactly-once mode): acknowledged by its transaction's commit.
            if let Err(reason) = result {
                s.delivery_error.get_or_insert(reason);
            }
            drop(s);
            self.delivered.notify_waiters();
            return;
        }
        s.in_flight -= 1;
        match result {
            Ok(()) => {
                let idx = (batch - s.front_id) as usize;
                s.batches[idx].acked += 1;
                Self::advance(&mut s);
            }
            Err(reason) => {
                s.delivery_error.get_or_insert(reason);
            }
        }
        drop(s);
        self.delivered.notify_waiters();
    }

    fn advance(s: &mut State) {
        if s.delivery_error.is_some() {
            return;
        }
        while s.batches.front().is_some_and(|b| b.closed && b.acked == b.sent) {
            s.batches.pop_front();
            s.acked_through = s.front_id;
            s.front_id += 1;
        }
    }

    pub fn acked_through(&self) -> u64 {
        self.lock().acked_through
    }

    pub fn in_flight(&self) -> u64 {
        self.lock().in_flight
    }

    pub fn delivery_error(&self) -> Option<String> {
        self.lock().delivery_error.clone()
    }

    pub fn last_client_error(&self) -> Option<String> {
        self.lock().client_error.clone()
    }

    pub async fn wait_for_delivery(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.delivered.notified()).await;
    }
}

/// librdkafka callbacks, routed into the tracker.
pub struct Context {
    tracker: Arc<Tracker>,
}

impl Context {
    pub fn new(tracker: Arc<Tracker>) -> Self {
        Self { tracker }
    }
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        let mut s = self.tracker.lock();
        s.client_error = Some(format!("{error}: {reason}"));
        // librdkafka repeats connection errors many times a second while a broker is away.
        if s.client_error_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            s.client_error_logged = Some(Instant::now());
            tracing::warn!(%error, reason, "Kafka client error (repeats are muted for 10 s)");
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: usize) {
        let outcome = result.as_ref().map(|_| ()).map_err(|(e, _)| e.to_string());
        self.tracker.delivered(batch as u64, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledges_in_batch_order_only() {
        let t = Tracker::default();
        let b1 = t.record_sent();
        let b1b = t.record_sent();
        assert_eq!(b1, b1b);
        assert_eq!(t.close_batch(), b1);
        let b2 = t.record_sent();
        assert_eq!(t.close_batch(), b2);
        assert_eq!(b2, b1 + 1);
        // The later batch is acknowledged first: nothing may be checkpointed yet.
        t.delivered(b2, Ok(()));
        assert_eq!(t.acked_through(), 0);
        t.delivered(b1, Ok(()));
        assert_eq!(t.acked_through(), 0, "one record of batch 1 is still out");
        t.delivered(b1, Ok(()));
        assert_eq!(t.acked_through(), b2);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn open_batch_is_never_acknowledged() {
        let t = Tracker::default();
        let b = t.record_sent();
        t.delivered(b, Ok(()));
        assert_eq!(t.acked_through(), 0);
        assert_eq!(t.close_batch(), b);
        assert_eq!(t.acked_through(), b);
    }

    #[test]
    fn empty_batches_pass_through() {
        let t = Tracker::default();
        assert_eq!(t.close_batch(), 1);
        assert_eq!(t.close_batch(), 2);
        assert_eq!(t.acked_through(), 2);
    }

    #[test]
    fn a_failed_delivery_stops_the_watermark() {
        let t = Tracker::default();
        let b1 = t.record_sent();
        t.close_batch();
        let b2 = t.record_sent();
        t.close_batch();
        t.delivered(b1, Err("MessageTimedOut".into()));
        t.delivered(b2, Ok(()));
        assert_eq!(t.acked_through(), 0);
        assert_eq!(t.delivery_error().as_deref(), Some("MessageTimedOut"));
    }
}
