//! The device allow-list on cgroup v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program, attached
//! to the container's cgroup2 directory, that allows the container's own device nodes and
//! refuses every other open or mknod (v1 hosts use the devices controller instead; hybrid
//! hosts get both). The program is a handful of instructions built here: for each allowed
//! node, compare the type, major and minor the kernel hands it and answer 1; else 0.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};

/// A device node a container may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// Character device (else block).
    pub char: bool,
    pub major: u32,
    /// `None`: every minor of the major.
    pub minor: Option<u32>,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// `r_dst = *(u32 *)(r_src + off)`
fn load_word(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x61, dst, src, off, 0)
}
/// `if r_dst != imm goto pc + off`
fn jump_unless(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x55, dst, 0, off, imm)
}
/// `r_dst = imm`
fn mov(dst: u8, imm: i32) -> Insn {
    insn(0xb7, dst, 0, 0, imm)
}
fn exit() -> Insn {
    insn(0x95, 0, 0, 0, 0)
}

/// The program: `r1` is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32
/// minor; }`, the device type in the low 16 bits of `access_type`.
fn program(allowed: &[Allowed]) -> Vec<Insn> {
    let mut p = vec![
        load_word(2, 1, 0),
        insn(0x57, 2, 0, 0, 0xffff), // r2 &= 0xffff: the type
        load_word(4, 1, 4),          // r4 = major
        load_word(5, 1, 8),          // r5 = minor
    ];
    for a in allowed {
        let kind = if a.char {
            BPF_DEVCG_DEV_CHAR
        } else {
            BPF_DEVCG_DEV_BLOCK
        };
        // Each check skips the rest of this rule: its remaining checks, `r0 = 1`, `exit`.
        let checks = if a.minor.is_some() { 3 } else { 2 };
        p.push(jump_unless(2, kind, checks + 1));
        p.push(jump_unless(4, a.major as i32, checks));
        if let Some(minor) = a.minor {
            p.push(jump_unless(5, minor as i32, 2));
        }
        p.push(mov(0, 1));
        p.push(exit());
    }
    p.push(mov(0, 0));
    p.push(exit());
    p
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<libc::c_long> {
    // SAFETY: bpf(2) with a properly sized attribute struct that lives across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Attaches the allow-list `allowed` to the cgroup2 directory `dir`: from then on the
/// processes in it (and below) open and make only those device nodes. The attachment
/// lives as long as the cgroup.
pub fn restrict(dir: &Path, allowed: &[Allowed]) -> Result<()> {
    let insns = program(allowed);
    let license = c"GPL";
    let mut log = vec![0u8; 4096];
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..ProgLoad::default()
    };
    let prog = bpf(BPF_PROG_LOAD, &load).map_err(|e| {
        let text = String::from_utf8_lossy(&log);
        Error::sys(
            format!(
                "load the device filter ({})",
                text.trim_end_matches('\0').trim()
            ),
            e,
        )
    })?;
    // SAFETY: a fresh descriptor that we own.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| Error::Unsupported(format!("{}: NUL in path", dir.display())))?;
    // SAFETY: open(2) of a directory with a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::io(
            "open cgroup",
            dir,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh descriptor that we own.
    let cgroup = unsafe { OwnedFd::from_raw_fd(fd) };
    let attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &attach)
        .map_err(|e| Error::sys(format!("attach the device filter to {}", dir.display()), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_jumps_past_itself_when_it_does_not_match() {
        let p = program(&[
            Allowed {
                char: true,
                major: 1,
                minor: Some(3),
            },
            Allowed {
                char: true,
                major: 136,
                minor: None,
            },
        ]);
        // 4 loads, 5 + 4 rule instructions, the final refusal (2).
        assert_eq!(p.len(), 4 + 5 + 4 + 2);
        // Rule 1: a type mismatch skips 4 (the other checks, r0 = 1 and exit).
        assert_eq!(p[4], jump_unless(2, BPF_DEVCG_DEV_CHAR, 4));
        assert_eq!(p[6], jump_unless(5, 3, 2));
        assert_eq!(p[8], exit());
        // Rule 2 has no minor check.
        assert_eq!(p[9], jump_unless(2, BPF_DEVCG_DEV_CHAR, 3));
        assert_eq!(p[10], jump_unless(4, 136, 2));
        assert_eq!(p[13], mov(0, 0));
    }
}
