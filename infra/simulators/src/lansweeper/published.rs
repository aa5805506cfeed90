//! Lansweeper's published schema (`infra/contract/lansweeper.graphql`: only the types,
//! fields and arguments Lansweeper's documentation and official examples show), and the
//! check of a request against it: the document is validated and its variables coerced as
//! a GraphQL server does before it runs anything. The simulator refuses what fails here
//! before its own schema sees the request, so it is never more lenient than the published
//! API; the contract tests run the same check over every document the product sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use apollo_compiler::request::coerce_variable_values;
use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use serde_json::Value;

/// The schema as the repository holds it.
pub const SDL: &str = include_str!("../../../contract/lansweeper.graphql");

/// Why a request fails the published schema, with the code a GraphQL server gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED` or `BAD_USER_INPUT` (variables).
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A document validated against the schema, kept by its text: the product sends a
/// handful of documents again and again, and a simulator under load must answer them as
/// fast as it did before it checked them.
fn validated(query: &str) -> Result<Arc<Valid<ExecutableDocument>>, Refusal> {
    type Kept = HashMap<String, Result<Arc<Valid<ExecutableDocument>>, Refusal>>;
    static KEPT: OnceLock<Mutex<Kept>> = OnceLock::new();
    let kept = KEPT.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(known) = kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(query)
    {
        return known.clone();
    }
    let outcome = ExecutableDocument::parse_and_validate(schema(), query, "request.graphql")
        .map(Arc::new)
        .map_err(|invalid| Refusal {
            code: if apollo_compiler::parser::Parser::new()
                .parse_ast(query, "request.graphql")
                .is_err()
            {
                "GRAPHQL_PARSE_FAILED"
            } else {
                "GRAPHQL_VALIDATION_FAILED"
            },
            message: invalid
                .errors
                .iter()
                .map(|diagnostic| diagnostic.to_json().message)
                .collect::<Vec<_>>()
                .join("; "),
        });
    let mut kept = kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Bounded: documents built from data (a test's, a hostile client's) never pile up.
    if kept.len() >= 256 {
        kept.clear();
    }
    kept.insert(query.to_string(), outcome.clone());
    outcome
}

fn schema() -> &'static Valid<Schema> {
    static SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        // The file is part of the build: a schema that does not validate is a defect of
        // the repository, found by the first test that starts a simulator.
        #[allow(clippy::expect_used, reason = "checked by every test that starts it")]
        Schema::parse_and_validate(SDL, "lansweeper.graphql")
            .expect("infra/contract/lansweeper.graphql is a valid schema")
    })
}

/// Checks one request (its document, the operation it names, its variables) against the
/// published schema.
///
/// # Errors
/// The document does not parse or validate, names no operation it holds, or its
/// variables do not fit their declared types.
pub fn check(query: &str, operation: Option<&str>, variables: &Value) -> Result<(), Refusal> {
    let schema = schema();
    let document = validated(query)?;
    let operation = document
        .operations
        .get(operation)
        .map_err(|error| Refusal {
            code: "GRAPHQL_VALIDATION_FAILED",
            message: error.message().to_string(),
        })?;
    let values: JsonMap = match variables {
        Value::Null => JsonMap::new(),
        Value::Object(_) => serde_json::from_value(variables.clone()).map_err(|e| Refusal {
            code: "BAD_USER_INPUT",
            message: format!("variables: {e}"),
        })?,
        _ => {
            return Err(Refusal {
                code: "BAD_USER_INPUT",
                message: "variables must be an object".into(),
            });
        }
    };
    coerce_variable_values(schema, operation, &values).map_err(|error| Refusal {
        code: "BAD_USER_INPUT",
        message: error.message().to_string(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_published_schema_is_valid_and_refuses_what_lansweeper_refuses() {
        let edit = "mutation($s: ID!, $k: ID!, $f: EditAssetInput!) { site(id: $s) { editAsset(key: $k, fields: $f) { assetCustom { fields { fieldKey } } } } }";
        let fields = json!({"assetCustom": {"fields": [{"fieldKey": "cf-1", "value": "3"}]}});
        check(edit, None, &json!({"s": "site", "k": "a", "f": fields})).unwrap();
        let selects_key = edit.replace("assetCustom { fields { fieldKey } }", "key");
        let refused = check(
            &selects_key,
            None,
            &json!({"s": "site", "k": "a", "f": fields}),
        )
        .unwrap_err();
        assert_eq!(refused.code, "GRAPHQL_VALIDATION_FAILED");
        assert!(refused.message.contains("key"), "{refused}");
        let unknown_input = json!({"s": "site", "k": "a", "f": {"assetCustom": {"fields": [{"fieldKey": "cf-1", "colour": "red"}]}}});
        assert_eq!(
            check(edit, None, &unknown_input).unwrap_err().code,
            "BAD_USER_INPUT"
        );
        assert_eq!(
            check("query {", None, &Value::Null).unwrap_err().code,
            "GRAPHQL_PARSE_FAILED"
        );
    }
}
