//! The OpenAPI 3.1 description of the JSON API, served at `/api/v1/openapi.json`.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(|| async { Json(document()) }))
}

fn op(summary: &str, body: Option<&str>, ok: (&str, &str), errors: &[&str]) -> Value {
    let mut responses = serde_json::Map::new();
    let ok_body = if ok.1.is_empty() {
        json!({ "description": "done" })
    } else {
        json!({ "description": "ok", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{}", ok.1) } } } })
    };
    responses.insert(ok.0.to_string(), ok_body);
    for code in errors.iter().chain(&["401"]) {
        responses.insert(
            code.to_string(),
            json!({ "$ref": "#/components/responses/Error" }),
        );
    }
    let mut o = json!({ "summary": summary, "responses": responses });
    if let Some(schema) = body {
        o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    }
    o
}

fn name_param() -> Value {
    json!([
        { "name": "name", "in": "path", "required": true, "schema": { "type": "string" }, "description": "the owner's name for the container" },
        { "name": "owner", "in": "query", "required": false, "schema": { "type": "string" }, "description": "for providers and resellers: whose container (default: the caller)" }
    ])
}

fn with_params(mut v: Value, params: Value) -> Value {
    v["parameters"] = params;
    v
}

/// The whole document.
pub fn document() -> Value {
    let size = json!({ "oneOf": [ { "type": "integer", "minimum": 0 }, { "type": "string", "examples": ["512M", "2G"] } ] });
    let cpus = json!({ "oneOf": [ { "type": "number" }, { "type": "string" } ], "examples": [0.5, "1.5"] });
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Acetate API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Containers are addressed by their owner's name for them; anything outside the caller's scope answers 404. Authenticate with `Authorization: Bearer <token>`." },
        "servers": [ { "url": "/" } ],
        "security": [ { "bearer": [] } ],
        "paths": {
            "/api/v1/containers": {
                "get": op("Containers in the caller's scope (the provider also sees unowned ones)", None, ("200", "ContainerList"), &[]),
                "post": op("Create and start a container (customers; checked against plan and pool)", Some("CreateContainer"), ("201", "Container"), &["400", "403", "409", "413", "422"])
            },
            "/api/v1/containers/{name}": {
                "get": with_params(op("One container: state, limits, usage", None, ("200", "Container"), &["404"]), name_param()),
                "patch": with_params(op("Resize (live), within plan and pool", Some("ResizeContainer"), ("200", "Container"), &["404", "422"]), name_param()),
                "delete": with_params(op("Destroy (stops it first)", None, ("204", ""), &["404"]), name_param())
            },
            "/api/v1/containers/{name}/start": { "post": with_params(op("Start", None, ("200", "Container"), &["403", "404", "409"]), name_param()) },
            "/api/v1/containers/{name}/stop": { "post": with_params(op("Stop", None, ("200", "Container"), &["404", "409"]), name_param()) },
            "/api/v1/containers/{name}/restart": { "post": with_params(op("Restart", None, ("200", "Container"), &["403", "404"]), name_param()) },
            "/api/v1/containers/{name}/exec": { "post": with_params(op("Run a command inside, as its root (4 at once per user; 429 beyond)", Some("Exec"), ("200", "ExecResult"), &["404", "409", "422", "429"]), name_param()) },
            "/api/v1/resellers": {
                "get": op("Resellers with pool and usage (provider)", None, ("200", "Object"), &["403"]),
                "post": op("Create a reseller: name and password (provider)", Some("Object"), ("201", "Object"), &["403", "409", "422"])
            },
            "/api/v1/resellers/{name}/pool": { "put": op("Set a reseller's pool (provider)", Some("Pool"), ("200", "Pool"), &["403", "404", "422"]) },
            "/api/v1/plans": {
                "get": op("The reseller's plans", None, ("200", "Object"), &["403"]),
                "post": op("Create a plan (reseller)", Some("Plan"), ("201", "Object"), &["403", "409", "422"])
            },
            "/api/v1/customers": {
                "get": op("The reseller's customers with usage", None, ("200", "Object"), &["403"]),
                "post": op("Create a customer on a plan (reseller)", Some("CreateCustomer"), ("201", "Object"), &["403", "409", "422"])
            },
            "/api/v1/customers/{name}/suspend": { "post": op("Suspend: stop its containers, refuse starts (reseller, provider)", None, ("200", "Object"), &["404"]) },
            "/api/v1/customers/{name}/unsuspend": { "post": op("Lift a suspension", None, ("200", "Object"), &["404"]) },
            "/api/v1/tokens": {
                "get": op("The caller's API tokens (never their values)", None, ("200", "Object"), &[]),
                "post": op("Create a token; its value is shown only in this response", Some("Object"), ("201", "Object"), &["422"])
            },
            "/api/v1/tokens/{id}": { "delete": op("Revoke a token", None, ("204", ""), &["404"]) },
            "/api/v1/audit": { "get": op("Audit log: everything (provider), own and customers' (reseller)", None, ("200", "Object"), &["403"]) },
            "/api/v1/containers/{name}/reinstall": { "post": with_params(op("Reinstall: a fresh writable layer (optionally another template), same limits; stopped first and started again if it ran", Some("Object"), ("200", "Container"), &["403", "404", "422"]), name_param()) },
            "/api/v1/containers/{name}/usage": { "get": with_params(op("Usage history: raw samples of the last hour (range=hour) or hours of the last 30 days (range=month)", None, ("200", "Object"), &["404", "422"]), name_param()) },
            "/api/v1/plugins": {
                "get": op("The reseller's plugins", None, ("200", "Object"), &["403"]),
                "post": { "summary": "Upload a WebAssembly component (body: the .wasm bytes, up to 16 MiB; query: name). Validated against the hook and billing-rule worlds; starts disabled.",
                          "parameters": [ { "name": "name", "in": "query", "required": true, "schema": { "type": "string" } } ],
                          "requestBody": { "required": true, "content": { "application/wasm": { "schema": { "type": "string", "format": "binary" } } } },
                          "responses": { "201": { "description": "stored" }, "403": { "$ref": "#/components/responses/Error" }, "409": { "$ref": "#/components/responses/Error" }, "422": { "$ref": "#/components/responses/Error" } } }
            },
            "/api/v1/plugins/{name}": {
                "get": op("One plugin", None, ("200", "Object"), &["403", "404"]),
                "patch": op("Enable or disable (one billing rule at a time); on_failure deny|allow for hooks", Some("Object"), ("200", "Object"), &["403", "404", "422"]),
                "delete": op("Delete a plugin, its store and its calls", None, ("204", ""), &["403", "404"])
            },
            "/api/v1/plugins/{name}/dry-run": { "post": op("Run without effect: a hook on event_id (recorded) or event; a billing rule on customer and period", Some("Object"), ("200", "Object"), &["403", "404", "422"]) },
            "/api/v1/plugins/{name}/calls": { "get": op("Recent calls: outcome, fuel, time, log", None, ("200", "Object"), &["403", "404"]) },
            "/api/v1/hook-events": { "get": op("Recent hook events of the reseller's customers (for dry runs)", None, ("200", "Object"), &["403"]) },
            "/api/v1/plugins-wit": { "get": { "summary": "The WIT package plugins are built against", "responses": { "200": { "description": "text/plain" } } } },
            "/api/v1/invoices": { "get": op("Invoices: own (customer), customers' (reseller), all (provider)", None, ("200", "Object"), &[]) },
            "/api/v1/invoices/{id}": { "get": op("One invoice with its lines", None, ("200", "Object"), &["404"]) },
            "/api/v1/invoices/{id}/csv": { "get": { "summary": "One invoice as CSV", "responses": { "200": { "description": "text/csv" }, "404": { "$ref": "#/components/responses/Error" } } } },
            "/api/v1/revenue": { "get": op("Invoiced totals per period and currency (reseller, provider)", None, ("200", "Object"), &["403"]) },
            "/api/v1/billing/run": { "post": op("Bill a period (YYYY-MM): every reseller's customers (provider) or the caller's (reseller); open=true for a month not yet ended", Some("Object"), ("200", "Object"), &["403", "422"]) },
            "/api/v1/templates": {
                "get": op("Templates with their sources and containers (provider)", None, ("200", "Object"), &["403"]),
                "post": { "summary": "Import a template from a tarball (body; query: name) as a background job: 202 with the job (provider)",
                          "parameters": [ { "name": "name", "in": "query", "required": true, "schema": { "type": "string" } } ],
                          "requestBody": { "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                          "responses": { "202": { "description": "the job" }, "403": { "$ref": "#/components/responses/Error" }, "409": { "$ref": "#/components/responses/Error" }, "422": { "$ref": "#/components/responses/Error" } } }
            },
            "/api/v1/jobs/{id}": { "get": op("A background job of the caller: running, done or failed, with a message", None, ("200", "Object"), &["404"]) },
            "/api/v1/health": { "get": { "summary": "Liveness", "security": [], "responses": { "200": { "description": "ok" } } } },
            "/api/v1/openapi.json": { "get": { "summary": "This document", "security": [], "responses": { "200": { "description": "ok" } } } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": { "Error": { "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } },
            "schemas": {
                "Object": { "type": "object" },
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                    "code": { "type": "string", "enum": ["bad_request", "unauthorized", "forbidden", "not_found", "conflict", "invalid", "quota_exceeded", "denied_by_policy", "too_large", "internal"] },
                    "message": { "type": "string" } } } } },
                "Container": { "type": "object", "properties": {
                    "name": { "type": "string" }, "owner": { "type": ["string", "null"] },
                    "state": { "type": "string", "enum": ["running", "stopped", "creating", "destroying", "missing"] },
                    "template": { "type": ["string", "null"] }, "limits": { "type": ["object", "null"] },
                    "usage": { "type": ["object", "null"] }, "created_at": { "type": "integer" } } },
                "ContainerList": { "type": "array", "items": { "$ref": "#/components/schemas/Container" } },
                "CreateContainer": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": { "type": "string", "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", "maxLength": 40 },
                    "template": { "type": "string" }, "memory": size, "cpus": cpus, "disk": size,
                    "inodes": { "type": "integer" }, "procs": { "type": "integer" }, "io_weight": { "type": "integer" } } },
                "ResizeContainer": { "type": "object", "additionalProperties": false, "properties": { "memory": size, "cpus": cpus, "disk": size, "procs": { "type": "integer" } } },
                "Exec": { "type": "object", "required": ["command"], "properties": { "command": { "type": "array", "items": { "type": "string" }, "minItems": 1 }, "timeout_seconds": { "type": "integer", "minimum": 1, "maximum": 600, "description": "killed after this many seconds (default 60)" } } },
                "ExecResult": { "type": "object", "properties": { "exit_code": { "type": "integer" }, "stdout": { "type": "string", "description": "at most 1 MiB" }, "stderr": { "type": "string", "description": "at most 1 MiB" }, "truncated": { "type": "boolean", "description": "output past the bound was cut" }, "timed_out": { "type": "boolean", "description": "killed at its timeout" } } },
                "Pool": { "type": "object", "required": ["memory", "cpus", "disk", "containers"], "properties": { "memory": size, "cpus": cpus, "disk": size, "containers": { "type": "integer" } } },
                "Plan": { "type": "object", "required": ["name", "container", "customer", "price_minor", "currency"], "properties": {
                    "name": { "type": "string" }, "price_minor": { "type": "integer", "description": "monthly price in minor units" },
                    "currency": { "type": "string", "pattern": "^[A-Z]{3}$" },
                    "container": { "type": "object", "properties": { "memory": size, "cpus": cpus, "disk": size, "procs": { "type": "integer" } } },
                    "customer": { "type": "object", "properties": { "containers": { "type": "integer" }, "memory": size, "cpus": cpus, "disk": size } } } },
                "CreateCustomer": { "type": "object", "required": ["name", "password", "plan"], "properties": { "name": { "type": "string" }, "password": { "type": "string", "minLength": 10 }, "plan": { "type": "string" } } }
            }
        }
    })
}
