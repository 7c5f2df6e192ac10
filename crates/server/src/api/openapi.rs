//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of `/api/v1`,
//! built from [`ROUTES`] — one row per operation, the same table a test
//! walks against a live server, so the document cannot list an operation
//! the router does not serve.

use crate::services::Caller;
use axum::Json;
use serde_json::{Map, Value, json};

/// (method, path, summary, role that may call it).
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "post",
        "/api-keys",
        "Create an API key (the secret is in this answer only)",
        "admin",
    ),
    ("get", "/api-keys", "List API keys", "admin"),
    ("delete", "/api-keys/{id}", "Delete an API key", "admin"),
    ("post", "/activations", "Create an activation", "operator"),
    ("get", "/activations", "List activations", "auditor"),
    (
        "delete",
        "/activations/{id}",
        "Delete an activation",
        "operator",
    ),
    ("get", "/nodes", "List managed nodes", "auditor"),
    (
        "get",
        "/nodes/{id}",
        "A managed node with its compliance summary",
        "auditor",
    ),
    (
        "get",
        "/nodes/{id}/patches",
        "A node's patches: state and reason each",
        "auditor",
    ),
    (
        "get",
        "/nodes/{id}/timeline",
        "Changes of a node's compliance summary",
        "auditor",
    ),
    (
        "post",
        "/nodes/{id}/tags",
        "Add or remove a node's tags",
        "operator",
    ),
    (
        "post",
        "/nodes/{id}/deregister",
        "Deregister a node",
        "operator",
    ),
    (
        "get",
        "/baselines",
        "List predefined and custom baselines",
        "auditor",
    ),
    (
        "post",
        "/baselines",
        "Create a baseline (SSM document)",
        "operator",
    ),
    (
        "get",
        "/baselines/{id}",
        "A baseline (a version with ?version=N)",
        "auditor",
    ),
    (
        "put",
        "/baselines/{id}",
        "Save a new version of a baseline",
        "operator",
    ),
    ("delete", "/baselines/{id}", "Delete a baseline", "operator"),
    (
        "get",
        "/baselines/{id}/versions",
        "A baseline's versions",
        "auditor",
    ),
    (
        "get",
        "/baselines/{id}/diff",
        "What changed between two versions",
        "auditor",
    ),
    (
        "post",
        "/baselines/{id}/revert",
        "A new version equal to an old one",
        "operator",
    ),
    (
        "post",
        "/baselines/{id}/default",
        "Make a baseline its OS's default",
        "operator",
    ),
    ("get", "/patch-groups", "List patch groups", "auditor"),
    (
        "post",
        "/patch-groups",
        "Register a baseline for a patch group",
        "operator",
    ),
    (
        "delete",
        "/patch-groups/{group}/{baseline}",
        "Deregister a patch group's baseline",
        "operator",
    ),
    (
        "get",
        "/compliance/summary",
        "Fleet compliance summary",
        "auditor",
    ),
    (
        "get",
        "/compliance/nodes",
        "Nodes by compliance status, severity, group",
        "auditor",
    ),
    (
        "get",
        "/baselines/{id}/tags",
        "A baseline's tags",
        "auditor",
    ),
    (
        "post",
        "/baselines/{id}/tags",
        "Add or remove a custom baseline's tags",
        "operator",
    ),
    (
        "post",
        "/compliance/scan",
        "Send a Scan command (AWS-RunPatchBaseline, Operation=Scan)",
        "operator",
    ),
    (
        "post",
        "/commands",
        "Send a command (AWS-RunPatchBaseline or AWS-RunPatchBaselineWithHooks)",
        "operator",
    ),
    ("get", "/commands", "List commands, newest first", "auditor"),
    (
        "get",
        "/commands/{id}",
        "A command: status, counters, invocations per status",
        "auditor",
    ),
    (
        "post",
        "/commands/{id}/cancel",
        "Cancel a command, or some of its invocations",
        "operator",
    ),
    (
        "get",
        "/commands/{id}/invocations",
        "A command's invocations, in dispatch order",
        "auditor",
    ),
    (
        "get",
        "/commands/{id}/invocations/{node}",
        "One invocation: status, times, truncated output",
        "auditor",
    ),
    (
        "get",
        "/commands/{id}/invocations/{node}/output",
        "An invocation's whole stdout or stderr (text)",
        "auditor",
    ),
    ("get", "/audit", "The audit log", "auditor"),
    ("get", "/openapi.json", "This document", "auditor"),
];

pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, summary, role) in ROUTES {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "description": format!("Allowed to the {role} role and above."),
            "parameters": params,
            "responses": {
                "200": {"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}},
                "4XX": {"$ref": "#/components/responses/Error"},
            },
        });
        if matches!(*method, "post" | "put") {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|o| o.insert(method.to_string(), op));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Patchfleet API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The native REST API of Patchfleet. Errors are {code, message, field}; lists are {items, next}.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "<access key id>:<secret access key>"}},
            "schemas": {"Error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}},
            "responses": {"Error": {"description": "The request was refused; nothing changed.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
    })
}

pub async fn handler(caller: Caller) -> Result<Json<Value>, super::error::ApiError> {
    caller.require(crate::auth::Action::ReadFleet)?;
    Ok(Json(document()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_in_the_document_once() {
        let doc = super::document();
        let mut n = 0;
        for (_, ops) in doc["paths"].as_object().unwrap() {
            n += ops.as_object().unwrap().len();
        }
        assert_eq!(n, super::ROUTES.len());
        assert_eq!(
            doc["paths"]["/baselines/{id}/diff"]["get"]["parameters"][0]["name"],
            "id"
        );
    }
}
