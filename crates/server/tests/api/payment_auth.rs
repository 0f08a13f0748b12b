//! Who may post a payment: company keys for their own company, the admin
//! for any existing company, and Standard Webhooks signatures made with the
//! company's signing secret (with rotation).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// A payment body as text, with its own event id.
fn signed_body(company_id: &str, event_id: &str) -> String {
    let mut event = book_payment(company_id);
    event["event_id"] = json!(event_id);
    event.to_string()
}

backend_test!(
    async fn a_payment_without_credentials_is_401(app) {
        app.company_with_demo_rules("shop").await;
        let response = app.post_payment(&book_payment("shop"), None).await;
        let www_authenticate = response.headers().get("www-authenticate").cloned();
        let problem = assert_problem(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(problem["type"], "urn:moneyflow:problem:unauthorized");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("Bearer") && detail.contains("webhook-signature"), "{detail}");
        assert!(www_authenticate.is_some());

        let problem = assert_problem(app.post_payment(&book_payment("shop"), Some("mfk_unknown")).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(problem["type"], "urn:moneyflow:problem:unauthorized");
        assert_eq!(app.count_rows("events", "shop").await, 0);
    }
);

backend_test!(
    async fn a_company_key_posts_only_for_its_own_company(app) {
        let acme_key = app.company_with_demo_rules("acme").await;
        app.company_with_demo_rules("globex").await;

        // Another company's id and an id that exists nowhere answer alike.
        let other = assert_problem(app.post_payment(&book_payment("globex"), Some(&acme_key)).await, StatusCode::NOT_FOUND).await;
        let missing = assert_problem(app.post_payment(&book_payment("nobody"), Some(&acme_key)).await, StatusCode::NOT_FOUND).await;
        assert_eq!(other["type"], missing["type"]);
        assert_eq!(
            other["detail"].as_str().unwrap().replace("globex", "X"),
            missing["detail"].as_str().unwrap().replace("nobody", "X")
        );
        assert_eq!(app.count_rows("events", "globex").await, 0);

        // Its own company: accepted.
        assert_eq!(app.post_payment(&book_payment("acme"), Some(&acme_key)).await.status(), StatusCode::ACCEPTED);
    }
);

backend_test!(
    async fn the_admin_posts_for_any_existing_company(app) {
        app.company_with_demo_rules("shop").await;
        let response = app.post_payment(&book_payment("shop"), Some(&app.admin_token)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body = json_body(response).await;
        let run = app.wait_for_run(body["run_id"].as_str().unwrap(), &app.admin_token).await;
        assert_eq!(run["status"], "succeeded");

        let problem = assert_problem(app.post_payment(&book_payment("nobody"), Some(&app.admin_token)).await, StatusCode::NOT_FOUND).await;
        assert!(problem["detail"].as_str().unwrap().contains("nobody"), "{problem}");
    }
);

backend_test!(
    async fn a_valid_standard_webhooks_signature_is_accepted(app) {
        let key = app.company_with_demo_rules("shop").await;
        let secret = app.new_signing_secret("shop").await;
        let body = signed_body("shop", "wh-1");
        let now = unix_now();
        let response = app.post_signed_payment(&body, "msg_1", now, &sign_webhook(&secret, "msg_1", now, &body)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let accepted = json_body(response).await;
        assert_eq!(accepted["event_id"], "wh-1");
        let run = app.wait_for_run(accepted["run_id"].as_str().unwrap(), &key).await;
        assert_eq!(run["status"], "succeeded");

        // A redelivery (same webhook-id, a fresh timestamp and signature) is a replay.
        let later = now + 1;
        let response = app.post_signed_payment(&body, "msg_1", later, &sign_webhook(&secret, "msg_1", later, &body)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()["idempotent-replayed"], "true");
        assert_eq!(json_body(response).await, accepted);
    }
);

backend_test!(
    async fn a_webhook_without_an_event_id_is_deduplicated_by_its_webhook_id(app) {
        app.company_with_demo_rules("shop").await;
        let secret = app.new_signing_secret("shop").await;
        let body = book_payment("shop").to_string();
        let now = unix_now();
        let first = app.post_signed_payment(&body, "msg_9", now, &sign_webhook(&secret, "msg_9", now, &body)).await;
        assert_eq!(first.status(), StatusCode::ACCEPTED);
        let first = json_body(first).await;
        let again = app.post_signed_payment(&body, "msg_9", now + 2, &sign_webhook(&secret, "msg_9", now + 2, &body)).await;
        assert_eq!(again.status(), StatusCode::ACCEPTED);
        assert_eq!(json_body(again).await, first);
        assert_eq!(app.count_rows("runs", "shop").await, 1);
    }
);

backend_test!(
    async fn a_replayed_signed_webhook_with_a_new_idempotency_key_gets_the_first_answer(app) {
        app.company_with_demo_rules("shop").await;
        let secret = app.new_signing_secret("shop").await;
        let now = unix_now();
        // A captured request, replayed as is but for the unsigned header.
        let replay = |id: &'static str, body: String, key: String| {
            let signature = sign_webhook(&secret, id, now, &body);
            app.client
                .post(app.url("/payment"))
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", now.to_string())
                .header("webhook-signature", signature)
                .header("idempotency-key", key)
                .body(body)
                .send()
        };
        // With an `event_id` in the body and without one.
        let messages = [("msg_cap", signed_body("shop", "wh-cap")), ("msg_cap_2", book_payment("shop").to_string())];
        for (id, body) in messages {
            let first = replay(id, body.clone(), "key-0".to_owned()).await.expect("request");
            assert_eq!(first.status(), StatusCode::ACCEPTED);
            let first = json_body(first).await;
            for i in 1..4 {
                let again = replay(id, body.clone(), format!("key-{i}")).await.expect("request");
                assert_eq!(again.status(), StatusCode::ACCEPTED, "{id}, replay {i}");
                assert_eq!(again.headers()["idempotent-replayed"], "true");
                assert_eq!(json_body(again).await, first);
            }
        }
        assert_eq!(app.count_rows("events", "shop").await, 2);
        assert_eq!(app.count_rows("runs", "shop").await, 2);
    }
);

backend_test!(
    async fn a_bad_or_stale_signature_is_401_saying_why(app) {
        app.company_with_demo_rules("shop").await;
        let secret = app.new_signing_secret("shop").await;
        let body = signed_body("shop", "wh-2");
        let now = unix_now();

        // Signed with another secret.
        let wrong = "whsec_c29tZSBvdGhlciBzZWNyZXQgb2YgMzIgYnl0ZXMhIQ==";
        let response = app.post_signed_payment(&body, "msg_2", now, &sign_webhook(wrong, "msg_2", now, &body)).await;
        let problem = assert_problem(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(problem["type"], "urn:moneyflow:problem:invalid-signature");
        assert!(problem["detail"].as_str().unwrap().contains("no matching signature"), "{problem}");
        assert!(!problem.to_string().contains(&secret[6..]), "never the secret");

        // Signed correctly, then the body changed in transit.
        let signature = sign_webhook(&secret, "msg_2", now, &body);
        let tampered = body.replace("120.00", "1.00");
        let problem = assert_problem(app.post_signed_payment(&tampered, "msg_2", now, &signature).await, StatusCode::UNAUTHORIZED).await;
        assert!(problem["detail"].as_str().unwrap().contains("no matching signature"), "{problem}");

        // Older than five minutes, even with a correct signature.
        let old = now - 6 * 60;
        let response = app.post_signed_payment(&body, "msg_2", old, &sign_webhook(&secret, "msg_2", old, &body)).await;
        let problem = assert_problem(response, StatusCode::UNAUTHORIZED).await;
        assert!(problem["detail"].as_str().unwrap().contains("stale timestamp"), "{problem}");

        // A missing header is named.
        let response = app
            .client
            .post(app.url("/payment"))
            .header("content-type", "application/json")
            .header("webhook-id", "msg_2")
            .header("webhook-signature", signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::UNAUTHORIZED).await;
        assert!(problem["detail"].as_str().unwrap().contains("webhook-timestamp"), "{problem}");

        // A company that does not exist (or has no secret) fails like a wrong signature.
        let nobody = signed_body("nobody", "wh-3");
        let response = app.post_signed_payment(&nobody, "msg_3", now, &sign_webhook(&secret, "msg_3", now, &nobody)).await;
        let problem = assert_problem(response, StatusCode::UNAUTHORIZED).await;
        assert!(problem["detail"].as_str().unwrap().contains("no matching signature"), "{problem}");

        assert_eq!(app.count_rows("events", "shop").await, 0, "nothing was stored");
    }
);

backend_test!(
    async fn after_a_rotation_old_and_new_secrets_both_verify(app) {
        app.company_with_demo_rules("shop").await;
        let old_secret = app.new_signing_secret("shop").await;
        let response = app.create_signing_secret("shop", None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created = json_body(response).await;
        let new_secret = created["secret"].as_str().unwrap().to_owned();
        assert_ne!(old_secret, new_secret);
        let now = unix_now();

        for (i, secret) in [&old_secret, &new_secret].into_iter().enumerate() {
            let body = signed_body("shop", &format!("rot-{i}"));
            let id = format!("msg_rot_{i}");
            let response = app.post_signed_payment(&body, &id, now, &sign_webhook(secret, &id, now, &body)).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED, "secret {i}");
        }

        // Two signatures, the first wrong: any match is enough.
        let body = signed_body("shop", "rot-both");
        let wrong = sign_webhook("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "msg_both", now, &body);
        let right = sign_webhook(&new_secret, "msg_both", now, &body);
        let response = app.post_signed_payment(&body, "msg_both", now, &format!("{wrong} {right}")).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);

        // Both are listed as active, without secret material; the old one expires.
        let response = app.get_as("/companies/shop/signing-secrets", Some(&app.admin_token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        assert!(!text.contains("whsec_"), "{text}");
        let listed: Value = serde_json::from_str(&text).unwrap();
        let items = listed["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{listed:#}");
        assert_eq!(items[0]["id"], created["id"], "newest first");
        assert!(items[0]["expires_at"].is_null());
        assert!(items[1]["expires_at"].is_string(), "{listed:#}");

        // A rotation without grace ends the earlier secrets at once.
        let response = app.create_signing_secret("shop", Some(&json!({"previous_valid_seconds": 0}))).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let newest = json_body(response).await["secret"].as_str().unwrap().to_owned();
        let body = signed_body("shop", "rot-after");
        let response = app.post_signed_payment(&body, "msg_after", now, &sign_webhook(&new_secret, "msg_after", now, &body)).await;
        assert_problem(response, StatusCode::UNAUTHORIZED).await;
        let response = app.post_signed_payment(&body, "msg_after", now, &sign_webhook(&newest, "msg_after", now, &body)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
);

backend_test!(
    async fn signing_secrets_are_admin_only_and_shown_once(app) {
        let (_, key) = app.company_with_key("shop").await;
        let response = app
            .request(reqwest::Method::POST, "/companies/shop/signing-secrets", Some(&key))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::FORBIDDEN).await;
        assert_problem(app.create_signing_secret("nobody", None).await, StatusCode::NOT_FOUND).await;
        assert_problem(app.get_as("/companies/nobody/signing-secrets", Some(&app.admin_token)).await, StatusCode::NOT_FOUND).await;
        let problem = assert_problem(
            app.create_signing_secret("shop", Some(&json!({"previous_valid_seconds": 604801}))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_paths(&problem), ["previous_valid_seconds"]);

        let response = app.create_signing_secret("shop", None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created = json_body(response).await;
        let secret = created["secret"].as_str().unwrap();
        let key_bytes = base64_decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"));
        assert_eq!(key_bytes.len(), 32);
        assert!(created["id"].is_string() && created["created_at"].is_string(), "{created}");
    }
);

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

backend_test!(
    async fn a_leaked_older_signing_secret_can_be_ended_or_revoked(app) {
        app.company_with_demo_rules("shop").await;
        let s1 = app.new_signing_secret("shop").await;
        let s2 = app.new_signing_secret("shop").await; // S1 in its grace period
        let s3 = json_body(app.create_signing_secret("shop", Some(&json!({"previous_valid_seconds": 0}))).await).await;
        let now = unix_now();
        let app = &app;
        let post = |secret: String, id: &'static str| {
            let body = signed_body("shop", id);
            let signature = sign_webhook(&secret, id, now, &body);
            async move { app.post_signed_payment(&body, id, now, &signature).await.status() }
        };
        assert_eq!(post(s1, "after-1").await, StatusCode::UNAUTHORIZED, "S1 ended with S2's rotation to S3");
        assert_eq!(post(s2, "after-2").await, StatusCode::UNAUTHORIZED);
        let s3_secret = s3["secret"].as_str().unwrap().to_owned();
        assert_eq!(post(s3_secret.clone(), "after-3").await, StatusCode::ACCEPTED);

        // Revoking one secret by id.
        let path = format!("/companies/shop/signing-secrets/{}", s3["id"].as_str().unwrap());
        let key = app.company_with_key("other").await.1;
        let as_company = app.request(reqwest::Method::DELETE, &path, Some(&key)).send().await.unwrap();
        assert_problem(as_company, StatusCode::FORBIDDEN).await;
        let revoked = app.request(reqwest::Method::DELETE, &path, Some(&app.admin_token)).send().await.unwrap();
        assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
        assert_eq!(post(s3_secret, "after-4").await, StatusCode::UNAUTHORIZED);
        let again = app.request(reqwest::Method::DELETE, &path, Some(&app.admin_token)).send().await.unwrap();
        assert_problem(again, StatusCode::NOT_FOUND).await;
        let listed = json_body(app.get_as("/companies/shop/signing-secrets", Some(&app.admin_token)).await).await;
        assert_eq!(listed["items"], json!([]));
    }
);
