//! The demo data `moneyflow up` creates on first start, so a new user has
//! something to look at and a key to try: company `demo` ("Demo Shop"), an
//! API key for it, and the original README's flowchart as a rule set.
//!
//! The flowchart: a physical product generates a shipment; a book (or
//! e-book) also gets a copy of the packing slip for the royalties
//! department, which is then notified; every physical product also pays
//! its agent's commission.

use moneyflow_core::catalogue::Catalogue;
use moneyflow_core::ports::{
    ApiKeyStore, CompanyStore, NewApiKey, RuleStore, SettingStore, StoreError,
};
use moneyflow_core::validation::validate_rule_set;
use moneyflow_store::Store;

use crate::secret::{SecretString, generate_api_key};

pub const DEMO_COMPANY_ID: &str = "demo";
pub const DEMO_COMPANY_NAME: &str = "Demo Shop";
/// Set once the demo was created, so a later start (or a deleted demo
/// company) never recreates it.
const SEEDED_SETTING: &str = "demo_seeded_at";

/// The original README's flowchart, in the original rule format (plus canvas positions).
pub const DEMO_RULES: &str = r#"{
  "company_id": "demo",
  "rules": [
    {
      "node_type": "condition",
      "node_id": "is-physical-product",
      "expect": [
        { "field": "$context.event.type", "operator": "eq", "value": ["product"] }
      ],
      "ui": { "x": 0, "y": 0 }
    },
    {
      "node_type": "task",
      "node_id": "generate-shipment",
      "depends_on": [{ "node_id": "is-physical-product", "state": "success" }],
      "task_name": "payment.tasks.generate_shipment",
      "parameters": { "product_id": "$context.event.product.id" },
      "ui": { "x": 0, "y": 150 }
    },
    {
      "node_type": "condition",
      "node_id": "is-book",
      "depends_on": [{ "node_id": "generate-shipment", "state": "success" }],
      "expect": [
        { "field": "$context.event.product.type", "operator": "in", "value": ["book", "ebook"] }
      ],
      "ui": { "x": 0, "y": 300 }
    },
    {
      "node_type": "task",
      "node_id": "duplicate-shipment-royalties",
      "depends_on": [{ "node_id": "is-book", "state": "success" }],
      "task_name": "payment.tasks.duplicate_shipment",
      "parameters": { "department": "royalties" },
      "ui": { "x": 0, "y": 450 }
    },
    {
      "node_type": "task",
      "node_id": "notify-royalties",
      "depends_on": [{ "node_id": "duplicate-shipment-royalties", "state": "success" }],
      "task_name": "payment.tasks.notify",
      "parameters": {
        "channel": "royalties",
        "message": "A book was sold: a copy of its packing slip is attached."
      },
      "ui": { "x": 0, "y": 600 }
    },
    {
      "node_type": "task",
      "node_id": "generate-commission",
      "depends_on": [{ "node_id": "is-physical-product", "state": "success" }],
      "task_name": "payment.tasks.generate_commission",
      "parameters": { "agent_id": "$context.event.agent_id" },
      "ui": { "x": 300, "y": 150 }
    }
  ]
}"#;

/// What was created, to print once.
#[derive(Debug, Clone)]
pub struct DemoSeed {
    pub company_id: String,
    pub api_key: SecretString,
}

/// Creates the demo company, key and rule set unless that was done before.
/// A demo rule set that no longer validates (the catalogue changed) is
/// skipped with a warning rather than stopping the server.
pub async fn seed(store: &Store, catalogue: &Catalogue) -> Result<Option<DemoSeed>, StoreError> {
    if store.get_setting(SEEDED_SETTING).await?.is_some() {
        return Ok(None);
    }
    match store
        .create_company(DEMO_COMPANY_ID, DEMO_COMPANY_NAME)
        .await
    {
        Ok(_) => {}
        // Someone made a `demo` company of their own: leave it alone.
        Err(StoreError::Conflict(_)) => {
            mark_seeded(store).await?;
            return Ok(None);
        }
        Err(error) => return Err(error),
    }
    let generated = generate_api_key();
    store
        .create_api_key(NewApiKey {
            id: &generated.id,
            company_id: DEMO_COMPANY_ID,
            key_hash: &generated.hash_hex,
            prefix: &generated.prefix,
            label: Some("demo"),
        })
        .await?;

    let input: serde_json::Value =
        serde_json::from_str(DEMO_RULES).map_err(|e| StoreError::Internal(Box::new(e)))?;
    match validate_rule_set(&input, catalogue) {
        Ok(rule_set) => {
            let node_count = i64::try_from(rule_set.rules.len()).unwrap_or(i64::MAX);
            store
                .save_rule_version(DEMO_COMPANY_ID, &rule_set.to_json(), node_count)
                .await?;
        }
        Err(report) => {
            tracing::warn!(problems = ?report.problems, "the demo rule set does not validate; skipped");
        }
    }
    mark_seeded(store).await?;
    Ok(Some(DemoSeed {
        company_id: DEMO_COMPANY_ID.to_owned(),
        api_key: generated.key,
    }))
}

async fn mark_seeded(store: &Store) -> Result<(), StoreError> {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    store
        .set_setting_if_absent(SEEDED_SETTING, &now)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use moneyflow_core::ports::ApiKeyStore;

    use super::*;
    use crate::secret::sha256_hex;

    #[test]
    fn demo_rules_validate_against_the_builtin_catalogue() {
        let input: serde_json::Value = serde_json::from_str(DEMO_RULES).expect("demo JSON parses");
        let rule_set = validate_rule_set(&input, Catalogue::builtin())
            .unwrap_or_else(|report| panic!("demo rules invalid: {:#?}", report.problems));
        assert_eq!(rule_set.company_id, DEMO_COMPANY_ID);
        assert_eq!(rule_set.rules.len(), 6);
    }

    #[tokio::test]
    async fn seeding_happens_once_and_the_key_works() {
        let store = moneyflow_store::testing::fresh_sqlite().await;
        let seed = seed(&store, Catalogue::builtin())
            .await
            .expect("seed")
            .expect("first time seeds");
        let key = store
            .find_api_key_by_hash(&sha256_hex(seed.api_key.expose_secret()))
            .await
            .expect("lookup")
            .expect("key stored by hash");
        assert_eq!(key.company_id, DEMO_COMPANY_ID);
        let version = store
            .current_rule_version(DEMO_COMPANY_ID)
            .await
            .expect("read")
            .expect("demo rules saved");
        assert_eq!(version.version, 1);
        assert!(
            super::seed(&store, Catalogue::builtin())
                .await
                .expect("seed again")
                .is_none()
        );
    }
}
