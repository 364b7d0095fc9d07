//! `acetate ct ...`

use std::time::Duration;

use acetate_engine::size::{parse_bytes, parse_cpus, parse_rate};
use acetate_engine::IoLimits;
use acetate_engine::{ContainerInfo, ContainerSpec, Engine, Error, ExecIo, LimitsUpdate, Result};
use clap::{Args, Subcommand};

use super::ct_view::{faults_of, print_faults, print_info, print_list};
use super::output::Output;

pub(super) fn bytes(s: &str) -> std::result::Result<u64, String> {
    parse_bytes(s).map_err(|e| e.to_string())
}
fn cpus(s: &str) -> std::result::Result<u32, String> {
    parse_cpus(s).map_err(|e| e.to_string())
}
fn rate(s: &str) -> std::result::Result<u64, String> {
    parse_rate(s).map_err(|e| e.to_string())
}
fn env_pair(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))
}

#[derive(Debug, Subcommand)]
pub enum CtCmd {
    /// Create a container (stopped) from a template.
    Create(CreateArgs),
    /// Start a container; with --all, every container that should run and does not (after
    /// a host reboot), several at a time.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["name", "all"])))]
    Start {
        name: Option<String>,
        #[arg(long)]
        all: bool,
        /// Containers started at once with --all.
        #[arg(long, default_value_t = 4, requires = "all")]
        parallel: usize,
    },
    /// Stop a container: its init shuts it down (systemd halts its units in order, SysV
    /// init runs its runlevel 0 scripts, the minimal init passes SIGTERM on), SIGKILL after
    /// the timeout.
    Stop {
        name: String,
        /// Seconds to wait before SIGKILL.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Stop (if running) and start a container.
    Restart {
        name: String,
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Destroy a container and everything it holds (stopping it first).
    Destroy {
        name: String,
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Run a command inside a running container, as its root.
    Exec {
        name: String,
        /// Extra environment variables (NAME=VALUE).
        #[arg(short, long = "env", value_parser = env_pair)]
        env: Vec<(String, String)>,
        /// Run it on a terminal (for interactive programs: shells, editors, `top`).
        #[arg(short = 't', long)]
        tty: bool,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// An interactive login shell in a running container, as its root, on a terminal.
    Enter { name: String },
    /// Let the container reach the outside (`on`) or refuse its traffic beyond the host
    /// (`off`); live, and kept.
    Egress {
        name: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// What the container boots as PID 1 from its next start: `auto` (its template's own:
    /// systemd or SysV init where the template has one), `minimal` (Acetate's init),
    /// `systemd` or `sysvinit`.
    Init {
        name: String,
        #[arg(value_parser = ["auto", "minimal", "systemd", "sysvinit"])]
        init: String,
    },
    /// Public ports of the host that lead to the container.
    #[command(subcommand)]
    Forward(super::net::ForwardCmd),
    /// Domains served by the front door with automatic TLS (panel containers).
    #[command(subcommand)]
    Domain(super::domains::DomainCmd),
    /// List containers with state, limits and usage.
    List,
    /// Show one container: state, limits and live usage.
    Show { name: String },
    /// Limit hits of a running container since it started: OOM kills, memory limit,
    /// refused forks, CPU throttling, how full its disk is (the panel keeps the history).
    Faults { name: String },
    /// Change limits, live if the container runs (the disk grows online).
    Set(SetArgs),
    #[command(flatten)]
    Copies(super::copies::CopiesCmd),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    name: String,
    #[arg(long, default_value = "host")]
    template: String,
    /// What it boots as PID 1: `minimal` (Acetate's init), `systemd` or `sysvinit`
    /// (default: the template's own, systemd or SysV init where it has one).
    #[arg(long)]
    init: Option<acetate_engine::spec::Init>,
    /// Memory limit (e.g. 512M).
    #[arg(long, value_parser = bytes)]
    memory: Option<u64>,
    /// Swap on top of memory (e.g. 256M).
    #[arg(long, value_parser = bytes)]
    swap: Option<u64>,
    /// CPU quota in CPUs (e.g. 1.5).
    #[arg(long, value_parser = cpus)]
    cpus: Option<u32>,
    /// Relative CPU weight, 1-10000 (default 100).
    #[arg(long)]
    cpu_weight: Option<u32>,
    /// Disk quota (e.g. 2G).
    #[arg(long, value_parser = bytes)]
    disk: Option<u64>,
    /// Inode quota (default: one per 16 KiB of disk).
    #[arg(long)]
    inodes: Option<u64>,
    /// Process and thread limit.
    #[arg(long)]
    procs: Option<u64>,
    /// Relative block I/O weight, 10-1000.
    #[arg(long)]
    io_weight: Option<u32>,
    /// A network interface on the engine's bridge (default acetate0, 10.88.0.0/16),
    /// reachable from the host.
    #[arg(long)]
    net: bool,
    /// Network rate limit each way (e.g. 100mbit); implies --net.
    #[arg(long, value_parser = rate)]
    net_rate: Option<u64>,
    /// Refuse its traffic to the outside (the host's open ports and forwards still work).
    #[arg(long)]
    no_egress: bool,
    #[command(flatten)]
    io: IoArgs,
    /// Free-form owner label.
    #[arg(long)]
    owner: Option<String>,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    name: String,
    #[arg(long, value_parser = bytes)]
    memory: Option<u64>,
    #[arg(long, value_parser = bytes)]
    swap: Option<u64>,
    #[arg(long, value_parser = cpus)]
    cpus: Option<u32>,
    #[arg(long)]
    cpu_weight: Option<u32>,
    /// New disk size (grow only).
    #[arg(long, value_parser = bytes)]
    disk: Option<u64>,
    #[arg(long)]
    procs: Option<u64>,
    #[arg(long)]
    io_weight: Option<u32>,
    /// New network rate limit each way (e.g. 50mbit; 0 lifts it).
    #[arg(long, value_parser = rate_or_zero)]
    net_rate: Option<u64>,
    #[command(flatten)]
    io: IoArgs,
}

/// Caps on the container's disk I/O (on `set`, 0 lifts a cap).
#[derive(Debug, Args)]
pub struct IoArgs {
    /// Disk read rate cap, bytes per second (e.g. 50M).
    #[arg(long, value_parser = bytes_or_zero)]
    io_read_bps: Option<u64>,
    /// Disk write rate cap, bytes per second (e.g. 50M).
    #[arg(long, value_parser = bytes_or_zero)]
    io_write_bps: Option<u64>,
    /// Disk read operations per second cap.
    #[arg(long)]
    io_read_iops: Option<u64>,
    /// Disk write operations per second cap.
    #[arg(long)]
    io_write_iops: Option<u64>,
}

impl IoArgs {
    fn limits(&self) -> IoLimits {
        IoLimits {
            read_bps: self.io_read_bps,
            write_bps: self.io_write_bps,
            read_iops: self.io_read_iops,
            write_iops: self.io_write_iops,
        }
    }
}

fn bytes_or_zero(s: &str) -> std::result::Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    bytes(s)
}

fn rate_or_zero(s: &str) -> std::result::Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    rate(s)
}

fn build_spec(a: CreateArgs) -> Result<ContainerSpec> {
    let mut b = ContainerSpec::builder(a.name)
        .template(a.template)
        .owner(a.owner)
        .network(a.net)
        .no_egress(a.no_egress)
        .net_rate(a.net_rate)
        .io(a.io.limits());
    if let Some(init) = a.init {
        b = b.init(init);
    }
    if let Some(v) = a.memory {
        b = b.memory(v);
    }
    if let Some(v) = a.swap {
        b = b.swap(v);
    }
    if let Some(v) = a.cpus {
        b = b.cpus_milli(v);
    }
    if let Some(v) = a.cpu_weight {
        b = b.cpu_weight(v);
    }
    if let Some(v) = a.inodes {
        b = b.inodes(v);
    }
    if let Some(v) = a.disk {
        b = b.disk(v);
    }
    if let Some(v) = a.procs {
        b = b.procs(v);
    }
    if let Some(v) = a.io_weight {
        b = b.io_weight(v);
    }
    b.build()
}

/// What `ct start --all` did with one container.
#[derive(Debug, serde::Serialize)]
struct Started {
    name: String,
    started: bool,
    error: Option<String>,
}

fn start_all(engine: &Engine, out: &Output, parallel: usize) -> Result<i32> {
    let results: Vec<Started> = engine
        .start_all(parallel)?
        .into_iter()
        .map(|(name, r)| Started {
            name,
            started: r.is_ok(),
            error: r.err().map(|e| e.to_string()),
        })
        .collect();
    out.print(&results, |rs| {
        if rs.is_empty() {
            println!("every container that should run is running");
        }
        for r in rs {
            match &r.error {
                None => println!("container {} started", r.name),
                Some(e) => println!("container {} failed to start: {e}", r.name),
            }
        }
    });
    Ok(i32::from(results.iter().any(|r| !r.started)))
}

pub fn run(engine: &Engine, out: &Output, cmd: CtCmd) -> Result<i32> {
    let done = |c: &ContainerInfo, verb: &str| {
        out.print(c, |c| println!("container {} {verb}", c.name));
    };
    match cmd {
        CtCmd::Create(args) => {
            let spec = build_spec(args)?;
            done(&engine.create(&spec)?, "created");
        }
        CtCmd::Start {
            name: Some(name), ..
        } => done(&engine.start(&name)?, "started"),
        CtCmd::Start { parallel, .. } => return start_all(engine, out, parallel),
        CtCmd::Stop { name, timeout } => done(
            &engine.stop(&name, Duration::from_secs(timeout))?,
            "stopped",
        ),
        CtCmd::Restart { name, timeout } => done(
            &engine.restart(&name, Duration::from_secs(timeout))?,
            "restarted",
        ),
        CtCmd::Destroy { name, timeout } => {
            engine.destroy(&name, Duration::from_secs(timeout))?;
            out.print(
                &serde_json::json!({ "name": name, "destroyed": true }),
                |_| println!("container {name} destroyed"),
            );
        }
        CtCmd::Forward(cmd) => return super::net::run_forward(engine, out, cmd),
        // `cli::run` sends `ct domain` to the database; the engine alone has no domains.
        CtCmd::Domain(_) => {
            return Err(Error::Unsupported(
                "ct domain works on the panel's database".into(),
            ))
        }
        CtCmd::Egress { name, state } => {
            engine.set_egress(&name, state == "on")?;
            out.print(
                &serde_json::json!({ "name": name, "egress": state }),
                |_| println!("container {name}: egress {state}"),
            );
        }
        CtCmd::Init { name, init } => {
            let asked = match init.as_str() {
                "auto" => None,
                other => Some(other.parse()?),
            };
            let info = engine.set_init(&name, asked)?;
            let boots = engine.next_init(&name)?;
            out.print(
                &serde_json::json!({ "name": name, "init": init, "boots": boots, "running": info.init }),
                |_| {
                    println!("container {name}: boots {} from its next start", boots.as_str());
                },
            );
        }
        CtCmd::Enter { name } => {
            return super::terminal::run(engine, &name, &[], &[]).or_else(|e| {
                super::report(&e);
                Ok(125)
            })
        }
        CtCmd::Exec {
            name,
            env,
            command,
            tty: true,
        } => {
            return super::terminal::run(engine, &name, &command, &env).or_else(|e| {
                super::report(&e);
                Ok(125)
            })
        }
        CtCmd::Exec {
            name, env, command, ..
        } => {
            return match engine.exec(&name, &command, &env, ExecIo::default()) {
                Ok(code) => Ok(code),
                Err(e) => {
                    super::report(&e);
                    // Like `docker exec`: 125 when acetate itself failed.
                    Ok(125)
                }
            };
        }
        CtCmd::List => out.print(&engine.list()?, |l| print_list(l)),
        CtCmd::Show { name } => out.print(&engine.show(&name)?, print_info),
        CtCmd::Copies(cmd) => return super::copies::run(engine, out, cmd),
        CtCmd::Faults { name } => {
            let inside = engine.drops_inside(&name)?;
            out.print(&faults_of(&engine.show(&name)?, inside), print_faults)
        }
        CtCmd::Set(a) => {
            let update = LimitsUpdate {
                memory: a.memory,
                swap: a.swap,
                cpus_milli: a.cpus,
                cpu_weight: a.cpu_weight,
                disk: a.disk,
                procs: a.procs,
                io_weight: a.io_weight,
                net_rate: a.net_rate,
                io: a.io.limits(),
            };
            if update.is_empty() {
                return Err(Error::Unsupported(
                    "nothing to change: give at least one of --memory, --swap, --cpus, \
                     --cpu-weight, --disk, --procs, --io-weight, --net-rate, --io-read-bps, \
                     --io-write-bps, --io-read-iops, --io-write-iops"
                        .into(),
                ));
            }
            done(&engine.set(&a.name, &update)?, "updated");
        }
    }
    Ok(0)
}
