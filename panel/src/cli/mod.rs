//! The `acetate` command line, shaped like `vzctl` and `incus`. Every command takes
//! `--state-dir` (env `ACETATE_STATE_DIR`) and, where it prints data, `--json`.

mod bill;
pub mod config;
mod copies;
mod ct;
mod ct_view;
mod domains;
mod net;
mod output;
mod plugin;
mod plugin_new;
mod serve;
mod template;
mod terminal;
mod users;

use std::path::PathBuf;

use acetate_engine::{Engine, DEFAULT_STATE_DIR};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "acetate",
    version,
    about = "Hosting control panel for OS containers"
)]
pub struct Cli {
    /// Where templates and containers live.
    #[arg(long, global = true, env = "ACETATE_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Control-plane database (default: SQLite in the state dir).
    #[arg(long, global = true, env = "ACETATE_DATABASE_URL")]
    pub database: Option<String>,
    /// Disk quotas may add up to this many times the state dir's filesystem (less the
    /// reserve): 1 promises no more than there is; above 1 over-commits sparse images.
    #[arg(
        long,
        global = true,
        env = "ACETATE_DISK_OVERCOMMIT",
        default_value_t = 1.0
    )]
    pub disk_overcommit: f64,
    /// Space kept back so the panel and its database stay writable when tenants fill the
    /// disk anyway (default: 2 % of the filesystem, at most 512M).
    #[arg(long, global = true, env = "ACETATE_DISK_RESERVE", value_parser = ct::bytes)]
    pub disk_reserve: Option<u64>,
    /// Where backups go: a directory that becomes a restic repository (default:
    /// `<state-dir>/backups/repo`; its password stays in `<state-dir>/backups/password`).
    #[arg(long, global = true, env = "ACETATE_BACKUP_REPOSITORY")]
    pub backup_repository: Option<PathBuf>,
    /// A nameserver written into new containers' /etc/resolv.conf (repeat, or
    /// comma-separated in the environment); default: the host's that containers can reach.
    #[arg(
        long = "resolver",
        global = true,
        env = "ACETATE_RESOLVERS",
        value_delimiter = ','
    )]
    pub resolvers: Vec<std::net::IpAddr>,
    /// Let containers send mail directly (connect to port 25 anywhere); refused by default,
    /// as hosting providers do against spam.
    #[arg(long, global = true, env = "ACETATE_ALLOW_SMTP")]
    pub allow_smtp: bool,
    /// A port of this host containers may reach, as `53/udp` or `8080/tcp` (repeat, or
    /// comma-separated in the environment; default: DNS, 53/udp and 53/tcp). Nothing else
    /// on the host answers them.
    #[arg(
        long = "host-port",
        global = true,
        env = "ACETATE_HOST_PORTS",
        value_delimiter = ','
    )]
    pub host_ports: Vec<acetate_engine::firewall::HostPort>,
    /// A hostname of the panel itself (repeat, or comma-separated in the environment): no
    /// customer may attach it or a name under it.
    #[arg(
        long = "panel-host",
        global = true,
        env = "ACETATE_PANEL_HOSTS",
        value_delimiter = ','
    )]
    pub panel_hosts: Vec<String>,
    /// The provider's config file: TOML whose keys are the long options that have an
    /// ACETATE_* variable (default: /etc/acetate/acetate.toml when it exists; flags and
    /// the environment win over it).
    #[arg(long, global = true, env = "ACETATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The bridge this engine's containers are ports of (default: acetate0, which engines
    /// on the default network share). Kept in the state dir with the other network and id
    /// settings; they change only while it has no containers.
    #[arg(long, global = true, env = "ACETATE_BRIDGE")]
    pub bridge: Option<String>,
    /// The IPv4 subnet of this engine's containers (default: 10.88.0.0/16, shared).
    #[arg(long, global = true, env = "ACETATE_SUBNET")]
    pub subnet: Option<ipnet::Ipv4Net>,
    /// An IPv6 prefix routed to this host, for the containers' IPv6 addresses (default:
    /// none, IPv4 only).
    #[arg(long = "ipv6-prefix", global = true, env = "ACETATE_IPV6_PREFIX")]
    pub ipv6_prefix: Option<ipnet::Ipv6Net>,
    /// The first host uid/gid of this engine's containers (a multiple of 65536; it holds
    /// 2048 containers of 65536 ids; default: a free range from 1048576).
    #[arg(long = "id-base", global = true, env = "ACETATE_ID_BASE")]
    pub id_base: Option<u32>,
    /// The cgroup this engine's containers live under, in every hierarchy (default:
    /// acetate, or acetate-N for a second engine).
    #[arg(long = "cgroup-parent", global = true, env = "ACETATE_CGROUP_PARENT")]
    pub cgroup_parent: Option<String>,
    /// Log what the engine does (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Base OS templates that containers overlay.
    #[command(subcommand)]
    Template(template::TemplateCmd),
    /// Containers.
    #[command(subcommand)]
    Ct(ct::CtCmd),
    /// Serve the JSON API (and the web panel).
    Serve(serve::ServeArgs),
    /// Panel accounts.
    #[command(subcommand)]
    User(users::UserCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(users::TokenCmd),
    /// WebAssembly plugins: check and dry-run before uploading.
    #[command(subcommand)]
    Plugin(plugin::PluginCmd),
    /// Billing runs.
    #[command(subcommand)]
    Bill(bill::BillCmd),
    /// The metering job.
    #[command(subcommand)]
    Meter(bill::MeterCmd),
    /// What Acetate adds to the host's network.
    #[command(subcommand)]
    Net(net::NetCmd),
}

