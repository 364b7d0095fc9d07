//! The business rules of capacity: a customer's containers must fit its plan, and
//! everything a reseller's customers hold must fit the pool the provider gave it. Pure
//! functions over sums, checked on every path that allocates (create, resize).

use acetate_engine::size::{format_bytes, format_cpus};

use super::plan::{Plan, Pool, Totals};

/// Checks that a container holding `want` fits. `customer` and `reseller` are what the
/// customer's and the reseller's other containers hold (the container itself left out).
pub fn check(
    plan: &Plan,
    pool: Option<&Pool>,
    customer: &Totals,
    reseller: &Totals,
    want: &Totals,
    procs: i64,
) -> Result<(), String> {
    let b = |v: i64| format_bytes(v.max(0) as u64);
    let c = |v: i64| format_cpus(v.max(0) as u32);
    let plan_name = &plan.name;
    if want.memory > plan.ct_memory {
        return Err(format!(
            "memory {} is over your plan's {} per container ({plan_name})",
            b(want.memory),
            b(plan.ct_memory)
        ));
    }
    if want.cpus_milli > plan.ct_cpus_milli {
        return Err(format!(
            "{} CPUs is over your plan's {} per container ({plan_name})",
            c(want.cpus_milli),
            c(plan.ct_cpus_milli)
        ));
    }
    if want.disk > plan.ct_disk {
        return Err(format!(
            "disk {} is over your plan's {} per container ({plan_name})",
            b(want.disk),
            b(plan.ct_disk)
        ));
    }
    if procs > plan.ct_procs {
        return Err(format!(
            "{procs} processes is over your plan's {} per container ({plan_name})",
            plan.ct_procs
        ));
    }
    let sum = |t: &Totals| Totals {
        containers: t.containers + want.containers,
        memory: t.memory + want.memory,
        cpus_milli: t.cpus_milli + want.cpus_milli,
        disk: t.disk + want.disk,
    };
    let mine = sum(customer);
    if mine.containers > plan.max_containers {
        return Err(format!(
            "your plan ({plan_name}) allows {} containers",
            plan.max_containers
        ));
    }
    if mine.memory > plan.total_memory {
        return Err(format!(
            "your containers would hold {} of memory; your plan ({plan_name}) allows {}",
            b(mine.memory),
            b(plan.total_memory)
        ));
    }
    if mine.cpus_milli > plan.total_cpus_milli {
        return Err(format!(
            "your containers would hold {} CPUs; your plan ({plan_name}) allows {}",
            c(mine.cpus_milli),
            c(plan.total_cpus_milli)
        ));
    }
    if mine.disk > plan.total_disk {
        return Err(format!(
            "your containers would hold {} of disk; your plan ({plan_name}) allows {}",
            b(mine.disk),
            b(plan.total_disk)
        ));
    }
    let Some(pool) = pool else {
        return Err("your provider has not given your reseller any capacity yet".into());
    };
    let all = sum(reseller);
    if all.containers > pool.containers
        || all.memory > pool.memory
        || all.cpus_milli > pool.cpus_milli
        || all.disk > pool.disk
    {
        return Err("your reseller's capacity is used up: ask your reseller".into());
    }
    Ok(())
}

/// What a customer holding `held` in all, with `largest` the largest of its containers in
/// each dimension, holds beyond `plan`: one sentence per limit, naming it and both figures.
pub fn over_plan(plan: &Plan, held: &Totals, largest: &Totals) -> Vec<String> {
    let b = |v: i64| format_bytes(v.max(0) as u64);
    let c = |v: i64| format_cpus(v.max(0) as u32);
    let mut out = Vec::new();
    if held.containers > plan.max_containers {
        out.push(format!(
            "{} containers, the plan allows {}",
            held.containers, plan.max_containers
        ));
    }
    for (what, have, allowed, fmt) in [
        (
            "memory in all",
            held.memory,
            plan.total_memory,
            &b as &dyn Fn(i64) -> String,
        ),
        ("CPUs in all", held.cpus_milli, plan.total_cpus_milli, &c),
        ("disk in all", held.disk, plan.total_disk, &b),
        (
            "memory in one container",
            largest.memory,
            plan.ct_memory,
            &b,
        ),
        (
            "CPUs in one container",
            largest.cpus_milli,
            plan.ct_cpus_milli,
            &c,
        ),
        ("disk in one container", largest.disk, plan.ct_disk, &b),
    ] {
        if have > allowed {
            out.push(format!(
                "{} {what}, the plan allows {}",
                fmt(have),
                fmt(allowed)
            ));
        }
    }
    out
}

