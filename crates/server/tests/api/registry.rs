//! Tests can run the server with extra, test-only tasks: rules are validated
//! against the registry the orchestrator executes, not a fixed catalogue.

use std::sync::Arc;

use async_trait::async_trait;
use moneyflow_core::catalogue::{ParamSpec, ParamType, TaskSpec};
use moneyflow_engine::{Task, TaskError, TaskInput, TaskOutput};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// Echoes its `say` parameter as output and as an `echo` document.
struct Echo(TaskSpec);

#[async_trait]
impl Task for Echo {
    fn spec(&self) -> &TaskSpec {
        &self.0
    }

    async fn execute(&self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        let said = input.param("say").cloned().unwrap_or_default();
        Ok(TaskOutput::new(json!({"echo": said})).with_document("echo", json!({"said": said})))
    }
}

fn registry_with_echo() -> moneyflow_engine::Registry {
    let mut registry = moneyflow_server::startup::builtin_registry(&Default::default());
    registry.register(Arc::new(Echo(TaskSpec {
        name: "test.tasks.echo",
        title: "Echo",
        description: "Test only: echoes `say`.",
        params: vec![ParamSpec {
            name: "say",
            kind: ParamType::Text,
            required: true,
            description: "What to echo.",
        }],
        open_params: false,
        output: &[("echo", "What was said")],
    })));
    registry
}

async fn a_test_only_task_runs(backend: Backend) {
    let app = spawn_app_with_registry(backend, registry_with_echo()).await;
    let (_, key) = app.company_with_key("lab").await;
    let rules = json!({"company_id": "lab", "rules": [
        {"node_type": "task", "node_id": "echo", "task_name": "test.tasks.echo",
         "parameters": {"say": "$context.event.product.id"}}
    ]});
    let response = app.save_rules(&rules).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        json_body(response).await
    );
    let tasks = json_body(app.list_tasks().await).await;
    assert!(
        tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "test.tasks.echo")
    );

    let run = app.pay_and_wait(&book_payment("lab"), &key).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["nodes"][0]["output"], json!({"echo": "book-1"}));
    assert_eq!(run["documents"][0]["kind"], "echo");
    assert_eq!(run["documents"][0]["body"], json!({"said": "book-1"}));
}

mod a_test_only_task_from_the_registry_runs {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        a_test_only_task_runs(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        a_test_only_task_runs(Backend::Postgres).await
    }
}
