//! `sqlx::migrate!` embeds the migrations at compile time; a new file in their directories
//! must rebuild the crate (sqlx's documented advice).
fn main() {
    println!("cargo:rerun-if-changed=../migrations/sqlite");
    println!("cargo:rerun-if-changed=../migrations/postgres");
}
