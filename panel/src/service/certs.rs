//! Certificates for the front door: those issued over ACME (RFC 8555, HTTP-01 answered by
//! the front door itself) and kept in the database, and self-signed ones served until the
//! first is issued. The issuer runs in `acetate serve`: woken when a domain is attached,
//! and hourly for renewals 30 days before expiry; a failure is recorded on the domain
//! (the customer sees why) and tried again ten minutes later.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acetate_engine::store;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::AppState;
use crate::domain::now;

/// Where certificates come from (the provider's settings).
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The ACME directory (Let's Encrypt's by default).
    pub directory: String,
    /// A contact address given to the authority (`mailto:` is added).
    pub email: Option<String>,
    /// A root certificate (PEM) to trust for the directory instead of the system's
    /// (a private authority such as step-ca, or a test's).
    pub ca_root: Option<PathBuf>,
    /// Where the account's key is kept.
    pub state_dir: PathBuf,
}

pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Renew this long before expiry.
pub const RENEW_BEFORE: i64 = 30 * 86400;
/// After a failure, try again this much later.
pub const RETRY_AFTER: i64 = 600;
/// One issuance may take this long at most.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(180);

/// A certificate chain and key from PEM, ready to serve.
pub fn certified_key(chain_pem: &str, key_pem: &str) -> anyhow::Result<Arc<CertifiedKey>> {
    let certs = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("certificate chain: {e}"))?;
    anyhow::ensure!(!certs.is_empty(), "the certificate chain is empty");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("private key: {e}"))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| anyhow::anyhow!("private key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(certs, signer)))
}

/// When the first certificate of a PEM chain expires (seconds since the epoch).
pub fn not_after(chain_pem: &str) -> anyhow::Result<i64> {
    let first = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .ok_or_else(|| anyhow::anyhow!("the certificate chain is empty"))?
        .map_err(|e| anyhow::anyhow!("certificate chain: {e}"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&first)
        .map_err(|e| anyhow::anyhow!("certificate: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

/// A self-signed certificate for `domain`, served until the authority issues one.
pub fn self_signed(domain: &str) -> anyhow::Result<Arc<CertifiedKey>> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, domain);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Acetate (not yet issued)");
    let cert = params.self_signed(&key)?;
    certified_key(&cert.pem(), &key.serialize_pem())
}

/// The names due a certificate at `at`: none yet, or one expiring within
/// [`RENEW_BEFORE`], unless a failure put the next attempt later.
pub async fn due(db: &crate::db::Db, at: i64) -> crate::error::AppResult<Vec<String>> {
    db.domains_needing_certificates(at + RENEW_BEFORE, at).await
}

/// Runs the issuer until the process ends.
pub fn spawn_issuer(st: AppState, settings: AcmeSettings) {
    tokio::spawn(async move {
        let mut account: Option<Account> = None;
        loop {
            let due = match due(&st.db, now()).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "listing domains due a certificate");
                    Vec::new()
                }
            };
            for domain in due {
                let result = obtain(&st, &settings, &mut account, &domain).await;
                match result {
                    Ok(not_after) => {
                        tracing::info!(%domain, not_after, "certificate issued");
                        let valid = crate::domain::period::human(not_after);
                        let _ = st
                            .db
                            .audit(
                                None,
                                "domain.certificate",
                                &domain,
                                &format!("issued, valid until {valid}"),
                            )
                            .await;
                        st.front.reload(&st.db).await;
                    }
                    Err(e) => record_failure(&st, &domain, &format!("{e:#}")).await,
                }
            }
            tokio::select! {
                _ = st.front.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = tokio::time::sleep(Duration::from_secs(RETRY_AFTER as u64)), if st.front.has_failures() => {}
            }
        }
    });
}

