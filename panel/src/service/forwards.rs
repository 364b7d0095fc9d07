//! Port forwards: the provider gives each reseller ranges of the host's public ports, one
//! per address of the host (or one on every address); a customer forwards a port of a
//! range to a port of its container, published on that range's address. A public port is
//! given once (the database's unique key, and the engine's map); forwards survive restarts
//! (the engine keeps them) and go with the container (the rows cascade, the engine removes
//! its entries).

use acetate_engine::forward::{Forward, PublicPort};

use super::containers::{active_owner_of, resolve};
use super::{require, AppState};
use crate::db::forwards::{ForwardRow, PortRange};
use crate::domain::{Role, User};
use crate::error::{AppError, AppResult};

/// A forward as asked for.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardRequest {
    /// The host's public port, within the reseller's range.
    pub public_port: i64,
    /// The container's port.
    pub private_port: i64,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub proto: Option<String>,
    /// The host's address to publish on (IPv4, or IPv6 for a container with an IPv6
    /// address), one of the reseller's ranges' (default: the range on every address).
    #[serde(default)]
    pub public_address: Option<String>,
}

/// An address as a range or a forward keeps it: "" for every address of the host.
/// An IPv6 address is kept in its canonical form (so that `2001:DB8::05` is the range's
/// `2001:db8::5`), with or without brackets.
fn address(what: &str, a: Option<&str>) -> AppResult<(String, Option<std::net::IpAddr>)> {
    match a.map(str::trim).filter(|a| !a.is_empty()) {
        None => Ok((String::new(), None)),
        Some(a) => a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map(|ip| (ip.to_string(), Some(ip)))
            .map_err(|_| AppError::Unprocessable(format!("{what}: {a:?} is not an IP address"))),
    }
}

fn on(address: &str) -> String {
    if address.is_empty() {
        "every address".into()
    } else {
        address.to_string()
    }
}

fn port(what: &str, p: i64) -> AppResult<u16> {
    u16::try_from(p)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| AppError::Unprocessable(format!("{what}: {p} is not a port (1-65535)")))
}

fn proto(p: Option<&str>) -> AppResult<bool> {
    match p.unwrap_or("tcp") {
        "tcp" => Ok(false),
        "udp" => Ok(true),
        other => Err(AppError::Unprocessable(format!(
            "proto: {other:?} is neither tcp nor udp"
        ))),
    }
}

/// The ranges of the reseller above the container's owner; the forward must be in one.
async fn ranges_of(st: &AppState, owner: &User) -> AppResult<Vec<PortRange>> {
    let reseller = owner.reseller_id.ok_or_else(|| {
        AppError::Unprocessable("public_port: this account has no reseller to give ports".into())
    })?;
    let ranges = st.db.port_ranges(reseller).await?;
    if ranges.is_empty() {
        return Err(AppError::Unprocessable(
            "public_port: your reseller has no public ports to give yet (the provider sets \
             a range for it)"
                .into(),
        ));
    }
    Ok(ranges)
}

