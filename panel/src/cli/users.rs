//! `acetate user ...` and `acetate token ...`

use std::io::Read;

use clap::Subcommand;

use super::serve::block_on;
use crate::db::Db;
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
    },
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

pub fn run_token(database: &str, cmd: TokenCmd) -> anyhow::Result<()> {
    let TokenCmd::Create { user, label } = cmd;
    block_on(async move {
        let db = Db::connect(database).await?;
        let token = sessions::create_token_for(&db, &user, &label).await?;
        println!("{}", token.0);
        Ok(())
    })
}
