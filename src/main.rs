#![deny(clippy::print_stdout)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = uca::cli::Cli::parse();
    match uca::app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line, whatever a value quoted in the message holds.
            let message = e.to_string().replace('\r', "\\r").replace('\n', "\\n");
            eprintln!("uca: error: {message}");
            ExitCode::from(e.exit_code())
        }
    }
}
