//! Process set-up applied before any secret is read: no core dumps, no
//! ptrace attach by other processes of the same user, and the ordinary Unix
//! behaviour on a closed output pipe.

pub fn apply() {
    // SAFETY: plain libc calls with valid arguments; they only change limits
    // and signal dispositions of this process.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        // Rust ignores SIGPIPE, so `uca inspect x | head -1` panicked on the
        // broken pipe. A command-line tool ends quietly instead, like cat;
        // an interrupted issuance is safe (files appear by rename, the
        // ledger only records what is on disk).
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
