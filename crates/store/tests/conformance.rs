//! One conformance suite for every backend: each `store_test!` runs on a
//! fresh SQLite database and on a fresh PostgreSQL database
//! (`MONEYFLOW_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

use std::collections::BTreeSet;

use moneyflow_core::ports::{
    ApiKeyStore, CompanyStore, NewApiKey, RuleStore, SettingStore, StoreError,
};
use moneyflow_store::testing::{fresh_postgres, fresh_sqlite};
use moneyflow_store::{Backend, Store};
use serde_json::{Value, json};

/// `store_test!(name, |store| async move { ... })` expands to a module
/// `name` with one test per backend, `name::sqlite` and `name::postgres`;
/// `store` is a fresh, migrated `TestStore`.
macro_rules! store_test {
    ($name:ident, |$store:ident| $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $store = fresh_sqlite().await;
                assert_eq!($store.backend(), Backend::Sqlite);
                $body.await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $store = fresh_postgres().await;
                assert_eq!($store.backend(), Backend::Postgres);
                $body.await
            }
        }
    };
}

fn key<'a>(id: &'a str, company_id: &'a str, key_hash: &'a str) -> NewApiKey<'a> {
    NewApiKey {
        id,
        company_id,
        key_hash,
        prefix: "mf_abcd",
        label: Some("ci"),
    }
}

/// Rules whose JSON text would change if the store reordered keys or
/// re-spelled numbers.
fn rules(company_id: &str, marker: u32) -> Value {
    serde_json::from_str(&format!(
        r#"{{"company_id":"{company_id}","rules":[{{"node_id":"big","node_type":"condition","depends_on":[],
        "expect":[{{"field":"$context.event.total","operator":"gt","value":[120.0]}}],
        "zeta":1,"alpha":{{"z":1e3,"a":0.10}},"marker":{marker}}}]}}"#
    ))
    .expect("valid test JSON")
}

store_test!(ping_answers, |store| async move {
    store.ping().await.unwrap();
});

store_test!(migrate_twice_is_idempotent, |store| async move {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.create_company("acme", "Acme").await.unwrap();
});

store_test!(companies_create_get_list, |store| async move {
    assert!(store.get_company("acme").await.unwrap().is_none());
    assert!(store.list_companies().await.unwrap().is_empty());

    let acme = store.create_company("acme", "Acme Ltd").await.unwrap();
    assert_eq!((acme.id.as_str(), acme.name.as_str()), ("acme", "Acme Ltd"));
    let globex = store.create_company("globex", "Globex").await.unwrap();

    // What a write returns equals what is read back (microsecond timestamps).
    assert_eq!(store.get_company("acme").await.unwrap(), Some(acme.clone()));
    assert_eq!(store.list_companies().await.unwrap(), vec![acme, globex]);
});

store_test!(duplicate_company_is_a_conflict, |store| async move {
    store.create_company("acme", "Acme").await.unwrap();
    let err = store.create_company("acme", "Other").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref what) if what.contains("acme")),
        "{err:?}"
    );
    assert_eq!(
        store.get_company("acme").await.unwrap().unwrap().name,
        "Acme"
    );
});

