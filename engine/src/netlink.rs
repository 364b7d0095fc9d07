//! Links, addresses and routes through rtnetlink, the kernel's own interface, instead of
//! `ip` processes (each one costs milliseconds on a start). Every call runs its requests
//! on a small single-threaded runtime of its own, so the engine stays synchronous; what
//! must happen inside a container's network namespace runs on a thread that joined it
//! (a netlink socket belongs to the namespace it was made in).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcStats2};
use rtnetlink::RouteMessageBuilder;
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth};

use crate::error::{Error, Result};

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!("{what} (netlink): {e}"))
}

/// Runs `f` with a netlink handle of this thread's network namespace. Callers inside an
/// async runtime (the panel's) get a thread of their own for it: a runtime cannot be
/// started from within another.
fn with_handle<F, Fut, T>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
    T: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return std::thread::scope(|s| {
            s.spawn(|| on_this_thread(f))
                .join()
                .unwrap_or_else(|_| Err(Error::Unsupported("the netlink thread panicked".into())))
        });
    }
    on_this_thread(f)
}

fn on_this_thread<F, Fut, T>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Error::sys("start a netlink runtime", e))?;
    rt.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| Error::sys("open a netlink socket", e))?;
        let conn = tokio::spawn(connection);
        let out = f(handle).await;
        conn.abort();
        out
    })
}

/// Runs `f` as [`with_handle`] does, in the network namespace of process `pid`.
fn in_netns_of<F, Fut, T>(pid: i32, f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
    T: Send,
{
    let path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                Error::sys(
                    "join the container's network namespace",
                    std::io::Error::from(e),
                )
            })?;
            on_this_thread(f)
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Unsupported("the netlink thread panicked".into())))
    })
}

/// The index of interface `name` in this process's network namespace.
pub fn index_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

async fn index_in(handle: &Handle, name: &str) -> Result<u32> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(failed(&format!("find {name}"), "no such interface")),
        Err(e) => Err(failed(&format!("find {name}"), e)),
    }
}

fn mac_bytes(mac: &str) -> Result<Vec<u8>> {
    mac.split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<std::result::Result<Vec<u8>, _>>()
        .ok()
        .filter(|b| b.len() == 6)
        .ok_or_else(|| Error::Unsupported(format!("{mac:?} is not a MAC address")))
}

/// Deletes interface `name` of this namespace (nothing if it is not there).
pub fn delete_link(name: &str) -> Result<()> {
    let Some(index) = index_of(name) else {
        return Ok(());
    };
    with_handle(|h| async move {
        match h.link().del(index).execute().await {
            Ok(()) => Ok(()),
            // Gone meanwhile.
            Err(_) if index_of(name).is_none() => Ok(()),
            Err(e) => Err(failed(&format!("delete {name}"), e)),
        }
    })
}

/// Makes bridge `name` with `mac` and `gateway/prefix` and sets it up; one that is
/// already there (another engine, a concurrent start) is fine.
pub fn add_bridge(name: &str, mac: &str, gateway: Ipv4Addr, prefix: u8) -> Result<()> {
    let mac = mac_bytes(mac)?;
    with_handle(|h| async move {
        let made = h
            .link()
            .add(LinkBridge::new(name).address(mac).build())
            .execute()
            .await;
        if let Err(e) = made {
            if index_of(name).is_none() {
                return Err(failed(&format!("create bridge {name}"), e));
            }
        }
        let index = index_in(&h, name).await?;
        h.address()
            .add(index, IpAddr::V4(gateway), prefix)
            .replace()
            .execute()
            .await
            .map_err(|e| failed(&format!("address {name}"), e))?;
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| failed(&format!("set {name} up"), e))
    })
}

/// The MAC of interface `name` (`None` if it has none or is not there).
pub fn mac_of(name: &str) -> Result<Option<String>> {
    if index_of(name).is_none() {
        return Ok(None);
    }
    with_handle(|h| async move {
        let mut links = h.link().get().match_name(name.to_string()).execute();
        let link = links
            .try_next()
            .await
            .map_err(|e| failed(&format!("read {name}"), e))?;
        Ok(link.and_then(|l| {
            l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::Address(b) => Some(
                    b.iter()
                        .map(|x| format!("{x:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                ),
                _ => None,
            })
        }))
    })
}

/// What an interface moved: bytes received and sent, and packets its root queueing
/// discipline dropped (a rate limit's token bucket, when the queue is full).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub rx: u64,
    pub tx: u64,
    pub qdisc_drops: u64,
}

