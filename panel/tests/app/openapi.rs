//! The OpenAPI document is generated from the handlers: every route the API serves is in
//! it, its references resolve, and it is a valid OpenAPI 3.1 document for the field's own
//! validator (`openapi-spec-validator`, from PyPI; `scripts/setup` installs it).

use serde_json::Value;

use crate::support::spawn_app;

/// Where `scripts/setup` puts the Python tools when the host has none.
const TOOLS: &str = "/var/tmp/acetate-tools/venv/bin";

fn validator() -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("openapi-spec-validator"))
            .find(|p| p.exists())
    });
    on_path.or_else(|| {
        let p = std::path::Path::new(TOOLS).join("openapi-spec-validator");
        p.exists().then_some(p)
    })
}

#[tokio::test]
async fn the_openapi_document_is_generated_from_the_handlers_and_valid() {
    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/containers", &["get", "post"][..]),
        ("/api/v1/containers/{name}", &["get", "patch", "delete"]),
        ("/api/v1/containers/{name}/start", &["post"]),
        ("/api/v1/containers/{name}/stop", &["post"]),
        ("/api/v1/containers/{name}/restart", &["post"]),
        ("/api/v1/containers/{name}/reinstall", &["post"]),
        ("/api/v1/containers/{name}/exec", &["post"]),
        ("/api/v1/containers/{name}/exec/stream", &["get"]),
        ("/api/v1/ssh-keys", &["get", "post"]),
        ("/api/v1/containers/{name}/forwards", &["get", "post"]),
        (
            "/api/v1/containers/{name}/forwards/{proto}/{port}",
            &["delete"],
        ),
        ("/api/v1/resellers/{name}/ports", &["get", "put"]),
        ("/api/v1/ssh-keys/{id}", &["delete"]),
        ("/api/v1/shells", &["get"]),
        ("/api/v1/shells/{id}", &["delete"]),
        ("/api/v1/containers/{name}/snapshots", &["get", "post"]),
        (
            "/api/v1/containers/{name}/snapshots/{snapshot}",
            &["delete"],
        ),
        (
            "/api/v1/containers/{name}/snapshots/{snapshot}/restore",
            &["post"],
        ),
        ("/api/v1/containers/{name}/backups", &["get", "post"]),
        ("/api/v1/containers/{name}/backups/{id}/restore", &["post"]),
        ("/api/v1/containers/{name}/usage", &["get"]),
        ("/api/v1/containers/{name}/faults", &["get"]),
        ("/api/v1/containers/{name}/notices", &["get"]),
        ("/api/v1/faults", &["get"]),
        ("/api/v1/notices", &["get"]),
        ("/api/v1/operations", &["get"]),
        ("/api/v1/operations/{id}", &["get"]),
        ("/api/v1/resellers", &["get", "post"]),
        ("/api/v1/resellers/{name}/pool", &["put"]),
        ("/api/v1/plans", &["get", "post"]),
        ("/api/v1/plans/{name}", &["put", "delete"]),
        ("/api/v1/customers/{name}/plan", &["put"]),
        ("/api/v1/customers/{name}", &["delete"]),
        ("/api/v1/resellers/{name}", &["delete"]),
        ("/api/v1/customers", &["get", "post"]),
        ("/api/v1/accounts/{name}", &["get"]),
        ("/api/v1/customers/{name}/suspend", &["post"]),
        ("/api/v1/customers/{name}/unsuspend", &["post"]),
        ("/api/v1/tokens", &["get", "post"]),
        ("/api/v1/tokens/{id}", &["delete"]),
        ("/api/v1/audit", &["get"]),
        ("/api/v1/plugins", &["get", "post"]),
        ("/api/v1/plugins/{name}", &["get", "patch", "put", "delete"]),
        ("/api/v1/plugins/{name}/rollback", &["post"]),
        ("/api/v1/plugins/{name}/dry-run", &["post"]),
        ("/api/v1/plugins/{name}/calls", &["get"]),
        ("/api/v1/hook-events", &["get"]),
        ("/api/v1/plugins-wit", &["get"]),
        ("/api/v1/invoices", &["get"]),
        ("/api/v1/invoices/{id}", &["get"]),
        ("/api/v1/invoices/{id}/csv", &["get"]),
        ("/api/v1/revenue", &["get"]),
        ("/api/v1/billing/run", &["post"]),
        ("/api/v1/templates", &["get", "post"]),
        ("/api/v1/health", &["get"]),
    ] {
        for method in methods {
            assert!(
                paths[path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
    // Long actions say how they answer.
    let create = &paths["/api/v1/containers"]["post"]["responses"];
    assert!(
        create["202"].is_object() && create["201"].is_object(),
        "{create}"
    );
    let params = paths["/api/v1/containers/{name}/stop"]["post"]["parameters"].to_string();
    assert!(
        params.contains("\"wait\"") && params.contains("\"owner\""),
        "{params}"
    );
    // Every reference resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/").skip(1) {
        let target = r.split('"').next().unwrap();
        let mut node = &doc["components"];
        for part in target.split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "dangling reference {target}");
    }
    // And the field's validator agrees.
    let Some(validator) = validator() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "openapi-spec-validator is missing: scripts/setup installs it"
        );
        eprintln!("SKIPPED validation: openapi-spec-validator is not installed");
        return;
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let out = std::process::Command::new(validator)
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