store_test!(api_keys_create_find_list_revoke, |store| async move {
    store.create_company("acme", "Acme").await.unwrap();
    store.create_company("globex", "Globex").await.unwrap();

    let k1 = store
        .create_api_key(key("k1", "acme", "hash1"))
        .await
        .unwrap();
    assert_eq!(k1.prefix, "mf_abcd");
    assert_eq!(k1.label.as_deref(), Some("ci"));
    assert_eq!(k1.revoked_at, None);
    let k2 = store
        .create_api_key(NewApiKey {
            label: None,
            ..key("k2", "acme", "hash2")
        })
        .await
        .unwrap();
    store
        .create_api_key(key("k3", "globex", "hash3"))
        .await
        .unwrap();

    assert_eq!(
        store.find_api_key_by_hash("hash1").await.unwrap(),
        Some(k1.clone())
    );
    assert_eq!(store.find_api_key_by_hash("nope").await.unwrap(), None);
    assert_eq!(
        store.list_api_keys("acme").await.unwrap(),
        vec![k1.clone(), k2.clone()]
    );

    // Another company's key cannot be revoked through this one.
    assert!(!store.revoke_api_key("globex", "k1").await.unwrap());
    assert!(!store.revoke_api_key("acme", "missing").await.unwrap());
    assert!(store.revoke_api_key("acme", "k1").await.unwrap());

    assert_eq!(store.find_api_key_by_hash("hash1").await.unwrap(), None);
    assert_eq!(store.find_api_key_by_hash("hash2").await.unwrap(), Some(k2));
    let listed = store.list_api_keys("acme").await.unwrap();
    let revoked_at = listed[0].revoked_at.expect("k1 is listed as revoked");
    assert!(revoked_at >= k1.created_at);

    // Revoking again succeeds and keeps the first revocation time.
    assert!(store.revoke_api_key("acme", "k1").await.unwrap());
    assert_eq!(
        store.list_api_keys("acme").await.unwrap()[0].revoked_at,
        Some(revoked_at)
    );
});

store_test!(
    api_key_for_unknown_company_is_not_found,
    |store| async move {
        let err = store
            .create_api_key(key("k1", "ghost", "hash1"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound(ref what) if what.contains("ghost")),
            "{err:?}"
        );
    }
);

store_test!(duplicate_api_key_hash_is_a_conflict, |store| async move {
    store.create_company("acme", "Acme").await.unwrap();
    store
        .create_api_key(key("k1", "acme", "hash1"))
        .await
        .unwrap();
    let err = store
        .create_api_key(key("k2", "acme", "hash1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
});

store_test!(rule_versions_accumulate, |store| async move {
    store.create_company("acme", "Acme").await.unwrap();
    assert_eq!(store.current_rule_version("acme").await.unwrap(), None);
    assert!(store.list_rule_versions("acme").await.unwrap().is_empty());

    let v1 = store
        .save_rule_version("acme", &rules("acme", 1), 1)
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.company_id, "acme");
    assert_eq!(v1.created_at, v1.updated_at);
    assert!(
        uuid::Uuid::parse_str(&v1.id).is_ok(),
        "rule id {:?} is a UUID",
        v1.id
    );

    let v2 = store
        .save_rule_version("acme", &rules("acme", 2), 3)
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.id, v1.id);
    assert_eq!(v2.created_at, v1.created_at);
    assert!(v2.updated_at >= v1.updated_at);

    assert_eq!(
        store.current_rule_version("acme").await.unwrap(),
        Some(v2.clone())
    );
    assert_eq!(
        store.get_rule_version("acme", 1).await.unwrap(),
        Some(v1.clone())
    );
    assert_eq!(store.get_rule_version("acme", 3).await.unwrap(), None);

    let listed = store.list_rule_versions("acme").await.unwrap();
    let summary: Vec<_> = listed.iter().map(|s| (s.version, s.node_count)).collect();
    assert_eq!(summary, vec![(2, 3), (1, 1)]);
    assert_eq!(listed[0].created_at, v2.updated_at);
    assert_eq!(listed[1].created_at, v1.updated_at);
});

store_test!(rule_versions_are_per_company, |store| async move {
    store.create_company("acme", "Acme").await.unwrap();
    store.create_company("globex", "Globex").await.unwrap();
    let a = store
        .save_rule_version("acme", &rules("acme", 1), 1)
        .await
        .unwrap();
    let g = store
        .save_rule_version("globex", &rules("globex", 1), 1)
        .await
        .unwrap();
    assert_eq!((a.version, g.version), (1, 1));
    assert_ne!(a.id, g.id);
    assert_eq!(store.get_rule_version("globex", 1).await.unwrap(), Some(g));
});

store_test!(
    rule_version_for_unknown_company_is_not_found,
    |store| async move {
        let err = store
            .save_rule_version("ghost", &rules("ghost", 1), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound(ref what) if what.contains("ghost")),
            "{err:?}"
        );
        assert_eq!(store.current_rule_version("ghost").await.unwrap(), None);
    }
);