/// A certificate for `domain` with the account (opened or made on first use); an account
/// the authority no longer knows (its database was reset) is replaced once.
async fn obtain(
    st: &AppState,
    settings: &AcmeSettings,
    account: &mut Option<Account>,
    domain: &str,
) -> anyhow::Result<i64> {
    for attempt in 0..2 {
        if account.is_none() {
            *account = Some(
                open_account(settings, attempt > 0)
                    .await
                    .map_err(|e| e.context("the ACME authority refused the account"))?,
            );
        }
        let Some(acct) = account.as_ref() else {
            continue;
        };
        let result = tokio::time::timeout(ISSUE_TIMEOUT, issue(st, acct, domain))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {ISSUE_TIMEOUT:?}")));
        match result {
            Err(e) if attempt == 0 && account_unknown(&e) => {
                tracing::warn!("the ACME authority no longer knows our account: making another");
                *account = None;
            }
            other => return other,
        }
    }
    anyhow::bail!("the ACME authority does not keep our account")
}

fn account_unknown(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<instant_acme::Error>(),
        Some(instant_acme::Error::Api(p))
            if p.r#type.as_deref().is_some_and(|t| t.ends_with(":accountDoesNotExist"))
    )
}

async fn record_failure(st: &AppState, domain: &str, why: &str) {
    tracing::warn!(%domain, error = %why, "no certificate");
    if let Err(e) = st
        .db
        .certificate_failed(domain, why, now() + RETRY_AFTER)
        .await
    {
        tracing::warn!(error = %e, "recording a certificate failure");
    }
    let _ = st
        .db
        .audit(
            None,
            "domain.certificate",
            domain,
            &format!("failed: {why}"),
        )
        .await;
    st.front.note_failure();
}

/// The account kept in `<state>/acme/account.json` for this directory, or a new one
/// (always a new one when `fresh`).
async fn open_account(settings: &AcmeSettings, fresh: bool) -> anyhow::Result<Account> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Stored {
        directory: String,
        credentials: AccountCredentials,
    }
    let builder = || match &settings.ca_root {
        Some(root) => Account::builder_with_root(root),
        None => Account::builder(),
    };
    let dir = settings.state_dir.join("acme");
    let path = dir.join("account.json");
    // An unreadable file is as good as none: a new account is made.
    let stored = (!fresh)
        .then(|| store::read_json::<Stored>(&path).ok().flatten())
        .flatten();
    if let Some(stored) = stored.filter(|s| s.directory == settings.directory) {
        return Ok(builder()?.from_credentials(stored.credentials).await?);
    }
    let contact: Vec<String> = settings
        .email
        .iter()
        .map(|e| format!("mailto:{e}"))
        .collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await?;
    std::fs::create_dir_all(&dir)?;
    let stored = Stored {
        directory: settings.directory.clone(),
        credentials,
    };
    store::write_json(&path, &stored)?;
    Ok(account)
}

/// Orders a certificate for `domain`, answers its HTTP-01 challenge through the front
/// door, and stores what the authority issued; its expiry.
async fn issue(st: &AppState, account: &Account, domain: &str) -> anyhow::Result<i64> {
    let identifiers = [Identifier::Dns(domain.to_string())];
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut tokens = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => anyhow::bail!("the authorization is {other:?}"),
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| anyhow::anyhow!("the authority offers no HTTP-01 challenge"))?;
        let token = challenge.token.clone();
        st.front
            .answer_challenge(&token, challenge.key_authorization().as_str());
        tokens.push(token);
        challenge.set_ready().await?;
    }
    let retries = RetryPolicy::default().timeout(Duration::from_secs(90));
    let status = order.poll_ready(&retries).await;
    for t in &tokens {
        st.front.forget_challenge(t);
    }
    let status = status?;
    if status != OrderStatus::Ready {
        let why = order
            .state()
            .error
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| format!("the order is {status:?}"));
        anyhow::bail!(
            "the authority could not check http://{domain}/.well-known/acme-challenge/ \
             ({why}); the domain must point at this host"
        );
    }
    let key_pem = order.finalize().await?;
    let chain_pem = order.poll_certificate(&retries).await?;
    certified_key(&chain_pem, &key_pem)?;
    let expires = not_after(&chain_pem)?;
    st.db
        .store_certificate(domain, &chain_pem, &key_pem, expires)
        .await?;
    Ok(expires)
}
