//! Every call into the operating system that Rust's standard library does
//! not wrap, each behind a small safe function. This is the only module
//! allowed `unsafe` (`lib.rs` denies it everywhere else), so each block
//! below, with its SAFETY comment, is the whole of uca's unsafe code.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Process set-up applied before any secret is read: no core dumps, no
/// ptrace attach by other processes of the same user, and a closed output
/// pipe reported as an error rather than a kill by SIGPIPE.
pub fn harden() {
    // SAFETY: plain libc calls with valid arguments; they only change limits
    // and signal dispositions of this process.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        // SIGPIPE stays ignored, as Rust's runtime left it: a reader that
        // went away is a failed write like any other, reported in one line
        // that says whether the work was done, not a silent death by signal
        // after a CA was made or certificates issued.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Puts `file`, opened with `O_NONBLOCK`, back into blocking mode.
pub fn clear_nonblocking(file: &File) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor `file` keeps open for the call, with flag
    // values read from the same descriptor; no memory is passed.
    let cleared = unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        flags >= 0 && libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if cleared {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Linux's `renameat2(RENAME_NOREPLACE)`: renames `from` to `to` only if
/// `to` does not exist, in one step. `ENOSYS` where it is not available.
#[cfg(target_os = "linux")]
pub fn renameat2_noreplace(from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub fn renameat2_noreplace(_: &CStr, _: &CStr) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Whether this process may create entries in the directory at `dir`
/// (`access(W_OK | X_OK)`, which asks as the real user).
pub fn may_write_into(dir: &CStr) -> bool {
    // SAFETY: a NUL-terminated path that outlives the call.
    unsafe { libc::access(dir.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Whether this process may write the file `path` (`access(W_OK)`, which
/// follows the real user's permissions, as root's override included).
pub fn may_write(path: &CStr) -> bool {
    // SAFETY: a NUL-terminated path that outlives the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// Makes everything written so far on the file system that holds `file`
/// durable with one call (`syncfs`).
pub fn sync_filesystem_of(file: &File) -> io::Result<()> {
    // SAFETY: syncfs takes a valid open descriptor, which `file` keeps open
    // for the call.
    if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether a process with id `pid` exists, even one this user may not
/// signal. Id 0 and ids beyond `pid_t` name no single process: false.
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; pid is positive,
    // so it names one process, never a group.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Takes `name` out of the process environment and returns its value, so
/// that no child process inherits it (a passphrase, a Vault token).
/// Removing a variable races with threads reading the environment (it is
/// `unsafe` from edition 2024 on): uca calls this before it starts any.
pub fn take_env(name: &str) -> Option<std::ffi::OsString> {
    let value = std::env::var_os(name)?;
    std::env::remove_var(name);
    Some(value)
}
