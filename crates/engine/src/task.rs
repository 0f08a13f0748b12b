//! The task interface and the registry of tasks the engine can execute.
//!
//! A task gets its resolved parameters and the run's context, and returns an
//! output (plus the documents it produced), or an error that says whether a
//! retry may help. Tasks must be idempotent under [`TaskInput::idempotency_key`]:
//! built-in tasks return their effects as documents, which the engine stores
//! under that key in the same transaction as the node's checkpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moneyflow_core::catalogue::{Catalogue, TaskSpec};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// What a task execution gets.
#[derive(Debug, Clone, Copy)]
pub struct TaskInput<'a> {
    pub run_id: &'a str,
    pub node_id: &'a str,
    pub company_id: &'a str,
    /// `{run_id}:{node_id}`: the same for every attempt of this node.
    pub idempotency_key: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The parameters with every `$context.` path resolved (an object).
    pub parameters: &'a Map<String, Value>,
    /// The payment event.
    pub event: &'a Value,
    /// Outputs of the run's tasks that have succeeded, as (task name, output).
    pub earlier_outputs: &'a [(&'a str, &'a Value)],
}

impl TaskInput<'_> {
    /// A parameter, treating JSON null as absent.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.parameters.get(name).filter(|v| !v.is_null())
    }

    /// A stable id for a document this execution makes: the same on every
    /// attempt, so a retried task names (and stores) the same document.
    pub fn document_id(&self, prefix: &str) -> String {
        let digest = Sha256::digest(self.idempotency_key.as_bytes());
        format!("{prefix}_{}", &hex::encode(digest)[..24])
    }
}

/// A document a task produced; stored under `{run_id}:{node_id}` (plus the
/// suffix, when a task makes several).
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentDraft {
    pub kind: String,
    pub suffix: Option<String>,
    pub body: Value,
}

/// What a successful task execution returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskOutput {
    /// Recorded as the node's output; later nodes read it through
    /// `$context.nodes.<node_id>.output`.
    pub output: Value,
    pub documents: Vec<DocumentDraft>,
    /// Set by `abort_flow`: the run ends as `aborted` with this reason.
    pub abort: Option<String>,
}

impl TaskOutput {
    pub fn new(output: Value) -> Self {
        Self {
            output,
            ..Self::default()
        }
    }

    pub fn with_document(mut self, kind: &str, body: Value) -> Self {
        self.documents.push(DocumentDraft {
            kind: kind.to_owned(),
            suffix: None,
            body,
        });
        self
    }
}

/// Why a task execution failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// Worth another attempt (a timeout, a 5xx, a 429), after `retry_after`
    /// when the other side said so.
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way (bad input, a 4xx).
    #[error("{message}")]
    Permanent { message: String },
}

impl TaskError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }
}

/// A task the engine can execute.
#[async_trait]
pub trait Task: Send + Sync {
    /// Its spec: name, parameters (with their schema), output.
    fn spec(&self) -> &TaskSpec;

    /// Whether it waits on something outside the process (the network). The
    /// engine checkpoints before awaiting such tasks; local tasks of one run
    /// complete together in one step.
    fn is_remote(&self) -> bool {
        false
    }

    /// Whether its only effect is what it returns (its output and the
    /// documents the engine stores). A simulation executes pure tasks and
    /// reports their documents without storing them; any other task (one
    /// that calls out, or a custom one that does not say) is not executed
    /// in a simulation.
    fn is_pure(&self) -> bool {
        false
    }

    async fn execute(&self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError>;
}

/// The tasks the engine executes, by name, with the catalogue validation uses.
#[derive(Clone)]
pub struct Registry {
    tasks: HashMap<String, Arc<dyn Task>>,
    catalogue: Catalogue,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.tasks.keys().collect();
        names.sort();
        f.debug_struct("Registry").field("tasks", &names).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self {
            tasks: HashMap::new(),
            catalogue: Catalogue::new(Vec::new()),
        }
    }

    /// Every built-in task, with `http_request` under `http_policy`.
    pub fn builtin(http_policy: crate::http::HttpPolicy) -> Self {
        let mut registry = Self::empty();
        for task in crate::builtin::all() {
            registry.register(task);
        }
        registry.register(Arc::new(crate::http::HttpRequest::new(http_policy)));
        registry
    }

    /// Adds (or replaces) a task under its spec's name.
    pub fn register(&mut self, task: Arc<dyn Task>) {
        let spec = task.spec().clone();
        self.tasks.insert(spec.name.to_owned(), task);
        self.catalogue.insert(spec);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Task>> {
        self.tasks.get(name)
    }

    /// The catalogue of the registered tasks, for validation.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }
}
