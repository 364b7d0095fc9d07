//! What a container's processes may do: the capabilities they keep and the seccomp filter
//! they run under. Both are prepared before `fork` so the child only makes system calls.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

/// Capabilities a hosting container keeps (all scoped to its own user namespace): what a
/// system's services need to drop privileges, own files, bind low ports and ping. Gone are
/// among others SYS_ADMIN (mount), SYS_MODULE, SYS_TIME, SYS_BOOT, NET_ADMIN, SYS_PTRACE.
pub const KEPT_CAPS: &[u32] = &[
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    13, // NET_RAW
    18, // SYS_CHROOT
    27, // MKNOD
    29, // AUDIT_WRITE
    31, // SETFCAP
];

/// Bit mask of [`KEPT_CAPS`].
pub fn kept_caps_mask() -> u64 {
    KEPT_CAPS.iter().fold(0u64, |m, c| m | (1u64 << c))
}

/// Highest capability number this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// System calls refused with EPERM: kernel modules, kexec, raw kernel interfaces, clock
/// and swap changes, mounting, new namespaces, keyrings, BPF and perf.
const DENIED: &[i64] = &[
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_acct,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_quotactl,
    libc::SYS_lookup_dcookie,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_syslog,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_vhangup,
    libc::SYS_uselib,
    libc::SYS_userfaultfd,
];

const NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn arch() -> TargetArch {
    #[cfg(target_arch = "x86_64")]
    {
        TargetArch::x86_64
    }
    #[cfg(target_arch = "aarch64")]
    {
        TargetArch::aarch64
    }
}

fn rule(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompRule> {
    let cond = SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| Error::Unsupported(format!("seccomp condition: {e}")))?;
    SeccompRule::new(vec![cond]).map_err(|e| Error::Unsupported(format!("seccomp rule: {e}")))
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, on_match: SeccompAction) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, on_match, arch())
        .map_err(|e| Error::Unsupported(format!("seccomp filter: {e}")))?;
    BpfProgram::try_from(filter).map_err(|e| Error::Unsupported(format!("seccomp filter: {e}")))
}

/// The container's seccomp programs, to be installed in order.
#[derive(Debug, Clone)]
pub struct SeccompPrograms {
    pub programs: Vec<BpfProgram>,
}

/// Builds the filters: a deny list answering EPERM (with argument checks for clone with
/// namespace flags and for the terminal-injection ioctls), and clone3 answering ENOSYS so
/// that libc falls back to clone, whose flags the first filter can see.
pub fn seccomp_programs() -> Result<SeccompPrograms> {
    let mut deny: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let clone_rules = NS_FLAGS
        .iter()
        .map(|&f| rule(0, SeccompCmpOp::MaskedEq(f), f))
        .collect::<Result<Vec<_>>>()?;
    deny.insert(libc::SYS_clone, clone_rules);
    deny.insert(
        libc::SYS_ioctl,
        vec![
            rule(1, SeccompCmpOp::Eq, libc::TIOCSTI)?,
            rule(1, SeccompCmpOp::Eq, libc::TIOCLINUX)?,
        ],
    );
    let eperm = compile(deny, SeccompAction::Errno(libc::EPERM as u32))?;

    let mut nosys = BTreeMap::new();
    nosys.insert(libc::SYS_clone3, Vec::new());
    let enosys = compile(nosys, SeccompAction::Errno(libc::ENOSYS as u32))?;
    Ok(SeccompPrograms {
        programs: vec![eperm, enosys],
    })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability outside `keep` from the bounding set. For a forked child: only
/// system calls. Returns the errno on failure.
pub fn drop_bounding_set(keep: u64, last_cap: u32) -> std::result::Result<(), i32> {
    for cap in 0..=last_cap {
        if keep & (1u64 << cap) == 0 {
            // SAFETY: prctl with integer arguments.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if rc != 0 {
                let e = errno();
                if e != libc::EINVAL {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable capabilities to `keep` and clears ambient ones.
pub fn set_caps(keep: u64) -> std::result::Result<(), i32> {
    let mut header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let lo = keep as u32;
    let hi = (keep >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: lo,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: hi,
        },
    ];
    // SAFETY: header and data are valid for capset's version 3 layout (two data entries).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(errno());
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    Ok(())
}

/// Installs the seccomp programs without `no_new_privs` (the caller holds CAP_SYS_ADMIN in
/// its user namespace), so setuid programs inside the container keep working.
pub fn install_seccomp(progs: &SeccompPrograms) -> std::result::Result<(), i32> {
    for prog in &progs.programs {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the kernel copies the program; `fprog` points into a live Vec.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(errno());
        }
    }
    Ok(())
}

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile() {
        let p = seccomp_programs().unwrap();
        assert_eq!(p.programs.len(), 2);
        assert!(p.programs.iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn dangerous_caps_are_not_kept() {
        let mask = kept_caps_mask();
        for cap in [
            16u32, /* SYS_MODULE */
            21,    /* SYS_ADMIN */
            25,    /* SYS_TIME */
            12,    /* NET_ADMIN */
            22,    /* SYS_BOOT */
        ] {
            assert_eq!(mask & (1 << cap), 0, "capability {cap} must be dropped");
        }
        assert_ne!(mask & (1 << 7), 0, "SETUID is needed by services");
    }
}
