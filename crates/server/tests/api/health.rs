//! `GET /health` (liveness) and `GET /ready` (readiness), without credentials.

backend_test! {
    async fn health_and_ready_answer_without_credentials(app) {
        let health = app.client.get(format!("{}/health", app.address)).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = app.client.get(format!("{}/ready", app.address)).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        assert_eq!(body["checks"]["store"]["status"], "up");
        // No broker configured: not checked, not required.
        assert!(body["checks"].get("broker").is_none(), "{body}");
    }
}

backend_test! {
    async fn dead_letters_need_a_broker_and_the_admin_token(app) {
        let anonymous = app.client.get(format!("{}/admin/dead-letters", app.address)).send().await.unwrap();
        assert_eq!(anonymous.status(), 401);
        let admin = app.client.get(format!("{}/admin/dead-letters", app.address))
            .bearer_auth(&app.admin_token).send().await.unwrap();
        assert_eq!(admin.status(), 404, "no broker: distributed mode is off");
    }
}
