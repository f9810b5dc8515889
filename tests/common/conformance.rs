//! Checks requests against Mailchimp's own API document: every request an end-to-end test sent to
//! the fake (method, path, query parameters, JSON body) must be one that Mailchimp's OpenAPI
//! document (3.0.81, with the known defects patched as `mailchimp-api.md` §1.2 lists them) allows,
//! and every answer of the fake must match the document's answer for that operation.

use fake_mailchimp::RecordedRequest;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Where the document is: `MAILCHIMP_OPENAPI`, else the project's shared reference folder beside
/// the repository.
fn document_path() -> std::path::PathBuf {
    match std::env::var_os("MAILCHIMP_OPENAPI") {
        Some(path) => path.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/reference/mailchimp-openapi-3.0.81.json"),
    }
}

/// Query parameters Mailchimp accepts where the 3.0.81 document does not declare them, each with
/// the Mailchimp documentation that allows it.
const ALLOWED_QUERY: [(&str, &str, &str, &str); 2] = [
    (
        "POST",
        "/lists/{list_id}",
        "fields",
        "Marketing API docs, Methods and parameters → Partial responses: \"Use the fields or exclude_fields \
         parameter to cut down on response size\" (for any response, not only GETs)",
    ),
    ("POST", "/lists/{list_id}", "exclude_fields", "the same Partial responses section"),
];

/// The document with its known defects patched (`mailchimp-api.md` §1.2, points 1, 3 and 4):
/// merge-field values of any type, `tags` and `status_if_new` on batch members, and a member
/// (not a collection) as the answer about one member.
fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let path = document_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the API conformance check needs Mailchimp's OpenAPI document at {} ({e}); set \
                 MAILCHIMP_OPENAPI to its path",
                path.display()
            )
        });
        let mut document: Value = serde_json::from_str(&text).expect("the OpenAPI document is JSON");
        let schemas = document["components"]["schemas"].as_object_mut().expect("component schemas");
        for schema in schemas.values_mut() {
            if let Some(merge_fields) = schema.pointer_mut("/properties/merge_fields") {
                if merge_fields.get("additionalProperties").is_some_and(Value::is_object) {
                    merge_fields["additionalProperties"] = json!({});
                }
            }
        }
        let tags = json!({"type": "array", "items": {"type": "string"}});
        let status_if_new = schemas["Add_List_Members_2"]["properties"]["status_if_new"].clone();
        let members =
            schemas["Add_List_Members"]["properties"].as_object_mut().expect("batch member properties");
        members.entry("tags").or_insert(tags);
        members.entry("status_if_new").or_insert(status_if_new);
        // Not in §1.2's list, but §9 of the same brief: `archived` is a status Mailchimp answers
        // with (and filters by); the 3.0.81 member schema's enum predates it.
        if let Some(statuses) =
            schemas["List_Members"].pointer_mut("/properties/status/enum").and_then(Value::as_array_mut)
        {
            statuses.push(json!("archived"));
        }
        let one_member = json!({"$ref": "#/components/schemas/List_Members"});
        for method in ["get", "put", "patch"] {
            let operation = &mut document["paths"]["/lists/{list_id}/members/{subscriber_hash}"][method];
            operation["responses"]["200"]["content"]["application/json"]["schema"] = one_member.clone();
        }
        document
    })
}

/// A copy of the component schemas in which every object schema that lists its properties allows
/// only those: so that a request field the document does not know fails the check.
fn strict_schemas() -> &'static Value {
    static STRICT: OnceLock<Value> = OnceLock::new();
    STRICT.get_or_init(|| {
        fn close(value: &mut Value) {
            match value {
                Value::Object(map) => {
                    if map.get("properties").is_some_and(Value::is_object)
                        && !map.contains_key("additionalProperties")
                    {
                        map.insert("additionalProperties".into(), json!(false));
                    }
                    map.values_mut().for_each(close);
                }
                Value::Array(items) => items.iter_mut().for_each(close),
                _ => {}
            }
        }
        let mut schemas = document()["components"]["schemas"].clone();
        close(&mut schemas);
        schemas
    })
}

