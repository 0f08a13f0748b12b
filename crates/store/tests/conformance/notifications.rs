//! Notification endpoints, the deliveries outbox, attempts, and the recent
//! runs backtests read: the same behaviour on every backend.

use moneyflow_core::ports::{
    AttemptRecord, DeliveryAttempt, DeliveryNext, DeliveryStatus, HistoryCursor,
    NewNotificationEndpoint, NotificationStore, RunHistoryStore,
};

use super::*;

const SECRET: &str = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=";

fn endpoint<'a>(id: &'a str, event_types: &'a [String]) -> NewNotificationEndpoint<'a> {
    NewNotificationEndpoint {
        id,
        company_id: "acme",
        url: "https://example.com/hook",
        description: Some("ops"),
        event_types,
        secret: SECRET,
        now: t(0),
        max_per_company: 20,
    }
}

fn types(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Finishes `run` (leased to "a") with `status` at `t(5)`.
async fn finish(store: &Store, run: &str, status: RunStatus) {
    store
        .commit_step(StepCommit {
            status,
            nodes: nodes(),
            finished_at: Some(t(5)),
            ..step(run, "a", QueueNext::Done)
        })
        .await
        .unwrap();
}

fn attempt(
    delivery_id: &str,
    owner: &str,
    n: u32,
    code: Option<u16>,
    next: DeliveryNext,
) -> AttemptRecord {
    AttemptRecord {
        delivery_id: delivery_id.to_owned(),
        owner: owner.to_owned(),
        attempt: DeliveryAttempt {
            attempt: n,
            at: t(10 + i64::from(n)),
            status_code: code,
            error: code.filter(|c| *c >= 300).map(|c| format!("answered {c}")),
            duration_ms: 12,
        },
        next,
        last_error: None,
        now: t(10 + i64::from(n)),
    }
}

store_test!(
    notification_endpoints_create_list_get_delete,
    |store| async move {
        let all = types(&["run.succeeded", "run.failed", "run.aborted"]);
        let err = store
            .create_notification_endpoint(endpoint("nep_1", &all))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

        store.create_company("acme", "Acme").await.unwrap();
        let created = store
            .create_notification_endpoint(endpoint("nep_1", &all))
            .await
            .unwrap();
        assert_eq!(created.event_types, all);
        assert!(created.enabled);
        assert!(
            !format!("{created:?}").contains("c2VjcmV0"),
            "Debug hides the secret"
        );
        let listed = store.list_notification_endpoints("acme").await.unwrap();
        assert_eq!(listed, vec![created.clone()]);
        assert_eq!(listed[0].secret, SECRET);
        assert_eq!(
            store
                .get_notification_endpoint("acme", "nep_1")
                .await
                .unwrap(),
            Some(created)
        );
        assert_eq!(
            store
                .get_notification_endpoint("other", "nep_1")
                .await
                .unwrap(),
            None
        );
        assert!(
            !store
                .delete_notification_endpoint("other", "nep_1")
                .await
                .unwrap()
        );
        assert!(
            store
                .delete_notification_endpoint("acme", "nep_1")
                .await
                .unwrap()
        );
        assert!(
            store
                .list_notification_endpoints("acme")
                .await
                .unwrap()
                .is_empty()
        );
    }
);

store_test!(
    a_finishing_step_queues_a_delivery_per_matching_endpoint,
    |store| async move {
        store.create_company("acme", "Acme").await.unwrap();
        let all = types(&["run.succeeded", "run.failed", "run.aborted"]);
        let failures = types(&["run.failed"]);
        store
            .create_notification_endpoint(endpoint("nep_all", &all))
            .await
            .unwrap();
        store
            .create_notification_endpoint(endpoint("nep_failures", &failures))
            .await
            .unwrap();

        let run = accept_and_claim(&store, event("k1", "run-1", 0), "a", 1).await;
        // A step that does not finish the run queues nothing.
        store
            .commit_step(step(&run, "a", QueueNext::Keep))
            .await
            .unwrap();
        assert!(
            store
                .list_deliveries("acme", "nep_all", 10)
                .await
                .unwrap()
                .is_empty()
        );
        finish(&store, &run, RunStatus::Succeeded).await;

        let deliveries = store.list_deliveries("acme", "nep_all", 10).await.unwrap();
        assert_eq!(deliveries.len(), 1);
        let delivery = &deliveries[0];
        assert_eq!(delivery.run_id, run);
        assert_eq!(delivery.event_type, "run.succeeded");
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(delivery.attempts, 0);
        assert_eq!(delivery.next_attempt_at, Some(t(5)));
        assert!(delivery.id.starts_with("msg_"), "{}", delivery.id);
        let payload: Value = serde_json::from_str(&delivery.payload).unwrap();
        assert_eq!(
            payload,
            json!({"type": "run.succeeded", "timestamp": "2020-01-01T00:00:05Z",
               "data": {"run_id": "run-1", "company_id": "acme", "event_id": "evt-k1",
                        "status": "succeeded", "rule_version": 3,
                        "finished_at": "2020-01-01T00:00:05Z"}})
        );
        assert!(
            store
                .list_deliveries("acme", "nep_failures", 10)
                .await
                .unwrap()
                .is_empty(),
            "that endpoint does not take run.succeeded"
        );

        let failed = accept_and_claim(&store, event("k2", "run-2", 0), "a", 2).await;
        finish(&store, &failed, RunStatus::Failed).await;
        assert_eq!(
            store
                .list_deliveries("acme", "nep_all", 10)
                .await
                .unwrap()
                .len(),
            2
        );
        let to_failures = store
            .list_deliveries("acme", "nep_failures", 10)
            .await
            .unwrap();
        assert_eq!(to_failures.len(), 1);
        assert_eq!(to_failures[0].event_type, "run.failed");
    }
);

store_test!(
    deliveries_are_claimed_with_a_lease_and_attempts_recorded,
    |store| async move {
        store.create_company("acme", "Acme").await.unwrap();
        let all = types(&["run.succeeded"]);
        store
            .create_notification_endpoint(endpoint("nep_1", &all))
            .await
            .unwrap();
        let run = accept_and_claim(&store, event("k1", "run-1", 0), "a", 1).await;
        assert_eq!(store.next_delivery_due().await.unwrap(), None);
        finish(&store, &run, RunStatus::Succeeded).await;
        assert_eq!(store.next_delivery_due().await.unwrap(), Some(t(5)));

        assert!(
            store
                .claim_deliveries("w1", 10, LEASE, t(4))
                .await
                .unwrap()
                .is_empty()
        );
        let claimed = store.claim_deliveries("w1", 10, LEASE, t(6)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let due = &claimed[0];
        assert_eq!(due.url, "https://example.com/hook");
        assert_eq!(due.secret, SECRET);
        assert!(due.endpoint_enabled);
        assert!(!format!("{due:?}").contains("c2VjcmV0"));
        let id = due.delivery.id.clone();
        // Leased: nobody else takes it until the lease runs out.
        assert!(
            store
                .claim_deliveries("w2", 10, LEASE, t(7))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.next_delivery_due().await.unwrap(), Some(t(6 + 30)));

        store
            .record_delivery_attempt(attempt(
                &id,
                "w1",
                1,
                Some(503),
                DeliveryNext::RetryAt(t(100)),
            ))
            .await
            .unwrap();
        let (delivery, attempts) = store.get_delivery("acme", &id).await.unwrap().unwrap();
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(delivery.attempts, 1);
        assert_eq!(delivery.next_attempt_at, Some(t(100)));
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].status_code, Some(503));
        assert!(
            store
                .claim_deliveries("w2", 10, LEASE, t(99))
                .await
                .unwrap()
                .is_empty()
        );

        // The lease ran out: another worker takes it; the first one's late
        // answer is recorded but does not move the delivery.
        let again = store
            .claim_deliveries("w2", 10, LEASE, t(100))
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery.attempts, 1);
        store
            .record_delivery_attempt(attempt(&id, "w1", 2, Some(500), DeliveryNext::Failed))
            .await
            .unwrap();
        store
            .record_delivery_attempt(attempt(&id, "w2", 2, Some(200), DeliveryNext::Delivered))
            .await
            .unwrap();
        let (delivery, attempts) = store.get_delivery("acme", &id).await.unwrap().unwrap();
        assert_eq!(delivery.status, DeliveryStatus::Delivered);
        assert_eq!(delivery.next_attempt_at, None);
        assert!(delivery.finished_at.is_some());
        assert_eq!(
            attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
            [Some(503), Some(500), Some(200)]
        );
        assert_eq!(store.next_delivery_due().await.unwrap(), None);
        assert!(store.get_delivery("other", &id).await.unwrap().is_none());

        // Deleting the endpoint takes its deliveries and attempts with it.
        assert!(
            store
                .delete_notification_endpoint("acme", "nep_1")
                .await
                .unwrap()
        );
        assert!(store.get_delivery("acme", &id).await.unwrap().is_none());
    }
);

