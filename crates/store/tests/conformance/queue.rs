//! The queue's protections between runs and tenants: poison runs are
//! counted by their claims (reset only when a step moves the run in the
//! queue) and quarantined; the same on every backend.

use moneyflow_core::ports::{NewRunEvent, Redrive, RunEventStore, RunQuery};

use super::*;

/// The claim count `load_runs` reports for `run_id`.
async fn claims(store: &Store, run_id: &str) -> u32 {
    let works = store.load_runs(&[run_id.to_owned()]).await.unwrap();
    works.first().map(|w| w.claims).expect("the run loads")
}

store_test!(
    claims_count_until_a_step_moves_the_run,
    |store| async move {
        let run = accept_and_claim(&store, event("k", "run-1", 0), "a", 1).await;
        assert_eq!(claims(&store, &run).await, 1);

        // A crash: the next start releases every lease, which is no commit.
        store.release_all_leases().await.unwrap();
        assert_eq!(
            store.claim_runs("b", 10, LEASE, t(2)).await.unwrap(),
            vec![run.clone()]
        );
        assert_eq!(claims(&store, &run).await, 2);

        // A lost lease (the worker stalled past it) counts the same.
        assert_eq!(
            store.claim_runs("c", 10, LEASE, t(40)).await.unwrap(),
            vec![run.clone()]
        );
        assert_eq!(claims(&store, &run).await, 3);

        // A checkpoint that keeps the lease is not the end of a step.
        store
            .commit_step(step(&run, "c", QueueNext::Keep))
            .await
            .unwrap();
        assert_eq!(claims(&store, &run).await, 3);

        // A step that ends with the run waiting for a retry starts the count over.
        store
            .commit_step(step(&run, "c", QueueNext::At(t(50))))
            .await
            .unwrap();
        assert_eq!(claims(&store, &run).await, 0);
        assert_eq!(
            store.claim_runs("d", 10, LEASE, t(50)).await.unwrap(),
            vec![run.clone()]
        );
        assert_eq!(claims(&store, &run).await, 1);
    }
);

store_test!(
    a_quarantined_run_leaves_the_queue_marked_until_a_redrive,
    |store| async move {
        let run = accept_and_claim(&store, event("k", "run-1", 0), "a", 1).await;
        store.release_all_leases().await.unwrap();
        store.claim_runs("b", 10, LEASE, t(2)).await.unwrap();
        store
            .commit_step(StepCommit {
                status: RunStatus::Failed,
                finished_at: Some(t(3)),
                events: vec![NewRunEvent::finished(RunStatus::Failed)],
                ..step(&run, "b", QueueNext::Quarantine)
            })
            .await
            .unwrap();
        let summary = store.get_run_summary(&run).await.unwrap().unwrap();
        assert_eq!(summary.status, RunStatus::Failed);
        assert!(summary.quarantined);
        assert!(
            store
                .claim_runs("c", 10, LEASE, t(100))
                .await
                .unwrap()
                .is_empty(),
            "out of the queue"
        );
        assert_eq!(claims(&store, &run).await, 0);
        let listed = store
            .list_runs(&RunQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(listed[0].quarantined);

        // A redrive takes it back, counted from zero.
        let summary = store
            .redrive_run(Redrive {
                run_id: run.clone(),
                nodes: Map::new(),
                data: json!({}),
                now: t(4),
            })
            .await
            .unwrap();
        assert!(!summary.quarantined);
        assert_eq!(
            store.claim_runs("d", 10, LEASE, t(5)).await.unwrap(),
            vec![run.clone()]
        );
        assert_eq!(claims(&store, &run).await, 1);
    }
);
