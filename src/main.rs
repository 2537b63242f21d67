use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = uca::cli::Cli::parse();
    match uca::app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("uca: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