/// The counters of interface `name`, or of every interface of this namespace, by name
/// (two requests: the links, then the queueing disciplines).
pub fn counters(name: Option<&str>) -> Result<std::collections::HashMap<String, LinkCounters>> {
    with_handle(|h| async move {
        let mut req = h.link().get();
        if let Some(n) = name {
            req = req.match_name(n.to_string());
        }
        let mut links = req.execute();
        let mut by_index = std::collections::HashMap::new();
        loop {
            let link = match links.try_next().await {
                Ok(Some(l)) => l,
                Ok(None) => break,
                // A link asked for by name and gone: no counters.
                Err(_) if name.is_some() => break,
                Err(e) => return Err(failed("read interface counters", e)),
            };
            let index = link.header.index as i32;
            let mut ifname = None;
            let mut bytes = None;
            for a in link.attributes {
                match a {
                    LinkAttribute::IfName(n) => ifname = Some(n),
                    LinkAttribute::Stats64(s) => bytes = Some((s.rx_bytes, s.tx_bytes)),
                    _ => {}
                }
            }
            if let (Some(n), Some((rx, tx))) = (ifname, bytes) {
                let counters = LinkCounters {
                    rx,
                    tx,
                    qdisc_drops: 0,
                };
                by_index.insert(index, (n, counters));
            }
        }
        if !by_index.is_empty() {
            let mut req = h.qdisc().get();
            if let (Some(_), Some(&index)) = (name, by_index.keys().next()) {
                req = req.index(index);
            }
            for (index, drops) in root_drops(req.execute()).await? {
                if let Some((_, c)) = by_index.get_mut(&index) {
                    c.qdisc_drops = drops;
                }
            }
        }
        Ok(by_index.into_values().collect())
    })
}

/// Drops of the root queueing disciplines of a dump, by interface index.
async fn root_drops(
    mut qdiscs: impl futures_util::Stream<Item = std::result::Result<TcMessage, rtnetlink::Error>>
        + Unpin,
) -> Result<Vec<(i32, u64)>> {
    let mut out = Vec::new();
    while let Some(q) = qdiscs
        .try_next()
        .await
        .map_err(|e| failed("read queueing disciplines", e))?
    {
        if q.header.parent != TcHandle::ROOT {
            continue;
        }
        let drops = q.attributes.iter().find_map(|a| match a {
            TcAttribute::Stats2(stats) => stats.iter().find_map(|s| match s {
                TcStats2::Queue(queue) => Some(u64::from(queue.drops)),
                _ => None,
            }),
            TcAttribute::Stats(stats) => Some(u64::from(stats.drops)),
            _ => None,
        });
        out.push((q.header.index, drops.unwrap_or(0)));
    }
    Ok(out)
}

/// Packets the root queueing disciplines dropped in the network namespace of process
/// `pid` (a container's own shaper of what it sends), loopback left out.
pub fn drops_inside(pid: i32) -> Result<u64> {
    in_netns_of(pid, |h| async move {
        let drops = root_drops(h.qdisc().get().execute()).await?;
        Ok(drops
            .into_iter()
            .filter(|(i, _)| *i != 1)
            .map(|(_, d)| d)
            .sum())
    })
}

/// Gives interface `name` the MAC `mac`.
pub fn set_mac(name: &str, mac: &str) -> Result<()> {
    let mac = mac_bytes(mac)?;
    with_handle(|h| async move {
        let index = index_in(&h, name).await?;
        h.link()
            .set(LinkUnspec::new_with_index(index).address(mac).build())
            .execute()
            .await
            .map_err(|e| failed(&format!("set the MAC of {name}"), e))
    })
}

/// Puts `address/prefix` on interface `name` (replacing it if there), without duplicate
/// address detection for IPv6.
pub fn set_address(name: &str, address: IpAddr, prefix: u8) -> Result<()> {
    with_handle(|h| async move {
        let index = index_in(&h, name).await?;
        add_address(&h, index, address, prefix).await
    })
}

