//! Who may do what: the admin token, company keys, revocation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

/// Every route that needs credentials, with a body where it takes one.
fn protected_routes() -> Vec<(Method, &'static str)> {
    vec![
        (Method::POST, "/payment-rules"),
        (Method::POST, "/payment-rules/"),
        (Method::POST, "/payment-rules/validate"),
        (Method::GET, "/payment-rules/acme"),
        (Method::GET, "/payment-rules/acme/versions"),
        (Method::GET, "/payment-rules/acme/versions/1"),
        (Method::GET, "/tasks"),
        (Method::POST, "/companies"),
        (Method::GET, "/companies"),
        (Method::GET, "/companies/acme"),
        (Method::POST, "/companies/acme/api-keys"),
        (Method::GET, "/companies/acme/api-keys"),
        (Method::DELETE, "/companies/acme/api-keys/key_x"),
        (Method::POST, "/companies/acme/signing-secrets"),
        (Method::GET, "/companies/acme/signing-secrets"),
        (Method::POST, "/payment"),
        (Method::GET, "/runs/run_x"),
    ]
}

backend_test!(
    async fn no_credentials_or_bad_ones_get_401_on_every_protected_route(app) {
        for (method, path) in protected_routes() {
            for token in [None, Some("mfk_not_a_real_key"), Some("wrong")] {
                let response = app
                    .request(method.clone(), path, token)
                    .json(&simple_rules("acme"))
                    .send()
                    .await
                    .expect("request");
                let www_authenticate =
                    response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
                let problem = assert_problem(response, StatusCode::UNAUTHORIZED).await;
                assert!(
                    www_authenticate.as_deref().is_some_and(|v| v.starts_with("Bearer")),
                    "{method} {path}: {www_authenticate:?}"
                );
                assert_eq!(problem["type"], "urn:moneyflow:problem:unauthorized");
            }
        }
        // A malformed scheme is refused too.
        let response = app.client.get(app.url("/tasks")).header("authorization", "Basic YWRtaW4=").send().await.unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED).await;
    }
);

