//! `acetate user ...` and `acetate token ...`

use std::io::Read;

use clap::Subcommand;

use super::serve::block_on;
use crate::db::Db;
use crate::domain::scopes::Scopes;
use crate::domain::{Role, UserName};
use crate::service::auth::{self, Secret};
use crate::service::{accounts, sessions};

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
        /// Limit it: read, containers, billing or metrics (repeat for several; none: every
        /// right of USER).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// How long it works, in days ("30d" or "30"); forever if absent.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List USER's tokens (never their values).
    List { user: String },
    /// Revoke a token by its id.
    Revoke { id: i64 },
}

pub fn run_user(database: &str, cmd: UserCmd) -> anyhow::Result<()> {
    let UserCmd::Add {
        name,
        role,
        reseller,
        plan,
        password_stdin: _,
    } = cmd;
    let name = UserName::parse(&name)?;
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = Secret(password.trim_end_matches(['\n', '\r']).to_string());
    auth::check_password_strength(&password.0)?;
    block_on(async move {
        let db = Db::connect(database).await?;
        accounts::add_user(
            &db,
            &name,
            role,
            reseller.as_deref(),
            plan.as_deref(),
            password,
        )
        .await?;
        println!("user {name} added ({})", role.as_str());
        Ok(())
    })
}

pub fn run_token(database: &str, out: &super::output::Output, cmd: TokenCmd) -> anyhow::Result<()> {
    block_on(async move {
        let db = Db::connect(database).await?;
        match cmd {
            TokenCmd::Create {
                user,
                label,
                scopes,
                expires,
            } => {
                let days = match expires {
                    Some(e) => Some(e.trim_end_matches('d').parse::<i64>().map_err(|_| {
                        anyhow::anyhow!("--expires: a number of days, such as 30d")
                    })?),
                    None => None,
                };
                let grant = sessions::TokenGrant {
                    scopes: Scopes::parse(&scopes.join(","))?,
                    days,
                };
                let token = sessions::create_token_for(&db, &user, &label, &grant).await?;
                println!("{}", token.0);
            }
            TokenCmd::List { user } => {
                let tokens = sessions::tokens_for(&db, &user).await?;
                out.print(&tokens, |tokens| {
                    let rows: Vec<Vec<String>> = tokens
                        .iter()
                        .map(|t| {
                            vec![
                                t.id.to_string(),
                                t.label.clone(),
                                if t.scopes.is_empty() {
                                    "all".into()
                                } else {
                                    t.scopes.clone()
                                },
                                t.expires_at
                                    .map_or("never".into(), crate::domain::period::human),
                                if t.revoked_at.is_some() {
                                    "revoked".into()
                                } else {
                                    "live".into()
                                },
                            ]
                        })
                        .collect();
                    super::output::table(&["ID", "LABEL", "SCOPES", "EXPIRES", "STATE"], &rows);
                });
            }
            TokenCmd::Revoke { id } => {
                sessions::revoke_token_by_id(&db, id).await?;
                println!("token {id} revoked");
            }
        }
        Ok(())
    })
}