async fn add_address(h: &Handle, index: u32, address: IpAddr, prefix: u8) -> Result<()> {
    let mut req = h.address().add(index, address, prefix).replace();
    if address.is_ipv6() {
        let msg = req.message_mut();
        msg.header.flags |= AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute()
        .await
        .map_err(|e| failed(&format!("add address {address}"), e))
}

/// What the container end of a veth pair gets.
#[derive(Debug, Clone, Copy)]
pub struct Inside<'a> {
    pub mac: &'a str,
    pub v4: (Ipv4Addr, u8, Ipv4Addr),
    pub v6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
}

/// Makes a veth pair: `host_if` an isolated port of bridge `bridge`, its peer `eth0` in
/// the network namespace of `pid` with `inside`'s MAC, addresses and default routes, both
/// up. On error the host end is deleted (the peer goes with it).
pub fn veth_into(pid: i32, host_if: &str, bridge: &str, inside: Inside<'_>) -> Result<()> {
    let bridge_index = index_of(bridge)
        .ok_or_else(|| failed(&format!("find bridge {bridge}"), "no such interface"))?;
    let mac = mac_bytes(inside.mac)?;
    let made = with_handle(|h| async move {
        let peer = LinkUnspec::new_with_name("eth0")
            .address(mac)
            .setns_by_pid(pid as u32)
            .build();
        let pair = LinkVeth::new(host_if, "eth0")
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge_index)
            .build();
        h.link()
            .add(pair)
            .execute()
            .await
            .map_err(|e| failed(&format!("create {host_if}"), e))?;
        let index = index_of(host_if)
            .ok_or_else(|| failed(&format!("find {host_if}"), "no such interface"))?;
        // Isolated before it is up: no frame passes to the other ports.
        h.link()
            .set_port(LinkBridgePort::new(index).isolated(true).build())
            .execute()
            .await
            .map_err(|e| failed(&format!("isolate {host_if}"), e))?;
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| failed(&format!("set {host_if} up"), e))
    })
    .and_then(|()| {
        in_netns_of(pid, |h| async move {
            // Asked on this thread, which is in the container's network namespace.
            let index = index_of("eth0").ok_or_else(|| failed("find eth0", "no such interface"))?;
            let (a, p, gw) = inside.v4;
            add_address(&h, index, IpAddr::V4(a), p).await?;
            h.link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|e| failed("set eth0 up", e))?;
            h.route()
                .add(RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build())
                .execute()
                .await
                .map_err(|e| failed("add the default route", e))?;
            if let Some((a, p, gw)) = inside.v6 {
                add_address(&h, index, IpAddr::V6(a), p).await?;
                h.route()
                    .add(RouteMessageBuilder::<Ipv6Addr>::new().gateway(gw).build())
                    .execute()
                    .await
                    .map_err(|e| failed("add the IPv6 default route", e))?;
            }
            Ok(())
        })
    });
    if made.is_err() {
        let _ = delete_link(host_if);
    }
    made
}

/// A token bucket (`tbf`, what `tc qdisc replace dev X root tbf rate R burst B latency L`
/// asks for) as the kernel takes it: `rate` bit/s, `burst` bytes at full speed, a queue of
/// `limit` bytes beyond. The rate is given for an Ethernet link layer, so the kernel
/// computes packet times itself and needs no rate table.
fn tbf(index: u32, rate: u64, burst: u32, limit: u32) -> TcMessage {
    use rtnetlink::packet_core::DefaultNla;
    use rtnetlink::packet_route::tc::TcOption;
    // linux/pkt_sched.h: TCA_TBF_PARMS, TCA_TBF_RATE64, TCA_TBF_BURST, TC_LINKLAYER_ETHERNET.
    const PARMS: u16 = 1;
    const RATE64: u16 = 4;
    const BURST: u16 = 6;
    const ETHERNET: u8 = 1;
    let bytes = rate / 8;
    // struct tc_tbf_qopt: the rate (struct tc_ratespec: cell_log, linklayer, overhead,
    // cell_align, mpu, rate), no peak rate, the limit, the buffer (from the burst) and mtu.
    let mut parms = vec![0u8, ETHERNET];
    parms.extend(0u16.to_ne_bytes());
    parms.extend(0i16.to_ne_bytes());
    parms.extend(0u16.to_ne_bytes());
    parms.extend((bytes.min(u64::from(u32::MAX)) as u32).to_ne_bytes());
    parms.extend([0u8; 12]);
    parms.extend(limit.to_ne_bytes());
    parms.extend([0u8; 8]);
    let mut options = vec![
        TcOption::Other(DefaultNla::new(PARMS, parms)),
        TcOption::Other(DefaultNla::new(BURST, burst.to_ne_bytes().to_vec())),
    ];
    if bytes >= u64::from(u32::MAX) {
        options.push(TcOption::Other(DefaultNla::new(
            RATE64,
            bytes.to_ne_bytes().to_vec(),
        )));
    }
    let mut message = TcMessage::with_index(index as i32);
    message.header.parent = TcHandle::ROOT;
    message.attributes = vec![
        TcAttribute::Kind("tbf".into()),
        TcAttribute::Options(options),
    ];
    message
}