/// Warnings (not refusals: providers may over-subscribe on purpose) for a pool above what
/// the host has, alone or with the other resellers' pools (`others`), with the figures.
/// `host.disk` is what the disk policy lets quotas add up to; 0 in a field: unknown.
pub fn pool_warnings(pool: &Pool, others: &Totals, host: &Totals) -> Vec<String> {
    let b = |v: i64| format_bytes(v.max(0) as u64);
    let c = |v: i64| format_cpus(v.clamp(0, i64::from(u32::MAX)) as u32);
    let mut out = Vec::new();
    for (what, mine, theirs, has, fmt) in [
        (
            "memory",
            pool.memory,
            others.memory,
            host.memory,
            &b as &dyn Fn(i64) -> String,
        ),
        (
            "cpus",
            pool.cpus_milli,
            others.cpus_milli,
            host.cpus_milli,
            &c,
        ),
        ("disk", pool.disk, others.disk, host.disk, &b),
    ] {
        if has <= 0 {
            continue;
        }
        if mine > has {
            out.push(format!(
                "{what}: this pool ({}) is more than the host has ({})",
                fmt(mine),
                fmt(has)
            ));
        } else if mine + theirs > has {
            out.push(format!(
                "{what}: all pools together ({}) are more than the host has ({}): over-subscribed",
                fmt(mine + theirs),
                fmt(has)
            ));
        }
    }
    out
}

/// Checks a pool the provider sets against what the reseller's customers already hold:
/// never below it. The refusal names the field and both figures.
pub fn check_pool(pool: &Pool, used: &Totals) -> Result<(), String> {
    let b = |v: i64| format_bytes(v.max(0) as u64);
    let c = |v: i64| format_cpus(v.clamp(0, i64::from(u32::MAX)) as u32);
    if pool.memory < 0 || pool.cpus_milli < 0 || pool.disk < 0 || pool.containers < 0 {
        return Err("a pool's figures cannot be negative".into());
    }
    let below = [
        (
            "containers",
            pool.containers < used.containers,
            pool.containers.to_string(),
            used.containers.to_string(),
        ),
        (
            "memory",
            pool.memory < used.memory,
            b(pool.memory),
            b(used.memory),
        ),
        (
            "cpus",
            pool.cpus_milli < used.cpus_milli,
            c(pool.cpus_milli),
            c(used.cpus_milli),
        ),
        ("disk", pool.disk < used.disk, b(pool.disk), b(used.disk)),
    ];
    if let Some((what, _, set, held)) = below.iter().find(|(_, low, _, _)| *low) {
        return Err(format!(
            "{what} {set} is below the {held} the reseller's customers already hold"
        ));
    }
    Ok(())
}