pub async fn list(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<Vec<ForwardRow>> {
    let row = resolve(st, caller, name, owner).await?;
    st.db.forwards_of(row.id).await
}

/// Forwards a public port to the container; the container's forwards after.
pub async fn add(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    req: &ForwardRequest,
) -> AppResult<Vec<ForwardRow>> {
    let row = resolve(st, caller, name, owner).await?;
    let owner_user = active_owner_of(st, &row).await?;
    let public = port("public_port", req.public_port)?;
    let private = port("private_port", req.private_port)?;
    let udp = proto(req.proto.as_deref())?;
    let (addr, ip) = address("public_address", req.public_address.as_deref())?;
    let ranges = ranges_of(st, &owner_user).await?;
    let inside = ranges.iter().any(|r| {
        r.address == addr && req.public_port >= r.first_port && req.public_port <= r.last_port
    });
    if !inside {
        let may: Vec<String> = ranges
            .iter()
            .map(|r| format!("{}-{} on {}", r.first_port, r.last_port, on(&r.address)))
            .collect();
        return Err(AppError::Unprocessable(format!(
            "public_port: {public} on {} is outside the ranges you may use ({})",
            on(&addr),
            may.join(", ")
        )));
    }
    let proto_name = if udp { "udp" } else { "tcp" };
    st.db
        .add_forward(row.id, &addr, req.public_port, proto_name, req.private_port)
        .await?;
    let f = Forward {
        public,
        private,
        udp,
        address: ip,
    };
    let engine_name = row.engine_name.clone();
    let added = st
        .change(&row.engine_name, move |rt| rt.add_forward(&engine_name, f))
        .await;
    if let Err(e) = added {
        st.db
            .delete_forward(row.id, &addr, req.public_port, proto_name)
            .await?;
        return Err(e);
    }
    st.db
        .audit(
            Some(caller),
            "container.forward.add",
            &format!("{}/{}", row.owner, row.name),
            &f.to_string(),
        )
        .await?;
    st.db.forwards_of(row.id).await
}

/// Removes the forward of `public`/`proto` (on `public_address`, or the one on every
/// address) from the container.
pub async fn remove(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    public: i64,
    proto_name: &str,
    public_address: Option<&str>,
) -> AppResult<Vec<ForwardRow>> {
    let row = resolve(st, caller, name, owner).await?;
    let udp = proto(Some(proto_name))?;
    let public = port("public_port", public)?;
    let (addr, ip) = address("public_address", public_address)?;
    if !st
        .db
        .delete_forward(row.id, &addr, public.into(), proto_name)
        .await?
    {
        return Err(AppError::NotFound);
    }
    let engine_name = row.engine_name.clone();
    let key = PublicPort {
        address: ip,
        port: public,
        udp,
    };
    st.change(&row.engine_name, move |rt| {
        rt.remove_forward(&engine_name, key)
    })
    .await?;
    st.db
        .audit(
            Some(caller),
            "container.forward.remove",
            &format!("{}/{}", row.owner, row.name),
            &key.to_string(),
        )
        .await?;
    st.db.forwards_of(row.id).await
}

/// A reseller's ranges (the provider, or the reseller itself).
pub async fn port_ranges(
    st: &AppState,
    caller: &User,
    reseller: &str,
) -> AppResult<Vec<PortRange>> {
    let r = st
        .db
        .user_by_name(reseller)
        .await?
        .filter(|u| u.role() == Role::Reseller)
        .filter(|u| u.id == caller.id || caller.role() == Role::Provider)
        .ok_or(AppError::NotFound)?;
    st.db.port_ranges(r.id).await
}

/// Takes reseller `reseller`'s range on `address` (none: the one on every address) away
/// (provider only); refused while its customers forward ports of it.
pub async fn remove_port_range(
    st: &AppState,
    caller: &User,
    reseller: &str,
    address: Option<&str>,
) -> AppResult<()> {
    require(caller, Role::Provider)?;
    let r = st
        .db
        .user_by_name(reseller)
        .await?
        .filter(|u| u.role() == Role::Reseller)
        .ok_or(AppError::NotFound)?;
    let (addr, _) = self::address("address", address)?;
    // No port is inside an empty range: every forward on the address is "outside".
    let none = PortRange {
        first_port: 1,
        last_port: 0,
        address: addr.clone(),
    };
    let used = st.db.forwards_outside(r.id, &none).await?;
    if !used.is_empty() {
        let list: Vec<String> = used.iter().map(i64::to_string).collect();
        return Err(AppError::Unprocessable(format!(
            "address: customers forward ports {} on {}; they must remove them first",
            list.join(", "),
            on(&addr)
        )));
    }
    if !st.db.delete_port_range(r.id, &addr).await? {
        return Err(AppError::NotFound);
    }
    st.db
        .audit(Some(caller), "reseller.ports.remove", reseller, &on(&addr))
        .await?;
    Ok(())
}

/// A reseller's range on `address` (none: on every address).
pub async fn port_range(
    st: &AppState,
    caller: &User,
    reseller: &str,
    address: Option<&str>,
) -> AppResult<PortRange> {
    let (addr, _) = self::address("address", address)?;
    port_ranges(st, caller, reseller)
        .await?
        .into_iter()
        .find(|r| r.address == addr)
        .ok_or(AppError::NotFound)
}

/// Gives reseller `reseller` the public ports `range` on its address (provider only;
/// replaces its range there). Ranges of two resellers never overlap (on one address, or
/// with a range on every address); a range that would leave a customer's forward outside
/// is refused with the ports.
pub async fn set_port_range(
    st: &AppState,
    caller: &User,
    reseller: &str,
    mut range: PortRange,
) -> AppResult<PortRange> {
    require(caller, Role::Provider)?;
    let r = st
        .db
        .user_by_name(reseller)
        .await?
        .filter(|u| u.role() == Role::Reseller)
        .ok_or(AppError::NotFound)?;
    port("first_port", range.first_port)?;
    port("last_port", range.last_port)?;
    range.address = address("address", Some(&range.address))?.0;
    if range.first_port > range.last_port {
        return Err(AppError::Unprocessable(format!(
            "first_port: {} is above last_port {}",
            range.first_port, range.last_port
        )));
    }
    if let Some((other, a, b, at)) = st.db.overlapping_ranges(r.id, &range).await?.first() {
        return Err(AppError::Conflict(format!(
            "first_port: {}-{} on {} overlaps {other}'s range {a}-{b} on {}",
            range.first_port,
            range.last_port,
            on(&range.address),
            on(at)
        )));
    }
    let outside = st.db.forwards_outside(r.id, &range).await?;
    if !outside.is_empty() {
        let list: Vec<String> = outside.iter().map(i64::to_string).collect();
        return Err(AppError::Unprocessable(format!(
            "first_port: customers forward ports outside {}-{}: {}; they must remove them first",
            range.first_port,
            range.last_port,
            list.join(", ")
        )));
    }
    st.db.set_port_range(r.id, &range).await?;
    st.db
        .audit(
            Some(caller),
            "reseller.ports",
            reseller,
            &format!(
                "{}-{} on {}",
                range.first_port,
                range.last_port,
                on(&range.address)
            ),
        )
        .await?;
    Ok(range)
}