fn validator(schema: &Value, strict: bool) -> &'static jsonschema::Validator {
    static CACHE: OnceLock<Mutex<HashMap<(String, bool), &'static jsonschema::Validator>>> = OnceLock::new();
    let key = (schema.to_string(), strict);
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    cache.entry(key).or_insert_with(|| {
        let schemas =
            if strict { strict_schemas().clone() } else { document()["components"]["schemas"].clone() };
        let root = json!({"allOf": [schema], "components": {"schemas": schemas}});
        // Formats are not checked: Mailchimp documents `YYYY-MM-DD HH:MM:SS` for timestamps that the
        // document types as date-time.
        let validator = jsonschema::draft4::options()
            .should_validate_formats(false)
            .build(&root)
            .expect("a schema of the document compiles");
        Box::leak(Box::new(validator))
    })
}

/// The operation a request is for: its path template and its definition.
fn operation(method: &str, path: &str) -> Option<(String, &'static Value)> {
    let path = path.strip_prefix("/3.0")?;
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object()?;
    let mut best: Option<(usize, &String, &Value)> = None;
    for (template, item) in paths {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let literal = |p: &str| !p.starts_with('{');
        if parts.iter().zip(&segments).any(|(p, s)| literal(p) && p != s) {
            continue;
        }
        let Some(op) = item.get(method.to_ascii_lowercase()) else { continue };
        let literals = parts.iter().filter(|p| literal(p)).count();
        if best.is_none_or(|(n, _, _)| literals > n) {
            best = Some((literals, template, op));
        }
    }
    best.map(|(_, template, op)| (template.clone(), op))
}

fn json_schema(content: &Value) -> Option<&Value> {
    content.get("content")?.get("application/json")?.get("schema")
}

/// What is wrong with one request or its answer, per the document (empty when nothing is).
pub fn violations(request: &RecordedRequest) -> Vec<String> {
    let name = format!("{} {}?{}", request.method, request.path, request.query);
    let Some((template, op)) = operation(&request.method, &request.path) else {
        return vec![format!("{name}: no such operation in Mailchimp's API document")];
    };
    let mut problems = query_violations(&request.method, &template, op, &request.query);
    match (op.get("requestBody").and_then(json_schema), &request.body) {
        (Some(schema), body) => {
            let errors: Vec<String> =
                validator(schema, true).iter_errors(body).map(|e| e.to_string()).collect();
            problems.extend(errors.into_iter().map(|e| format!("request body: {e}")));
        }
        (None, Value::Null) => {}
        (None, body) => problems.push(format!("a body the operation does not take: {body}")),
    }
    let status = request.status.to_string();
    let answer = op["responses"].get(&status).or_else(|| op["responses"].get("default"));
    if let (Some(schema), answer @ Value::Object(_)) = (answer.and_then(json_schema), &request.answer) {
        let errors: Vec<String> =
            validator(schema, false).iter_errors(answer).map(|e| e.to_string()).collect();
        problems.extend(errors.into_iter().map(|e| format!("the fake's {status} answer: {e}")));
    }
    problems.into_iter().map(|p| format!("{name}: {p}")).collect()
}

fn query_violations(method: &str, template: &str, op: &Value, query: &str) -> Vec<String> {
    let declared: Map<String, Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| Some((p["name"].as_str()?.to_string(), p["schema"].clone())))
        .collect();
    let mut problems = Vec::new();
    let pairs: Vec<(&str, &str)> =
        query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
    for (name, value) in &pairs {
        let allowed = ALLOWED_QUERY.iter().any(|(m, t, n, _)| *m == method && *t == template && n == name);
        match declared.get(*name) {
            None if allowed => {}
            None => problems.push(format!("the query parameter '{name}' is not declared for this operation")),
            Some(schema) => {
                let fits = match schema["type"].as_str() {
                    Some("integer") => value.parse::<u64>().is_ok(),
                    Some("boolean") => matches!(*value, "true" | "false"),
                    _ => true,
                };
                if !fits {
                    problems
                        .push(format!("the query parameter '{name}={value}' is not a {}", schema["type"]));
                }
            }
        }
    }
    let has = |n: &str| pairs.iter().any(|(name, _)| *name == n);
    if has("fields") && has("exclude_fields") {
        problems.push("fields and exclude_fields are mutually exclusive".into());
    }
    problems
}

/// Fails with every violation of every request the fake received (its own admin calls aside).
pub fn assert_requests_conform(requests: &[RecordedRequest]) {
    let problems: Vec<String> = requests.iter().flat_map(violations).collect();
    assert!(
        problems.is_empty(),
        "requests or answers that Mailchimp's API document does not allow:\n{}",
        problems.join("\n")
    );
}
