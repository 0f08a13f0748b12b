//! What nearly every request would otherwise read from the store again:
//! the principal an API key stands for and a company's current rule
//! version. Both are kept briefly and dropped explicitly when this process
//! changes them, so a single process never acts on a stale answer:
//! - a revoked key is forgotten at once here (the time-to-live bounds how
//!   long another process of a distributed deployment may still accept it);
//! - a saved rule version replaces the cached current version at once (the
//!   time-to-live bounds how long another router may still pin the
//!   previous one).
//!
//! Unknown keys are not cached: a flood of made-up keys cannot fill the
//! cache, and a key created a moment ago is found at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use crate::auth::Principal;

/// How long a key's principal is trusted without reading the store.
pub const PRINCIPAL_TTL: Duration = Duration::from_secs(1);
/// How long a company's current version is trusted without reading the store.
pub const CURRENT_VERSION_TTL: Duration = Duration::from_millis(500);
/// Entries each cache holds at most.
const CAPACITY: u64 = 100_000;

/// API key hash (hex) → the principal it authenticates.
#[derive(Clone)]
pub struct PrincipalCache {
    by_key_hash: Cache<String, Principal>,
    /// Bumped by every revocation: a lookup that read the store before a
    /// revocation must not leave its answer behind after it.
    revocations: Arc<AtomicU64>,
}

/// A lookup's place in the order of revocations (see [`PrincipalCache::begin`]).
#[derive(Debug, Clone, Copy)]
pub struct LookupTicket(u64);

impl Default for PrincipalCache {
    fn default() -> Self {
        Self {
            by_key_hash: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(PRINCIPAL_TTL)
                .build(),
            revocations: Arc::default(),
        }
    }
}

impl PrincipalCache {
    pub fn get(&self, key_hash: &str) -> Option<Principal> {
        self.by_key_hash.get(key_hash)
    }

    /// Call before reading the store for a key; hand the ticket to [`Self::insert`].
    pub fn begin(&self) -> LookupTicket {
        LookupTicket(self.revocations.load(Ordering::SeqCst))
    }

    /// Keeps what the store said, unless a revocation happened since `ticket`.
    pub fn insert(&self, ticket: LookupTicket, key_hash: String, principal: Principal) {
        self.by_key_hash.insert(key_hash.clone(), principal);
        // A revocation that bumped the counter before this check may have
        // cleared the cache before the insert: undo it. One that bumps it
        // after clears the cache after the insert.
        if self.revocations.load(Ordering::SeqCst) != ticket.0 {
            self.by_key_hash.invalidate(&key_hash);
        }
    }

    /// After a revocation is durable: the revoked key's hash is not known
    /// here (only its id), and revocations are rare, so every entry goes.
    pub fn forget_all(&self) {
        self.revocations.fetch_add(1, Ordering::SeqCst);
        self.by_key_hash.invalidate_all();
    }
}

/// Company id → its current rule version number.
#[derive(Clone)]
pub struct CurrentVersionCache {
    by_company: Cache<String, i64>,
}

impl Default for CurrentVersionCache {
    fn default() -> Self {
        Self {
            by_company: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(CURRENT_VERSION_TTL)
                .build(),
        }
    }
}

impl CurrentVersionCache {
    pub fn get(&self, company_id: &str) -> Option<i64> {
        self.by_company.get(company_id)
    }

    /// Records `version` as current unless a newer one is already known: a
    /// slow reader must not put back a version a save has just replaced.
    pub fn offer(&self, company_id: &str, version: i64) {
        self.by_company
            .entry_by_ref(company_id)
            .and_upsert_with(|known| match known {
                Some(entry) if *entry.value() > version => *entry.value(),
                _ => version,
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_forgets_every_principal() {
        let cache = PrincipalCache::default();
        let principal = Principal::Company {
            company_id: "acme".into(),
            key_id: "key_1".into(),
        };
        cache.insert(cache.begin(), "hash".into(), principal.clone());
        assert_eq!(cache.get("hash"), Some(principal.clone()));
        cache.forget_all();
        assert_eq!(cache.get("hash"), None);
    }

    #[test]
    fn a_lookup_that_began_before_a_revocation_leaves_nothing_behind() {
        let cache = PrincipalCache::default();
        let ticket = cache.begin();
        cache.forget_all();
        let principal = Principal::Company {
            company_id: "acme".into(),
            key_id: "key_1".into(),
        };
        cache.insert(ticket, "hash".into(), principal);
        assert_eq!(cache.get("hash"), None);
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let cache = CurrentVersionCache::default();
        cache.offer("acme", 2);
        cache.offer("acme", 1);
        assert_eq!(cache.get("acme"), Some(2));
        cache.offer("acme", 3);
        assert_eq!(cache.get("acme"), Some(3));
        assert_eq!(cache.get("other"), None);
    }
}