backend_test!(
    async fn a_company_key_sees_another_companys_rules_as_missing(app) {
        let (_, acme_key) = app.company_with_key("acme").await;
        app.company_with_key("globex").await;
        assert_eq!(app.save_rules(&simple_rules("globex")).await.status(), StatusCode::CREATED);

        // Another company's existing rules and a company with none answer alike.
        let other = assert_problem(app.get_rules_as("globex", Some(&acme_key)).await, StatusCode::NOT_FOUND).await;
        let missing = assert_problem(app.get_rules_as("initech", Some(&acme_key)).await, StatusCode::NOT_FOUND).await;
        assert_eq!(
            other["detail"].as_str().unwrap().replace("globex", "X"),
            missing["detail"].as_str().unwrap().replace("initech", "X")
        );
        for path in ["/payment-rules/globex/versions", "/payment-rules/globex/versions/1", "/companies/globex"] {
            let response = app.get_as(path, Some(&acme_key)).await;
            assert_problem(response, StatusCode::NOT_FOUND).await;
        }
        // Saving for another company: 404 too, and nothing saved.
        let response = app.save_rules_as(&simple_rules("globex"), Some(&acme_key)).await;
        assert_problem(response, StatusCode::NOT_FOUND).await;
        let versions = json_body(app.list_versions("globex").await).await;
        assert_eq!(versions["items"].as_array().unwrap().len(), 1);
        // Nor can a key create a company by saving rules for it.
        let response = app.save_rules_as(&simple_rules("initech"), Some(&acme_key)).await;
        assert_problem(response, StatusCode::NOT_FOUND).await;
        assert_problem(app.get_as("/companies/initech", Some(&app.admin_token)).await, StatusCode::NOT_FOUND).await;

        // Its own company it may read; validation of any rule set is allowed.
        assert_eq!(app.get_as("/companies/acme", Some(&acme_key)).await.status(), StatusCode::OK);
        let response = app.post_json_as("/payment-rules/validate", &simple_rules("globex"), Some(&acme_key)).await;
        assert_eq!(json_body(response).await["valid"], true);
        assert_eq!(app.get_as("/tasks", Some(&acme_key)).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn a_company_key_gets_403_on_admin_routes(app) {
        let (key_id, key) = app.company_with_key("acme").await;
        let attempts = [
            (Method::POST, "/companies".to_owned()),
            (Method::GET, "/companies".to_owned()),
            (Method::POST, "/companies/acme/api-keys".to_owned()),
            (Method::GET, "/companies/acme/api-keys".to_owned()),
            (Method::DELETE, format!("/companies/acme/api-keys/{key_id}")),
        ];
        for (method, path) in attempts {
            let response = app
                .request(method.clone(), &path, Some(&key))
                .json(&json!({"name": "Evil", "id": "evil"}))
                .send()
                .await
                .unwrap();
            let problem = assert_problem(response, StatusCode::FORBIDDEN).await;
            assert!(problem["detail"].as_str().unwrap().contains("admin"), "{method} {path}: {problem}");
        }
        assert_problem(app.get_as("/companies/evil", Some(&app.admin_token)).await, StatusCode::NOT_FOUND).await;
        // The key still works: the DELETE above did nothing.
        assert_eq!(app.get_as("/companies/acme", Some(&key)).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn a_revoked_key_gets_401(app) {
        let (key_id, key) = app.company_with_key("acme").await;
        assert_eq!(app.get_as("/companies/acme", Some(&key)).await.status(), StatusCode::OK);
        assert_eq!(app.revoke_api_key("acme", &key_id).await.status(), StatusCode::NO_CONTENT);
        assert_problem(app.get_as("/companies/acme", Some(&key)).await, StatusCode::UNAUTHORIZED).await;
        assert_problem(app.save_rules_as(&simple_rules("acme"), Some(&key)).await, StatusCode::UNAUTHORIZED).await;
    }
);

backend_test!(
    async fn the_admin_may_use_every_route(app) {
        assert_eq!(app.create_company(&json!({"id": "acme", "name": "Acme"})).await.status(), StatusCode::CREATED);
        assert_eq!(app.get_as("/companies", Some(&app.admin_token)).await.status(), StatusCode::OK);
        assert_eq!(app.get_as("/companies/acme", Some(&app.admin_token)).await.status(), StatusCode::OK);
        let key = json_body(app.create_api_key("acme", None).await).await;
        assert_eq!(app.list_api_keys("acme").await.status(), StatusCode::OK);
        assert_eq!(app.save_rules(&simple_rules("acme")).await.status(), StatusCode::CREATED);
        assert_eq!(app.get_rules("acme").await.status(), StatusCode::OK);
        assert_eq!(app.list_versions("acme").await.status(), StatusCode::OK);
        assert_eq!(app.get_version("acme", "1").await.status(), StatusCode::OK);
        assert_eq!(app.validate_rules(&simple_rules("acme")).await.status(), StatusCode::OK);
        assert_eq!(app.list_tasks().await.status(), StatusCode::OK);
        let key_id = key["id"].as_str().unwrap();
        assert_eq!(app.revoke_api_key("acme", key_id).await.status(), StatusCode::NO_CONTENT);
    }
);

#[test]
fn debug_of_config_and_secrets_is_redacted() {
    use moneyflow_server::config::Config;
    use moneyflow_server::secret::SecretString;

    let config = Config {
        admin_token: Some(SecretString::new("mfa_very_secret")),
        ..Config::default()
    };
    let debug = format!("{config:?}");
    assert!(debug.contains("[redacted]"), "{debug}");
    assert!(!debug.contains("very_secret"), "{debug}");
    assert_eq!(format!("{:?}", SecretString::new("x")), "[redacted]");
}