/// Sends `message` (a new queueing discipline or its deletion), `flags` added to a
/// request's, and waits for the kernel's answer.
async fn tc_request(
    h: &mut Handle,
    message: rtnetlink::packet_route::RouteNetlinkMessage,
    flags: u16,
) -> std::result::Result<(), String> {
    use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
    let mut req = NetlinkMessage::from(message);
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut answers = h.request(req).map_err(|e| e.to_string())?;
    while let Some(answer) = futures_util::StreamExt::next(&mut answers).await {
        if let NetlinkPayload::Error(e) = answer.payload {
            if e.code.is_some() {
                return Err(std::io::Error::from(e).to_string());
            }
        }
    }
    Ok(())
}

/// Shapes what interface `name` sends to `rate` bit/s (a token bucket at its root:
/// bursts of `burst` bytes, `limit` bytes queued), or lifts it (`None`; nothing if there
/// was none).
async fn shape_in(h: &mut Handle, name: &str, rate: Option<(u64, u32, u32)>) -> Result<()> {
    use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
    use rtnetlink::packet_route::RouteNetlinkMessage as M;
    let index = index_in(h, name).await?;
    match rate {
        Some((rate, burst, limit)) => tc_request(
            h,
            M::NewQueueDiscipline(tbf(index, rate, burst, limit)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .await
        .map_err(|e| failed(&format!("shape {name}"), e)),
        None => {
            let mut root = TcMessage::with_index(index as i32);
            root.header.parent = TcHandle::ROOT;
            // Deleting the default queueing discipline fails harmlessly.
            let _ = tc_request(h, M::DelQueueDiscipline(root), 0).await;
            Ok(())
        }
    }
}

/// [`shape_in`] on interface `name` of this network namespace.
pub fn shape(name: &str, rate: Option<(u64, u32, u32)>) -> Result<()> {
    with_handle(|mut h| async move { shape_in(&mut h, name, rate).await })
}

/// [`shape_in`] on interface `name` of the network namespace of process `pid`.
pub fn shape_inside(pid: i32, name: &str, rate: Option<(u64, u32, u32)>) -> Result<()> {
    in_netns_of(
        pid,
        |mut h| async move { shape_in(&mut h, name, rate).await },
    )
}

/// Deletes the IPv6 routes through interface `name` that router advertisements planted
/// (what `ip -6 route flush dev NAME proto ra` does).
pub fn flush_ra_routes(name: &str) -> Result<()> {
    use rtnetlink::packet_route::route::{RouteAttribute, RouteProtocol};
    let Some(index) = index_of(name) else {
        return Ok(());
    };
    with_handle(|h| async move {
        let mut routes = h
            .route()
            .get(RouteMessageBuilder::<Ipv6Addr>::new().build())
            .execute();
        let mut planted = Vec::new();
        while let Some(route) = routes
            .try_next()
            .await
            .map_err(|e| failed("list IPv6 routes", e))?
        {
            let through = route.attributes.contains(&RouteAttribute::Oif(index));
            if through && route.header.protocol == RouteProtocol::Ra {
                planted.push(route);
            }
        }
        for route in planted {
            h.route()
                .del(route)
                .execute()
                .await
                .map_err(|e| failed(&format!("delete a route of {name}"), e))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn netlink_works_from_inside_an_async_runtime_too() {
        // The panel calls the engine from its runtime's threads.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let counted = rt.block_on(async { super::counters(Some("lo")) }).unwrap();
        assert!(counted.contains_key("lo"), "{counted:?}");
        // And from a plain thread.
        assert!(super::counters(None).unwrap().contains_key("lo"));
    }
}
