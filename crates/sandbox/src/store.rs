//! The simulators' state: a sharded map from reference to [`Slot`] (the record, if the reference
//! exists, and its call counters).
//!
//! Each shard is a `std::sync::Mutex` held only for the few instructions that read or change one
//! slot, never across an `.await`; requests for different references rarely meet on a lock.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

const SHARDS: usize = 64;

/// How often one reference was asked to be cancelled, and how often that actually cancelled it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCount {
    /// Cancel requests that reached the simulator's handler for this reference (whatever the answer,
    /// faults included).
    pub received: u64,
    /// Times the reference's state actually changed to cancelled.
    pub committed: u64,
}

/// The body of `GET /_sandbox/calls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallsReport {
    /// Every cancel request that reached the handler, with or without a usable reference.
    pub cancel_requests: u64,
    /// Per reference (only references with a non-zero counter).
    pub by_reference: BTreeMap<String, CallCount>,
}

/// One reference: its record if it exists, and its counters (kept for unknown references too).
#[derive(Debug)]
pub(crate) struct Slot<R> {
    pub(crate) record: Option<R>,
    pub(crate) received: u64,
    pub(crate) committed: u64,
}

impl<R> Slot<R> {
    fn empty() -> Self {
        Slot { record: None, received: 0, committed: 0 }
    }
}

type Shard<R> = Mutex<HashMap<String, Slot<R>>>;

pub(crate) struct Store<R> {
    shards: Box<[Shard<R>]>,
    hasher: RandomState,
    total: AtomicU64,
}

impl<R> std::fmt::Debug for Store<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("shards", &self.shards.len()).finish_non_exhaustive()
    }
}

impl<R> Store<R> {
    pub(crate) fn new() -> Self {
        Store {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            total: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, Slot<R>>> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        // A panic while a shard was locked cannot leave a slot half-written in a way that matters
        // for a simulator: keep serving.
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the slot of `key`, creating an empty slot first when there is none.
    /// The shard lock is held while `f` runs: keep `f` short and synchronous.
    pub(crate) fn with_slot<T>(&self, key: &str, f: impl FnOnce(&mut Slot<R>) -> T) -> T {
        let mut shard = self.shard(key);
        if let Some(slot) = shard.get_mut(key) {
            return f(slot);
        }
        f(shard.entry(key.to_owned()).or_insert_with(Slot::empty))
    }

    /// Runs `f` on the record of `key`, if it exists, without creating anything.
    pub(crate) fn read<T>(&self, key: &str, f: impl FnOnce(&R) -> T) -> Option<T> {
        self.shard(key).get(key).and_then(|slot| slot.record.as_ref()).map(f)
    }

    /// Inserts a new record. `false` (and nothing changed) when `key` already has one.
    pub(crate) fn insert_new(&self, key: &str, record: R) -> bool {
        self.with_slot(key, |slot| {
            if slot.record.is_some() {
                return false;
            }
            slot.record = Some(record);
            true
        })
    }

    /// Counts one received cancel request for `key` without looking at its state.
    pub(crate) fn count_received(&self, key: &str) {
        self.with_slot(key, |slot| slot.received += 1);
    }

    pub(crate) fn bump_total(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn calls(&self, key: &str) -> CallCount {
        self.shard(key)
            .get(key)
            .map(|slot| CallCount { received: slot.received, committed: slot.committed })
            .unwrap_or_default()
    }

    pub(crate) fn report(&self) -> CallsReport {
        let mut by_reference = BTreeMap::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, slot) in shard.iter() {
                if slot.received > 0 || slot.committed > 0 {
                    by_reference.insert(key.clone(), CallCount { received: slot.received, committed: slot.committed });
                }
            }
        }
        CallsReport { cancel_requests: self.total(), by_reference }
    }

    /// Zeroes every counter and forgets slots that only held counters.
    pub(crate) fn reset_calls(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.retain(|_, slot| slot.record.is_some());
            for slot in shard.values_mut() {
                slot.received = 0;
                slot.committed = 0;
            }
        }
        self.total.store(0, Ordering::Relaxed);
    }

    /// Forgets everything: records and counters.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
        self.total.store(0, Ordering::Relaxed);
    }
}

/// The counters of a [`Store`], whatever its record type: what the fault machinery and the
/// admin routes need, once for every simulator.
pub(crate) trait Counters: Send + Sync {
    fn bump_total(&self);
    fn count_received(&self, key: &str);
    fn total(&self) -> u64;
    fn calls(&self, key: &str) -> CallCount;
    fn report(&self) -> CallsReport;
    fn reset_calls(&self);
    /// Forgets everything: records and counters.
    fn clear(&self);
}

impl<R: Send + Sync> Counters for Store<R> {
    fn clear(&self) {
        Store::clear(self);
    }
    fn bump_total(&self) {
        Store::bump_total(self);
    }
    fn count_received(&self, key: &str) {
        Store::count_received(self, key);
    }
    fn total(&self) -> u64 {
        Store::total(self)
    }
    fn calls(&self, key: &str) -> CallCount {
        Store::calls(self, key)
    }
    fn report(&self) -> CallsReport {
        Store::report(self)
    }
    fn reset_calls(&self) {
        Store::reset_calls(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_kept_for_unknown_references_and_reset() {
        let store: Store<u8> = Store::new();
        assert!(store.insert_new("a", 1));
        assert!(!store.insert_new("a", 2));
        store.count_received("a");
        store.count_received("zz");
        store.with_slot("a", |slot| slot.committed += 1);
        store.bump_total();
        assert_eq!(store.calls("a"), CallCount { received: 1, committed: 1 });
        assert_eq!(store.calls("zz"), CallCount { received: 1, committed: 0 });
        assert_eq!(store.calls("never"), CallCount::default());
        let report = store.report();
        assert_eq!(report.cancel_requests, 1);
        assert_eq!(report.by_reference.len(), 2);

        store.reset_calls();
        assert_eq!(store.report(), CallsReport::default());
        assert_eq!(store.read("a", |r| *r), Some(1));
        assert_eq!(store.read("zz", |r| *r), None);
    }
}
