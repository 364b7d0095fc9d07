//! CPU lists as cpuset files write them (`0-3,6`), and the choice of the CPUs a container
//! is pinned to (see `ContainerCgroup::pin_cpus`).

/// CPU numbers of a cpuset list such as `0-3,6,8-9`.
pub(crate) fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(c) = part.trim().parse() {
                    out.push(c);
                }
            }
        }
    }
    out
}

pub(crate) fn format_cpu_list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The CPUs of `available` for a quota of `cpus_milli` (as many as it rounds up to), from
/// an offset that the cgroup's path `rel` picks (FNV-1a), so containers spread.
pub(crate) fn for_quota(available: &[u32], cpus_milli: u32, rel: &str) -> Vec<u32> {
    let want = (cpus_milli as usize).div_ceil(1000).max(1);
    let seed = rel.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    pick_cpus(available, want, seed)
}

/// `want` of `available` (all if it has no more), consecutive from an offset that `seed`
/// picks, in order.
fn pick_cpus(available: &[u32], want: usize, seed: u64) -> Vec<u32> {
    if want >= available.len() {
        return available.to_vec();
    }
    let start = (seed % available.len() as u64) as usize;
    let mut chosen: Vec<u32> = (0..want)
        .map(|j| available[(start + j) % available.len()])
        .collect();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_read_and_a_quota_picks_that_many_cpus() {
        assert_eq!(parse_cpu_list("0-3,6,8-9\n"), vec![0, 1, 2, 3, 6, 8, 9]);
        assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
        assert_eq!(format_cpu_list(&[0, 2, 5]), "0,2,5");
        let cpus = [0, 1, 2, 3];
        assert_eq!(pick_cpus(&cpus, 1, 6), vec![2]);
        assert_eq!(pick_cpus(&cpus, 2, 3), vec![0, 3]);
        assert_eq!(pick_cpus(&cpus, 4, 9), vec![0, 1, 2, 3]);
        assert_eq!(pick_cpus(&cpus, 7, 9), vec![0, 1, 2, 3]);
        // 0.5 and 1 CPU: one; 1.5: two; the same path, the same CPUs.
        assert_eq!(for_quota(&cpus, 500, "acetate/a").len(), 1);
        assert_eq!(for_quota(&cpus, 1000, "acetate/a").len(), 1);
        assert_eq!(for_quota(&cpus, 1500, "acetate/a").len(), 2);
        assert_eq!(
            for_quota(&cpus, 500, "acetate/a"),
            for_quota(&cpus, 900, "acetate/a")
        );
    }
}
