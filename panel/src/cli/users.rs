//! `acetate user ...` and `acetate token ...`

use std::io::Read;

use clap::Subcommand;

use super::serve::block_on;
use crate::auth::{self, Secret};
use crate::db::{Db, Role};

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add an account; the password is read from standard input.
    Add {
        name: String,
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        role: Role,
        /// The reseller a customer belongs to.
        #[arg(long)]
        reseller: Option<String>,
        /// The customer's plan.
        #[arg(long)]
        plan: Option<String>,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create an API token for USER and print it (shown only once).
    Create {
        user: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

/// Checks an account name: 1 to 64 of lower-case letters, digits, `-`, `_`, `.`.
pub fn valid_user_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    anyhow::ensure!(
        ok,
        "invalid user name {name:?}: 1 to 64 lower-case letters, digits, '-', '_' or '.'"
    );
    Ok(())
}

pub fn run_user(database: &str, cmd: UserCmd) -> anyhow::Result<()> {
    let UserCmd::Add {
        name,
        role,
        reseller,
        plan,
        password_stdin: _,
    } = cmd;
    valid_user_name(&name)?;
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = Secret(password.trim_end_matches(['\n', '\r']).to_string());
    auth::check_password_strength(&password.0)?;
    block_on(async move {
        let db = Db::connect(database).await?;
        let reseller_id = match (role, reseller) {
            (Role::Customer, Some(r)) => {
                let rs = db
                    .user_by_name(&r)
                    .await?
                    .filter(|u| u.role() == Role::Reseller)
                    .ok_or_else(|| anyhow::anyhow!("no reseller named {r:?}"))?;
                Some(rs.id)
            }
            (Role::Customer, None) => anyhow::bail!("a customer needs --reseller"),
            (_, Some(_)) => anyhow::bail!("only customers belong to a reseller"),
            (_, None) => None,
        };
        let plan_id = match (plan, reseller_id) {
            (Some(p), Some(r)) => Some(
                db.plan_by_name(r, &p)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("the reseller has no plan named {p:?}"))?
                    .id,
            ),
            (Some(_), None) => anyhow::bail!("only customers have a plan"),
            (None, _) => None,
        };
        let hash = auth::hash_bounded(password).await?;
        let id = db.create_user(&name, role, reseller_id, &hash).await?;
        if let Some(plan_id) = plan_id {
            db.set_user_plan(id, plan_id).await?;
        }
        db.audit(
            None,
            "user.create",
            &format!("{name} ({})", role.as_str()),
            "ok",
        )
        .await?;
        println!("user {name} added ({})", role.as_str());
        Ok(())
    })
}

pub fn run_token(database: &str, cmd: TokenCmd) -> anyhow::Result<()> {
    let TokenCmd::Create { user, label } = cmd;
    block_on(async move {
        let db = Db::connect(database).await?;
        let u = db
            .user_by_name(&user)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user named {user:?}"))?;
        let (token, hash) = auth::new_token();
        db.insert_token(u.id, &hash, &label).await?;
        db.audit(None, "token.create", &user, "ok").await?;
        println!("{}", token.0);
        Ok(())
    })
}
