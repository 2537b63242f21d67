//! Snapshots of what a user sees: every `--help`, `--version`, whole error
//! lines for bad input, and a full init/issue/seal run, pinned under
//! tests/cmd (one `.toml` per command with its `.stdout`/`.stderr`, and
//! `.md` transcripts for sequences of commands run in one sandbox).
//!
//! After an intended change of the output, refresh and review them with:
//!
//!     TRYCMD=overwrite cargo test --test cli_snapshots
//!     git diff tests/cmd

#[test]
fn cli_snapshots() {
    // The snapshots must not depend on the caller's environment: a passphrase
    // in UCA_PASSPHRASE would change what init and issue do, and COLUMNS would
    // change how clap wraps --help. This is the only test in this binary, so
    // no other thread reads the environment meanwhile.
    std::env::remove_var("UCA_PASSPHRASE");
    std::env::remove_var("COLUMNS");
    trycmd::TestCases::new()
        .register_bin("uca", std::path::Path::new(env!("CARGO_BIN_EXE_uca")))
        .case("tests/cmd/*.toml")
        .case("tests/cmd/*.md");
}
