//! `uca completions SHELL`: a shell completion script, generated from the
//! clap definition of the whole command line (which the caller passes in:
//! it is declared above this layer).

use clap::{Args, ValueEnum};

use crate::support::error::Result;
use crate::support::stdout::Stdout;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

// `uca completions`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `uca completions SHELL`: prints the script for `cmd`, the whole command
/// line.
pub fn run(args: CompletionsArgs, cmd: &mut clap::Command, out: &mut Stdout) -> Result<u8> {
    // Rendered in memory: clap_complete panics on a failed write.
    let mut script = Vec::new();
    script_for(args.shell, cmd, &mut script);
    out.print(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

/// Writes the completion script for `cmd` in `shell`'s language.
pub fn script_for(shell: Shell, cmd: &mut clap::Command, out: &mut dyn std::io::Write) {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    clap_complete::generate(shell, cmd, "uca", out);
}
