//! Domains: a customer attaches `shop.example.com` to a port of its container, and the
//! front door (`acetate serve`, ports 80 and 443) sends HTTP and HTTPS for that name there,
//! with a certificate from the ACME authority (self-signed until issued). A domain and
//! everything under it stays with one account: another account's claim on the name, a
//! name above it or below it is refused. A reseller may restrict its customers to names
//! under suffixes of its own; the panel's own hostnames are nobody's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustls::sign::CertifiedKey;
use tokio::sync::Notify;

use super::containers::{active_owner_of, resolve};
use super::{require, AppState};
use crate::db::domains::DomainRow;
use crate::db::{ContainerRow, Db};
use crate::domain::hostnames::{self, DomainName};
use crate::domain::{Role, User};
use crate::error::{AppError, AppResult};

/// A domain as asked for.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainRequest {
    /// Such as `shop.example.com` (internationalised names in their `xn--` form).
    pub domain: String,
    /// The container's port HTTP goes to (default 80).
    #[serde(default)]
    pub port: Option<i64>,
    /// Send plain HTTP to HTTPS ("Force HTTPS"; default off).
    #[serde(default)]
    pub https_only: Option<bool>,
}

/// A change to an attached domain.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainChange {
    /// Send plain HTTP to HTTPS ("Force HTTPS").
    pub https_only: bool,
}

/// The suffixes a reseller's customers may attach domains under (empty: any).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainSuffixes {
    pub suffixes: Vec<String>,
}

/// A certificate ready to serve, with its expiry (seconds since the epoch).
pub type Served = (Arc<CertifiedKey>, i64);

/// Where the front door sends one domain.
#[derive(Debug, Clone)]
pub struct Route {
    pub engine_name: String,
    pub port: u16,
    /// Plain HTTP is sent to HTTPS.
    pub https_only: bool,
    /// The issued certificate, and its expiry; `None` until issued.
    pub cert: Option<Served>,
}

/// What the front door serves: the routes (reloaded from the database when they change
/// here, and every few seconds for changes made elsewhere, such as the CLI), the HTTP-01
/// answers of orders in progress, and self-signed certificates made on demand.
#[derive(Debug, Clone, Default)]
pub struct Front {
    routes: Arc<RwLock<Arc<HashMap<String, Route>>>>,
    challenges: Arc<Mutex<HashMap<String, String>>>,
    self_signed: Arc<Mutex<HashMap<String, Arc<CertifiedKey>>>>,
    /// Wakes the certificate issuer.
    pub wake: Arc<Notify>,
    failures: Arc<AtomicBool>,
    /// Names that belong to the panel itself (its `--panel-host`s).
    pub reserved: Arc<Vec<String>>,
    /// The panel's own certificates: issued ones by name, or the provider's files for all.
    panel_certs: Arc<RwLock<HashMap<String, Served>>>,
    panel_file_cert: Option<Arc<CertifiedKey>>,
    /// Where the front door sends the panel's hostnames (the panel's own listener).
    panel_backend: Option<std::net::SocketAddr>,
}

impl Front {
    pub fn new(reserved: Vec<String>) -> Front {
        Front {
            reserved: Arc::new(reserved),
            ..Front::default()
        }
    }

    /// The front door serves the panel's hostnames from `backend` (over HTTPS, HTTP
    /// redirected), with `certificate` (the provider's files) or one got over ACME.
    pub fn serving_panel(
        mut self,
        backend: std::net::SocketAddr,
        certificate: Option<Arc<CertifiedKey>>,
    ) -> Front {
        self.panel_backend = Some(backend);
        self.panel_file_cert = certificate;
        self
    }

    /// Where requests for the panel's hostname `host` go, if it is one and the front door
    /// serves the panel.
    pub fn panel_backend(&self, host: &str) -> Option<std::net::SocketAddr> {
        self.panel_backend
            .filter(|_| self.reserved.iter().any(|r| r == host))
    }

    /// Whether the panel's certificates come from the provider's files (no ACME for them).
    pub fn panel_uses_files(&self) -> bool {
        self.panel_file_cert.is_some()
    }

    /// The route of `host`, if a container serves it.
    pub fn route(&self, host: &str) -> Option<Route> {
        self.routes.read().ok()?.get(host).cloned()
    }

