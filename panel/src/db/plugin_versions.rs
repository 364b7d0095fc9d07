//! A plugin replaced in place, and rolled back: the previous component is kept in the same
//! row, counted in the reseller's storage.

use acetate_plugins::Plugin;

use super::plugins::{PluginRow, MAX_PLUGIN_BYTES};
use super::{now, Db};
use crate::error::{AppError, AppResult};

impl Db {
    /// Makes `plugin` (bytes `wasm`) the current version of `row`, keeping the current one
    /// as the previous (the one before is dropped); within the reseller's storage.
    pub async fn replace_plugin(
        &self,
        row: &PluginRow,
        plugin: &Plugin,
        wasm: &[u8],
    ) -> AppResult<()> {
        let done = sqlx::query(
            "UPDATE plugins SET previous_wasm = wasm, previous_sha256 = sha256, \
             previous_size = size, wasm = $1, sha256 = $2, size = $3, replaced_at = $4 \
             WHERE id = $5 AND (SELECT COALESCE(SUM(p.size + p.previous_size), 0) FROM plugins p \
                  WHERE p.reseller_id = $6 AND p.id <> $5) + $3 + plugins.size <= $7",
        )
        .bind(wasm.to_vec())
        .bind(plugin.sha256())
        .bind(wasm.len() as i64)
        .bind(now())
        .bind(row.id)
        .bind(row.reseller_id)
        .bind(MAX_PLUGIN_BYTES)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(AppError::Quota(format!(
                "your plugin storage ({} in all, previous versions included) has no room for \
                 this version; delete a plugin first",
                acetate_engine::size::format_bytes(MAX_PLUGIN_BYTES as u64)
            )));
        }
        Ok(())
    }

    /// Swaps the current and the previous version; `false` if there is none.
    pub async fn roll_back_plugin(&self, row: &PluginRow) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE plugins SET wasm = previous_wasm, sha256 = previous_sha256, \
             size = previous_size, previous_wasm = wasm, previous_sha256 = sha256, \
             previous_size = size, replaced_at = $1 \
             WHERE id = $2 AND previous_wasm IS NOT NULL",
        )
        .bind(now())
        .bind(row.id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
