//! Templates for the provider: the list, and imports from uploaded tarballs as operations.

use std::path::PathBuf;

use acetate_engine::unpack::ImportOptions;
use acetate_engine::TemplateInfo;

use super::operations::Done;
use super::AppState;
use crate::db::operations::OperationRow;
use crate::domain::{Role, User};
use crate::error::{AppError, AppResult};

fn provider(user: &User) -> AppResult<()> {
    if user.role() == Role::Provider {
        Ok(())
    } else {
        Err(AppError::Forbidden("templates are the provider's".into()))
    }
}

/// The templates `caller` may see: all, with where they came from and how many containers
/// use each (provider); those its plan offers (customer); all by name (reseller).
pub async fn list(st: &AppState, caller: &User) -> AppResult<Vec<TemplateInfo>> {
    if caller.role() == Role::Provider {
        return st.engine(|e| e.templates()).await;
    }
    let all = st.engine(|e| e.installed_templates()).await?;
    let plan = match (caller.role(), caller.plan_id) {
        (Role::Customer, Some(id)) => st.db.plan(id).await?,
        _ => None,
    };
    Ok(all
        .into_iter()
        .filter(|t| plan.as_ref().is_none_or(|p| p.offers(&t.name)))
        .map(|t| TemplateInfo {
            source: String::new(),
            containers: 0,
            ..t
        })
        .collect())
}

/// Checks that a customer on `plan` may use `template`: it is installed and the plan
/// offers it. The refusal names what the customer may choose.
pub async fn check_choice(
    st: &AppState,
    plan: &crate::domain::Plan,
    template: &str,
) -> AppResult<()> {
    let installed = st.engine(|e| e.installed_templates()).await?;
    let offered: Vec<String> = installed
        .iter()
        .filter(|t| plan.offers(&t.name))
        .map(|t| t.name.clone())
        .collect();
    if offered.iter().any(|t| t == template) {
        return Ok(());
    }
    let choices = if offered.is_empty() {
        "none yet: ask your reseller".to_string()
    } else {
        offered.join(", ")
    };
    Err(AppError::Unprocessable(format!(
        "template {template:?} is not one your plan ({}) offers; choose one of: {choices}",
        plan.name
    )))
}

/// The template a create uses when none is asked for: `host` if the plan offers it, else
/// the plan's first.
pub fn default_for(plan: &crate::domain::Plan) -> String {
    match plan.allowed_templates() {
        Some(list) if !list.contains(&"host") => list[0].to_string(),
        _ => "host".to_string(),
    }
}

/// A new file for an upload, removed by whoever ends up with it.
pub async fn upload_file(st: &AppState) -> AppResult<(PathBuf, tokio::fs::File)> {
    use rand::Rng;
    let dir = st.runtime.upload_dir();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Internal(format!("create {}: {e}", dir.display())))?;
    let n: u64 = rand::thread_rng().gen();
    let path = dir.join(format!("upload-{n:016x}"));
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| AppError::Internal(format!("create {}: {e}", path.display())))?;
    Ok((path, file))
}

/// Checks the name, then imports `upload` (removed afterwards) as template `name` in an
/// operation, fitted for containers if `fit`. On a refusal the upload is removed at once.
pub async fn import(
    st: &AppState,
    caller: &User,
    name: &str,
    upload: PathBuf,
    fit: bool,
) -> AppResult<OperationRow> {
    let refuse = |e: AppError| {
        let _ = std::fs::remove_file(&upload);
        e
    };
    provider(caller).map_err(refuse)?;
    acetate_engine::spec::validate_name(name)
        .map_err(|e| refuse(AppError::Unprocessable(format!("template name: {e}"))))?;
    let exists = st
        .engine(|e| e.installed_templates())
        .await
        .map_err(refuse)?
        .iter()
        .any(|t| t.name == name);
    if exists {
        return Err(refuse(AppError::Conflict(format!(
            "a template named {name:?} exists"
        ))));
    }
    let (st2, caller2, name2) = (st.clone(), caller.clone(), name.to_string());
    let work = async move {
        let (path, n) = (upload.clone(), name2.clone());
        let result = st2
            .engine(move |e| {
                let opts = ImportOptions {
                    fit,
                    ..Default::default()
                };
                e.import_template(&n, &path, &opts)
            })
            .await;
        let _ = tokio::fs::remove_file(&upload).await;
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        st2.db
            .audit(Some(&caller2), "template.import", &name2, &outcome)
            .await?;
        let info = result?;
        Ok(Done {
            message: format!("template {} imported ({} entries)", info.name, info.entries),
            result: serde_json::to_value(&info).ok(),
        })
    };
    st.operations
        .spawn(caller, "template.import", name, None, work)
        .await
}

/// Deletes a template no container uses (provider); while any does, the refusal says how
/// many.
pub async fn delete(st: &AppState, caller: &User, name: &str) -> AppResult<()> {
    provider(caller)?;
    if !st
        .engine(|e| e.installed_templates())
        .await?
        .iter()
        .any(|t| t.name == name)
    {
        return Err(AppError::NotFound);
    }
    let n = name.to_string();
    let result = st.engine(move |e| e.delete_template(&n)).await;
    let outcome = match &result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    st.db
        .audit(Some(caller), "template.delete", name, &outcome)
        .await?;
    result
}
