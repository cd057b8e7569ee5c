//! Fan-out of learner updates to the live streams (`GET /v1/stream`).
//!
//! A stream says what it follows when it subscribes: every learner of its tenant, one group
//! (a class dashboard) or one learner (under each of their pseudonyms). The registry indexes
//! subscribers by `(tenant, topic)`, so publishing an update costs a hash lookup per topic the
//! update touches, and only the streams that show it wake: two thousand class dashboards do
//! not each look at, and throw away, every update of the other classes.
//!
//! The hub publishes once per applied batch, and each stream gets one message per batch with
//! the updates it follows: a stream wakes once per batch, not once per update. An update is
//! shared ([`Arc`]) by the streams that show it, and so is what they send of it
//! ([`Published::rendered`]): it is serialised once per visibility, not once per stream.
//!
//! A stream that does not keep up is not waited for: its channel is bounded, and the updates
//! that do not fit are counted and reported to it as missed ([`Delivery::Lagged`]) in their
//! place, in order. The next update carries the learner's whole state anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, Weak};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use learnpulse_core::LearnerState;

use super::LearnerUpdate;
use crate::storage::TenantId;

/// Batches a stream may have waiting before further updates are counted as missed.
const STREAM_BACKLOG: usize = 256;

/// What one stream follows within its tenant.
#[derive(Debug, Clone)]
pub enum Follow {
    /// Every learner.
    Everyone,
    /// The learners working in this group.
    Group(String),
    /// One learner, under any of these pseudonyms (the current key's and older keys').
    Learner(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Topic {
    Everyone,
    Group(String),
    Learner(String),
}

/// One update as the streams share it, with what they send of it once made.
#[derive(Debug)]
pub struct Published {
    pub update: LearnerUpdate,
    /// Rendered texts by slot (see [`Published::rendered`]).
    rendered: [OnceLock<String>; 4],
}

impl Published {
    /// The text in `slot` (0..4, the caller's numbering: e.g. the learner event and the
    /// intervention event, each with and without cognitive data), made by `render` the first
    /// time a stream asks for it and shared by the others.
    pub fn rendered(&self, slot: usize, render: impl FnOnce(&LearnerUpdate) -> String) -> &str {
        self.rendered[slot].get_or_init(|| render(&self.update))
    }
}

/// What a stream receives.
#[derive(Debug)]
pub enum Delivery {
    /// The updates of one applied batch that the stream follows, in log order.
    Updates(Vec<Arc<Published>>),
    /// This many updates did not fit in the stream's backlog and were dropped here.
    Lagged(u64),
}

struct Subscriber {
    to_stream: mpsc::Sender<Delivery>,
    /// Updates dropped since the last [`Delivery::Lagged`] that got through.
    missed: AtomicU64,
}

impl Subscriber {
    fn deliver(&self, updates: Vec<Arc<Published>>) {
        let count = updates.len() as u64;
        let missed = self.missed.load(Ordering::Relaxed);
        if missed > 0 {
            match self.to_stream.try_send(Delivery::Lagged(missed)) {
                Ok(()) => {
                    self.missed.fetch_sub(missed, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_)) => {
                    self.missed.fetch_add(count, Ordering::Relaxed);
                    return;
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
        if let Err(TrySendError::Full(_)) = self.to_stream.try_send(Delivery::Updates(updates)) {
            self.missed.fetch_add(count, Ordering::Relaxed);
            metrics::counter!("learnpulse_stream_updates_dropped_total").increment(count);
        }
    }
}

/// The streams of one topic, with their registration ids.
type Streams = Vec<(u64, Arc<Subscriber>)>;

/// One tenant's streams by what they follow. Looked up by `&str`: asking whether anyone follows
/// an update allocates nothing.
#[derive(Default)]
struct TenantStreams {
    everyone: Streams,
    groups: HashMap<String, Streams>,
    learners: HashMap<String, Streams>,
}

impl TenantStreams {
    fn streams_mut(&mut self, topic: &Topic) -> &mut Streams {
        match topic {
            Topic::Everyone => &mut self.everyone,
            Topic::Group(g) => self.groups.entry(g.clone()).or_default(),
            Topic::Learner(l) => self.learners.entry(l.clone()).or_default(),
        }
    }

    fn remove(&mut self, topic: &Topic, id: u64) {
        let gone = |streams: &mut Streams| {
            streams.retain(|(s, _)| *s != id);
            streams.is_empty()
        };
        match topic {
            Topic::Everyone => {
                gone(&mut self.everyone);
            }
            Topic::Group(g) => {
                if self.groups.get_mut(g).is_some_and(gone) {
                    self.groups.remove(g);
                }
            }
            Topic::Learner(l) => {
                if self.learners.get_mut(l).is_some_and(gone) {
                    self.learners.remove(l);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.everyone.is_empty() && self.groups.is_empty() && self.learners.is_empty()
    }

    /// The streams that show this learner's update: the tenant's everyone, each of the
    /// learner's groups, the learner (a stream follows one topic of these at most).
    fn following<'s>(&'s self, state: &LearnerState) -> impl Iterator<Item = &'s Streams> {
        std::iter::once(&self.everyone)
            .chain(state.groups.iter().filter_map(|g| self.groups.get(g)))
            .chain(self.learners.get(&state.learner))
    }
}

type Registry = HashMap<TenantId, TenantStreams>;

/// The streams' registry, indexed by what they follow.
#[derive(Default)]
pub struct Fanout {
    by_tenant: RwLock<Registry>,
    next_id: AtomicU64,
}

impl Fanout {
    /// Registers a stream; it is unregistered when the [`Subscription`] is dropped.
    pub fn subscribe(self: &Arc<Self>, tenant: TenantId, follow: Follow) -> Subscription {
        let (to_stream, receiver) = mpsc::channel(STREAM_BACKLOG);
        let subscriber = Arc::new(Subscriber {
            to_stream,
            missed: AtomicU64::new(0),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let topics: Vec<Topic> = match follow {
            Follow::Everyone => vec![Topic::Everyone],
            Follow::Group(g) => vec![Topic::Group(g)],
            Follow::Learner(mut keys) => {
                keys.sort_unstable();
                keys.dedup();
                keys.into_iter().map(Topic::Learner).collect()
            }
        };
        let mut registry = self.by_tenant.write().unwrap();
        let streams = registry.entry(tenant).or_default();
        for topic in &topics {
            streams.streams_mut(topic).push((id, subscriber.clone()));
        }
        Subscription {
            receiver,
            fanout: Arc::downgrade(self),
            id,
            tenant,
            topics,
        }
    }

    /// Is any stream subscribed? (The hub makes no updates for nobody.)
    pub fn any(&self) -> bool {
        !self.by_tenant.read().unwrap().is_empty()
    }

    /// The registry as it is now, to ask of many updates in a row whether anyone follows them
    /// (drop it before [`Fanout::publish`]).
    pub fn followers(&self) -> Followers<'_> {
        Followers(self.by_tenant.read().unwrap())
    }

    /// Delivers an applied batch's updates to the streams that follow them: one message per
    /// stream.
    pub fn publish(&self, updates: Vec<LearnerUpdate>) {
        if updates.is_empty() {
            return;
        }
        let registry = self.by_tenant.read().unwrap();
        let mut per_stream: HashMap<u64, (&Arc<Subscriber>, Vec<Arc<Published>>)> = HashMap::new();
        for update in updates {
            let Some(streams) = registry.get(&update.tenant) else {
                continue;
            };
            let published = Arc::new(Published {
                update,
                rendered: Default::default(),
            });
            for (id, subscriber) in streams.following(&published.update.state).flatten() {
                per_stream
                    .entry(*id)
                    .or_insert_with(|| (subscriber, Vec::new()))
                    .1
                    .push(published.clone());
            }
        }
        for (subscriber, updates) in per_stream.into_values() {
            subscriber.deliver(updates);
        }
    }

    fn unsubscribe(&self, id: u64, tenant: TenantId, topics: &[Topic]) {
        let mut registry = self.by_tenant.write().unwrap();
        if let Some(streams) = registry.get_mut(&tenant) {
            for topic in topics {
                streams.remove(topic, id);
            }
            if streams.is_empty() {
                registry.remove(&tenant);
            }
        }
    }
}

/// A read of the registry (see [`Fanout::followers`]).
pub struct Followers<'a>(RwLockReadGuard<'a, Registry>);

impl Followers<'_> {
    /// Does any stream follow this learner's updates?
    pub fn follow(&self, tenant: TenantId, state: &LearnerState) -> bool {
        self.0
            .get(&tenant)
            .is_some_and(|streams| streams.following(state).any(|s| !s.is_empty()))
    }
}

/// One stream's subscription: what the hub delivers to it. Dropping it unregisters the stream.
pub struct Subscription {
    receiver: mpsc::Receiver<Delivery>,
    fanout: Weak<Fanout>,
    id: u64,
    tenant: TenantId,
    topics: Vec<Topic>,
}

impl Subscription {
    /// The next delivery; `None` once the hub is gone.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.receiver.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(fanout) = self.fanout.upgrade() {
            fanout.unsubscribe(self.id, self.tenant, &self.topics);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(tenant: TenantId, seq: i64, learner: &str, group: &str) -> LearnerUpdate {
        let mut state = LearnerState::new(learner);
        state.groups.insert(group.into());
        LearnerUpdate {
            tenant,
            seq,
            state,
            intervention: None,
        }
    }

    fn seqs(delivery: Option<Delivery>) -> Vec<i64> {
        match delivery {
            Some(Delivery::Updates(u)) => u.iter().map(|p| p.update.seq).collect(),
            other => panic!("expected updates, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stream_gets_only_what_it_follows_once_per_batch() {
        let fanout = Arc::new(Fanout::default());
        let mut class_a = fanout.subscribe(1, Follow::Group("a".into()));
        let mut ada = fanout.subscribe(1, Follow::Learner(vec!["ada".into(), "old-ada".into()]));
        let mut everyone = fanout.subscribe(1, Follow::Everyone);
        let mut other_tenant = fanout.subscribe(2, Follow::Everyone);
        let followers = fanout.followers();
        assert!(followers.follow(1, &update(1, 1, "bob", "b").state));
        assert!(!followers.follow(3, &update(3, 1, "bob", "b").state));
        drop(followers);
        fanout.publish(vec![
            update(1, 1, "ada", "a"),
            update(1, 2, "bob", "b"),
            update(1, 3, "cy", "a"),
            update(1, 4, "old-ada", "b"),
        ]);
        assert_eq!(seqs(class_a.recv().await), [1, 3]);
        assert_eq!(seqs(ada.recv().await), [1, 4]);
        assert_eq!(seqs(everyone.recv().await), [1, 2, 3, 4]);
        assert!(other_tenant.receiver.try_recv().is_err());
    }

    #[tokio::test]
    async fn what_a_slow_stream_missed_is_reported_in_its_place() {
        let fanout = Arc::new(Fanout::default());
        let mut slow = fanout.subscribe(1, Follow::Everyone);
        for seq in 0..STREAM_BACKLOG as i64 + 3 {
            fanout.publish(vec![update(1, seq, "ada", "a")]);
        }
        for _ in 0..STREAM_BACKLOG {
            slow.recv().await.unwrap();
        }
        fanout.publish(vec![update(1, 1_000, "ada", "a")]);
        assert!(matches!(slow.recv().await, Some(Delivery::Lagged(3))));
        assert_eq!(seqs(slow.recv().await), [1_000]);
    }

    #[tokio::test]
    async fn a_dropped_subscription_leaves_the_registry() {
        let fanout = Arc::new(Fanout::default());
        let a = fanout.subscribe(1, Follow::Learner(vec!["ada".into(), "ada".into()]));
        let b = fanout.subscribe(1, Follow::Group("a".into()));
        assert!(fanout.any());
        drop(a);
        assert!(fanout.any());
        drop(b);
        assert!(!fanout.any());
    }

    #[test]
    fn a_rendering_is_made_once_and_shared() {
        let published = Published {
            update: update(1, 7, "ada", "a"),
            rendered: Default::default(),
        };
        let mut made = 0;
        for _ in 0..3 {
            let text = published.rendered(0, |u| {
                made += 1;
                u.seq.to_string()
            });
            assert_eq!(text, "7");
        }
        assert_eq!(made, 1);
    }
}
