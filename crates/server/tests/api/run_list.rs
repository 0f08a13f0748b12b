//! `GET /runs`: filters, keyset paging that new runs never disturb, and
//! company isolation.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Posts a demo payment for `company_id` (with `extra` fields); returns its run id.
async fn pay(app: &TestApp, company_id: &str, key: &str, extra: Value) -> String {
    let mut event = book_payment(company_id);
    for (name, value) in extra.as_object().unwrap() {
        event[name] = value.clone();
    }
    let response = app.post_payment(&event, Some(key)).await;
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["run_id"].as_str().unwrap().to_owned()
}

async fn page(app: &TestApp, query: &str, key: &str) -> Value {
    let response = app.get_as(&format!("/runs{query}"), Some(key)).await;
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect()
}

backend_test!(
    async fn paging_while_new_runs_arrive_lists_each_older_run_once(app) {
        let key = app.company_with_demo_rules("acme").await;
        let mut old = Vec::new();
        for _ in 0..7 {
            old.push(pay(&app, "acme", &key, json!({})).await);
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let query = match &cursor {
                Some(cursor) => format!("?limit=3&cursor={cursor}"),
                None => "?limit=3".to_owned(),
            };
            let body = page(&app, &query, &key).await;
            seen.extend(ids(&body));
            pages += 1;
            // New runs between page fetches.
            pay(&app, "acme", &key, json!({})).await;
            pay(&app, "acme", &key, json!({})).await;
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let mut newest_first = old.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first, "each older run exactly once, newest first");

        // The first page now starts with the newest run.
        let first = page(&app, "?limit=1", &key).await;
        assert_eq!(first["items"].as_array().unwrap().len(), 1);
        assert!(!old.contains(&ids(&first)[0]));
        let item = &first["items"][0];
        for field in ["run_id", "company_id", "event_id", "event_type", "rule_version", "status", "created_at", "started_at", "finished_at"] {
            assert!(item.get(field).is_some(), "{field} in {item}");
        }
    }
);

backend_test!(
    async fn filters_select_by_status_type_version_and_time(app) {
        let key = app.company_with_demo_rules("acme").await;
        let product = pay(&app, "acme", &key, json!({})).await;
        let service = pay(&app, "acme", &key, json!({"type": "service", "service": {"id": "s"}})).await;
        app.wait_for_run(&product, &key).await;
        app.wait_for_run(&service, &key).await;
        let response = app.save_rules(&demo_rules("acme")).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let v2 = pay(&app, "acme", &key, json!({})).await;
        let v2_run = app.wait_for_run(&v2, &key).await;

        assert_eq!(ids(&page(&app, "?event_type=service", &key).await), [service.as_str()]);
        assert_eq!(ids(&page(&app, "?rule_version=2", &key).await), [v2.as_str()]);
        assert_eq!(ids(&page(&app, "?rule_version=1&event_type=product", &key).await), [product.as_str()]);
        assert_eq!(ids(&page(&app, "?status=succeeded", &key).await).len(), 3);
        assert!(ids(&page(&app, "?status=failed", &key).await).is_empty());

        let listed = page(&app, "", &key).await;
        let created = |run_id: &str| -> String {
            listed["items"].as_array().unwrap().iter().find(|r| r["run_id"] == run_id).unwrap()["created_at"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(v2_run["created_at"].as_str().unwrap(), created(&v2));
        let after = created(&service).replace('+', "%2B");
        assert_eq!(ids(&page(&app, &format!("?created_after={after}"), &key).await), [v2.clone(), service.clone()]);
        assert_eq!(ids(&page(&app, &format!("?created_before={after}"), &key).await), [product.as_str()]);
    }
);

backend_test!(
    async fn a_company_key_lists_its_own_runs_only(app) {
        let acme = app.company_with_demo_rules("acme").await;
        let globex = app.company_with_demo_rules("globex").await;
        let a1 = pay(&app, "acme", &acme, json!({})).await;
        let g1 = pay(&app, "globex", &globex, json!({})).await;
        let a2 = pay(&app, "acme", &acme, json!({})).await;

        assert_eq!(ids(&page(&app, "", &acme).await), [a2.clone(), a1.clone()]);
        assert_eq!(ids(&page(&app, "?company_id=acme", &acme).await), [a2.clone(), a1.clone()]);
        assert_eq!(ids(&page(&app, "", &globex).await), [g1.as_str()]);
        // Another company's id: the same 404 as a missing company.
        let problem = assert_problem(app.get_as("/runs?company_id=globex", Some(&acme)).await, StatusCode::NOT_FOUND).await;
        assert!(problem["detail"].as_str().unwrap().contains("globex"));
        assert_problem(app.get_as("/runs", None).await, StatusCode::UNAUTHORIZED).await;

        // The admin: one company, or every company.
        let admin = app.admin_token.clone();
        assert_eq!(ids(&page(&app, "?company_id=globex", &admin).await), [g1.as_str()]);
        let all: BTreeSet<String> = ids(&page(&app, "", &admin).await).into_iter().collect();
        assert_eq!(all, BTreeSet::from([a1, a2, g1]));
        assert_problem(app.get_as("/runs?company_id=ghost", Some(&admin)).await, StatusCode::NOT_FOUND).await;
    }
);

backend_test!(
    async fn bad_query_parameters_are_400s_that_say_what_is_allowed(app) {
        let key = app.company_with_demo_rules("acme").await;
        let problem = assert_problem(
            app.get_as("/runs?status=done&limit=0&cursor=xyz&colour=red&rule_version=v1", Some(&key)).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        let mut paths = error_paths(&problem);
        paths.sort();
        assert_eq!(paths, ["colour", "cursor", "limit", "rule_version", "status"]);
        assert_eq!(
            error_at(&problem, "status")["allowed"],
            json!(["queued", "running", "succeeded", "failed", "aborted"])
        );
        assert!(error_at(&problem, "limit")["message"].as_str().unwrap().contains("1 to 500"));
        assert!(error_at(&problem, "colour")["allowed"].as_array().unwrap().contains(&json!("cursor")));
        for query in ["?limit=501", "?limit=ten", "?event_type=gift", "?created_after=yesterday", "?status=queued&status=failed"] {
            assert_problem(app.get_as(&format!("/runs{query}"), Some(&key)).await, StatusCode::BAD_REQUEST).await;
        }
        assert_eq!(page(&app, "?limit=500", &key).await["next_cursor"], Value::Null);
    }
);
