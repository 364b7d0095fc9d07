//! Domains attached to containers, their certificates, and the suffixes resellers allow.

use super::{conflict, now, Db};
use crate::error::AppResult;

/// A domain as listed to its owner.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct DomainRow {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub container_id: i64,
    /// The name, lower case, ASCII (internationalised names in their `xn--` form).
    pub domain: String,
    /// The container's port that HTTP and HTTPS for the domain go to.
    pub port: i64,
    pub created_at: i64,
    /// When the certificate from the ACME authority expires (seconds since the epoch);
    /// absent while the front door still serves a self-signed one.
    pub cert_not_after: Option<i64>,
    /// Why the last attempt to get a certificate failed, if it did.
    pub cert_error: Option<String>,
    /// When the next attempt is due, after a failure.
    pub cert_next_try: i64,
    /// Plain HTTP is sent to HTTPS ("Force HTTPS").
    #[serde(serialize_with = "as_bool")]
    #[schema(value_type = bool)]
    pub https_only: i64,
}

fn as_bool<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

impl DomainRow {
    /// "valid until ...", or why the front door still serves a self-signed certificate.
    pub fn certificate_state(&self) -> String {
        match (self.cert_not_after, &self.cert_error) {
            (Some(t), _) => format!("valid until {}", crate::domain::period::human(t)),
            (None, Some(e)) => format!("self-signed; the last attempt failed: {e}"),
            (None, None) => "self-signed until issued (the domain must point at this host)".into(),
        }
    }
}

/// Where the front door sends a domain, with its certificate if it has one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RouteRow {
    pub domain: String,
    pub engine_name: String,
    pub port: i64,
    pub owner_id: i64,
    pub cert_chain: Option<String>,
    pub cert_key: Option<String>,
    pub cert_not_after: Option<i64>,
    pub https_only: i64,
}

/// One of the panel's own hostnames and its certificate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PanelCertRow {
    pub domain: String,
    pub cert_chain: Option<String>,
    pub cert_key: Option<String>,
    pub cert_not_after: Option<i64>,
    pub cert_error: Option<String>,
}

/// A domain held by another account that conflicts with one asked for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldDomain {
    pub domain: String,
    pub owner_id: i64,
}

const DOMAIN_COLS: &str = "id, container_id, domain, port, created_at, cert_not_after, \
                           cert_error, cert_next_try, https_only";

