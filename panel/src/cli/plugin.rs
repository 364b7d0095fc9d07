//! `acetate plugin check|run|wit`: what a plugin author runs before uploading.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use acetate_plugins::{
    BillingInput, Budget, Event, Host, Kind, LoadError, OveruseAction, OveruseEvent,
};
use clap::Subcommand;
use serde::Serialize;

use super::output::Output;

#[derive(Debug, Subcommand)]
pub enum PluginCmd {
    /// Validate a component against the hook, overuse-policy and billing-rule worlds.
    Check { file: PathBuf },
    /// Dry-run a plugin: a hook on an event or a limit hit (overuse event), a billing rule
    /// on usage (JSON, `@FILE` or `-`).
    Run {
        file: PathBuf,
        #[arg(long)]
        event: String,
    },
    /// Print the WIT package plugins are built against.
    Wit,
    /// Start a plugin project outside Acetate's tree: `hook`, `billing` or `overuse`, with
    /// the SDK and WIT of this build, a unit test, example inputs and a README.
    New {
        kind: String,
        name: String,
        /// Where (default: ./NAME, which must not exist).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print an example input: create, resize, suspend, unsuspend, destroy, overuse, billing.
    ExampleEvent { what: String },
}

#[derive(Serialize)]
struct Checked {
    file: String,
    kind: Kind,
    /// What it acts on: "provisioning events", "limit hits", both, or "billing".
    handles: &'static str,
    sha256: String,
    size: usize,
    wit_version: &'static str,
}

fn load(host: &Host, file: &Path) -> anyhow::Result<(Vec<u8>, Arc<acetate_plugins::Plugin>)> {
    let bytes =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let plugin = host
        .load(&bytes)
        .map_err(|e: LoadError| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok((bytes, plugin))
}

fn event_text(arg: &str) -> anyhow::Result<String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        return Ok(s);
    }
    if let Some(path) = arg.strip_prefix('@') {
        return std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"));
    }
    Ok(arg.to_string())
}

#[derive(Serialize)]
struct Ran<T: Serialize> {
    kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<acetate_plugins::Failure>,
    fuel_used: u64,
    micros: u128,
    log: Vec<acetate_plugins::LogLine>,
    kv_changes: Vec<String>,
}

/// The outcome of a dry run, and the exit code it means (1: the plugin failed).
fn ran<T: Serialize>(kind: Kind, call: acetate_plugins::Call<T>) -> (i32, Ran<T>) {
    let code = i32::from(call.result.is_err());
    let ran = Ran {
        kind,
        fuel_used: call.fuel_used,
        micros: call.elapsed.as_micros(),
        kv_changes: call.kv_changes.0.keys().cloned().collect(),
        log: call.log,
        failure: call.result.as_ref().err().cloned(),
        result: call.result.ok(),
    };
    (code, ran)
}

fn print_ran<T: Serialize>(out: &Output, ran: &Ran<T>, text: impl FnOnce(&T)) {
    out.print(ran, |r| {
        match (&r.result, &r.failure) {
            (Some(value), _) => text(value),
            (None, Some(f)) => println!("failed: the plugin {f}"),
            (None, None) => {}
        }
        println!("fuel used: {}, time: {} µs", r.fuel_used, r.micros);
        for line in &r.log {
            println!("log {}: {}", line.level.as_str(), line.message);
        }
        for key in &r.kv_changes {
            println!("would store: {key}");
        }
    });
}

pub fn run(out: &Output, cmd: PluginCmd) -> anyhow::Result<i32> {
    let host = Host::new(None, Budget::default())?;
    match cmd {
        PluginCmd::Wit => {
            print!("{}", acetate_plugins::WIT);
            Ok(0)
        }
        PluginCmd::New { kind, name, dir } => {
            let dir = super::plugin_new::scaffold(&kind, &name, dir)?;
            println!(
                "made {}: cd there, then cargo build --release --target wasm32-wasip2 (see its README)",
                dir.display()
            );
            Ok(0)
        }
        PluginCmd::ExampleEvent { what } => {
            print!(
                "{}",
                super::plugin_new::example_event(&what).map_err(anyhow::Error::msg)?
            );
            Ok(0)
        }
        PluginCmd::Check { file } => {
            let (bytes, plugin) = load(&host, &file)?;
            let checked = Checked {
                file: file.display().to_string(),
                kind: plugin.kind(),
                handles: plugin.handles(),
                sha256: plugin.sha256().to_string(),
                size: bytes.len(),
                wit_version: acetate_plugins::WIT_VERSION,
            };
            out.print(&checked, |c| {
                println!(
                    "{}: a valid {} plugin (acetate:plugin@{}) for {}, {} bytes, sha256 {}",
                    c.file, c.kind, c.wit_version, c.handles, c.size, c.sha256
                )
            });
            Ok(0)
        }
        PluginCmd::Run { file, event } => {
            let (_, plugin) = load(&host, &file)?;
            let text = event_text(&event)?;
            let kv = Arc::default();
            let code = match plugin.kind() {
                Kind::Hook if serde_json::from_str::<OveruseEvent>(&text).is_ok() => {
                    let event: OveruseEvent = serde_json::from_str(&text)?;
                    let (code, ran) = ran(Kind::Hook, host.overuse(&plugin, &event, kv));
                    print_ran(out, &ran, |actions| {
                        if actions.is_empty() {
                            println!("actions: none");
                        }
                        for a in actions {
                            match a {
                                OveruseAction::Notify(m) => println!("action: notify: {m}"),
                                OveruseAction::Suspend(m) => println!("action: suspend: {m}"),
                                OveruseAction::Adjust {
                                    limits,
                                    for_seconds,
                                } => println!(
                                    "action: adjust to {}{}",
                                    serde_json::to_string(limits).unwrap_or_default(),
                                    for_seconds
                                        .map(|s| format!(" for {s} s"))
                                        .unwrap_or_default()
                                ),
                            }
                        }
                    });
                    code
                }
                Kind::Hook => {
                    let event: Event = serde_json::from_str(&text).map_err(|e| {
                        anyhow::anyhow!("--event is neither a hook event nor an overuse event: {e}")
                    })?;
                    let (code, ran) = ran(Kind::Hook, host.hook(&plugin, &event, kv));
                    print_ran(out, &ran, |d| match d {
                        acetate_plugins::Decision::Allow => println!("decision: allow"),
                        acetate_plugins::Decision::Deny(m) => println!("decision: deny: {m}"),
                        acetate_plugins::Decision::Amend(spec) => println!(
                            "decision: amend to {}",
                            serde_json::to_string(spec).unwrap_or_default()
                        ),
                    });
                    code
                }
                Kind::Billing => {
                    let input: BillingInput = serde_json::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("--event is not billing input: {e}"))?;
                    let (code, ran) = ran(Kind::Billing, host.billing(&plugin, &input, kv));
                    print_ran(out, &ran, |lines| {
                        let total: i64 = lines.iter().map(|l| l.amount.amount).sum();
                        for l in lines {
                            println!(
                                "{:<50} {:>10}.{:03} {:<10} {:>12} {}",
                                l.description,
                                l.quantity_millis / 1000,
                                l.quantity_millis % 1000,
                                l.unit,
                                crate::domain::Money::amount_in(
                                    l.amount.amount,
                                    &l.amount.currency
                                ),
                                l.amount.currency
                            );
                        }
                        println!(
                            "total: {} {}",
                            crate::domain::Money::amount_in(total, &input.currency),
                            input.currency
                        );
                    });
                    code
                }
            };
            Ok(code)
        }
    }
}
