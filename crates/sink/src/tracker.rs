//! Delivery tracking shared between the pipeline (sends) and librdkafka's delivery callbacks.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Mutex, MutexGuard,
    },
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

#[derive(Debug)]
struct State {
    /// Batches not yet fully acknowledged, from id `front_id` on without gaps: an entry is
    /// made by the first delivery report of a batch or when it closes, whichever comes first.
    batches: VecDeque<Batch>,
    front_id: u64,
    acked_through: u64,
    delivery_error: Option<String>,
    client_error: Option<String>,
    client_error_logged: Option<Instant>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            batches: VecDeque::new(),
            front_id: 1,
            acked_through: 0,
            delivery_error: None,
            client_error: None,
            client_error_logged: None,
        }
    }
}

/// The sending side (one task: the pipeline) counts records into the open batch with atomics
/// and takes the lock once per batch, when it closes; librdkafka's delivery reports (another
/// thread) take it once per record. So sending and delivering do not contend per record.
#[derive(Debug)]
pub struct Tracker {
    state: Mutex<State>,
    /// Id of the open batch (batches are numbered from 1 in the order they close).
    open_id: AtomicU64,
    /// Records sent into the open batch.
    open_sent: AtomicU64,
    /// Records sent, and delivery reports received, since the start (batch 0 aside).
    sent_total: AtomicU64,
    reported_total: AtomicU64,
    /// A delivery failed for good (the reason is in `state`).
    failed: AtomicBool,
    /// Tasks inside `wait_for_delivery`: delivery reports wake them only when there are any.
    waiting: AtomicUsize,
    delivered: tokio::sync::Notify,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            open_id: AtomicU64::new(1),
            open_sent: AtomicU64::new(0),
            sent_total: AtomicU64::new(0),
            reported_total: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            delivered: tokio::sync::Notify::new(),
        }
    }
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a record into the open batch and returns that batch's id. Called by the one
    /// sending task only.
    pub fn record_sent(&self) -> u64 {
        self.open_sent.fetch_add(1, Ordering::Relaxed);
        self.sent_total.fetch_add(1, Ordering::Relaxed);
        self.open_id.load(Ordering::Relaxed)
    }

    /// Takes back a record that librdkafka refused to queue.
    pub fn record_unsent(&self, batch: u64) {
        debug_assert_eq!(batch, self.open_id.load(Ordering::Relaxed));
        self.open_sent.fetch_sub(1, Ordering::Relaxed);
        self.sent_total.fetch_sub(1, Ordering::Relaxed);
    }

    /// Closes the open batch (an empty one if nothing was sent since the last close).
    pub fn close_batch(&self) -> u64 {
        let id = self.open_id.load(Ordering::Relaxed);
        let sent = self.open_sent.swap(0, Ordering::Relaxed);
        let mut s = self.lock();
        let batch = Self::entry(&mut s, id);
        batch.sent = sent;
        batch.closed = true;
        Self::advance(&mut s);
        // Delivery reports of the next batch find its id only after this store.
        self.open_id.store(id + 1, Ordering::Relaxed);
        id
    }

    /// The entry of batch `id`, made (with those before it) if missing. `id` is never below
    /// `front_id`: batches leave only once closed and fully reported.
    fn entry(s: &mut State, id: u64) -> &mut Batch {
        let index = (id - s.front_id) as usize;
        while s.batches.len() <= index {
            s.batches.push_back(Batch::default());
        }
        &mut s.batches[index]
    }

    fn delivered(&self, batch: u64, result: Result<(), String>) {
        let mut s = self.lock();
        if batch == 0 {
            // A progress record (exactly-once mode): acknowledged by its transaction's commit.
            if let Err(reason) = result {
                s.delivery_error.get_or_insert(reason);
                self.failed.store(true, Ordering::Release);
            }
            drop(s);
            self.wake();
            return;
        }
        self.reported_total.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                Self::entry(&mut s, batch).acked += 1;
                Self::advance(&mut s);
            }
            Err(reason) => {
                s.delivery_error.get_or_insert(reason);
                self.failed.store(true, Ordering::Release);
            }
        }
        drop(s);
        self.wake();
    }

    /// A record dropped by an aborted transaction: reported, never acknowledged.
    fn purged(&self) {
        self.reported_total.fetch_add(1, Ordering::Relaxed);
        self.wake();
    }

    fn wake(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.delivered.notify_waiters();
        }
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
        let reported = self.reported_total.load(Ordering::Relaxed);
        self.sent_total.load(Ordering::Relaxed).saturating_sub(reported)
    }

    pub fn delivery_error(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.lock().delivery_error.clone()
    }

    pub fn last_client_error(&self) -> Option<String> {
        self.lock().client_error.clone()
    }

    /// Waits until a delivery report arrives or `timeout` passes. A report that lands between
    /// the caller's check and this call may be missed: the timeout bounds that wait.
    pub async fn wait_for_delivery(&self, timeout: Duration) {
        let notified = self.delivered.notified();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _ = tokio::time::timeout(timeout, notified).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
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
        use rdkafka::{error::KafkaError, types::RDKafkaErrorCode};
        let outcome = match result {
            Ok(_) => Ok(()),
            // An aborted transaction's records: dropped on purpose, not a failure.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight), _)) => {
                self.tracker.purged();
                return;
            }
            Err((e, _)) => Err(e.to_string()),
        };
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
