//! `/companies…` and API keys.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

backend_test!(
    async fn create_list_and_get_companies(app) {
        let response = app.create_company(&json!({"id": "acme", "name": "Acme Books"})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let acme = json_body(response).await;
        assert_eq!(acme["id"], "acme");
        assert_eq!(acme["name"], "Acme Books");
        assert!(acme["created_at"].is_string());

        // Without an id, a UUID v4 is generated.
        let generated = json_body(app.create_company(&json!({"name": "Globex"})).await).await;
        let id = generated["id"].as_str().unwrap();
        let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 4);

        let list = json_body(app.get_as("/companies", Some(&app.admin_token)).await).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        let read = json_body(app.get_as("/companies/acme", Some(&app.admin_token)).await).await;
        assert_eq!(read, acme);
        assert_problem(app.get_as("/companies/nobody", Some(&app.admin_token)).await, StatusCode::NOT_FOUND).await;
    }
);

backend_test!(
    async fn duplicate_company_id_is_409(app) {
        assert_eq!(app.create_company(&json!({"id": "acme", "name": "A"})).await.status(), StatusCode::CREATED);
        let problem = assert_problem(app.create_company(&json!({"id": "acme", "name": "B"})).await, StatusCode::CONFLICT).await;
        assert!(problem["detail"].as_str().unwrap().contains("acme"), "{problem}");
        assert_eq!(problem["retryable"], false);
    }
);

backend_test!(
    async fn bad_company_fields_are_422_naming_each_field(app) {
        let problem = assert_problem(
            app.create_company(&json!({"id": "has space", "name": ""})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let paths = error_paths(&problem);
        assert!(paths.contains(&"id".to_owned()) && paths.contains(&"name".to_owned()), "{problem}");
        assert!(error_at(&problem, "id")["hint"].as_str().unwrap().contains("letter"), "{problem}");

        let problem = assert_problem(app.create_company(&json!({})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_at(&problem, "name")["code"], "missing");

        let problem = assert_problem(
            app.create_company(&json!({"name": "x".repeat(201)})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error_at(&problem, "name")["message"].as_str().unwrap().contains("200"), "{problem}");

        let problem = assert_problem(
            app.create_company(&json!({"name": "A", "nmae": "typo"})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_at(&problem, "nmae")["allowed"], json!(["name", "id"]));

        let problem = assert_problem(
            app.create_company(&json!({"name": "A", "id": "x".repeat(129)})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_paths(&problem), ["id"]);
        assert_problem(app.create_company(&json!(["a"])).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
);

backend_test!(
    async fn api_keys_are_shown_once_listed_without_material_and_revocable(app) {
        app.create_company(&json!({"id": "acme", "name": "Acme"})).await;
        let response = app.create_api_key("acme", Some(&json!({"label": "checkout"}))).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created = json_body(response).await;
        let key = created["key"].as_str().unwrap();
        let id = created["id"].as_str().unwrap();
        assert!(key.starts_with("mfk_") && key.len() == 44, "{key}");
        assert!(key[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(id.starts_with("key_") && id.len() == 20, "{id}");
        assert_eq!(created["prefix"], &key[..12]);
        assert_eq!(created["label"], "checkout");
        assert!(created["created_at"].is_string());

        // Without a body: no label.
        let unlabelled = json_body(app.create_api_key("acme", None).await).await;
        assert_eq!(unlabelled["label"], serde_json::Value::Null);
        assert_ne!(unlabelled["key"], created["key"]);

        let response = app.list_api_keys("acme").await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        assert!(!text.contains(key), "key material listed: {text}");
        let list: serde_json::Value = serde_json::from_str(&text).unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(|item| item.get("key").is_none()));

        assert_eq!(app.revoke_api_key("acme", id).await.status(), StatusCode::NO_CONTENT);
        assert_problem(app.revoke_api_key("acme", "key_doesnotexist000").await, StatusCode::NOT_FOUND).await;
        assert_problem(app.revoke_api_key("globex", id).await, StatusCode::NOT_FOUND).await;
    }
);

backend_test!(
    async fn api_keys_of_a_missing_company_are_404_and_bad_labels_422(app) {
        assert_problem(app.create_api_key("nobody", None).await, StatusCode::NOT_FOUND).await;
        assert_problem(app.list_api_keys("nobody").await, StatusCode::NOT_FOUND).await;
        app.create_company(&json!({"id": "acme", "name": "Acme"})).await;
        let problem = assert_problem(
            app.create_api_key("acme", Some(&json!({"label": 5}))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_paths(&problem), ["label"]);
        let problem = assert_problem(
            app.create_api_key("acme", Some(&json!({"lable": "x"}))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_paths(&problem), ["lable"]);
    }
);
