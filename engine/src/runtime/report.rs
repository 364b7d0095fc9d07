//! How the container's first process reports a failed setup: `(step, errno)` pairs
//! through a pipe, read and put in words here.

use std::os::fd::{AsRawFd, OwnedFd};

use super::child;
use super::rootfs::Op;
use crate::security;

/// Describes step `code` of a failed start for the error message.
pub(super) fn describe_step(ops: &[Op], code: u32, errno: i32) -> &'static str {
    use child::step;
    if matches!(errno, libc::ELOOP | libc::ENOTDIR) && (code as usize) < ops.len() {
        return "preparing its root filesystem: a path where a directory or device belongs \
                is a symbolic link or not a directory (a damaged or crafted template or layer)";
    }
    match code {
        step::WAIT => "waiting for the engine",
        step::IDS => "switching to the container's root user",
        step::CGROUP_NS => "creating the cgroup namespace",
        step::HOSTNAME => "setting the hostname",
        step::PIVOT => "switching to the container's root filesystem",
        step::LOOPBACK => "bringing up the loopback interface",
        step::STDIO => "redirecting standard I/O",
        step::CAPS => "dropping capabilities",
        step::SECCOMP => "installing the seccomp filter",
        step::EXEC => "executing its init (acetate-init, or the template's /sbin/init)",
        step::JOIN_CGROUP => "joining the container's cgroup",
        step::SETNS => "entering the container's namespaces",
        step::FORK => "forking",
        step::PRIVATE => "making mounts private",
        step::BIND_ROOT => "binding the root filesystem",
        i => match ops.get(i as usize) {
            Some(Op::Mkdir { .. }) => "creating a directory of the root filesystem",
            Some(Op::Touch { .. }) => "creating a device node",
            Some(Op::Mount { .. }) => "mounting the container's filesystems",
            Some(Op::ReadOnly { .. }) => "making kernel interfaces read-only",
            Some(Op::Symlink { .. }) => "creating /dev links",
            Some(Op::Write { .. }) => "writing the container's boot id",
            None => "setting up",
        },
    }
}

/// Reads a `(step, errno)` report from a failed child; `None` if the pipe closed clean.
pub(super) fn read_report(fd: &OwnedFd) -> Option<(u32, i32)> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        // SAFETY: reads into the unfilled rest of a stack buffer.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf[got..].as_mut_ptr() as *mut libc::c_void,
                8 - got,
            )
        };
        if n == 0 {
            break;
        }
        if n < 0 {
            if security::errno() == libc::EINTR {
                continue;
            }
            break;
        }
        got += n as usize;
    }
    (got == 8).then(|| {
        (
            u32::from_ne_bytes(buf[..4].try_into().expect("4 bytes")),
            i32::from_ne_bytes(buf[4..].try_into().expect("4 bytes")),
        )
    })
}
