//! Process hardening applied before any secret is read: no core dumps, and
//! no ptrace attach by other processes of the same user.

pub fn apply() {
    // SAFETY: plain libc calls with valid arguments; they only change limits
    // of this process.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}