store_test!(
    gone_disables_the_endpoint_and_fails_its_other_deliveries,
    |store| async move {
        store.create_company("acme", "Acme").await.unwrap();
        let all = types(&["run.succeeded"]);
        store
            .create_notification_endpoint(endpoint("nep_1", &all))
            .await
            .unwrap();
        for (key, run) in [("k1", "run-1"), ("k2", "run-2")] {
            let run = accept_and_claim(&store, event(key, run, 0), "a", 1).await;
            finish(&store, &run, RunStatus::Succeeded).await;
        }
        let claimed = store.claim_deliveries("w", 1, LEASE, t(6)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        store
            .record_delivery_attempt(attempt(
                &claimed[0].delivery.id,
                "w",
                1,
                Some(410),
                DeliveryNext::EndpointGone,
            ))
            .await
            .unwrap();
        let endpoint = store
            .get_notification_endpoint("acme", "nep_1")
            .await
            .unwrap()
            .unwrap();
        assert!(!endpoint.enabled);
        assert!(endpoint.disabled_reason.unwrap().contains("410"));
        let deliveries = store.list_deliveries("acme", "nep_1", 10).await.unwrap();
        assert_eq!(deliveries.len(), 2);
        assert!(
            deliveries
                .iter()
                .all(|d| d.status == DeliveryStatus::Failed)
        );
        assert_eq!(store.next_delivery_due().await.unwrap(), None);

        // A disabled endpoint gets no new deliveries.
        let run = accept_and_claim(&store, event("k3", "run-3", 0), "a", 1).await;
        finish(&store, &run, RunStatus::Succeeded).await;
        assert_eq!(
            store
                .list_deliveries("acme", "nep_1", 10)
                .await
                .unwrap()
                .len(),
            2
        );
    }
);

store_test!(recent_runs_page_newest_first, |store| async move {
    for (i, key) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        let i = i64::try_from(i).unwrap();
        store
            .accept_event(event(key, &format!("run-{key}"), i))
            .await
            .unwrap();
    }
    let page = store.recent_runs("acme", None, 2).await.unwrap();
    let ids: Vec<&str> = page.iter().map(|w| w.run.run_id.as_str()).collect();
    assert_eq!(ids, ["run-e", "run-d"]);
    assert_eq!(page[0].event, serde_json::from_str::<Value>(BODY).unwrap());
    let cursor = HistoryCursor {
        created_at: page[1].run.created_at,
        run_id: page[1].run.run_id.clone(),
    };
    let next = store.recent_runs("acme", Some(&cursor), 10).await.unwrap();
    let ids: Vec<&str> = next.iter().map(|w| w.run.run_id.as_str()).collect();
    assert_eq!(ids, ["run-c", "run-b", "run-a"]);
    assert!(
        store
            .recent_runs("other", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
});
