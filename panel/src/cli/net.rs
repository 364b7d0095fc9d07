//! `acetate net`: what Acetate adds to the host's network, and removing it all.

use acetate_engine::forward::{Forward, PublicPort};
use acetate_engine::{firewall, network, Engine, Error, Result, State};
use clap::Subcommand;

use super::output::Output;

#[derive(Debug, Subcommand)]
pub enum NetCmd {
    /// This engine's network and ranges: bridge, subnets, gateway, host ids, cgroup
    /// parent (settings: `--bridge`, `--subnet`, `--ipv6-prefix`, `--id-base`,
    /// `--cgroup-parent`, or the config file).
    Show,
    /// The rules containers' traffic follows (SMTP, the host's open ports).
    Policy,
    /// Remove this engine's bridge and nftables table from this host; with the last
    /// engine network gone, the shared tables too and (if Acetate turned it on)
    /// forwarding. Refused while a container with a network runs; the next
    /// start puts everything back.
    Teardown,
}

pub fn run(engine: &Engine, out: &Output, cmd: NetCmd) -> Result<i32> {
    match cmd {
        NetCmd::Show => {
            let shown = crate::service::host::HostNetwork::of(engine.identity());
            out.print(&shown, |s| {
                println!(
                    "bridge:         {}{}",
                    s.bridge,
                    if s.shared {
                        " (shared by engines on their default network)"
                    } else {
                        ""
                    }
                );
                println!("IPv4 subnet:    {} (gateway {})", s.subnet, s.gateway);
                match (&s.ipv6_prefix, &s.gateway6) {
                    (Some(p), Some(g)) => println!("IPv6 prefix:    {p} (gateway {g})"),
                    _ => println!("IPv6 prefix:    none"),
                }
                println!(
                    "host ids:       from {} ({} containers of 65536)",
                    s.id_base, s.capacity
                );
                println!("cgroup parent:  {}", s.cgroup_parent);
            });
        }
        NetCmd::Policy => {
            let p = engine.net_policy();
            out.print(p, |p| {
                println!(
                    "outbound SMTP (port 25): {}",
                    if p.allow_smtp { "allowed" } else { "refused" }
                );
                let ports: Vec<String> = p.host_ports.iter().map(|h| h.to_string()).collect();
                println!(
                    "host ports open to containers: {}",
                    if ports.is_empty() {
                        "none".to_string()
                    } else {
                        ports.join(", ")
                    }
                );
                println!("egress: masqueraded through the host's routes");
            });
        }
        NetCmd::Teardown => {
            let busy: Vec<String> = engine
                .list()?
                .into_iter()
                // Those attached to this network namespace's bridge (their host end is
                // here), whichever namespace the engine's other containers use.
                .filter(|c| {
                    c.state == State::Running
                        && c.network
                            .as_ref()
                            .is_some_and(|n| network::link_exists(&n.host_interface))
                })
                .map(|c| c.name)
                .collect();
            if !busy.is_empty() {
                return Err(Error::Unsupported(format!(
                    "{} still use the network ({}): stop them first",
                    busy.len(),
                    busy.join(", ")
                )));
            }
            let done = firewall::teardown(&engine.identity().network())?;
            out.print(&done, |done| {
                if done.is_empty() {
                    println!("nothing of Acetate's was on this host's network");
                }
                for d in done {
                    println!("removed {d}");
                }
            });
        }
    }
    Ok(0)
}

/// `acetate ct forward ...`
#[derive(Debug, Subcommand)]
pub enum ForwardCmd {
    /// Forward a public port of the host to a port of the container, as `8022:22/tcp`
    /// (every address of the host) or `203.0.113.5:8022:22/tcp` (that address only); kept
    /// across restarts; the port can be given only once.
    Add { name: String, forward: Forward },
    /// The container's forwards.
    List { name: String },
    /// Remove the forward of a public port, as `8022/tcp`, `8022` or
    /// `203.0.113.5:8022/tcp`.
    Remove { name: String, public: PublicPort },
}

pub fn run_forward(engine: &Engine, out: &Output, cmd: ForwardCmd) -> Result<i32> {
    let show = |list: &Vec<Forward>| {
        if list.is_empty() {
            println!("no forwards");
        }
        for f in list {
            println!("{f}");
        }
    };
    match cmd {
        ForwardCmd::Add { name, forward } => out.print(&engine.add_forward(&name, forward)?, show),
        ForwardCmd::List { name } => out.print(&engine.forwards(&name)?, show),
        ForwardCmd::Remove { name, public } => {
            out.print(&engine.remove_forward(&name, public)?, show)
        }
    }
    Ok(0)
}
