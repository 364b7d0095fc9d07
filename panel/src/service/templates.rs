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

/// Installed templates, with how many containers use each (provider).
pub async fn list(st: &AppState, caller: &User) -> AppResult<Vec<TemplateInfo>> {
    provider(caller)?;
    st.engine(|e| e.templates()).await
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
/// operation. On a refusal the upload is removed at once.
pub async fn import(
    st: &AppState,
    caller: &User,
    name: &str,
    upload: PathBuf,
) -> AppResult<OperationRow> {
    let refuse = |e: AppError| {
        let _ = std::fs::remove_file(&upload);
        e
    };
    provider(caller).map_err(refuse)?;
    acetate_engine::spec::validate_name(name)
        .map_err(|e| refuse(AppError::Unprocessable(format!("template name: {e}"))))?;
    let exists = st
        .engine(|e| e.templates())
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
            .engine(move |e| e.import_template(&n, &path, &ImportOptions::default()))
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
        .engine(|e| e.templates())
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
