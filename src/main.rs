#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let parsed = match uca::cli::parse() {
        Ok(parsed) => parsed,
        Err(e) => return clap_exit(&e),
    };
    // Process set-up, before any secret is read.
    uca::support::sys::harden();
    match uca::cli::run(parsed) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line, whatever a value quoted in the message holds.
            let message = e.to_string().replace('\r', "\\r").replace('\n', "\\n");
            uca::support::stdout::to_stderr(&format!("uca: error: {message}"));
            // 1 for every error, a standard output that cannot be written
            // included (`check` returns its 0/1/2/3 as results, not errors).
            ExitCode::from(1)
        }
    }
}

/// What `Cli::parse` would do (help and version on standard output with
/// status 0, usage errors on standard error with 2), except that help or a
/// version that cannot be written is an error, not a silent success.
fn clap_exit(e: &clap::Error) -> ExitCode {
    match e.print() {
        Err(cause) if !e.use_stderr() => {
            uca::support::stdout::to_stderr(&format!(
                "uca: error: cannot write to standard output: {cause}"
            ));
            ExitCode::from(1)
        }
        _ => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)),
    }
}