    /// The certificate to present for `host`: the issued one, else a self-signed one
    /// (made once); `None` for names no container serves.
    pub fn certificate(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        match self.route(host) {
            Some(route) => {
                if let Some((cert, _)) = route.cert {
                    return Some(cert);
                }
            }
            None => {
                self.panel_backend(host)?;
                if let Some(c) = &self.panel_file_cert {
                    return Some(c.clone());
                }
                if let Some((c, _)) = self.panel_certs.read().ok()?.get(host) {
                    return Some(c.clone());
                }
            }
        }
        let mut made = self.self_signed.lock().ok()?;
        if let Some(c) = made.get(host) {
            return Some(c.clone());
        }
        match super::certs::self_signed(host) {
            Ok(c) => {
                made.insert(host.to_string(), c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::warn!(%host, error = %e, "making a self-signed certificate");
                None
            }
        }
    }

    /// The key authorization for an HTTP-01 `token`, while its order is in progress.
    pub fn challenge(&self, token: &str) -> Option<String> {
        self.challenges.lock().ok()?.get(token).cloned()
    }

    pub(super) fn answer_challenge(&self, token: &str, key_authorization: &str) {
        if let Ok(mut c) = self.challenges.lock() {
            c.insert(token.to_string(), key_authorization.to_string());
        }
    }

    pub(super) fn forget_challenge(&self, token: &str) {
        if let Ok(mut c) = self.challenges.lock() {
            c.remove(token);
        }
    }

    pub(super) fn note_failure(&self) {
        self.failures.store(true, Ordering::Relaxed);
    }

    pub(super) fn has_failures(&self) -> bool {
        self.failures.swap(false, Ordering::Relaxed)
    }

    /// Reads the routes again; wakes the issuer when a domain without a certificate
    /// appeared. Certificates already parsed are kept.
    pub async fn reload(&self, db: &Db) {
        let rows = match db.routes().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading the front door's routes");
                return;
            }
        };
        let old = self.routes.read().map(|r| r.clone()).unwrap_or_default();
        let mut new = HashMap::with_capacity(rows.len());
        let mut wake = false;
        for r in rows {
            let kept = old
                .get(&r.domain)
                .and_then(|o| o.cert.clone())
                .filter(|(_, exp)| Some(*exp) == r.cert_not_after);
            let cert = kept.or_else(|| {
                let (chain, key, exp) = (r.cert_chain?, r.cert_key?, r.cert_not_after?);
                match super::certs::certified_key(&chain, &key) {
                    Ok(c) => Some((c, exp)),
                    Err(e) => {
                        tracing::warn!(domain = %r.domain, error = %e, "a stored certificate");
                        None
                    }
                }
            });
            wake |= cert.is_none() && !old.contains_key(&r.domain);
            let port = u16::try_from(r.port).unwrap_or(80);
            new.insert(
                r.domain,
                Route {
                    engine_name: r.engine_name,
                    port,
                    https_only: r.https_only != 0,
                    cert,
                },
            );
        }
        let mut panel = HashMap::new();
        // The panel's own certificates are read only where the front door serves the
        // panel with ACME's (every few seconds otherwise for nothing).
        if self.panel_backend.is_some() && !self.panel_uses_files() {
            match db.panel_certificates().await {
                Ok(rows) => {
                    for r in rows {
                        let (Some(chain), Some(key), Some(exp)) =
                            (r.cert_chain, r.cert_key, r.cert_not_after)
                        else {
                            continue;
                        };
                        match super::certs::certified_key(&chain, &key) {
                            Ok(c) => {
                                panel.insert(r.domain, (c, exp));
                            }
                            Err(e) => {
                                tracing::warn!(domain = %r.domain, error = %e, "the panel's certificate")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the panel's certificates"),
            }
        }
        if let Ok(mut s) = self.self_signed.lock() {
            s.retain(|d, _| {
                new.get(d).is_some_and(|r| r.cert.is_none())
                    || (self.reserved.contains(d) && !panel.contains_key(d))
            });
        }
        if let Ok(mut p) = self.panel_certs.write() {
            *p = panel;
        }
        if let Ok(mut r) = self.routes.write() {
            *r = Arc::new(new);
        }
        if wake {
            self.wake.notify_one();
        }
    }

    /// Reloads the routes every `every` (changes made by other processes).
    pub fn spawn_reloader(&self, db: Db, every: std::time::Duration) {
        let front = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                front.reload(&db).await;
            }
        });
    }
}

fn port(p: Option<i64>) -> AppResult<i64> {
    let p = p.unwrap_or(80);
    if !(1..=65535).contains(&p) {
        return Err(AppError::Unprocessable(format!(
            "port: {p} is not a port (1-65535)"
        )));
    }
    Ok(p)
}

