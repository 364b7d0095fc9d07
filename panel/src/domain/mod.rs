//! The panel's business vocabulary: pure types and rules, no I/O. Input is parsed into
//! these types once, at the edges (HTTP, CLI), and the rules here are what the services
//! enforce: who may see what, what fits a plan and a pool, how money is written.

pub mod account;
pub mod faults;
pub mod hostnames;
pub mod money;
pub mod names;
pub mod period;
pub mod plan;
pub mod quota;
pub mod scopes;
pub mod size;
pub mod usage;

pub use account::{Role, User};
pub use money::{Currency, Money};
pub use names::{ContainerName, UserName};
pub use period::Period;
pub use plan::{Plan, Pool, Totals};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    acetate_engine::store::unix_now() as i64
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
