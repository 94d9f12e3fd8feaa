//! What the route annotations leave out of the OpenAPI document, added to every operation in
//! one place so the document says what the server does:
//!
//! - every error response is problem JSON (`application/problem+json`, the `Problem`
//!   schema), as the server sends it;
//! - the statuses every route of a kind can answer: 400 for a malformed path, query or body,
//!   401/403 for tokens, 404 for a path naming an object, 413 for a body over its limit, 429
//!   for rate limits and lockout, 503 for load shedding, the time limit and a halted audit
//!   chain;
//! - the bounds of every path parameter (the identifier rules the server checks);
//! - the shape of a job's event stream.
//!
//! It works on the document's JSON, which keeps each rule one line whatever utoipa's types.

use serde_json::{Value, json};

/// Identifiers: record, job, schema, model and cohort ids (`api::check_id`).
const ID_PATTERN: &str = "^[A-Za-z0-9._:@-]{1,128}$";
/// Key-set ids (`blindsight_crypto::check_key_id`).
const KEY_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// Completes `doc` (see the module documentation). A document that does not round-trip through
/// JSON is returned as it was; the tests check the completed form.
pub(crate) fn complete(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut value) = serde_json::to_value(&doc) else {
        return doc;
    };
    complete_json(&mut value);
    serde_json::from_value(value).unwrap_or(doc)
}

fn complete_json(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                complete_operation(path, op);
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.insert("JobEvent".into(), job_event());
    }
}

fn complete_operation(path: &str, op: &mut Value) {
    // The `/v1` API runs under the load limits; probes and this document do not.
    let limited = path.starts_with("/v1/") && path != "/v1/openapi.json";
    let schemes: Vec<String> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|r| r.keys().cloned())
        .collect();
    let secured = !schemes.is_empty();
    let admin_only = secured && schemes.iter().all(|s| s == "admin");
    let params: Vec<(String, String)> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["in"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let in_path = params.iter().any(|(_, place)| place == "path");
    let has_body = op.get("requestBody").is_some();
    let has_input = !params.is_empty() || has_body;

    if let Some(list) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in list {
            bound_parameter(p);
        }
    }
    let mut add = |status: &str, description: &str| {
        let responses = &mut op["responses"];
        if responses.get(status).is_none() {
            responses[status] = json!({ "description": description });
        }
    };
    if has_input {
        add(
            "400",
            "A malformed path parameter, query or body (`invalid-path`, `invalid-id`, \
             `malformed-query`, `malformed`, `malformed-json`)",
        );
    }
    if secured {
        add("401", "Missing, invalid or unknown token (`unauthorized`)");
        if !admin_only {
            add(
                "403",
                "A token of a role this route does not serve (`forbidden`)",
            );
        }
        add(
            "429",
            "Over this token's rate limit (`rate-limited`), or this address is locked out after \
             repeated failed authentications (`locked-out`); retry after `Retry-After`",
        );
    }
    if in_path {
        add("404", "No such object for this tenant");
    }
    if has_body {
        add("413", "Larger than this route's body limit (`too-large`)");
    }
    if limited {
        add(
            "503",
            "At the concurrency limit (`overloaded`), over the time limit (`timeout`), or the \
             audit chain is halted (`audit-halted`); retry after `Retry-After`",
        );
    }
    if path == "/v1/jobs/{job_id}/events" {
        op["responses"]["200"]["content"] = json!({
            "text/event-stream": {
                "schema": {
                    "type": "string",
                    "description": "Server-sent events: each has `event: progress` or \
                        `event: done` and one `data:` line holding the job (the `Job` schema) \
                        as JSON; the stream ends after `done`. Over a WebSocket, each event is \
                        one text message holding a `JobEvent`."
                }
            }
        });
    }
    if let Some(responses) = op["responses"].as_object_mut() {
        for (status, response) in responses.iter_mut() {
            if status.as_str() >= "400" {
                response["content"] = json!({
                    "application/problem+json": {
                        "schema": { "$ref": "#/components/schemas/Problem" }
                    }
                });
            }
        }
    }
}

/// The identifier rules the server checks, as schema bounds.
fn bound_parameter(p: &mut Value) {
    let pattern = match (p["in"].as_str(), p["name"].as_str()) {
        (Some("path"), Some("key_id")) => KEY_ID_PATTERN,
        (Some("path"), Some("record_id" | "job_id" | "schema_id" | "model_id"))
        | (Some("query"), Some("cohort")) => ID_PATTERN,
        (Some("query"), Some("limit")) => {
            p["schema"]["minimum"] = json!(1);
            p["schema"]["maximum"] = json!(1000);
            return;
        }
        _ => return,
    };
    let max = if pattern == KEY_ID_PATTERN { 64 } else { 128 };
    p["schema"] = json!({
        "type": "string",
        "pattern": pattern,
        "minLength": 1,
        "maxLength": max,
    });
}

/// One event of a job's event stream, as a WebSocket message.
fn job_event() -> Value {
    json!({
        "type": "object",
        "description": "One event of `GET /v1/jobs/{job_id}/events` over a WebSocket.",
        "required": ["event", "job"],
        "properties": {
            "event": { "type": "string", "enum": ["progress", "done"] },
            "job": { "$ref": "#/components/schemas/Job" }
        },
        "additionalProperties": false
    })
}
