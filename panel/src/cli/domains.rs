//! `acetate ct domain add|list|remove`: domains of panel containers, from the host's root
//! (audited as the host). The running panel's front door picks changes up within seconds.

use clap::Subcommand;

use super::output::{table, Output};
use super::serve::block_on;
use crate::db::{ContainerRow, Db};
use crate::error::AppError;
use crate::service::domains::{self, DomainRequest};

#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Send HTTP and HTTPS for DOMAIN to the container (automatic TLS).
    Add {
        /// The container: its engine name, or OWNER/NAME.
        name: String,
        domain: String,
        /// The container's port.
        #[arg(long, default_value_t = 80)]
        port: u16,
        /// Send plain HTTP to HTTPS.
        #[arg(long)]
        https_only: bool,
    },
    /// The container's domains and their certificates.
    List { name: String },
    /// Stop serving DOMAIN.
    Remove { name: String, domain: String },
}

async fn container(db: &Db, name: &str) -> anyhow::Result<ContainerRow> {
    let row = match name.split_once('/') {
        Some((owner, ct)) => match db.user_by_name(owner).await? {
            Some(u) => db.container(u.id, ct).await?,
            None => None,
        },
        None => db.container_by_engine_name(name).await?,
    };
    row.filter(|r| r.state == "ready").ok_or_else(|| {
        anyhow::anyhow!(
            "no panel container {name}: domains go to containers the panel made (name one \
             by its engine name or as OWNER/NAME, as `acetate ct list` shows)"
        )
    })
}

pub fn run(
    database: &str,
    panel_hosts: &[String],
    out: &Output,
    cmd: DomainCmd,
) -> anyhow::Result<()> {
    block_on(async move {
        let db = Db::connect(database).await?;
        let name = match &cmd {
            DomainCmd::Add { name, .. }
            | DomainCmd::List { name }
            | DomainCmd::Remove { name, .. } => name.clone(),
        };
        let row = container(&db, &name).await?;
        match cmd {
            DomainCmd::Add {
                domain,
                port,
                https_only,
                ..
            } => {
                let owner = db
                    .user_by_id(row.owner_id)
                    .await?
                    .ok_or(AppError::NotFound)?;
                let req = DomainRequest {
                    domain,
                    port: Some(port.into()),
                    https_only: Some(https_only),
                };
                let d = domains::attach(&db, None, &owner, &row, &req, panel_hosts).await?;
                println!("{d} -> {}/{}:{port} (a certificate follows once the domain points at this host)", row.owner, row.name);
            }
            DomainCmd::Remove { domain, .. } => {
                domains::detach(&db, None, &row, &domain).await?;
                println!("{domain} removed from {}/{}", row.owner, row.name);
            }
            DomainCmd::List { .. } => {
                let list = db.domains_of(row.id).await?;
                out.print(&list, |list| {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|d| vec![d.domain.clone(), d.port.to_string(), d.certificate_state()])
                        .collect();
                    table(&["DOMAIN", "PORT", "CERTIFICATE"], &rows);
                });
            }
        }
        Ok(())
    })
}
