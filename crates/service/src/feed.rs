//! The live feed: every event committed to the tenant's outbox, in `seq` order, to every
//! subscriber.
//!
//! Writers poke the feed after they commit; a pump reads what is new from the store and
//! broadcasts it. Reading back from the store (rather than broadcasting what a writer thinks
//! it wrote) keeps the live feed in commit order and identical to what a client resuming with
//! `since=` reads, and a poll now and then picks up commits from other processes.

use std::sync::Arc;
use std::time::Duration;

use ivrpay_store::{EventRecord, Store, TenantId};
use tokio::sync::{Notify, broadcast};

/// How many events a slow subscriber may fall behind before it is told to resume.
const BACKLOG: usize = 4096;
/// A pump reads at most this many events per query.
const PAGE: u32 = 500;
/// How often the pump looks for commits it was not poked about.
const POLL: Duration = Duration::from_millis(500);
/// The pump reads at most once per this long.
const COALESCE: Duration = Duration::from_millis(10);

/// The feed of one tenant.
#[derive(Debug, Clone)]
pub struct Feed {
    poke: Arc<Notify>,
    live: broadcast::Sender<Arc<EventRecord>>,
}

impl Feed {
    /// Starts the pump from the feed's current end.
    pub(crate) async fn start(
        store: Store,
        tenant: TenantId,
    ) -> Result<Feed, ivrpay_store::StoreError> {
        let mut last = store.latest_seq(&tenant).await?;
        let poke = Arc::new(Notify::new());
        let (live, _) = broadcast::channel(BACKLOG);
        let feed = Feed { poke: Arc::clone(&poke), live: live.clone() };
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(POLL, poke.notified()).await;
                // Commits poked meanwhile are read together: at most one query per COALESCE
                // however many calls commit, for that much delay on the feed.
                tokio::time::sleep(COALESCE).await;
                if live.receiver_count() == 0 {
                    // Nobody listens: keep the position current without sending.
                    if let Ok(seq) = store.latest_seq(&tenant).await {
                        last = seq;
                    }
                    continue;
                }
                loop {
                    let Ok(batch) = store.events_since(&tenant, last, PAGE).await else { break };
                    let full = batch.len() == PAGE as usize;
                    for event in batch {
                        last = event.seq;
                        let _ = live.send(Arc::new(event));
                    }
                    if !full {
                        break;
                    }
                }
            }
        });
        Ok(feed)
    }

    /// Tells the pump that something was committed.
    pub(crate) fn poke(&self) {
        self.poke.notify_one();
    }

    /// Live events from now on. A subscriber that falls more than a few thousand events
    /// behind gets `Lagged` and should resume from the store with its last `seq`.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.live.subscribe()
    }
}
