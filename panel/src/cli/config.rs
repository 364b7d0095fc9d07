//! The provider's config file: `--config FILE`, `ACETATE_CONFIG`, or
//! `/etc/acetate/acetate.toml` when it exists. TOML whose keys are the long names of the
//! options that have an `ACETATE_*` variable, at the top or in tables of any name:
//!
//! ```toml
//! [engine]
//! bridge = "hosting0"
//! subnet = "10.77.0.0/20"
//! ipv6-prefix = "2001:db8:ac::/64"
//! id-base = 268435456
//! cgroup-parent = "hosting/acetate"
//!
//! [front]
//! acme-directory = "https://acme.example.net/directory"
//! host-port = ["53/udp", "53/tcp", "123/udp"]
//! ```
//!
//! The command line and the environment win over the file. A key that is no such option,
//! or a value of the wrong kind, is an error naming it (nothing runs).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

/// Where the file is looked for when neither `--config` nor `ACETATE_CONFIG` names one.
pub const DEFAULT: &str = "/etc/acetate/acetate.toml";
/// The variable naming the file.
const VARIABLE: &str = "ACETATE_CONFIG";

/// The file named on the command line (before any `--`), by `ACETATE_CONFIG`, or the
/// default if it exists.
fn named(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    if let Some(p) = std::env::var_os(VARIABLE).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    Path::new(DEFAULT).exists().then(|| PathBuf::from(DEFAULT))
}

/// Every option's long name with its variable, across all commands.
fn variables() -> BTreeMap<String, String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeMap<String, String>) {
        for a in cmd.get_arguments() {
            if let (Some(long), Some(env)) = (a.get_long(), a.get_env()) {
                out.entry(long.to_string())
                    .or_insert_with(|| env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&super::Cli::command(), &mut out);
    out.remove("config");
    out
}

/// The settings of a config file's text: variable name to value, as the environment
/// would carry them (lists comma-separated).
pub fn settings(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let known = variables();
    let mut out = BTreeMap::new();
    fn scalar(key: &str, v: &toml::Value) -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::Array(_) | toml::Value::Table(_) => {
                        Err(format!("{key}: a list holds plain values"))
                    }
                    other => scalar(key, other),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.join(",")),
            other => Err(format!(
                "{key}: {} is not a setting's value",
                other.type_str()
            )),
        }
    }
    let mut put = |key: &str, v: &toml::Value| -> Result<(), String> {
        let Some(var) = known.get(key) else {
            let names: Vec<&str> = known.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown setting {key:?} (settings are the long options with an ACETATE_* \
                 variable: {})",
                names.join(", ")
            ));
        };
        if out.insert(var.clone(), scalar(key, v)?).is_some() {
            return Err(format!("{key} is set twice"));
        }
        Ok(())
    };
    for (key, value) in &table {
        match value {
            toml::Value::Table(inner) => {
                for (k, v) in inner {
                    put(k, v)?;
                }
            }
            v => put(key, v)?,
        }
    }
    Ok(out)
}

/// Reads the config file (if any) into this process's environment, keeping the
/// variables already set. Called first thing, while the process has one thread.
pub fn load(args: &[OsString]) -> Result<Option<PathBuf>, String> {
    let Some(path) = named(args) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    let found = settings(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
    for (var, value) in found {
        if std::env::var_os(&var).is_none() {
            std::env::set_var(var, value);
        }
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_long_options_in_any_table_and_lists_join() {
        let s = settings(
            "database = 'sqlite:///x.db'\n\
             [engine]\nbridge = 'hosting0'\nsubnet = '10.77.0.0/20'\nid-base = 268435456\n\
             [front]\nhost-port = ['53/udp', '123/udp']\nallow-smtp = true\n",
        )
        .unwrap();
        assert_eq!(s["ACETATE_BRIDGE"], "hosting0");
        assert_eq!(s["ACETATE_SUBNET"], "10.77.0.0/20");
        assert_eq!(s["ACETATE_ID_BASE"], "268435456");
        assert_eq!(s["ACETATE_HOST_PORTS"], "53/udp,123/udp");
        assert_eq!(s["ACETATE_ALLOW_SMTP"], "true");
        assert_eq!(s["ACETATE_DATABASE_URL"], "sqlite:///x.db");
        // Options of `serve` too.
        assert!(settings("acme-directory = 'https://a.example/dir'").is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = settings("brige = 'x'").unwrap_err();
        assert!(err.contains("\"brige\"") && err.contains("bridge"), "{err}");
        assert!(settings("bridge = { a = 1 }").is_err());
        assert!(settings("[a]\nbridge = 'x'\n[b]\nbridge = 'y'")
            .unwrap_err()
            .contains("twice"));
        assert!(settings("bridge = ").is_err());
        assert!(settings("config = 'other.toml'").is_err());
    }
}
