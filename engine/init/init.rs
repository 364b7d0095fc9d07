//! acetate-init: PID 1 of every Acetate container.
//!
//! Built by the engine's build script as a small static binary with no dependencies, and
//! executed from a descriptor so that it needs no file inside the container. It reaps every
//! orphan, and on SIGTERM (or SIGINT or SIGPWR) passes SIGTERM to every process of the
//! container, waits for them to exit (SIGKILL after the grace period) and exits itself,
//! which ends the container. All signals stay blocked and are taken with sigtimedwait, so
//! none can interrupt it half-way.

use std::os::raw::{c_int, c_long, c_void};

#[repr(C)]
struct SigSet([u64; 16]);

#[repr(C)]
struct Timespec {
    tv_sec: c_long,
    tv_nsec: c_long,
}

extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigtimedwait(set: *const SigSet, info: *mut c_void, timeout: *const Timespec) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn __errno_location() -> *mut c_int;
}

const SIG_SETMASK: c_int = 2;
const WNOHANG: c_int = 1;
const ECHILD: c_int = 10;
const SIGINT: c_int = 2;
const SIGKILL: c_int = 9;
const SIGTERM: c_int = 15;
const SIGPWR: c_int = 30;
/// Seconds between SIGTERM and SIGKILL for processes that ignore SIGTERM.
const GRACE_SECONDS: u32 = 8;

/// Reaps every exited child; returns true when no child is left.
fn reap() -> bool {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
        if pid > 0 {
            continue;
        }
        // SAFETY: errno is thread-local and valid.
        return pid < 0 && unsafe { *__errno_location() } == ECHILD;
    }
}

fn main() {
    let mut all = SigSet([0; 16]);
    let mut info = [0u64; 16];
    // SAFETY: signal mask calls on valid sets.
    unsafe {
        sigfillset(&mut all);
        sigprocmask(SIG_SETMASK, &all, std::ptr::null_mut());
    }
    let mut stopping_for: Option<u32> = None;
    loop {
        // Idle containers sleep until a signal comes; only a stop needs a clock tick.
        let tick = Timespec { tv_sec: 1, tv_nsec: 0 };
        let timeout = if stopping_for.is_some() { &tick as *const Timespec } else { std::ptr::null() };
        // SAFETY: waits for any signal; `info` is large enough for a siginfo_t.
        let sig = unsafe { sigtimedwait(&all, info.as_mut_ptr() as *mut c_void, timeout) };
        if sig == SIGTERM || sig == SIGINT || sig == SIGPWR {
            if stopping_for.is_none() {
                stopping_for = Some(0);
                // SAFETY: signals every process of this pid namespace but us.
                unsafe { kill(-1, SIGTERM) };
            }
        } else if sig < 0 {
            if let Some(waited) = stopping_for.as_mut() {
                *waited += 1;
                if *waited == GRACE_SECONDS {
                    // SAFETY: as above.
                    unsafe { kill(-1, SIGKILL) };
                }
            }
        }
        let none_left = reap();
        if stopping_for.is_some() && none_left {
            std::process::exit(0);
        }
    }
}
