//! The state every handler shares: the store, the admin token's hash, the
//! task catalogue and the body limit. Cheap to clone (one `Arc`).

use std::sync::Arc;

use moneyflow_core::catalogue::Catalogue;
use moneyflow_store::Store;

use crate::auth::AdminTokenHash;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    admin_token: AdminTokenHash,
    catalogue: &'static Catalogue,
    body_limit: usize,
}

impl AppState {
    pub fn new(store: Store, admin_token: AdminTokenHash, body_limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                admin_token,
                catalogue: Catalogue::builtin(),
                body_limit,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn admin_token(&self) -> &AdminTokenHash {
        &self.inner.admin_token
    }

    pub fn catalogue(&self) -> &'static Catalogue {
        self.inner.catalogue
    }

    /// Largest request body, in bytes.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }
}
