//! Bounded work and bounded answers for hostile input: problems per answer,
//! numbers out of range.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::helpers::*;

/// A rule-set body with `n` unknown top-level fields.
fn with_unknown_fields(n: usize, mut body: Value) -> String {
    let object = body.as_object_mut().expect("an object");
    for i in 0..n {
        object.insert(format!("f{i}"), json!(1));
    }
    body.to_string()
}

async fn post_raw(app: &TestApp, path: &str, body: String) -> reqwest::Response {
    app.request(Method::POST, path, Some(&app.admin_token))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

backend_test!(
    async fn a_body_with_50000_unknown_fields_gets_a_small_answer(app) {
        let body = with_unknown_fields(50_000, json!({"company_id": "acme", "rules": []}));

        // A save: a 422 listing 100 problems and counting the rest.
        let response = post_raw(&app, "/payment-rules", body.clone()).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = response.text().await.unwrap();
        assert!(text.len() < 64 * 1024, "the answer is {} bytes", text.len());
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["errors"].as_array().unwrap().len(), 100);
        assert_eq!(problem["errors_omitted"], 49_900);
        assert_eq!(problem["errors"][0]["code"], "unknown_field");
        assert!(problem["detail"].as_str().unwrap().contains("50000 problems"), "{}", problem["detail"]);

        // A validation: 200, the same bound on `problems`.
        let response = post_raw(&app, "/payment-rules/validate", body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        assert!(text.len() < 64 * 1024, "the answer is {} bytes", text.len());
        let result: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(result["valid"], false);
        assert_eq!(result["problems"].as_array().unwrap().len(), 100);
        assert_eq!(result["problems_omitted"], 49_900);

        // The shared body field checks (simulate's `event`/`rules`) too.
        app.create_company(&json!({"id": "acme", "name": "Acme"})).await;
        let body = with_unknown_fields(50_000, json!({"event": book_payment("acme")}));
        let response = post_raw(&app, "/payment-rules/acme/simulate", body).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = response.text().await.unwrap();
        assert!(text.len() < 64 * 1024, "the answer is {} bytes", text.len());
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["errors"].as_array().unwrap().len(), 100);
        assert_eq!(problem["errors_omitted"], 49_900);
    }
);

backend_test!(
    async fn a_valid_rule_set_has_no_omitted_count(app) {
        let result = json_body(app.validate_rules(&simple_rules("acme")).await).await;
        assert_eq!(result["valid"], true);
        assert!(result.get("problems_omitted").is_none(), "{result}");
        let problem = assert_problem(
            app.save_rules(&json!({"company_id": "acme", "rules": [{"node_type": "nope"}]})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(problem.get("errors_omitted").is_none(), "{problem}");
    }
);

/// The limit is the server's `--max-problems`.
#[tokio::test]
async fn the_problem_limit_is_the_configured_one() {
    let app = spawn_app_with_config(Backend::Sqlite, |config| config.max_problems = 3).await;
    let body = with_unknown_fields(10, json!({"company_id": "acme", "rules": []}));
    let problem = assert_problem(
        post_raw(&app, "/payment-rules", body.clone()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3);
    assert_eq!(problem["errors_omitted"], 7);
    let result = json_body(post_raw(&app, "/payment-rules/validate", body).await).await;
    assert_eq!(result["problems"].as_array().unwrap().len(), 3);
    assert_eq!(result["problems_omitted"], 7);
}

backend_test!(
    async fn numbers_out_of_range_are_refused(app) {
        // A rule set: refused at the number's path, nothing saved.
        let mut rules = simple_rules("acme");
        rules["rules"][0]["ui"] = json!({"x": 0, "y": 0});
        let body = rules.to_string().replace(r#""x":0"#, r#""x":1e999999"#);
        assert!(body.contains("1e999999"));
        let response = post_raw(&app, "/payment-rules", body).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let error = error_at(&problem, "rules[0].ui.x");
        assert_eq!(error["code"], "number_out_of_range");
        assert_problem(app.get_rules("acme").await, StatusCode::NOT_FOUND).await;

        // A validation, and a value that rounds to zero.
        let body = simple_rules("acme").to_string().replace(r#"["product"]"#, r#"[1e-999999]"#);
        let response = post_raw(&app, "/payment-rules/validate", body).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_at(&problem, "rules[0].expect[0].value[0]")["code"], "number_out_of_range");

        // A payment event: refused, no run, and the number is not echoed whole.
        assert_eq!(app.save_rules(&simple_rules("acme")).await.status(), StatusCode::CREATED);
        let mut event = book_payment("acme");
        event["extra"] = json!({"n": 0});
        let body = event.to_string().replace(r#""n":0"#, &format!(r#""n":1{}"#, "0".repeat(400)));
        let response = app
            .request(Method::POST, "/payment", Some(&app.admin_token))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let error = error_at(&problem, "extra.n");
        assert_eq!(error["code"], "number_out_of_range");
        assert!(!problem.to_string().contains(&"0".repeat(100)), "{problem}");
        assert_eq!(app.count_rows("runs", "acme").await, 0);

        // Ordinary numbers still pass.
        let mut ok = Map::new();
        ok.insert("x".into(), json!(12.5));
        ok.insert("y".into(), json!(-3));
        let mut rules = simple_rules("acme");
        rules["rules"][0]["ui"] = Value::Object(ok);
        assert_eq!(app.save_rules(&rules).await.status(), StatusCode::CREATED);
    }
);
