//! What the platforms and the acceptance tests read besides the binary: the expected spec, the
//! acceptance tests' rules for a spec, the Dockerfile's entrypoint and labels, metadata.yaml.

mod common;
use common::*;
use serde_json::Value;
use std::collections::HashSet;

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The value of a Dockerfile instruction's `KEY=value` or `KEY value` (quotes removed).
fn dockerfile_value(dockerfile: &str, instruction: &str, key: &str) -> Option<String> {
    dockerfile.lines().map(str::trim).filter_map(|l| l.strip_prefix(instruction)).find_map(|rest| {
        let rest = rest.trim();
        let value = rest.strip_prefix(key)?.trim_start();
        let value = value.strip_prefix('=').unwrap_or(value).trim();
        Some(value.trim_matches('"').to_string())
    })
}

#[test]
fn the_expected_spec_is_what_spec_prints() {
    let run = run(&["spec"], "", None);
    let expected: Value = serde_json::from_str(&read("integration_tests/spec.json")).unwrap();
    assert_eq!(
        run.lines[0]["spec"], expected,
        "integration_tests/spec.json differs from `spec`: copy spec.json"
    );
}

/// The acceptance tests' spec rules, applied to every schema node.
fn check_node(path: &str, node: &Value, problems: &mut Vec<String>) {
    let Some(object) = node.as_object() else { return };
    for forbidden in [
        "anyOf",
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "patternProperties",
        "prefixItems",
        "dependentSchemas",
        "dependentRequired",
    ] {
        if object.contains_key(forbidden) {
            problems.push(format!("{path}: uses {forbidden}"));
        }
    }
    if let Some(kind) = object.get("type") {
        let fine = match kind {
            Value::String(_) => true,
            Value::Array(kinds) => kinds.len() == 2 && kinds.iter().any(|k| k == "null"),
            _ => false,
        };
        if !fine {
            problems.push(format!("{path}: type {kind} is neither one type nor [T, \"null\"]"));
        }
    }
    if object.get("additionalProperties").is_some_and(|a| a != true) {
        problems.push(format!("{path}: additionalProperties is set but not true"));
    }
    if let Some(reference) = object.get("$ref") {
        problems.push(format!("{path}: $ref {reference} (the spec defines no definitions to point to)"));
    }
    if let Some(values) = object.get("enum").and_then(Value::as_array) {
        let distinct: HashSet<String> = values.iter().map(Value::to_string).collect();
        if distinct.len() != values.len() {
            problems.push(format!("{path}: enum has duplicates"));
        }
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let secret_like = ["password", "token", "key", "secret", "credentials"]
                .iter()
                .any(|s| name.to_lowercase().split('_').any(|part| part == *s));
            let scalar = property.get("type").is_some_and(|t| {
                ["string", "integer", "number"]
                    .iter()
                    .any(|s| t == s || t.as_array().is_some_and(|a| a.iter().any(|x| x == s)))
            });
            if secret_like && scalar && property.get("airbyte_secret") != Some(&Value::Bool(true)) {
                problems.push(format!("{path}.{name}: looks like a secret but is not marked airbyte_secret"));
            }
            check_node(&format!("{path}.{name}"), property, problems);
        }
    }
    if let Some(items) = object.get("items") {
        check_node(&format!("{path}[]"), items, problems);
    }
    if let Some(variants) = object.get("oneOf").and_then(Value::as_array) {
        for (i, variant) in variants.iter().enumerate() {
            check_node(&format!("{path}.oneOf[{i}]"), variant, problems);
        }
    }
}

#[test]
fn the_spec_follows_the_acceptance_tests_rules() {
    let spec: Value = serde_json::from_str(&read("spec.json")).unwrap();
    let mut problems = Vec::new();
    check_node("connectionSpecification", &spec["connectionSpecification"], &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(spec["connectionSpecification"]["properties"]["api_key"]["airbyte_secret"], true);

    // The checker itself finds what it should.
    let bad = serde_json::json!({"type": "object", "additionalProperties": false, "properties": {
        "password": {"type": "string"}, "mode": {"enum": ["a", "a"]}, "x": {"anyOf": []},
        "y": {"type": ["string", "integer"]}, "z": {"$ref": "#/definitions/z"}}});
    let mut found = Vec::new();
    check_node("bad", &bad, &mut found);
    assert_eq!(found.len(), 6, "{found:#?}");
}

#[test]
fn the_dockerfile_entrypoint_labels_and_user_are_what_the_platforms_expect() {
    let dockerfile = read("Dockerfile");
    let entrypoint =
        dockerfile_value(&dockerfile, "ENV", "AIRBYTE_ENTRYPOINT").expect("ENV AIRBYTE_ENTRYPOINT");
    let exec_form =
        dockerfile.lines().find_map(|l| l.trim().strip_prefix("ENTRYPOINT")).expect("an ENTRYPOINT");
    let exec_form: Vec<String> =
        serde_json::from_str(exec_form.trim()).expect("ENTRYPOINT in exec (JSON) form");
    assert_eq!(entrypoint, exec_form.join(" "), "AIRBYTE_ENTRYPOINT must equal the space-joined ENTRYPOINT");
    assert_eq!(entrypoint, "/usr/local/bin/destination-mailchimp");
    assert_eq!(
        dockerfile_value(&dockerfile, "LABEL", "io.airbyte.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION")),
        "the image's version label is the crate's version"
    );
    let name = dockerfile_value(&dockerfile, "LABEL", "io.airbyte.name").expect("LABEL io.airbyte.name");
    assert!(name.ends_with("/destination-mailchimp"), "{name}");
    assert!(dockerfile.lines().any(|l| l.trim() == "USER 1000:1000"), "runs as uid 1000");

    let metadata = read("metadata.yaml");
    let field = |key: &str| {
        metadata.lines().find_map(|l| l.trim().strip_prefix(&format!("{key}:")).map(|v| v.trim().to_string()))
    };
    assert_eq!(field("dockerImageTag").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(field("dockerRepository"), Some(name.clone()));
    assert_eq!(field("connectorType").as_deref(), Some("destination"));
    assert!(metadata.contains("\"*.api.mailchimp.com\""), "allowedHosts names Mailchimp's API hosts");
    assert_eq!(
        field("supportsDataActivation").as_deref(),
        Some("true"),
        "the platform runs discover only then"
    );

    let acceptance = read("acceptance-test-config.yml");
    assert!(acceptance.contains(&format!("connector_image: {name}:dev")), "{acceptance}");
}

#[test]
fn the_invalid_config_of_the_acceptance_tests_fails_check_with_exit_code_0() {
    let path = format!("{}/integration_tests/invalid_config.json", env!("CARGO_MANIFEST_DIR"));
    let run = run(&["check", "--config", &path], "", None);
    assert_eq!(run.code, 0);
    assert_eq!(run.lines.len(), 1);
    assert_eq!(run.lines[0]["connectionStatus"]["status"], "FAILED");
}

#[test]
fn the_output_check_rejects_lines_that_are_not_valid_messages() {
    for bad in [
        r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"OK"}}"#,
        r#"{"type":"RECORD","record":{"stream":"s","data":{}}}"#,
        r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"stream_states":[]},"destinationStats":{"recordCount":"1"}}}"#,
        r#"{"type":"LOG"}"#,
    ] {
        assert!(std::panic::catch_unwind(|| parse_protocol_line(bad)).is_err(), "accepted: {bad}");
    }
    parse_protocol_line(r#"{"type":"LOG","log":{"level":"INFO","message":"ok"}}"#);
}
