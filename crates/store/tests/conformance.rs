//! One conformance suite for every backend: each `store_test!` runs on a
//! fresh SQLite database and on a fresh PostgreSQL database
//! (`MONEYFLOW_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

use std::collections::BTreeSet;
use std::time::Duration;

use moneyflow_core::ports::{
    AcceptOutcome, ApiKeyStore, CompanyLimits, CompanyStore, Document, EventStore, NewApiKey,
    NewEvent, QueueNext, RuleStore, RunStore, SettingStore, SigningSecret, SigningSecretStore,
    StepCommit, StoreError,
};
use moneyflow_core::run::RunStatus;
use moneyflow_store::testing::{fresh_postgres, fresh_sqlite};
use moneyflow_store::{Backend, Store};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

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

store_test!(company_limits_default_then_round_trip, |store| async move {
    assert_eq!(store.company_limits("acme").await.unwrap(), None);
    let err = store
        .set_company_limits("acme", CompanyLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    store.create_company("acme", "Acme").await.unwrap();
    store.create_company("globex", "Globex").await.unwrap();
    assert_eq!(
        store.company_limits("acme").await.unwrap(),
        Some(CompanyLimits::default())
    );
    let limits = CompanyLimits {
        payments_per_second: Some(u32::MAX),
        payments_burst: Some(7),
    };
    store.set_company_limits("acme", limits).await.unwrap();
    assert_eq!(store.company_limits("acme").await.unwrap(), Some(limits));
    assert_eq!(
        store.company_limits("globex").await.unwrap(),
        Some(CompanyLimits::default()),
        "one company's limits are its own"
    );
    store
        .set_company_limits("acme", CompanyLimits::default())
        .await
        .unwrap();
    assert_eq!(
        store.company_limits("acme").await.unwrap(),
        Some(CompanyLimits::default())
    );
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

// ---------------------------------------------------------------------------
// Events, runs, the queue, documents and signing secrets.
// ---------------------------------------------------------------------------

/// A fixed instant plus `secs` seconds: queue tests pass `now` explicitly.
fn t(secs: i64) -> OffsetDateTime {
    datetime!(2020-01-01 00:00 UTC) + time::Duration::seconds(secs)
}

/// An event body whose text would change if the store reordered keys or
/// re-spelled numbers.
const BODY: &str = r#"{"type":"product","total":"120.0","zeta":1,"alpha":{"z":1e3,"a":0.10}}"#;

/// A new event for company `acme` under idempotency `key`, starting run
/// `run_id`, received at `t(received)`.
fn event(key: &str, run_id: &str, received: i64) -> NewEvent {
    NewEvent {
        company_id: "acme".to_owned(),
        event_id: format!("evt-{key}"),
        idempotency_key: key.to_owned(),
        webhook_id: None,
        body_sha256: "sha-a".to_owned(),
        body: BODY.to_owned(),
        event_type: "product".to_owned(),
        rule_version: 3,
        run_id: run_id.to_owned(),
        received_at: t(received),
    }
}

fn accepted(event: &NewEvent) -> AcceptOutcome {
    AcceptOutcome::Accepted {
        event_id: event.event_id.clone(),
        run_id: event.run_id.clone(),
    }
}

const LEASE: Duration = Duration::from_secs(30);

/// A step for `run_id` by `owner` with nothing in it but `next`.
fn step(run_id: &str, owner: &str, next: QueueNext) -> StepCommit {
    StepCommit {
        run_id: run_id.to_owned(),
        owner: owner.to_owned(),
        status: RunStatus::Running,
        nodes: Map::new(),
        started_at: Some(t(1)),
        finished_at: None,
        documents: Vec::new(),
        next,
        events: Vec::new(),
    }
}

/// Node checkpoints whose text would change if reordered or re-spelled.
fn nodes() -> Map<String, Value> {
    serde_json::from_str(
        r#"{"zeta":{"state":"success","attempts":1,"output":{"total":120.0,"big":1e3}},
            "alpha":{"state":"pending","attempts":0}}"#,
    )
    .expect("valid test JSON")
}

fn document(run_id: &str, key: &str, body: Value, created: i64) -> Document {
    Document {
        key: key.to_owned(),
        run_id: run_id.to_owned(),
        company_id: "acme".to_owned(),
        node_id: "invoice".to_owned(),
        kind: "invoice".to_owned(),
        body,
        created_at: t(created),
    }
}

/// Accepts `event` and leases its run to `owner` at `t(now)`.
async fn accept_and_claim(store: &Store, event: NewEvent, owner: &str, now: i64) -> String {
    let run_id = event.run_id.clone();
    store.accept_event(event).await.unwrap();
    assert_eq!(
        store.claim_runs(owner, 10, LEASE, t(now)).await.unwrap(),
        vec![run_id.clone()]
    );
    run_id
}

store_test!(accept_then_replay_then_key_reuse, |store| async move {
    let first = event("k1", "run-1", 0);
    assert_eq!(
        store.accept_event(first.clone()).await.unwrap(),
        accepted(&first)
    );

    // The same key and body again (a client retry with a new run id): the
    // original answer.
    let again = NewEvent {
        run_id: "run-2".to_owned(),
        event_id: "evt-other".to_owned(),
        ..first.clone()
    };
    assert_eq!(
        store.accept_event(again).await.unwrap(),
        AcceptOutcome::Replayed {
            event_id: "evt-k1".to_owned(),
            run_id: "run-1".to_owned()
        }
    );

    // The same key with another body: reported, with the original ids.
    let reused = NewEvent {
        run_id: "run-3".to_owned(),
        body_sha256: "sha-b".to_owned(),
        ..first.clone()
    };
    assert_eq!(
        store.accept_event(reused).await.unwrap(),
        AcceptOutcome::KeyReused {
            event_id: "evt-k1".to_owned(),
            run_id: "run-1".to_owned()
        }
    );

    // Keys are per company.
    store.create_company("globex", "Globex").await.unwrap();
    let other = NewEvent {
        company_id: "globex".to_owned(),
        run_id: "run-4".to_owned(),
        ..first.clone()
    };
    assert_eq!(
        store.accept_event(other.clone()).await.unwrap(),
        accepted(&other)
    );

    // Only the accepted requests made runs.
    let run = store.get_run("run-1").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(
        (
            run.company_id.as_str(),
            run.event_id.as_str(),
            run.event_type.as_str()
        ),
        ("acme", "evt-k1", "product")
    );
    assert_eq!(run.rule_version, 3);
    assert!(run.nodes.is_empty());
    assert_eq!(run.created_at, t(0));
    assert_eq!((run.started_at, run.finished_at), (None, None));
    assert_eq!(store.get_run("run-2").await.unwrap(), None);
    assert_eq!(store.get_run("run-3").await.unwrap(), None);
});

store_test!(
    concurrent_accepts_with_one_key_accept_once,
    |store| async move {
        let shared: Store = (*store).clone();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = shared.clone();
                tokio::spawn(async move {
                    store
                        .accept_event(event("same-key", &format!("run-{i}"), 0))
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut replayed_runs = BTreeSet::new();
        for task in tasks {
            match task.await.unwrap().unwrap() {
                AcceptOutcome::Accepted { run_id, .. } => winners.push(run_id),
                AcceptOutcome::Replayed { run_id, .. } => {
                    replayed_runs.insert(run_id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one accept wins the key");
        assert!(replayed_runs.iter().all(|r| *r == winners[0]));
        assert_eq!(
            store.claim_runs("w", 100, LEASE, t(1)).await.unwrap(),
            winners,
            "exactly one run was queued"
        );
    }
);

store_test!(
    a_webhook_id_is_accepted_once_per_company_whatever_its_key,
    |store| async move {
        let signed = |key: &str, run_id: &str, webhook_id: &str| NewEvent {
            webhook_id: Some(webhook_id.to_owned()),
            ..event(key, run_id, 0)
        };
        let first = signed("k1", "run-1", "msg-1");
        assert_eq!(
            store.accept_event(first.clone()).await.unwrap(),
            accepted(&first)
        );
        // A replay of the signed message under a new key: the first answer.
        let original = AcceptOutcome::Replayed {
            event_id: "evt-k1".to_owned(),
            run_id: "run-1".to_owned(),
        };
        assert_eq!(
            store
                .accept_event(signed("k2", "run-2", "msg-1"))
                .await
                .unwrap(),
            original
        );
        // The same webhook-id with another body is reported, not stored.
        let other_body = NewEvent {
            body_sha256: "sha-b".to_owned(),
            ..signed("k3", "run-3", "msg-1")
        };
        assert_eq!(
            store.accept_event(other_body).await.unwrap(),
            AcceptOutcome::KeyReused {
                event_id: "evt-k1".to_owned(),
                run_id: "run-1".to_owned()
            }
        );
        // Concurrent replays under distinct keys, whatever batch they share.
        let shared: Store = (*store).clone();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = shared.clone();
                tokio::spawn(async move {
                    store
                        .accept_event(signed(&format!("c{i}"), &format!("run-c{i}"), "msg-2"))
                        .await
                })
            })
            .collect();
        let mut winners = BTreeSet::new();
        let mut replayed = BTreeSet::new();
        for task in tasks {
            match task.await.unwrap().unwrap() {
                AcceptOutcome::Accepted { run_id, .. } => {
                    winners.insert(run_id);
                }
                AcceptOutcome::Replayed { run_id, .. } => {
                    replayed.insert(run_id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "one of 20 replays is stored: {winners:?}");
        assert!(replayed.is_subset(&winners), "{replayed:?} vs {winners:?}");

        // Webhook ids are per company, and unsigned events have none.
        store.create_company("globex", "Globex").await.unwrap();
        let elsewhere = NewEvent {
            company_id: "globex".to_owned(),
            ..signed("k1", "run-g", "msg-1")
        };
        assert_eq!(
            store.accept_event(elsewhere.clone()).await.unwrap(),
            accepted(&elsewhere)
        );
        for i in 0..3 {
            let unsigned = event(&format!("u{i}"), &format!("run-u{i}"), 0);
            assert_eq!(
                store.accept_event(unsigned.clone()).await.unwrap(),
                accepted(&unsigned)
            );
        }
        let mut queued = store.claim_runs("w", 100, LEASE, t(1)).await.unwrap();
        queued.sort();
        let mut expected: Vec<String> = ["run-1", "run-g", "run-u0", "run-u1", "run-u2"]
            .into_iter()
            .map(str::to_owned)
            .chain(winners)
            .collect();
        expected.sort();
        assert_eq!(queued, expected);
    }
);

store_test!(many_concurrent_accepts_are_batched, |store| async move {
    let shared: Store = (*store).clone();
    let before = store.write_batches();
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let store = shared.clone();
            tokio::spawn(async move {
                let event = event(&format!("k{i}"), &format!("run-{i:03}"), 0);
                let expected = accepted(&event);
                assert_eq!(store.accept_event(event).await.unwrap(), expected);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let batches = store.write_batches() - before;
    assert!(
        (1..500).contains(&batches),
        "500 concurrent accepts took {batches} transactions"
    );

    let claimed: BTreeSet<String> = store
        .claim_runs("w", 1_000, LEASE, t(1))
        .await
        .unwrap()
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = (0..500).map(|i| format!("run-{i:03}")).collect();
    assert_eq!(claimed, expected);
});

store_test!(
    a_failing_accept_does_not_fail_its_batch,
    |store| async move {
        // Two requests with distinct keys but one run id (a router bug): the
        // second cannot insert its run. It fails alone, whatever batch it shares.
        let shared: Store = (*store).clone();
        let mut requests: Vec<NewEvent> = (0..50)
            .map(|i| event(&format!("k{i}"), &format!("run-{i}"), 0))
            .collect();
        requests.push(event("dup-a", "run-dup", 0));
        requests.push(event("dup-b", "run-dup", 0));
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|e| {
                let store = shared.clone();
                tokio::spawn(
                    async move { (e.idempotency_key.clone(), store.accept_event(e).await) },
                )
            })
            .collect();
        let mut conflicts = Vec::new();
        let mut accepted_count = 0;
        for task in tasks {
            match task.await.unwrap() {
                (_, Ok(AcceptOutcome::Accepted { .. })) => accepted_count += 1,
                (key, Err(StoreError::Conflict(what))) => {
                    assert!(what.contains("run-dup"), "{what}");
                    conflicts.push(key);
                }
                (key, other) => panic!("{key}: unexpected {other:?}"),
            }
        }
        assert_eq!((accepted_count, conflicts.len()), (51, 1));
        // The failed request left nothing behind: its key is free.
        let retry = event(&conflicts[0], "run-retry", 0);
        assert_eq!(
            store.accept_event(retry.clone()).await.unwrap(),
            accepted(&retry)
        );
    }
);

store_test!(claims_respect_available_at_and_limit, |store| async move {
    for (i, received) in [(0, 0), (1, 10), (2, 20)] {
        store
            .accept_event(event(&format!("k{i}"), &format!("run-{i}"), received))
            .await
            .unwrap();
    }
    assert_eq!(
        store.claim_runs("w", 10, LEASE, t(-1)).await.unwrap(),
        Vec::<String>::new(),
        "nothing is due before it was received"
    );
    assert_eq!(
        store.claim_runs("w", 10, LEASE, t(5)).await.unwrap(),
        vec!["run-0"]
    );
    assert_eq!(
        store.claim_runs("w", 0, LEASE, t(30)).await.unwrap(),
        Vec::<String>::new()
    );
    // Oldest due first, at most `limit`.
    assert_eq!(
        store.claim_runs("w", 1, LEASE, t(30)).await.unwrap(),
        vec!["run-1"]
    );
    assert_eq!(
        store.claim_runs("w", 10, LEASE, t(30)).await.unwrap(),
        vec!["run-2"]
    );
    assert_eq!(
        store.claim_runs("w", 10, LEASE, t(30)).await.unwrap(),
        Vec::<String>::new()
    );
});

store_test!(claims_share_workers_across_companies, |store| async move {
    // globex's backlog is older than anything acme has queued.
    for i in 0..20 {
        let mut backlog = event(&format!("g{i}"), &format!("globex-{i}"), i);
        backlog.company_id = "globex".to_owned();
        store.accept_event(backlog).await.unwrap();
    }
    let now = 100;
    assert_eq!(
        store.claim_runs("w", 8, LEASE, t(now)).await.unwrap().len(),
        8,
        "one company alone takes every slot"
    );
    for i in 0..3 {
        store
            .accept_event(event(&format!("a{i}"), &format!("acme-{i}"), 50 + i))
            .await
            .unwrap();
    }
    // acme has nothing in flight and globex 8: acme's runs go first, the
    // slot left over goes to globex, oldest first.
    let claimed = store.claim_runs("w", 4, LEASE, t(now)).await.unwrap();
    let mut acme: Vec<&str> = claimed
        .iter()
        .map(String::as_str)
        .filter(|id| id.starts_with("acme-"))
        .collect();
    acme.sort_unstable();
    assert_eq!(acme, ["acme-0", "acme-1", "acme-2"], "{claimed:?}");
    assert!(claimed.contains(&"globex-8".to_owned()), "{claimed:?}");
    // Two companies both with runs due share equally.
    for i in 3..10 {
        store
            .accept_event(event(&format!("a{i}"), &format!("acme-{i}"), 50 + i))
            .await
            .unwrap();
    }
    let claimed = store.claim_runs("w", 8, LEASE, t(now)).await.unwrap();
    let from_acme = claimed.iter().filter(|id| id.starts_with("acme-")).count();
    // In flight: acme 3, globex 9; slots level them at 10 each (7 + 1).
    assert_eq!((claimed.len(), from_acme), (8, 7), "{claimed:?}");
});

store_test!(a_lease_hides_a_run_until_it_expires, |store| async move {
    let run = accept_and_claim(&store, event("k", "run-1", 0), "a", 1).await;
    // Leased until t(31).
    assert!(
        store
            .claim_runs("b", 10, LEASE, t(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.claim_runs("b", 10, LEASE, t(31)).await.unwrap(),
        vec![run.clone()],
        "an expired lease is claimable again"
    );
    // The first owner lost it: its step is refused.
    let err = store
        .commit_step(step(&run, "a", QueueNext::Done))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("lease lost")),
        "{err:?}"
    );
    store
        .commit_step(step(&run, "b", QueueNext::Done))
        .await
        .unwrap();
});

store_test!(renewing_keeps_a_lease, |store| async move {
    let run = accept_and_claim(&store, event("k", "run-1", 0), "a", 0).await;
    store
        .renew_leases("a", std::slice::from_ref(&run), t(100))
        .await
        .unwrap();
    assert!(
        store
            .claim_runs("b", 10, LEASE, t(50))
            .await
            .unwrap()
            .is_empty()
    );
    // Only the owner renews.
    store
        .renew_leases("b", std::slice::from_ref(&run), t(1_000))
        .await
        .unwrap();
    store.renew_leases("a", &[], t(2_000)).await.unwrap();
    assert_eq!(
        store.claim_runs("b", 10, LEASE, t(100)).await.unwrap(),
        vec![run]
    );
});

store_test!(concurrent_claims_never_share_a_run, |store| async move {
    let shared: Store = (*store).clone();
    let accepts: Vec<_> = (0..200)
        .map(|i| {
            let store = shared.clone();
            tokio::spawn(async move {
                store
                    .accept_event(event(&format!("k{i}"), &format!("run-{i:03}"), 0))
                    .await
            })
        })
        .collect();
    for task in accepts {
        task.await.unwrap().unwrap();
    }
    let claimers: Vec<_> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|owner| {
            let store = shared.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store.claim_runs(owner, 7, LEASE, t(1)).await.unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got);
                }
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    let mut total = 0;
    for task in claimers {
        let mine = task.await.unwrap();
        total += mine.len();
        all.extend(mine);
    }
    assert_eq!(total, 200, "no run was claimed twice");
    assert_eq!(all.len(), 200, "every run was claimed");
});

store_test!(
    a_step_by_the_wrong_owner_changes_nothing,
    |store| async move {
        let run = accept_and_claim(&store, event("k", "run-1", 0), "a", 1).await;
        let before = store.get_run(&run).await.unwrap();
        let wrong = StepCommit {
            status: RunStatus::Succeeded,
            nodes: nodes(),
            finished_at: Some(t(2)),
            documents: vec![document(&run, "run-1:invoice", json!({"n": 1}), 2)],
            ..step(&run, "b", QueueNext::Done)
        };
        let err = store.commit_step(wrong).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(ref m) if m.contains("lease lost")),
            "{err:?}"
        );
        assert_eq!(store.get_run(&run).await.unwrap(), before);
        assert!(store.list_documents(&run).await.unwrap().is_empty());
        // Still queued and still a's.
        assert!(
            store
                .claim_runs("c", 10, LEASE, t(2))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.claim_runs("c", 10, LEASE, t(31)).await.unwrap(),
            vec![run.clone()]
        );

        // A run that is not queued at all is refused the same way.
        let err = store
            .commit_step(step("run-ghost", "a", QueueNext::Done))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }
);

store_test!(a_finished_step_dequeues_the_run, |store| async move {
    let run = accept_and_claim(&store, event("k", "run-1", 0), "a", 1).await;
    let done = StepCommit {
        status: RunStatus::Succeeded,
        nodes: nodes(),
        finished_at: Some(t(3)),
        ..step(&run, "a", QueueNext::Done)
    };
    store.commit_step(done).await.unwrap();

    let stored = store.get_run(&run).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Succeeded);
    assert_eq!(stored.started_at, Some(t(1)));
    assert_eq!(stored.finished_at, Some(t(3)));
    assert!(
        store
            .claim_runs("b", 10, LEASE, t(1_000_000))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due_at().await.unwrap(), None);
    // Its lease went with it.
    let err = store
        .commit_step(step(&run, "a", QueueNext::Done))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
});

store_test!(
    a_waiting_step_is_due_again_at_its_time,
    |store| async move {
        let run = accept_and_claim(&store, event("k", "run-1", 0), "a", 1).await;
        store
            .commit_step(step(&run, "a", QueueNext::At(t(100))))
            .await
            .unwrap();
        // The lease is released: nobody holds it, but it is not due yet.
        assert!(
            store
                .claim_runs("b", 10, LEASE, t(99))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.claim_runs("b", 10, LEASE, t(100)).await.unwrap(),
            vec![run.clone()]
        );
        // A later step keeps the first start time and may keep its lease.
        let later = StepCommit {
            started_at: Some(t(100)),
            ..step(&run, "b", QueueNext::Keep)
        };
        store.commit_step(later).await.unwrap();
        assert_eq!(
            store.get_run(&run).await.unwrap().unwrap().started_at,
            Some(t(1))
        );
        assert!(
            store
                .claim_runs("c", 10, LEASE, t(101))
                .await
                .unwrap()
                .is_empty()
        );
        store
            .commit_step(step(&run, "b", QueueNext::Done))
            .await
            .unwrap();
    }
);

store_test!(documents_are_stored_once_per_key, |store| async move {
    let run = accept_and_claim(&store, event("k", "run-1", 0), "a", 1).await;
    let invoice: Value = serde_json::from_str(r#"{"number":"INV-1","total":120.0,"z":1,"a":2}"#)
        .expect("valid test JSON");
    let first = StepCommit {
        documents: vec![
            document(&run, "run-1:invoice", invoice.clone(), 5),
            document(&run, "run-1:b-shipment", json!({"items": 1}), 5),
        ],
        ..step(&run, "a", QueueNext::Keep)
    };
    store.commit_step(first).await.unwrap();
    // The step runs again (a retry after a crash): the invoice is not
    // stored twice and keeps its first body.
    let again = StepCommit {
        documents: vec![
            document(&run, "run-1:invoice", json!({"number": "INV-2"}), 6),
            document(&run, "run-1:royalty", json!({"amount": "12.00"}), 4),
        ],
        ..step(&run, "a", QueueNext::Keep)
    };
    store.commit_step(again).await.unwrap();

    let documents = store.list_documents(&run).await.unwrap();
    let keys: Vec<&str> = documents.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["run-1:royalty", "run-1:b-shipment", "run-1:invoice"]);
    assert_eq!(
        documents[2],
        document(&run, "run-1:invoice", invoice.clone(), 5)
    );
    assert_eq!(
        serde_json::to_string(&documents[2].body).unwrap(),
        serde_json::to_string(&invoice).unwrap()
    );
    assert!(store.list_documents("run-other").await.unwrap().is_empty());
});

store_test!(runs_and_events_round_trip_exactly, |store| async move {
    let run = accept_and_claim(&store, event("k", "run-1", 0), "a", 1).await;
    store.accept_event(event("k2", "run-2", 0)).await.unwrap();
    let checkpoint = StepCommit {
        nodes: nodes(),
        ..step(&run, "a", QueueNext::Keep)
    };
    store.commit_step(checkpoint).await.unwrap();

    let stored = store.get_run(&run).await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_string(&stored.nodes).unwrap(),
        serde_json::to_string(&nodes()).unwrap()
    );
    assert_eq!(stored.status, RunStatus::Running);

    let ids = vec![run.clone(), "run-2".to_owned(), "run-missing".to_owned()];
    let mut work = store.load_runs(&ids).await.unwrap();
    work.sort_by(|a, b| a.run.run_id.cmp(&b.run.run_id));
    assert_eq!(work.len(), 2, "missing ids are left out");
    assert_eq!(work[0].run, stored);
    assert_eq!(work[1].run.run_id, "run-2");
    // serde_json spells `1e3` as `1e+3` when it writes; everything else is
    // the text as received.
    let body: Value = serde_json::from_str(BODY).unwrap();
    for w in &work {
        assert_eq!(
            serde_json::to_string(&w.event).unwrap(),
            serde_json::to_string(&body).unwrap()
        );
        assert!(
            serde_json::to_string(&w.event)
                .unwrap()
                .contains(r#""total":"120.0","zeta":1"#)
        );
    }
    assert!(store.load_runs(&[]).await.unwrap().is_empty());
});

store_test!(release_all_leases_frees_every_run, |store| async move {
    for i in 0..3 {
        store
            .accept_event(event(&format!("k{i}"), &format!("run-{i}"), 0))
            .await
            .unwrap();
    }
    assert_eq!(
        store.claim_runs("a", 2, LEASE, t(1)).await.unwrap().len(),
        2
    );
    assert_eq!(store.release_all_leases().await.unwrap(), 2);
    assert_eq!(store.release_all_leases().await.unwrap(), 0);
    assert_eq!(
        store.claim_runs("b", 10, LEASE, t(1)).await.unwrap().len(),
        3
    );
});

store_test!(next_due_at_skips_live_leases, |store| async move {
    assert_eq!(store.next_due_at().await.unwrap(), None);
    store.accept_event(event("k1", "run-1", 100)).await.unwrap();
    store.accept_event(event("k2", "run-2", 50)).await.unwrap();
    assert_eq!(store.next_due_at().await.unwrap(), Some(t(50)));

    // `next_due_at` judges leases by the real clock: a century-long lease is
    // live, so run-2 no longer counts.
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    assert_eq!(
        store.claim_runs("a", 1, century, t(60)).await.unwrap(),
        vec!["run-2"]
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(t(100)));
    // A lease that ended (in 2020) does not hide a run.
    assert_eq!(
        store.claim_runs("a", 1, LEASE, t(100)).await.unwrap(),
        vec!["run-1"]
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(t(100)));
});

store_test!(
    a_rotation_without_grace_ends_every_older_secret,
    |store| async move {
        store.create_company("acme", "Acme").await.unwrap();
        store
            .create_signing_secret("acme", "s1", "whsec_one", t(0), t(1))
            .await
            .unwrap();
        // S1 -> S2 with a day of grace: S1 is still valid.
        store
            .create_signing_secret("acme", "s2", "whsec_two", t(10), t(86_400))
            .await
            .unwrap();
        // S2 -> S3 with none: S1 (already in grace) and S2 both end now.
        let s3 = store
            .create_signing_secret("acme", "s3", "whsec_three", t(20), t(20))
            .await
            .unwrap();
        assert_eq!(
            store.active_signing_secrets("acme", t(20)).await.unwrap(),
            vec![s3.clone()]
        );

        // One secret can be revoked on its own.
        let s4 = store
            .create_signing_secret("acme", "s4", "whsec_four", t(30), t(3_600))
            .await
            .unwrap();
        assert!(store.delete_signing_secret("acme", "s3").await.unwrap());
        assert_eq!(
            store.active_signing_secrets("acme", t(31)).await.unwrap(),
            vec![s4]
        );
        assert!(!store.delete_signing_secret("acme", "s3").await.unwrap());
        store.create_company("globex", "Globex").await.unwrap();
        assert!(
            !store.delete_signing_secret("globex", "s4").await.unwrap(),
            "another company's secret"
        );
    }
);

store_test!(signing_secrets_rotate_with_grace, |store| async move {
    store.create_company("acme", "Acme").await.unwrap();
    let s1 = store
        .create_signing_secret("acme", "s1", "whsec_one", t(0), t(10))
        .await
        .unwrap();
    assert_eq!((s1.created_at, s1.expires_at), (t(0), None));
    assert_eq!(
        store.active_signing_secrets("acme", t(1)).await.unwrap(),
        vec![s1.clone()]
    );

    // Rotating: s1 stays valid until t(15), not after.
    let s2 = store
        .create_signing_secret("acme", "s2", "whsec_two", t(5), t(15))
        .await
        .unwrap();
    let s1_expiring = SigningSecret {
        expires_at: Some(t(15)),
        ..s1.clone()
    };
    assert_eq!(
        store.active_signing_secrets("acme", t(14)).await.unwrap(),
        vec![s2.clone(), s1_expiring.clone()]
    );
    assert_eq!(
        store.active_signing_secrets("acme", t(15)).await.unwrap(),
        vec![s2.clone()]
    );

    // A later rotation never lengthens an earlier grace: s1 keeps t(15).
    let s3 = store
        .create_signing_secret("acme", "s3", "whsec_three", t(12), t(30))
        .await
        .unwrap();
    assert_eq!(
        store.active_signing_secrets("acme", t(13)).await.unwrap(),
        vec![
            s3,
            SigningSecret {
                expires_at: Some(t(30)),
                ..s2
            },
            s1_expiring
        ]
    );
    assert!(
        store
            .active_signing_secrets("globex", t(0))
            .await
            .unwrap()
            .is_empty()
    );

    let err = store
        .create_signing_secret("ghost", "s9", "whsec_x", t(0), t(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(ref m) if m.contains("ghost")),
        "{err:?}"
    );
    let err = store
        .create_signing_secret("acme", "s1", "whsec_x", t(40), t(41))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // The failed rotation rolled back: s3 still has no expiry.
    assert_eq!(
        store
            .active_signing_secrets("acme", t(1_000))
            .await
            .unwrap()[0]
            .expires_at,
        None
    );
});

/// The group-commit writer under back-pressure and outages.
mod writer {
    use std::future::Future;
    use std::time::Instant;

    use moneyflow_store::WriterConfig;

    use super::*;

    /// Polls `done` until it holds, failing after 10 s.
    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_is_overloaded_not_unbounded() {
        let dir = tempfile::tempdir().unwrap();
        let config = WriterConfig {
            queue_capacity: 1,
            ..WriterConfig::default()
        };
        let store = Store::open_data_dir_with_config(dir.path(), config)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let Store::Sqlite(sqlite) = &store else {
            unreachable!("a data directory is SQLite")
        };
        // Hold SQLite's write lock from the read pool: the writer's batch
        // waits for it (busy timeout) while more writes arrive.
        let mut lock = sqlite.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO settings (key, value) VALUES ('lock', 'held')")
            .execute(&mut *lock)
            .await
            .unwrap();

        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .accept_event(event(&format!("k{i}"), &format!("run-{i}"), 0))
                        .await
                })
            })
            .collect();
        // One write in the writer, one in the queue: the rest fail at once.
        eventually("the overloaded calls to return", || {
            tasks.iter().filter(|t| t.is_finished()).count() >= 8
        })
        .await;
        lock.commit().await.unwrap();

        let (mut accepted_count, mut overloaded) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(AcceptOutcome::Accepted { .. }) => accepted_count += 1,
                Err(StoreError::Overloaded) => overloaded += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(overloaded >= 8, "{overloaded} overloaded");
        assert!(accepted_count >= 1, "the queued writes still commit");
        assert_eq!(accepted_count + overloaded, 10);
        // The writer carries on once the queue drains.
        let late = event("late", "run-late", 0);
        assert_eq!(
            store.accept_event(late.clone()).await.unwrap(),
            accepted(&late)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_memory_sqlite_writes_through_its_one_connection() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let first = event("k", "run-1", 0);
        assert_eq!(
            store.accept_event(first.clone()).await.unwrap(),
            accepted(&first)
        );
        assert_eq!(
            store.claim_runs("a", 10, LEASE, t(1)).await.unwrap(),
            vec!["run-1"]
        );
        assert!(store.get_run("run-1").await.unwrap().is_some());
    }

    /// What holds a writer back: SQLite's write lock, taken from the read
    /// pool, or a PostgreSQL lock on `events` that blocks inserts.
    enum Lock {
        Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
        Postgres(sqlx::PgConnection),
    }

    impl Lock {
        async fn release(self) {
            match self {
                Lock::Sqlite(tx) => tx.commit().await.unwrap(),
                Lock::Postgres(mut conn) => {
                    sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
                }
            }
        }
    }

    /// A store with one writer, and a way to stall it behind a lock so
    /// writes pile up in its queue until the lock is released.
    struct Stalled {
        store: Store,
        /// The PostgreSQL database's URL, to lock it from outside the store.
        url: String,
        /// The temporary directory or database.
        _keep: Box<dyn std::any::Any + Send>,
    }

    impl Stalled {
        /// Takes the lock the writer's next batch will wait for.
        async fn stall(&self) -> Lock {
            match &self.store {
                Store::Sqlite(sqlite) => {
                    let mut lock = sqlite.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
                    sqlx::query("INSERT INTO settings (key, value) VALUES ('lock', 'held')")
                        .execute(&mut *lock)
                        .await
                        .unwrap();
                    Lock::Sqlite(lock)
                }
                Store::Postgres(_) => {
                    use sqlx::Connection;

                    let mut lock = sqlx::PgConnection::connect(&self.url).await.unwrap();
                    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
                    // Blocks inserts (the writer's), not reads.
                    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
                        .execute(&mut lock)
                        .await
                        .unwrap();
                    Lock::Postgres(lock)
                }
            }
        }
    }

    async fn stalled(backend: Backend) -> Stalled {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open_data_dir(dir.path()).await.unwrap();
                store.migrate().await.unwrap();
                Stalled {
                    store,
                    url: String::new(),
                    _keep: Box::new(dir),
                }
            }
            Backend::Postgres => {
                use std::str::FromStr;

                use moneyflow_store::PgStore;
                use sqlx::postgres::PgConnectOptions;

                let database = fresh_postgres().await;
                // One writer, so batches form in a known order.
                let config = WriterConfig {
                    writers: 1,
                    ..WriterConfig::default()
                };
                let options = PgConnectOptions::from_str(database.url()).unwrap();
                let store =
                    Store::Postgres(PgStore::connect_with_config(options, config).await.unwrap());
                Stalled {
                    store,
                    url: database.url().to_owned(),
                    _keep: Box::new(database),
                }
            }
        }
    }

    /// Sends `event` and waits until the (stalled) writer has taken it, so
    /// writes sent after it go to the next batch. Returns the pending call.
    async fn send_first(
        store: &Store,
        event: NewEvent,
    ) -> impl Future<Output = Result<AcceptOutcome, StoreError>> + '_ {
        let mut call = Box::pin(store.accept_event(event));
        // One poll queues the write (then waits for its answer).
        std::future::poll_fn(|cx| {
            assert!(call.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        eventually("the writer to take the first write", || {
            store.queued_writes() == 0
        })
        .await;
        call
    }

    fn spawn_accept(
        store: &Store,
        event: NewEvent,
    ) -> tokio::task::JoinHandle<Result<AcceptOutcome, StoreError>> {
        let store = store.clone();
        tokio::spawn(async move { store.accept_event(event).await })
    }

    /// `store_test!` for the tests that need a stalled writer.
    macro_rules! stalled_test {
        ($name:ident, $check:ident) => {
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $check(stalled(Backend::Sqlite).await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $check(stalled(Backend::Postgres).await).await
                }
            }
        };
    }

    stalled_test!(
        queued_writes_commit_together,
        check_queued_writes_commit_together
    );

    async fn check_queued_writes_commit_together(stalled: Stalled) {
        let lock = stalled.stall().await;
        let store = &stalled.store;
        // The first write is taken by the writer, which waits for the lock...
        let first = send_first(store, event("k0", "run-0", 0)).await;
        // ...while the next 100 queue up behind it.
        let rest: Vec<_> = (1..=100)
            .map(|i| spawn_accept(store, event(&format!("k{i}"), &format!("run-{i}"), 0)))
            .collect();
        eventually("100 queued writes", || store.queued_writes() == 100).await;
        lock.release().await;

        assert!(matches!(first.await, Ok(AcceptOutcome::Accepted { .. })));
        for task in rest {
            assert!(matches!(
                task.await.unwrap(),
                Ok(AcceptOutcome::Accepted { .. })
            ));
        }
        assert_eq!(store.write_batches(), 2, "101 writes, two commits");
    }

    stalled_test!(
        a_bad_write_fails_alone_and_the_rest_of_its_batch_commits,
        check_a_bad_write_fails_alone
    );

    async fn check_a_bad_write_fails_alone(stalled: Stalled) {
        let lock = stalled.stall().await;
        let store = &stalled.store;
        let first = send_first(store, event("k0", "run-0", 0)).await;
        // One batch: ten good writes and one whose run id is taken.
        let mut tasks: Vec<_> = (1..=5)
            .map(|i| spawn_accept(store, event(&format!("k{i}"), &format!("run-{i}"), 0)))
            .collect();
        let bad = spawn_accept(store, event("k-bad", "run-0", 0));
        eventually("6 queued writes", || store.queued_writes() == 6).await;
        tasks.extend(
            (6..=10).map(|i| spawn_accept(store, event(&format!("k{i}"), &format!("run-{i}"), 0))),
        );
        eventually("11 queued writes", || store.queued_writes() == 11).await;
        lock.release().await;

        let first = first.await;
        assert!(
            matches!(first, Ok(AcceptOutcome::Accepted { .. })),
            "{first:?}"
        );
        let err = bad.await.unwrap().unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(ref m) if m.contains("run-0")),
            "{err:?}"
        );
        for task in tasks {
            assert!(matches!(
                task.await.unwrap(),
                Ok(AcceptOutcome::Accepted { .. })
            ));
        }
        // The bad one committed nothing. SQLite's writer isolates each
        // write in a savepoint: the first write, then one batch. PostgreSQL's
        // re-runs a failed batch's writes one by one: the first write, then
        // the ten good ones.
        let commits = match store.backend() {
            Backend::Sqlite => 2,
            Backend::Postgres => 11,
        };
        assert_eq!(store.write_batches(), commits);
        let again = event("k-bad", "run-new", 0);
        assert_eq!(
            store.accept_event(again.clone()).await.unwrap(),
            accepted(&again)
        );
    }

    stalled_test!(
        steps_in_one_batch_mean_what_they_mean_one_by_one,
        check_steps_in_one_batch
    );

    fn spawn_commit(
        store: &Store,
        step: StepCommit,
    ) -> tokio::task::JoinHandle<Result<(), StoreError>> {
        let store = store.clone();
        tokio::spawn(async move { store.commit_step(step).await })
    }

    async fn check_steps_in_one_batch(stalled: Stalled) {
        let store = &stalled.store;
        for i in 1..=5 {
            store
                .accept_event(event(&format!("k{i}"), &format!("run-{i}"), 0))
                .await
                .unwrap();
        }
        assert_eq!(
            store.claim_runs("a", 10, LEASE, t(1)).await.unwrap().len(),
            5
        );
        let before = store.write_batches();

        let lock = stalled.stall().await;
        let first = send_first(store, event("k0", "run-0", 0)).await;
        // One batch, in this order (a worker would not send two steps of a
        // run at once, but the batch must mean the same if it did).
        let steps = vec![
            // run-1 finishes, with a document.
            StepCommit {
                status: RunStatus::Succeeded,
                nodes: nodes(),
                finished_at: Some(t(2)),
                documents: vec![document("run-1", "run-1:invoice", json!({"n": 1}), 2)],
                ..step("run-1", "a", QueueNext::Done)
            },
            // run-2 waits until t(50).
            step("run-2", "a", QueueNext::At(t(50))),
            // run-3: a stranger's step is refused.
            step("run-3", "b", QueueNext::Done),
            // run-4: a checkpoint, then the end.
            StepCommit {
                documents: vec![document("run-4", "run-4:a", json!({"n": 4}), 2)],
                ..step("run-4", "a", QueueNext::Keep)
            },
            StepCommit {
                status: RunStatus::Failed,
                started_at: Some(t(9)),
                finished_at: Some(t(3)),
                documents: vec![document("run-4", "run-4:b", json!({"n": 5}), 3)],
                ..step("run-4", "a", QueueNext::Done)
            },
            // run-5: the end, then a step that comes too late.
            step("run-5", "a", QueueNext::Done),
            step("run-5", "a", QueueNext::Keep),
        ];
        let count = steps.len();
        let mut tasks = Vec::new();
        for (n, step) in steps.into_iter().enumerate() {
            tasks.push(spawn_commit(store, step));
            eventually("the step to queue", || store.queued_writes() == n + 1).await;
        }
        lock.release().await;

        assert!(matches!(first.await, Ok(AcceptOutcome::Accepted { .. })));
        let results: Vec<_> = futures_join(tasks).await;
        assert_eq!(results.len(), count);
        let refused: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(refused, [2, 6], "{results:?}");
        for i in refused {
            assert!(
                matches!(results[i], Err(StoreError::Conflict(_))),
                "{results:?}"
            );
        }
        assert_eq!(
            store.write_batches() - before,
            2,
            "the first write, then one batch"
        );

        let run1 = store.get_run("run-1").await.unwrap().unwrap();
        assert_eq!(
            (run1.status, run1.finished_at, run1.nodes),
            (RunStatus::Succeeded, Some(t(2)), nodes())
        );
        let run4 = store.get_run("run-4").await.unwrap().unwrap();
        assert_eq!(
            (run4.status, run4.started_at, run4.finished_at),
            (RunStatus::Failed, Some(t(1)), Some(t(3)))
        );
        let keys = |docs: Vec<Document>| docs.into_iter().map(|d| d.key).collect::<Vec<_>>();
        assert_eq!(
            keys(store.list_documents("run-1").await.unwrap()),
            ["run-1:invoice"]
        );
        assert_eq!(
            keys(store.list_documents("run-4").await.unwrap()),
            ["run-4:a", "run-4:b"]
        );
        let run3 = store.get_run("run-3").await.unwrap().unwrap();
        assert_eq!(
            run3.status,
            RunStatus::Queued,
            "the refused step wrote nothing"
        );
        // Left in the queue: run-0 (new), run-3 (a's lease ran out at t(31))
        // and run-2, due at t(50).
        let claim = |now| async move {
            store
                .claim_runs("c", 10, LEASE, t(now))
                .await
                .unwrap()
                .into_iter()
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(
            claim(49).await,
            BTreeSet::from(["run-0".to_owned(), "run-3".to_owned()])
        );
        assert_eq!(claim(50).await, BTreeSet::from(["run-2".to_owned()]));
    }

    async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }

    /// Kills the writers' connections (as a PostgreSQL restart would): the
    /// writers notice before they run anything and reconnect, so no write
    /// fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_writers_reconnect_after_a_restart() {
        let store = fresh_postgres().await;
        // Every writer holds a connection.
        let warm: Vec<_> = (0..40)
            .map(|i| spawn_accept(&store, event(&format!("w{i}"), &format!("run-w{i}"), 0)))
            .collect();
        for task in warm {
            task.await.unwrap().unwrap();
        }

        let pg = store.as_postgres().unwrap();
        let killed: Vec<i32> = sqlx::query_scalar(
            // MATERIALIZED: the filter that spares this connection runs
            // before any termination.
            "WITH victims AS MATERIALIZED ( \
                 SELECT pid FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()) \
             SELECT pid FROM victims WHERE pg_terminate_backend(pid)",
        )
        .fetch_all(pg.pool())
        .await
        .unwrap();
        assert!(!killed.is_empty());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let alive: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                    .bind(&killed)
                    .fetch_one(pg.pool())
                    .await
                    .unwrap();
            if alive == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the backends did not exit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let tasks: Vec<_> = (0..50)
            .map(|i| spawn_accept(&store, event(&format!("k{i}"), &format!("run-{i}"), 0)))
            .collect();
        for task in tasks {
            assert!(matches!(
                task.await.unwrap(),
                Ok(AcceptOutcome::Accepted { .. })
            ));
        }
        for i in 50..60 {
            let e = event(&format!("k{i}"), &format!("run-{i}"), 0);
            assert_eq!(store.accept_event(e.clone()).await.unwrap(), accepted(&e));
        }
    }

    /// A TCP proxy to PostgreSQL that the test can take down and bring back,
    /// on the same port.
    struct Proxy {
        port: u16,
        upstream: String,
        task: Option<tokio::task::JoinHandle<()>>,
    }

    impl Proxy {
        async fn start(upstream: String) -> Proxy {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let mut proxy = Proxy {
                port,
                upstream,
                task: None,
            };
            proxy.serve(listener);
            proxy
        }

        fn serve(&mut self, listener: tokio::net::TcpListener) {
            let upstream = self.upstream.clone();
            self.task = Some(tokio::spawn(async move {
                // Dropping the set (when this task is aborted) aborts every
                // connection: the database is "down".
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((mut client, _)) = listener.accept().await {
                    let upstream = upstream.clone();
                    connections.spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            }));
        }

        async fn stop(&mut self) {
            if let Some(task) = self.task.take() {
                task.abort();
                let _ = task.await;
            }
        }

        async fn restart(&mut self) {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
                .await
                .unwrap();
            self.serve(listener);
        }
    }

    /// The database goes away: every waiting write answers `Unavailable`
    /// (none hangs, none is lost silently); it comes back: the writers,
    /// still running, reconnect.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_outage_is_unavailable_then_recovers() {
        use std::str::FromStr;

        use moneyflow_store::PgStore;
        use sqlx::postgres::PgConnectOptions;

        let database = fresh_postgres().await;
        let options = PgConnectOptions::from_str(database.url()).unwrap();
        let upstream = format!("{}:{}", options.get_host(), options.get_port());
        let mut proxy = Proxy::start(upstream).await;
        let store = Store::Postgres(
            PgStore::connect_with_config(
                options.host("127.0.0.1").port(proxy.port),
                WriterConfig::default(),
            )
            .await
            .unwrap(),
        );
        let first = event("k0", "run-0", 0);
        assert_eq!(
            store.accept_event(first.clone()).await.unwrap(),
            accepted(&first)
        );

        proxy.stop().await;
        let started = Instant::now();
        let waiting: Vec<_> = (1..=20)
            .map(|i| spawn_accept(&store, event(&format!("k{i}"), &format!("run-{i}"), 0)))
            .collect();
        for task in waiting {
            let err = task.await.unwrap().unwrap_err();
            assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "took {:?}",
            started.elapsed()
        );

        proxy.restart().await;
        let back = event("k1", "run-1", 0);
        assert_eq!(
            store.accept_event(back.clone()).await.unwrap(),
            accepted(&back)
        );
        let claimed = store.claim_runs("w", 10, LEASE, t(1)).await.unwrap();
        assert_eq!(
            claimed.len(),
            2,
            "the failed writes left nothing: {claimed:?}"
        );
        proxy.stop().await;
    }
}

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

// Notification endpoints, the deliveries outbox and backtest reads.
#[path = "conformance/notifications.rs"]
mod notifications;

// Run events, the runs list, the queue's gauges and redrive.
#[path = "conformance/run_events.rs"]
mod run_events;

// Poison runs and fair claims: `conformance/queue.rs`.
#[path = "conformance/queue.rs"]
mod queue;
