//! Run events (stored with the change they describe, numbered per run
//! without gaps, published once committed), the runs list with keyset
//! paging, the queue's gauges and redrive: the same on every backend.

use moneyflow_core::ports::{
    NewRunEvent, QueueStats, Redrive, RunEvent, RunEventKind, RunEventStore, RunQuery,
};

use super::*;

fn kinds(events: &[RunEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

fn seqs(events: &[RunEvent]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

fn node_finished(node_id: &str) -> NewRunEvent {
    NewRunEvent::new(
        RunEventKind::NodeFinished,
        json!({"node_id": node_id, "state": "success", "attempts": 1}),
    )
}

/// The event of `event()` for another company.
fn event_of(company_id: &str, key: &str, run_id: &str, received: i64) -> NewEvent {
    NewEvent {
        company_id: company_id.to_owned(),
        ..event(key, run_id, received)
    }
}

store_test!(
    run_events_are_stored_with_their_changes_numbered_per_run,
    |store| async move {
        let run = accept_and_claim(&store, event("k1", "run-1", 0), "a", 1).await;
        let queued = store.list_run_events(&run, 0, 100).await.unwrap();
        assert_eq!(kinds(&queued), ["run.queued"]);
        assert_eq!(queued[0].seq, 1);
        assert_eq!(queued[0].company_id, "acme");
        assert_eq!(
            queued[0].data,
            json!({"event_id": "evt-k1", "event_type": "product", "rule_version": 3})
        );

        let checkpoint = StepCommit {
            events: vec![NewRunEvent::started(), node_finished("a")],
            ..step(&run, "a", QueueNext::Keep)
        };
        store.commit_step(checkpoint).await.unwrap();
        let last = StepCommit {
            status: RunStatus::Succeeded,
            events: vec![
                node_finished("b"),
                NewRunEvent::finished(RunStatus::Succeeded),
            ],
            ..step(&run, "a", QueueNext::Done)
        };
        store.commit_step(last).await.unwrap();

        let all = store.list_run_events(&run, 0, 100).await.unwrap();
        assert_eq!(
            kinds(&all),
            [
                "run.queued",
                "run.started",
                "node.finished",
                "node.finished",
                "run.finished"
            ]
        );
        assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id), "{all:?}");
        assert_eq!(all[4].data, json!({"status": "succeeded"}));
        assert_eq!(all[3].data["node_id"], "b");

        // Resuming after a seq, and paging.
        assert_eq!(
            seqs(&store.list_run_events(&run, 3, 100).await.unwrap()),
            [4, 5]
        );
        assert_eq!(
            seqs(&store.list_run_events(&run, 0, 2).await.unwrap()),
            [1, 2]
        );
        // The company stream is by global id.
        let company = store.list_company_events("acme", 0, 100).await.unwrap();
        assert_eq!(company, all);
        assert_eq!(
            store
                .list_company_events("acme", all[2].id, 100)
                .await
                .unwrap(),
            all[3..].to_vec()
        );
        assert!(
            store
                .list_company_events("globex", 0, 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

store_test!(
    a_step_that_lost_its_lease_appends_no_events,
    |store| async move {
        let run = accept_and_claim(&store, event("k1", "run-1", 0), "a", 1).await;
        let stale = StepCommit {
            events: vec![NewRunEvent::started()],
            ..step(&run, "b", QueueNext::Keep)
        };
        assert!(matches!(
            store.commit_step(stale).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            kinds(&store.list_run_events(&run, 0, 100).await.unwrap()),
            ["run.queued"]
        );
        // A replayed accept appends nothing either.
        store.accept_event(event("k1", "run-2", 0)).await.unwrap();
        assert_eq!(store.list_run_events(&run, 0, 100).await.unwrap().len(), 1);
        assert!(
            store
                .list_run_events("run-2", 0, 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

store_test!(
    concurrent_steps_of_many_runs_number_each_run_without_gaps,
    |store| async move {
        const RUNS: usize = 24;
        const STEPS: usize = 5;
        let accepts = (0..RUNS).map(|i| {
            let store = store.store().clone();
            async move {
                let company = if i % 2 == 0 { "acme" } else { "globex" };
                store
                    .accept_event(event_of(company, &format!("k{i}"), &format!("run-{i}"), 0))
                    .await
                    .unwrap();
            }
        });
        futures_join_all(accepts).await;
        let claimed = store.claim_runs("w", RUNS, LEASE, t(1)).await.unwrap();
        assert_eq!(claimed.len(), RUNS);
        // Each run's steps one after another (as a worker commits them),
        // the runs all at once: batches mix runs.
        let workers = claimed.into_iter().map(|run| {
            let store = store.store().clone();
            async move {
                for s in 0..STEPS {
                    let commit = StepCommit {
                        events: vec![
                            node_finished(&format!("n{s}a")),
                            node_finished(&format!("n{s}b")),
                        ],
                        ..step(&run, "w", QueueNext::Keep)
                    };
                    store.commit_step(commit).await.unwrap();
                }
            }
        });
        futures_join_all(workers).await;
        for i in 0..RUNS {
            let events = store
                .list_run_events(&format!("run-{i}"), 0, 1_000)
                .await
                .unwrap();
            let expected: Vec<i64> = (1..=i64::try_from(1 + 2 * STEPS).unwrap()).collect();
            assert_eq!(seqs(&events), expected, "run-{i}");
            // Within a run, ids follow seqs: the order events were committed.
            assert!(events.windows(2).all(|w| w[0].id < w[1].id));
            assert_eq!(events[1].data["node_id"], "n0a");
        }
        let acme = store.list_company_events("acme", 0, 10_000).await.unwrap();
        assert_eq!(acme.len(), RUNS / 2 * (1 + 2 * STEPS));
        assert!(acme.iter().all(|e| e.company_id == "acme"));
        assert!(acme.windows(2).all(|w| w[0].id < w[1].id));
    }
);

/// Joins futures without a dependency on `futures`: spawned tasks.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for handle in handles {
        handle.await.expect("task did not panic");
    }
}

store_test!(
    committed_events_are_published_on_the_feed,
    |store| async move {
        let mut feed = store.subscribe_run_events();
        let run = accept_and_claim(&store, event("k1", "run-1", 0), "a", 1).await;
        store
            .commit_step(StepCommit {
                events: vec![NewRunEvent::started()],
                ..step(&run, "a", QueueNext::Keep)
            })
            .await
            .unwrap();
        let mut published = Vec::new();
        while published.len() < 2 {
            let batch = tokio::time::timeout(Duration::from_secs(5), feed.recv())
                .await
                .expect("published in time")
                .expect("the feed is open");
            published.extend(batch.iter().cloned());
        }
        assert_eq!(
            published,
            store.list_run_events(&run, 0, 100).await.unwrap()
        );
        // A lost lease publishes nothing.
        let _ = store
            .commit_step(StepCommit {
                events: vec![NewRunEvent::started()],
                ..step(&run, "b", QueueNext::Keep)
            })
            .await;
        assert!(feed.try_recv().is_err());
    }
);

store_test!(
    runs_are_listed_newest_first_with_filters_and_keyset_pages,
    |store| async move {
        // run-0 … run-5 received at t(0) … t(5); run-1 on version 4, run-2
        // for globex, run-3 a service.
        for i in 0..6 {
            let mut e = event(&format!("k{i}"), &format!("run-{i}"), i);
            if i == 1 {
                e.rule_version = 4;
            }
            if i == 2 {
                e.company_id = "globex".into();
            }
            if i == 3 {
                e.event_type = "service".into();
            }
            store.accept_event(e).await.unwrap();
        }
        // Two runs created at the same instant: the run id breaks the tie.
        store.accept_event(event("k6", "run-6a", 5)).await.unwrap();
        // run-0 finishes.
        let claimed = store.claim_runs("a", 1, LEASE, t(10)).await.unwrap();
        assert_eq!(claimed, ["run-0"]);
        store
            .commit_step(StepCommit {
                status: RunStatus::Succeeded,
                finished_at: Some(t(11)),
                ..step("run-0", "a", QueueNext::Done)
            })
            .await
            .unwrap();

        let ids = |runs: Vec<moneyflow_core::ports::RunSummary>| -> Vec<String> {
            runs.into_iter().map(|r| r.run_id).collect()
        };
        let all = RunQuery {
            limit: 100,
            ..RunQuery::default()
        };
        assert_eq!(
            ids(store.list_runs(&all).await.unwrap()),
            [
                "run-6a", "run-5", "run-4", "run-3", "run-2", "run-1", "run-0"
            ]
        );
        let acme = RunQuery {
            company_id: Some("acme".into()),
            ..all.clone()
        };
        assert_eq!(
            ids(store.list_runs(&acme).await.unwrap()),
            ["run-6a", "run-5", "run-4", "run-3", "run-1", "run-0"]
        );
        let check = |query: RunQuery, expected: &'static [&'static str]| {
            let store = store.store().clone();
            async move {
                assert_eq!(
                    ids(store.list_runs(&query).await.unwrap()),
                    expected,
                    "{query:?}"
                );
            }
        };
        check(
            RunQuery {
                status: Some(RunStatus::Succeeded),
                ..acme.clone()
            },
            &["run-0"],
        )
        .await;
        check(
            RunQuery {
                rule_version: Some(4),
                ..acme.clone()
            },
            &["run-1"],
        )
        .await;
        check(
            RunQuery {
                event_type: Some("service".into()),
                ..acme.clone()
            },
            &["run-3"],
        )
        .await;
        check(
            RunQuery {
                created_after: Some(t(1)),
                created_before: Some(t(4)),
                ..acme.clone()
            },
            &["run-3", "run-1"],
        )
        .await;
        // Keyset: strictly older than (t(5), "run-6a"), then than (t(4), "run-4").
        check(
            RunQuery {
                before: Some((t(5), "run-6a".into())),
                limit: 2,
                ..acme.clone()
            },
            &["run-5", "run-4"],
        )
        .await;
        check(
            RunQuery {
                before: Some((t(4), "run-4".into())),
                limit: 2,
                ..acme.clone()
            },
            &["run-3", "run-1"],
        )
        .await;

        let summary = store.get_run_summary("run-0").await.unwrap().unwrap();
        assert_eq!(summary.status, RunStatus::Succeeded);
        assert_eq!(summary.created_at, t(0));
        assert_eq!(summary.finished_at, Some(t(11)));
        assert_eq!(summary.redrive_count, 0);
        assert_eq!(store.get_run_summary("nope").await.unwrap(), None);
    }
);

store_test!(
    queue_stats_count_due_runs_and_the_oldest,
    |store| async move {
        assert_eq!(
            store.queue_stats(t(0)).await.unwrap(),
            QueueStats::default()
        );
        for i in 0..3 {
            store
                .accept_event(event(&format!("k{i}"), &format!("run-{i}"), i))
                .await
                .unwrap();
        }
        // run-0 leased, run-1 and run-2 waiting (due at t(1), t(2)).
        assert_eq!(
            store.claim_runs("a", 1, LEASE, t(10)).await.unwrap(),
            ["run-0"]
        );
        let stats = store.queue_stats(t(10)).await.unwrap();
        assert_eq!(
            stats,
            QueueStats {
                depth: 3,
                due: 2,
                oldest_due_at: Some(t(1)),
            }
        );
        // Before run-2 is due, only run-1 waits.
        assert_eq!(store.queue_stats(t(1)).await.unwrap().due, 1);
    }
);

store_test!(
    a_failed_run_is_redriven_once_with_its_event,
    |store| async move {
        let run = accept_and_claim(&store, event("k1", "run-1", 0), "a", 1).await;
        store
            .commit_step(StepCommit {
                status: RunStatus::Failed,
                nodes: nodes(),
                finished_at: Some(t(2)),
                events: vec![NewRunEvent::finished(RunStatus::Failed)],
                ..step(&run, "a", QueueNext::Done)
            })
            .await
            .unwrap();
        let mut reset = nodes();
        reset.insert("zeta".into(), json!({"state": "pending", "attempts": 0}));
        let redrive = Redrive {
            run_id: run.clone(),
            nodes: reset.clone(),
            data: json!({"failed_nodes": ["zeta"]}),
            now: t(3),
        };
        let summary = store.redrive_run(redrive.clone()).await.unwrap();
        assert_eq!(summary.status, RunStatus::Queued);
        assert_eq!(summary.redrive_count, 1);
        assert_eq!(summary.finished_at, None);
        assert_eq!(summary.started_at, Some(t(1)), "the first start is kept");

        let record = store.get_run(&run).await.unwrap().unwrap();
        assert_eq!(record.nodes, reset);
        let events = store.list_run_events(&run, 0, 100).await.unwrap();
        assert_eq!(
            kinds(&events),
            ["run.queued", "run.finished", "run.redriven"]
        );
        assert_eq!(seqs(&events), [1, 2, 3]);
        assert_eq!(events[2].data, json!({"failed_nodes": ["zeta"]}));

        // Queued again, due at t(3).
        assert!(
            store
                .claim_runs("b", 10, LEASE, t(2))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.claim_runs("b", 10, LEASE, t(3)).await.unwrap(),
            [run.as_str()]
        );

        // Only a failed run: a second redrive is a conflict, a missing run not found.
        let err = store.redrive_run(redrive.clone()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(ref what) if what.contains("queued")),
            "{err:?}"
        );
        let err = store
            .redrive_run(Redrive {
                run_id: "ghost".into(),
                ..redrive
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert_eq!(store.list_run_events(&run, 0, 100).await.unwrap().len(), 3);
    }
);

store_test!(
    concurrent_redrives_of_one_run_redrive_it_once,
    |store| async move {
        let run = accept_and_claim(&store, event("k1", "run-1", 0), "a", 1).await;
        store
            .commit_step(StepCommit {
                status: RunStatus::Failed,
                ..step(&run, "a", QueueNext::Done)
            })
            .await
            .unwrap();
        let attempts = (0..8).map(|_| {
            let store = store.store().clone();
            let run = run.clone();
            tokio::spawn(async move {
                store
                    .redrive_run(Redrive {
                        run_id: run,
                        nodes: Map::new(),
                        data: json!({}),
                        now: t(2),
                    })
                    .await
            })
        });
        let mut won = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            match attempt.await.unwrap() {
                Ok(_) => won += 1,
                Err(StoreError::Conflict(_)) => {}
                // SQLite's write lock may time out under contention: not a
                // second redrive either.
                Err(StoreError::Unavailable(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(won, 1);
        let summary = store.get_run_summary(&run).await.unwrap().unwrap();
        assert_eq!(summary.redrive_count, 1);
        assert_eq!(
            kinds(&store.list_run_events(&run, 0, 100).await.unwrap()),
            ["run.queued", "run.redriven"]
        );
    }
);