/// Commands that print end quietly when their reader goes (`acetate ct list | head`), as
/// other Unix tools do; `serve` keeps ignoring SIGPIPE (a client's closed connection is an
/// error to handle, not a reason to die).
pub fn quiet_on_closed_pipe(cli: &Cli) {
    if !matches!(cli.command, Command::Serve(_)) {
        // SAFETY: restores the default disposition of one signal, before any thread starts.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
}

/// Logs go to stderr: commands are quiet unless `-v` or `RUST_LOG` asks; `serve` logs at
/// info (a line per request, with its id) from the start.
pub fn init_tracing(cli: &Cli) {
    let serving = matches!(cli.command, Command::Serve(_));
    let default = match cli.verbose + u8::from(serving) {
        0 => "warn",
        1 => "info,sqlx=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints an error with the causes its message does not already include.
pub(crate) fn report(err: &dyn std::error::Error) {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = cause.source();
    }
    eprintln!("acetate: error: {msg}");
}

impl Cli {
    /// The provider's disk policy from the command line or the environment.
    pub fn disk_policy(&self) -> acetate_engine::capacity::DiskPolicy {
        acetate_engine::capacity::DiskPolicy {
            overcommit: self.disk_overcommit,
            reserve: self.disk_reserve,
        }
    }

    /// The provider's settings for the engine.
    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            disk: self.disk_policy(),
            backup_repository: self.backup_repository.clone(),
            resolvers: self.resolvers.clone(),
            identity: acetate_engine::identity::Wanted {
                id_base: self.id_base,
                cgroup_parent: self.cgroup_parent.clone(),
                bridge: self.bridge.clone(),
                subnet: self.subnet,
                ipv6_prefix: self.ipv6_prefix,
            },
            net_policy: {
                let mut policy = acetate_engine::firewall::NetPolicy {
                    allow_smtp: self.allow_smtp,
                    ..Default::default()
                };
                if !self.host_ports.is_empty() {
                    policy.host_ports = self.host_ports.clone();
                }
                policy
            },
        }
    }
}

/// What the provider sets for the engine.
#[derive(Debug, Clone, Default)]
pub struct EngineSettings {
    pub disk: acetate_engine::capacity::DiskPolicy,
    pub backup_repository: Option<PathBuf>,
    /// Nameservers for new containers (empty: the host's that they can reach).
    pub resolvers: Vec<std::net::IpAddr>,
    /// What containers' traffic may do beyond the bridge.
    pub net_policy: acetate_engine::firewall::NetPolicy,
    /// The engine's ids, cgroup parent and network, where the provider sets them.
    pub identity: acetate_engine::identity::Wanted,
}

/// Opens the engine on `state_dir` with the provider's settings.
pub fn open_engine(
    state_dir: &std::path::Path,
    settings: &EngineSettings,
) -> acetate_engine::Result<Engine> {
    let mut engine =
        Engine::open_with(state_dir, &settings.identity)?.with_disk_policy(settings.disk)?;
    if !settings.resolvers.is_empty() {
        engine = engine.with_resolvers(settings.resolvers.clone());
    }
    engine = engine.with_net_policy(settings.net_policy.clone());
    Ok(match &settings.backup_repository {
        Some(repo) => engine.with_backup_repository(repo),
        None => engine,
    })
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let settings = cli.engine_settings();
    let database = cli
        .database
        .clone()
        .unwrap_or_else(|| crate::db::default_url(&cli.state_dir));
    let out = output::Output { json: cli.json };
    match cli.command {
        Command::Serve(args) => finish(serve::run(
            &cli.state_dir,
            &database,
            settings,
            panel_hosts(&cli.panel_hosts),
            args,
        )),
        Command::Ct(ct::CtCmd::Domain(cmd)) => finish(domains::run(
            &database,
            &panel_hosts(&cli.panel_hosts),
            &out,
            cmd,
        )),
        Command::User(cmd) => finish(users::run_user(&database, cmd)),
        Command::Token(cmd) => finish(users::run_token(&database, &out, cmd)),
        Command::Plugin(cmd) => finish_code(plugin::run(&out, cmd)),
        Command::Bill(cmd) => finish_code(bill::run_bill(&cli.state_dir, &database, &out, cmd)),
        Command::Meter(cmd) => {
            finish_code(bill::run_meter(&cli.state_dir, &database, &settings, cmd))
        }
        Command::Template(cmd) => {
            with_engine(&cli.state_dir, &settings, |e| template::run(e, &out, cmd))
        }
        Command::Ct(cmd) => with_engine(&cli.state_dir, &settings, |e| ct::run(e, &out, cmd)),
        Command::Net(cmd) => with_engine(&cli.state_dir, &settings, |e| net::run(e, &out, cmd)),
    }
}

/// The panel's hostnames in the form domains are kept in.
fn panel_hosts(hosts: &[String]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| crate::domain::hostnames::normalise(h))
        .filter(|h| !h.is_empty())
        .collect()
}

fn finish(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("acetate: error: {e:#}");
            1
        }
    }
}

fn finish_code(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("acetate: error: {e:#}");
            1
        }
    }
}

fn with_engine(
    state_dir: &std::path::Path,
    settings: &EngineSettings,
    f: impl FnOnce(&Engine) -> acetate_engine::Result<i32>,
) -> i32 {
    let result = open_engine(state_dir, settings).and_then(|e| f(&e));
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            1
        }
    }
}
