//! Process set-up applied before any secret is read: no core dumps, no
//! ptrace attach by other processes of the same user, and a closed output
//! pipe reported as an error rather than a kill by SIGPIPE.

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
        // SIGPIPE stays ignored, as Rust's runtime left it: a reader that
        // went away is a failed write like any other, reported in one line
        // that says whether the work was done, not a silent death by signal
        // after a CA was made or certificates issued.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}