pub async fn list(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<Vec<DomainRow>> {
    let row = resolve(st, caller, name, owner).await?;
    st.db.domains_of(row.id).await
}

/// Attaches a domain to the container; its domains after.
pub async fn add(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    req: &DomainRequest,
) -> AppResult<Vec<DomainRow>> {
    let row = resolve(st, caller, name, owner).await?;
    let owner_user = active_owner_of(st, &row).await?;
    attach(
        &st.db,
        Some(caller),
        &owner_user,
        &row,
        req,
        &st.front.reserved,
    )
    .await?;
    st.front.reload(&st.db).await;
    st.db.domains_of(row.id).await
}

/// The checks and the row, shared by the API and the CLI (`actor` `None`: the host's
/// root).
pub async fn attach(
    db: &Db,
    actor: Option<&User>,
    owner: &User,
    row: &ContainerRow,
    req: &DomainRequest,
    reserved: &[String],
) -> AppResult<DomainName> {
    let domain = DomainName::parse("domain", &req.domain)?;
    let port = port(req.port)?;
    if let Some(r) = reserved.iter().find(|r| domain.is_within(r)) {
        return Err(AppError::Conflict(format!(
            "domain: {domain} is the panel's own address ({r})"
        )));
    }
    if let Some(reseller) = owner.reseller_id {
        let allowed = db.domain_suffixes(reseller).await?;
        if !allowed.is_empty() && !allowed.iter().any(|s| domain.is_within(s)) {
            return Err(AppError::Unprocessable(format!(
                "domain: {domain} is not under a domain your reseller allows ({})",
                allowed.join(", ")
            )));
        }
    }
    if let Some(held) = db
        .related_domains(domain.as_str())
        .await?
        .into_iter()
        .find(|h| h.owner_id != owner.id)
    {
        let how = if held.domain == domain.as_str() {
            "belongs to another account".to_string()
        } else if domain.is_within(&held.domain) {
            format!("is under {}, which belongs to another account", held.domain)
        } else {
            "has names below it that belong to another account".to_string()
        };
        return Err(AppError::Conflict(format!("domain: {domain} {how}")));
    }
    let https_only = req.https_only.unwrap_or(false);
    db.add_domain(row.id, domain.as_str(), port, https_only)
        .await?;
    let forced = if https_only { ", HTTPS only" } else { "" };
    db.audit(
        actor,
        "container.domain.add",
        &format!("{}/{}", row.owner, row.name),
        &format!("{domain} -> port {port}{forced}"),
    )
    .await?;
    Ok(domain)
}

/// Turns "Force HTTPS" of one of the container's domains on or off; its domains after.
pub async fn change(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    domain: &str,
    req: &DomainChange,
) -> AppResult<Vec<DomainRow>> {
    let row = resolve(st, caller, name, owner).await?;
    active_owner_of(st, &row).await?;
    let domain = hostnames::normalise(domain);
    if !st
        .db
        .set_https_only(row.id, &domain, req.https_only)
        .await?
    {
        return Err(AppError::NotFound);
    }
    st.db
        .audit(
            Some(caller),
            "container.domain.https",
            &format!("{}/{}", row.owner, row.name),
            &format!(
                "{domain}: HTTPS only {}",
                if req.https_only { "on" } else { "off" }
            ),
        )
        .await?;
    st.front.reload(&st.db).await;
    st.db.domains_of(row.id).await
}

/// Detaches `domain` from the container; its domains after.
pub async fn remove(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    domain: &str,
) -> AppResult<Vec<DomainRow>> {
    let row = resolve(st, caller, name, owner).await?;
    detach(&st.db, Some(caller), &row, domain).await?;
    st.front.reload(&st.db).await;
    st.db.domains_of(row.id).await
}

pub async fn detach(
    db: &Db,
    actor: Option<&User>,
    row: &ContainerRow,
    domain: &str,
) -> AppResult<()> {
    let domain = hostnames::normalise(domain);
    if !db.delete_domain(row.id, &domain).await? {
        return Err(AppError::NotFound);
    }
    db.audit(
        actor,
        "container.domain.remove",
        &format!("{}/{}", row.owner, row.name),
        &domain,
    )
    .await
}

async fn reseller_named(st: &AppState, caller: &User, reseller: &str) -> AppResult<User> {
    st.db
        .user_by_name(reseller)
        .await?
        .filter(|u| u.role() == Role::Reseller)
        .filter(|u| u.id == caller.id || caller.role() == Role::Provider)
        .ok_or(AppError::NotFound)
}

/// The suffixes reseller `reseller` allows (the provider, or the reseller itself).
pub async fn suffixes(st: &AppState, caller: &User, reseller: &str) -> AppResult<DomainSuffixes> {
    let r = reseller_named(st, caller, reseller).await?;
    Ok(DomainSuffixes {
        suffixes: st.db.domain_suffixes(r.id).await?,
    })
}

/// Restricts the reseller's customers to domains under `suffixes` (empty: any). Refused,
/// naming them, while customers hold domains outside.
pub async fn set_suffixes(
    st: &AppState,
    caller: &User,
    reseller: &str,
    req: &DomainSuffixes,
) -> AppResult<DomainSuffixes> {
    if caller.role() != Role::Provider {
        require(caller, Role::Reseller)?;
    }
    let r = reseller_named(st, caller, reseller).await?;
    let mut suffixes = Vec::new();
    for s in &req.suffixes {
        let s = DomainName::parse_suffix("suffixes", s)?.to_string();
        if !suffixes.contains(&s) {
            suffixes.push(s);
        }
    }
    if !suffixes.is_empty() {
        let outside: Vec<String> = st
            .db
            .domains_under_reseller(r.id)
            .await?
            .into_iter()
            .filter(|d| !suffixes.iter().any(|s| hostnames::within(d, s)))
            .collect();
        if !outside.is_empty() {
            return Err(AppError::Unprocessable(format!(
                "suffixes: customers use domains outside them: {}; they must remove them first",
                outside.join(", ")
            )));
        }
    }
    st.db.set_domain_suffixes(r.id, &suffixes).await?;
    st.db
        .audit(
            Some(caller),
            "reseller.domains",
            reseller,
            &if suffixes.is_empty() {
                "any domain".to_string()
            } else {
                suffixes.join(", ")
            },
        )
        .await?;
    Ok(DomainSuffixes { suffixes })
}