/// Checks a container's I/O caps against its plan's: where the plan caps, the container
/// must have a cap, and at most the plan's.
pub fn check_io(plan: &Plan, io: &acetate_engine::IoLimits) -> Result<(), String> {
    let caps = plan.io_caps();
    let pairs = [
        ("read bandwidth", caps.read_bps, io.read_bps, true),
        ("write bandwidth", caps.write_bps, io.write_bps, true),
        ("read operations", caps.read_iops, io.read_iops, false),
        ("write operations", caps.write_iops, io.write_iops, false),
    ];
    for (what, cap, want, bytes) in pairs {
        let Some(cap) = cap else { continue };
        let show = |v: u64| {
            if bytes {
                format!("{}/s", format_bytes(v))
            } else {
                format!("{v}/s")
            }
        };
        match want {
            Some(v) if v > 0 && v <= cap => {}
            Some(v) if v > 0 => {
                return Err(format!(
                    "disk {what} {} is over your plan's {} per container ({})",
                    show(v),
                    show(cap),
                    plan.name
                ))
            }
            _ => {
                return Err(format!(
                    "your plan ({}) caps disk {what} at {}: it cannot be lifted",
                    plan.name,
                    show(cap)
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            id: 1,
            reseller_id: 1,
            name: "small".into(),
            ct_memory: 512 << 20,
            ct_cpus_milli: 1000,
            ct_disk: 2 << 30,
            ct_procs: 256,
            max_containers: 2,
            total_memory: 768 << 20,
            total_cpus_milli: 1500,
            total_disk: 3 << 30,
            price_minor: 500,
            currency: "EUR".into(),
            created_at: 0,
            ct_io_read_bps: 0,
            ct_io_write_bps: 10 << 20,
            ct_io_read_iops: 0,
            ct_io_write_iops: 0,
            templates: String::new(),
            max_snapshots: 5,
            egress: 1,
            minimal_init: 0,
            backup_every_hours: 0,
            backup_keep_last: 7,
            backup_keep_daily: 0,
            backup_keep_weekly: 0,
            backup_keep_monthly: 0,
        }
    }

    #[test]
    fn plans_and_pools_must_make_sense() {
        plan().check().unwrap();
        let e = Plan {
            max_containers: 0,
            ..plan()
        }
        .check()
        .unwrap_err();
        assert!(e.contains("customer containers"), "{e}");
        let e = Plan {
            ct_memory: 1 << 30,
            ..plan()
        }
        .check()
        .unwrap_err();
        assert!(e.contains("container memory") && e.contains("total"), "{e}");
        let used = Totals {
            containers: 2,
            memory: 2 << 30,
            cpus_milli: 1000,
            disk: 1 << 30,
        };
        check_pool(&pool(), &Totals::default()).unwrap();
        let e = check_pool(&pool(), &used).unwrap_err();
        assert!(e.contains("memory") && e.contains("already hold"), "{e}");
    }

    #[test]
    fn io_caps_stay_within_the_plan() {
        let io = |w: Option<u64>| acetate_engine::IoLimits {
            write_bps: w,
            ..Default::default()
        };
        check_io(&plan(), &io(Some(5 << 20))).unwrap();
        let e = check_io(&plan(), &io(Some(20 << 20))).unwrap_err();
        assert!(e.contains("over your plan"), "{e}");
        let e = check_io(&plan(), &io(None)).unwrap_err();
        assert!(e.contains("cannot be lifted"), "{e}");
    }
    fn pool() -> Pool {
        Pool {
            reseller_id: 1,
            memory: 1 << 30,
            cpus_milli: 2000,
            disk: 4 << 30,
            containers: 3,
        }
    }
    fn ct(memory: i64, cpus: i64, disk: i64) -> Totals {
        Totals {
            containers: 1,
            memory,
            cpus_milli: cpus,
            disk,
        }
    }

    #[test]
    fn fits_plan_and_pool() {
        let none = Totals::default();
        check(
            &plan(),
            Some(&pool()),
            &none,
            &none,
            &ct(256 << 20, 500, 1 << 30),
            64,
        )
        .unwrap();
    }

    #[test]
    fn per_container_limits() {
        let none = Totals::default();
        let e = check(
            &plan(),
            Some(&pool()),
            &none,
            &none,
            &ct(1 << 30, 500, 1 << 30),
            64,
        )
        .unwrap_err();
        assert!(e.contains("memory") && e.contains("per container"), "{e}");
        let e = check(&plan(), Some(&pool()), &none, &none, &ct(1, 2000, 1), 64).unwrap_err();
        assert!(e.contains("CPUs"), "{e}");
        let e = check(&plan(), Some(&pool()), &none, &none, &ct(1, 1, 1), 1000).unwrap_err();
        assert!(e.contains("processes"), "{e}");
    }

    #[test]
    fn per_customer_totals() {
        let two = Totals {
            containers: 2,
            memory: 256 << 20,
            cpus_milli: 500,
            disk: 1 << 30,
        };
        let e = check(&plan(), Some(&pool()), &two, &two, &ct(1, 1, 1), 1).unwrap_err();
        assert!(e.contains("allows 2 containers"), "{e}");
        let one = Totals {
            containers: 1,
            memory: 512 << 20,
            cpus_milli: 500,
            disk: 1 << 30,
        };
        let e = check(
            &plan(),
            Some(&pool()),
            &one,
            &one,
            &ct(512 << 20, 500, 1 << 30),
            1,
        )
        .unwrap_err();
        assert!(e.contains("of memory"), "{e}");
    }

    #[test]
    fn the_reseller_pool_caps_everything() {
        let none = Totals::default();
        let full = Totals {
            containers: 3,
            memory: 0,
            cpus_milli: 0,
            disk: 0,
        };
        let e = check(&plan(), Some(&pool()), &none, &full, &ct(1, 1, 1), 1).unwrap_err();
        assert!(e.contains("capacity is used up"), "{e}");
        let e = check(&plan(), None, &none, &none, &ct(1, 1, 1), 1).unwrap_err();
        assert!(e.contains("not given"), "{e}");
    }
}