store_test!(rule_json_round_trips_exactly, |store| async move {
    store.create_company("acme", "Acme").await.unwrap();
    let original = rules("acme", 7);
    let text = serde_json::to_string(&original).unwrap();
    assert!(
        text.contains("120.0") && text.contains("\"zeta\":1,\"alpha\""),
        "{text}"
    );

    let saved = store.save_rule_version("acme", &original, 1).await.unwrap();
    assert_eq!(serde_json::to_string(&saved.rules).unwrap(), text);
    let read = store.current_rule_version("acme").await.unwrap().unwrap();
    assert_eq!(serde_json::to_string(&read.rules).unwrap(), text);
    let read = store.get_rule_version("acme", 1).await.unwrap().unwrap();
    assert_eq!(serde_json::to_string(&read.rules).unwrap(), text);
    assert_eq!(read.rules, json!(original));
});

store_test!(concurrent_saves_get_distinct_versions, |store| async move {
    store.create_company("acme", "Acme").await.unwrap();
    let shared: Store = (*store).clone();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = shared.clone();
            tokio::spawn(async move { store.save_rule_version("acme", &rules("acme", i), 1).await })
        })
        .collect();
    let mut versions = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for task in tasks {
        let saved = task.await.unwrap().unwrap();
        assert!(
            versions.insert(saved.version),
            "version {} given twice",
            saved.version
        );
        ids.insert(saved.id);
    }
    assert_eq!(versions, (1..=10).collect());
    assert_eq!(ids.len(), 1, "every version shares the rule id");
    assert_eq!(store.list_rule_versions("acme").await.unwrap().len(), 10);
});

store_test!(settings_set_if_absent_get_put, |store| async move {
    assert_eq!(store.get_setting("admin_token_hash").await.unwrap(), None);
    assert!(
        store
            .set_setting_if_absent("admin_token_hash", "first")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_setting_if_absent("admin_token_hash", "second")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_setting("admin_token_hash")
            .await
            .unwrap()
            .as_deref(),
        Some("first")
    );

    store
        .put_setting("admin_token_hash", "third")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_setting("admin_token_hash")
            .await
            .unwrap()
            .as_deref(),
        Some("third")
    );
    store.put_setting("other", "x").await.unwrap();
    assert_eq!(
        store.get_setting("other").await.unwrap().as_deref(),
        Some("x")
    );
});

/// Opening stores from URLs and directories, outside the per-backend suite.
mod connect {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn sqlite_url_creates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        store.migrate().await.unwrap();
        store.create_company("acme", "Acme").await.unwrap();
        assert!(path.exists());
    }

    #[tokio::test]
    async fn data_dir_is_created_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Store::open_data_dir(&data).await.unwrap();
        store.migrate().await.unwrap();
        store.create_company("acme", "Acme").await.unwrap();
        drop(store);

        let store = Store::open_data_dir(&data).await.unwrap();
        store.migrate().await.unwrap();
        assert!(store.get_company("acme").await.unwrap().is_some());
        assert!(data.join(moneyflow_store::SQLITE_FILE_NAME).exists());
    }

    #[tokio::test]
    async fn in_memory_sqlite_keeps_its_data() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        store.create_company("acme", "Acme").await.unwrap();
        assert!(store.get_company("acme").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn unknown_scheme_is_rejected_without_echoing_the_url() {
        let err = Store::connect("mysql://user:secret@host/db")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("secret"));
    }

    #[tokio::test]
    async fn unreachable_postgres_is_unavailable_quickly() {
        let started = Instant::now();
        // Port 1 on loopback: nothing listens, the connection is refused.
        let err = Store::connect("postgres://postgres@127.0.0.1:1/postgres")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn postgres_test_url_reaches_the_same_database() {
        let store = fresh_postgres().await;
        store.create_company("acme", "Acme").await.unwrap();
        let again = Store::connect(store.url()).await.unwrap();
        assert!(again.get_company("acme").await.unwrap().is_some());
    }
}
