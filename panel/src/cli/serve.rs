//! `acetate serve`

use std::path::Path;

use clap::Args;

use crate::app::{App, Config};
use crate::service::auth::Secret;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "ACETATE_LISTEN")]
    pub listen: String,
    /// Seconds between two samples of every container's usage.
    #[arg(long, default_value_t = 60, env = "ACETATE_METER_INTERVAL", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub meter_interval: u64,
    /// Also serve `/metrics` without a token on this address (keep it private: a
    /// loopback or management address). On the main address `/metrics` takes the
    /// provider's token.
    #[arg(long, env = "ACETATE_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The SSH gateway's address (`off`: no gateway). Customers log in with
    /// `ssh -p 2222 CONTAINER@HOST` using a key from their account page.
    #[arg(long, default_value = "0.0.0.0:2222", env = "ACETATE_SSH_LISTEN")]
    pub ssh_listen: String,
    /// Also accept account passwords on the SSH gateway (login `ACCOUNT+CONTAINER`).
    #[arg(long, env = "ACETATE_SSH_PASSWORD_AUTH")]
    pub ssh_password_auth: bool,
    /// Seconds of silence after which an SSH connection or terminal is closed.
    #[arg(long, default_value_t = 1800, env = "ACETATE_SESSION_IDLE", value_parser = clap::value_parser!(u64).range(10..=86400))]
    pub session_idle: u64,
    /// The front door's HTTP address (domains customers attach; ACME HTTP-01), `off` when
    /// another proxy serves port 80. Default [::]:80 (IPv4 and IPv6; IPv4 alone on a host
    /// without IPv6), left off with a warning when taken.
    #[arg(long, env = "ACETATE_FRONT_HTTP")]
    pub front_http: Option<String>,
    /// The front door's HTTPS address, `off` for none. Default [::]:443 (IPv4 and IPv6),
    /// left off with a warning when taken.
    #[arg(long, env = "ACETATE_FRONT_HTTPS")]
    pub front_https: Option<String>,
    /// The ACME directory certificates come from.
    #[arg(long, env = "ACETATE_ACME_DIRECTORY", default_value = crate::service::certs::LETS_ENCRYPT)]
    pub acme_directory: String,
    /// A contact address for the ACME account (expiry notices).
    #[arg(long, env = "ACETATE_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// Trust this root certificate (PEM) for the ACME directory instead of the system's
    /// (a private authority).
    #[arg(long, env = "ACETATE_ACME_CA_ROOT")]
    pub acme_ca_root: Option<std::path::PathBuf>,
    /// The certificate chain (PEM) the front door serves for the panel's hostnames
    /// (`--panel-host`) instead of getting one over ACME; with `--panel-key`.
    #[arg(long, env = "ACETATE_PANEL_CERT", requires = "panel_key")]
    pub panel_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of `--panel-cert`.
    #[arg(long, env = "ACETATE_PANEL_KEY", requires = "panel_cert")]
    pub panel_key: Option<std::path::PathBuf>,
    /// Accounts of this role (provider, reseller, customer; repeat, or comma-separated in
    /// the environment) must set up a second factor (TOTP) before using the pages.
    #[arg(
        long = "require-second-factor",
        env = "ACETATE_REQUIRE_SECOND_FACTOR",
        value_delimiter = ','
    )]
    pub require_second_factor: Vec<crate::domain::Role>,
    /// A proxy in front of the panel (an address or network, such as 192.0.2.10 or
    /// 10.0.0.0/8; repeat, or comma-separated in the environment) whose X-Forwarded-For
    /// and X-Forwarded-Proto are believed. Proxies on this host always are.
    #[arg(long = "trusted-proxy", env = "ACETATE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is neither an address nor a network (such as 10.0.0.0/8)"))
}

/// `off` is none; no value is the default address, optional.
fn front_addr(value: Option<String>, default: &str) -> (Option<String>, bool) {
    match value.as_deref() {
        Some("off") => (None, false),
        Some(a) => (Some(a.to_string()), false),
        None => (Some(default.to_string()), true),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(
    state_dir: &Path,
    database: &str,
    engine: super::EngineSettings,
    panel_hosts: Vec<String>,
    args: ServeArgs,
) -> anyhow::Result<()> {
    let (http, http_default) = front_addr(args.front_http, "[::]:80");
    let (https, https_default) = front_addr(args.front_https, "[::]:443");
    let config = Config {
        engine,
        listen: args.listen,
        database_url: database.to_string(),
        state_dir: state_dir.to_path_buf(),
        admin_password: std::env::var("ACETATE_ADMIN_PASSWORD").ok().map(Secret),
        meter_interval: std::time::Duration::from_secs(args.meter_interval),
        metrics_listen: args.metrics_listen,
        ssh_listen: (args.ssh_listen != "off").then_some(args.ssh_listen),
        ssh: crate::ssh::SshSettings {
            password_auth: args.ssh_password_auth,
            idle: std::time::Duration::from_secs(args.session_idle),
        },
        front: crate::front::FrontSettings { http, https },
        front_optional: http_default && https_default,
        acme: crate::service::certs::AcmeSettings {
            directory: args.acme_directory,
            email: args.acme_email,
            ca_root: args.acme_ca_root,
            state_dir: state_dir.to_path_buf(),
        },
        panel_hosts,
        panel_cert: args.panel_cert.zip(args.panel_key),
        second_factor_roles: args.require_second_factor,
        trusted_proxies: args.trusted_proxies,
    };
    runtime()?.block_on(async {
        let (app, first) = App::build(config).await?;
        let addr = app.local_addr();
        if let Some(first) = first {
            match first.password {
                Some(pw) => println!(
                    "first start: log in as {} with the one-time password {} \
                     (shown only now; change it after logging in)",
                    first.user, pw.0
                ),
                None => println!(
                    "first start: log in as {} with the password from ACETATE_ADMIN_PASSWORD",
                    first.user
                ),
            }
        }
        match app.front_addrs() {
            (None, None) => {}
            (h, s) => println!(
                "acetate: front door on {} and {}",
                h.map_or("no HTTP".into(), |a| format!("http://{a}")),
                s.map_or("no HTTPS".into(), |a| format!("https://{a}"))
            ),
        }
        if let Some(s) = app.ssh_addr() {
            println!("acetate: ssh on {s}");
        }
        println!("acetate: listening on http://{addr}");
        if let Some(m) = app.metrics_addr() {
            println!("acetate: metrics on http://{m}/metrics");
        }
        app.run().await
    })
}

pub(super) fn block_on<T>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    runtime()?.block_on(f)
}
