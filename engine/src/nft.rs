//! Acetate's nftables rules, written for nft's JSON interface (`nft -j -f -`, see
//! libnftables-json(5)): tables, chains, sets, maps, rules and elements are built as JSON
//! values, never spliced into rule text, and each batch is one transaction.
//!
//! Debian 12's nft (1.0.6) takes no map whose data is a concatenation in JSON (it refuses
//! the type, or makes a plain set and crashes on a `dnat` over it), so a forward's target
//! lives in two maps with the same keys: one gives the address, the other the port.

use serde_json::{json, Value};

/// One transaction of nftables commands.
#[derive(Debug, Default)]
pub(crate) struct Batch(Vec<Value>);

impl Batch {
    pub fn add(&mut self, object: Value) -> &mut Self {
        self.0.push(json!({ "add": object }));
        self
    }

    pub fn flush(&mut self, object: Value) -> &mut Self {
        self.0.push(json!({ "flush": object }));
        self
    }

    pub fn delete(&mut self, object: Value) -> &mut Self {
        self.0.push(json!({ "delete": object }));
        self
    }

    /// Appends the commands of `other`.
    pub fn extend(&mut self, other: Batch) -> &mut Self {
        self.0.extend(other.0);
        self
    }

    /// Appends a copy of the commands of `other`.
    pub fn extend_from(&mut self, other: &Batch) -> &mut Self {
        self.0.extend(other.0.iter().cloned());
        self
    }

    /// The commands, in order.
    #[cfg(test)]
    pub fn commands(&self) -> &[Value] {
        &self.0
    }

    /// Whether the batch adds `object`.
    #[cfg(test)]
    pub fn adds(&self, object: Value) -> bool {
        self.0.contains(&json!({ "add": object }))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The batch as nft reads it.
    pub fn to_json(&self) -> String {
        json!({ "nftables": self.0 }).to_string()
    }

    /// Runs the batch in one transaction: all of it or nothing.
    pub fn apply(&self) -> std::result::Result<(), String> {
        if self.is_empty() {
            return Ok(());
        }
        crate::network::run("nft", &["-j", "-f", "-"], Some(&self.to_json()))
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// A table: the family and name every object in it carries.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub family: &'static str,
    pub name: String,
}

impl Table {
    pub fn new(family: &'static str, name: impl Into<String>) -> Table {
        Table {
            family,
            name: name.into(),
        }
    }

    /// `family name`, as nft's text shows it.
    pub fn shown(&self) -> String {
        format!("{} {}", self.family, self.name)
    }

    pub fn table(&self) -> Value {
        json!({ "table": { "family": self.family, "name": self.name } })
    }

    /// A regular chain (a target of jumps).
    pub fn chain(&self, name: &str) -> Value {
        json!({ "chain": { "family": self.family, "table": self.name, "name": name } })
    }

    /// A base chain on `hook` of `kind` (`filter`, `nat`) at `prio`, accepting by default.
    pub fn base_chain(&self, name: &str, kind: &str, hook: &str, prio: i32) -> Value {
        json!({ "chain": {
            "family": self.family, "table": self.name, "name": name,
            "type": kind, "hook": hook, "prio": prio, "policy": "accept",
        } })
    }

    /// A set of `key` (one type, or a concatenation of several).
    pub fn set(&self, name: &str, key: &[&str]) -> Value {
        json!({ "set": {
            "family": self.family, "table": self.name, "name": name, "type": types(key),
        } })
    }

    /// A map from `key` to `data` (one type: see the module's text).
    pub fn map(&self, name: &str, key: &[&str], data: &str) -> Value {
        json!({ "map": {
            "family": self.family, "table": self.name, "name": name,
            "type": types(key), "map": data,
        } })
    }

    /// Elements of set or map `name`: values, or `[key, data]` pairs of a map.
    pub fn elements(&self, name: &str, elements: Vec<Value>) -> Value {
        json!({ "element": {
            "family": self.family, "table": self.name, "name": name, "elem": elements,
        } })
    }

    pub fn rule(&self, chain: &str, expr: Vec<Value>) -> Value {
        json!({ "rule": {
            "family": self.family, "table": self.name, "chain": chain, "expr": expr,
        } })
    }
}

fn types(key: &[&str]) -> Value {
    match key {
        [one] => json!(one),
        many => json!(many),
    }
}

pub fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

pub fn payload(protocol: &str, field: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": field } })
}

pub fn ct(key: &str) -> Value {
    json!({ "ct": { "key": key } })
}

pub fn concat(parts: Vec<Value>) -> Value {
    json!({ "concat": parts })
}

/// A reference to set or map `name` of the same table.
pub fn named(name: &str) -> Value {
    json!(format!("@{name}"))
}

/// An address prefix (`10.88.0.0/16`).
pub fn prefix(addr: impl ToString, len: u8) -> Value {
    json!({ "prefix": { "addr": addr.to_string(), "len": len } })
}

/// An anonymous set of values.
pub fn anonymous(values: Vec<Value>) -> Value {
    json!({ "set": values })
}

/// `left == right` (for a set or a map reference: membership).
pub fn is(left: Value, right: Value) -> Value {
    json!({ "match": { "op": "==", "left": left, "right": right } })
}

pub fn is_not(left: Value, right: Value) -> Value {
    json!({ "match": { "op": "!=", "left": left, "right": right } })
}

/// Flags `right` set in `left` (`ct state established,related`).
pub fn has(left: Value, right: Value) -> Value {
    json!({ "match": { "op": "in", "left": left, "right": right } })
}

/// A verdict or a statement without arguments: `accept`, `drop`, `masquerade`.
pub fn verdict(name: &str) -> Value {
    json!({ name: null })
}

pub fn jump(chain: &str) -> Value {
    json!({ "jump": { "target": chain } })
}

pub fn reject(kind: &str, code: Option<&str>) -> Value {
    match code {
        Some(code) => json!({ "reject": { "type": kind, "expr": code } }),
        None => json!({ "reject": { "type": kind } }),
    }
}

/// The local-destination test: `fib daddr type local`.
pub fn to_local() -> Value {
    is(
        json!({ "fib": { "result": "type", "flags": ["daddr"] } }),
        json!("local"),
    )
}

/// DNAT (`family` `ip` or `ip6`) to the address map `addr` and port map `port`, looked up
/// by `key`.
pub fn dnat_maps(family: &str, key: Value, addr: &str, port: &str) -> Value {
    json!({ "dnat": {
        "family": family,
        "addr": { "map": { "key": key, "data": named(addr) } },
        "port": { "map": { "key": key, "data": named(port) } },
    } })
}

/// The objects of `table` as nft lists them (`nft -j list table`); `None` if it is not
/// there.
pub fn list_table(table: &Table) -> Option<Vec<Value>> {
    let out = std::process::Command::new("nft")
        .args(["-j", "list", "table", table.family, &table.name])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let listed: Value = serde_json::from_slice(&out.stdout).ok()?;
    listed["nftables"].as_array().cloned()
}

/// The tables of `family` in this network namespace.
pub fn list_tables(family: &str) -> Vec<String> {
    let out = std::process::Command::new("nft")
        .args(["-j", "list", "tables", family])
        .stderr(std::process::Stdio::null())
        .output();
    let listed: Value = out
        .ok()
        .and_then(|o| serde_json::from_slice(&o.stdout).ok())
        .unwrap_or_default();
    listed["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["table"]["name"].as_str().map(str::to_string))
        .collect()
}