impl Db {
    pub async fn domains_of(&self, container_id: i64) -> AppResult<Vec<DomainRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {DOMAIN_COLS} FROM domains WHERE container_id = $1 ORDER BY domain"
        ))
        .bind(container_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Domains equal to, above or below `domain` (`a.b.c` conflicts with `b.c` and
    /// `x.a.b.c`), with their owners.
    pub async fn related_domains(&self, domain: &str) -> AppResult<Vec<HeldDomain>> {
        let mut above: Vec<String> = Vec::new();
        let mut rest = domain;
        while let Some((_, parent)) = rest.split_once('.') {
            above.push(parent.to_string());
            rest = parent;
        }
        let mut q = String::from(
            "SELECT d.domain, c.owner_id FROM domains d JOIN containers c ON c.id = d.container_id \
             WHERE d.domain = $1 OR d.domain LIKE $2",
        );
        for i in 0..above.len() {
            q.push_str(&format!(" OR d.domain = ${}", i + 3));
        }
        let mut query = sqlx::query_as(&q)
            .bind(domain.to_string())
            .bind(format!("%.{domain}"));
        for a in above {
            query = query.bind(a);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    pub async fn add_domain(
        &self,
        container_id: i64,
        domain: &str,
        port: i64,
        https_only: bool,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO domains (container_id, domain, port, created_at, https_only) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(container_id)
        .bind(domain)
        .bind(port)
        .bind(now())
        .bind(i64::from(https_only))
        .execute(&self.pool)
        .await
        .map_err(conflict(format!("domain: {domain} is already attached")))?;
        Ok(())
    }

    pub async fn delete_domain(&self, container_id: i64, domain: &str) -> AppResult<bool> {
        let done = sqlx::query("DELETE FROM domains WHERE container_id = $1 AND domain = $2")
            .bind(container_id)
            .bind(domain)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Turns "Force HTTPS" of the container's `domain` on or off; false if there is no
    /// such domain on it.
    pub async fn set_https_only(
        &self,
        container_id: i64,
        domain: &str,
        on: bool,
    ) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE domains SET https_only = $1 WHERE container_id = $2 AND domain = $3",
        )
        .bind(i64::from(on))
        .bind(container_id)
        .bind(domain)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every domain of a container that is ready, for the front door.
    pub async fn routes(&self) -> AppResult<Vec<RouteRow>> {
        let mut rows: Vec<RouteRow> = sqlx::query_as(
            "SELECT d.domain, c.engine_name, d.port, c.owner_id, d.cert_chain, d.cert_key, \
             d.cert_not_after, d.https_only FROM domains d \
             JOIN containers c ON c.id = d.container_id WHERE c.state = 'ready'",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &mut rows {
            self.unseal_key(&mut r.cert_key)?;
        }
        Ok(rows)
    }

    /// Domains without a certificate, or whose certificate expires before `renew_before`,
    /// whose next attempt is due at `at`.
    pub async fn domains_needing_certificates(
        &self,
        renew_before: i64,
        at: i64,
    ) -> AppResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT domain FROM domains \
             WHERE (cert_not_after IS NULL OR cert_not_after < $1) AND cert_next_try <= $2 \
             UNION SELECT domain FROM panel_certificates \
             WHERE (cert_not_after IS NULL OR cert_not_after < $1) AND cert_next_try <= $2 \
             ORDER BY domain",
        )
        .bind(renew_before)
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(d,)| d).collect())
    }

    /// Stores an issued certificate on the domain (a customer's, or one of the panel's).
    pub async fn store_certificate(
        &self,
        domain: &str,
        chain: &str,
        key: &str,
        not_after: i64,
    ) -> AppResult<()> {
        let key = self.seal("cert_key", key)?;
        for table in ["domains", "panel_certificates"] {
            sqlx::query(&format!(
                "UPDATE {table} SET cert_chain = $1, cert_key = $2, cert_not_after = $3, \
                 cert_error = NULL, cert_next_try = 0 WHERE domain = $4"
            ))
            .bind(chain)
            .bind(&key)
            .bind(not_after)
            .bind(domain)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn certificate_failed(&self, domain: &str, why: &str, next: i64) -> AppResult<()> {
        for table in ["domains", "panel_certificates"] {
            sqlx::query(&format!(
                "UPDATE {table} SET cert_error = $1, cert_next_try = $2 WHERE domain = $3"
            ))
            .bind(why)
            .bind(next)
            .bind(domain)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// The panel's hostnames become exactly `hosts` (certificates of names kept are kept).
    pub async fn set_panel_hosts(&self, hosts: &[String]) -> AppResult<()> {
        let mut tx = self.pool.begin().await?;
        let held: Vec<(String,)> = sqlx::query_as("SELECT domain FROM panel_certificates")
            .fetch_all(&mut *tx)
            .await?;
        for (d,) in held.iter().filter(|(d,)| !hosts.contains(d)) {
            sqlx::query("DELETE FROM panel_certificates WHERE domain = $1")
                .bind(d)
                .execute(&mut *tx)
                .await?;
        }
        for h in hosts.iter().filter(|h| !held.iter().any(|(d,)| d == *h)) {
            sqlx::query("INSERT INTO panel_certificates (domain) VALUES ($1)")
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The panel's hostnames with their issued certificates, if any:
    /// (domain, chain, key, not_after).
    pub async fn panel_certificates(&self) -> AppResult<Vec<PanelCertRow>> {
        let mut rows: Vec<PanelCertRow> = sqlx::query_as(
            "SELECT domain, cert_chain, cert_key, cert_not_after, cert_error \
             FROM panel_certificates ORDER BY domain",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &mut rows {
            self.unseal_key(&mut r.cert_key)?;
        }
        Ok(rows)
    }

    /// A certificate's private key as read from the database, opened.
    fn unseal_key(&self, key: &mut Option<String>) -> AppResult<()> {
        if let Some(k) = key {
            *k = self.unseal("cert_key", k)?;
        }
        Ok(())
    }

    /// The suffixes reseller `reseller_id` allows its customers (none: any domain).
    pub async fn domain_suffixes(&self, reseller_id: i64) -> AppResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT suffix FROM reseller_domains WHERE reseller_id = $1 ORDER BY suffix",
        )
        .bind(reseller_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    pub async fn set_domain_suffixes(
        &self,
        reseller_id: i64,
        suffixes: &[String],
    ) -> AppResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM reseller_domains WHERE reseller_id = $1")
            .bind(reseller_id)
            .execute(&mut *tx)
            .await?;
        for s in suffixes {
            sqlx::query("INSERT INTO reseller_domains (reseller_id, suffix) VALUES ($1, $2)")
                .bind(reseller_id)
                .bind(s)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Domains of the reseller's customers.
    pub async fn domains_under_reseller(&self, reseller_id: i64) -> AppResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT d.domain FROM domains d JOIN containers c ON c.id = d.container_id \
             JOIN users u ON u.id = c.owner_id WHERE u.reseller_id = $1 ORDER BY d.domain",
        )
        .bind(reseller_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(d,)| d).collect())
    }
}
