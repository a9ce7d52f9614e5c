//! The rules in force on one simulator, in insertion order, each with its remaining hits.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use serde::Serialize;

use super::{FaultId, FaultRule, FaultTarget, UNLIMITED, clamp_share};

/// A rule in force, with its remaining hits.
#[derive(Debug)]
pub(crate) struct ActiveFault {
    pub(super) id: FaultId,
    pub(super) rule: FaultRule,
    remaining: AtomicU64,
    applied: AtomicU64,
}

impl ActiveFault {
    /// Consumes one hit; `false` when the rule is used up.
    fn take(&self) -> bool {
        let taken = self
            .remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match n {
                UNLIMITED => Some(n),
                0 => None,
                n => Some(n - 1),
            })
            .is_ok();
        if taken {
            self.applied.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }
}

/// How a rule in force is listed by `GET /_sandbox/faults`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FaultView {
    id: FaultId,
    #[serde(flatten)]
    rule: FaultRule,
    applied: u64,
    remaining: Option<u64>,
}

/// The rules in force on one simulator. With no rule, `pick` costs one atomic load.
#[derive(Debug)]
pub(crate) struct FaultSet {
    rules: RwLock<Vec<Arc<ActiveFault>>>,
    armed: AtomicUsize,
    case_insensitive: bool,
}

impl FaultSet {
    pub(crate) fn new(case_insensitive: bool) -> Self {
        FaultSet { rules: RwLock::new(Vec::new()), armed: AtomicUsize::new(0), case_insensitive }
    }

    pub(crate) fn add(&self, mut rule: FaultRule) -> FaultId {
        if let FaultTarget::Share(s) = rule.target {
            rule.target = FaultTarget::Share(clamp_share(s));
        }
        let id = FaultId::next();
        let remaining = AtomicU64::new(rule.times.unwrap_or(UNLIMITED));
        let active = Arc::new(ActiveFault { id, rule, remaining, applied: AtomicU64::new(0) });
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        rules.push(active);
        self.armed.store(rules.len(), Ordering::Release);
        id
    }

    pub(crate) fn remove(&self, id: FaultId) -> bool {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        let before = rules.len();
        rules.retain(|r| r.id != id);
        self.armed.store(rules.len(), Ordering::Release);
        rules.len() != before
    }

    pub(crate) fn clear(&self) -> usize {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        let n = rules.len();
        rules.clear();
        self.armed.store(0, Ordering::Release);
        n
    }

    pub(crate) fn list(&self) -> Vec<FaultView> {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        rules
            .iter()
            .map(|r| {
                let remaining = r.remaining.load(Ordering::Acquire);
                FaultView {
                    id: r.id,
                    rule: r.rule.clone(),
                    applied: r.applied.load(Ordering::Relaxed),
                    remaining: (remaining != UNLIMITED).then_some(remaining),
                }
            })
            .collect()
    }

    /// The first rule (in insertion order) that hits this request, its hit consumed.
    pub(crate) fn pick(&self, reference: Option<&str>) -> Option<Arc<ActiveFault>> {
        if self.armed.load(Ordering::Acquire) == 0 {
            return None;
        }
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        rules
            .iter()
            .find(|r| {
                let hit = match &r.rule.target {
                    FaultTarget::Reference(want) => reference.is_some_and(|got| {
                        if self.case_insensitive { got.eq_ignore_ascii_case(want) } else { got == want }
                    }),
                    FaultTarget::Share(share) => *share > 0.0 && fastrand::f64() < *share,
                };
                hit && r.take()
            })
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Fault;

    #[test]
    fn picks_in_order_and_counts_times() {
        let set = FaultSet::new(false);
        assert!(set.pick(Some("a")).is_none());
        let once = set.add(FaultRule::reference("a", Fault::Reset).times(1));
        let always = set.add(FaultRule::reference("a", Fault::hang()));
        assert_eq!(set.pick(Some("a")).map(|r| r.id), Some(once));
        assert_eq!(set.pick(Some("a")).map(|r| r.id), Some(always));
        assert!(set.pick(Some("b")).is_none());
        assert!(set.pick(None).is_none());
        assert!(set.remove(always));
        assert!(!set.remove(always));
        assert!(set.pick(Some("a")).is_none());
        let listed = set.list();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].applied, listed[0].remaining), (1, Some(0)));
        assert_eq!(set.clear(), 1);
    }

    #[test]
    fn shares_of_zero_and_one() {
        let set = FaultSet::new(true);
        set.add(FaultRule::share(0.0, Fault::Reset));
        assert!((0..1000).all(|_| set.pick(None).is_none()));
        set.add(FaultRule::share(7.0, Fault::Reset)); // clamped to 1.0
        assert!((0..1000).all(|_| set.pick(None).is_some()));
        set.clear();
        set.add(FaultRule::reference("9B2F", Fault::Reset));
        assert!(set.pick(Some("9b2f")).is_some());
    }
}
