//! Runs a parsed command line: turns arguments into requests, calls the
//! module that does the work, and tells the user exactly what was written
//! where.

use crate::cli::{Cli, Command};
use crate::commands::{
    ceremony, check, completions, init, inspect, issue, registry, seal, sign, verify,
};
use crate::support::error::Result;
use crate::support::stdout::Stdout;

/// Runs the command and returns the process exit status.
pub fn run(cli: Cli) -> Result<u8> {
    crate::support::hardening::apply();
    let mut out = Stdout::default();
    let status = run_command(cli, &mut out)?;
    out.finish()?;
    Ok(status)
}

/// Everything a command prints goes to `out`; each command tells `out` when
/// its work is done, so a failure to print says whether it was.
fn run_command(cli: Cli, out: &mut Stdout) -> Result<u8> {
    match cli.command {
        Command::Init(a) => init::run(a, out),
        Command::Issue(a) => issue::run(a, out),
        Command::Ceremony(a) => ceremony::run(a, out),
        Command::Vault(v) => run_vault(*v, out),
        Command::Registry(a) => registry::run(a, out),
        Command::Sign(a) => sign::run(a, out),
        Command::Seal(a) => seal::run(a, out),
        Command::Inspect(a) => inspect::run(a, out),
        Command::Verify(a) => verify::run(a, out),
        Command::Check(a) => check::run(a, out),
        Command::Completions(a) => completions::run(a, &mut crate::cli::command(), out),
    }
}

fn run_vault(cmd: crate::cli::VaultCommand, out: &mut Stdout) -> Result<u8> {
    use crate::cli::VaultCommand;
    use crate::commands::vault::{bootstrap, client::Connection, offline, tls};
    match cmd {
        VaultCommand::Bootstrap(a) => {
            let req = bootstrap::BootstrapRequest {
                dir: a.dir,
                conn: Connection {
                    addr: a.conn.addr,
                    cacert: a.conn.cacert,
                    client_cert: a.conn.client_cert,
                    client_key: a.conn.client_key,
                    token_file: a.conn.token_file,
                    namespace: a.conn.namespace,
                },
                mount: a.role.mount,
                max_ttl: a.role.max_ttl,
                role: a.role.role,
                allowed_domains: a.role.allowed_domains,
                role_max_ttl: a.role.role_max_ttl,
                allow_ip_sans: a.allow_ip_sans,
                allow_wildcards: a.allow_wildcards,
                allow_bare_domains: a.allow_bare_domains,
                issuing_url: a.role.issuing_url,
                crl_url: a.role.crl_url,
                mode: a.mode,
                common_name: a.role.common_name,
                key: a.role.key,
                days: a.days,
                permits: a.permit,
                force: a.force,
                passphrase_file: a.passphrase.passphrase_file,
            };
            // A progress line that cannot be printed does not stop the
            // bootstrap; the failure is reported once it is done.
            let outcome = bootstrap::run(&req, &mut |line| {
                let _ = writeln!(out, "- {line}");
            })?;
            out.work_done(if outcome.already {
                format!(
                    "Vault's bootstrap under {} was completed with the existing intermediate",
                    req.mount
                )
            } else {
                format!("Vault was bootstrapped under {}", req.mount)
            });
            if outcome.already {
                writeln!(
                    out,
                    "already bootstrapped: kept the intermediate; the URLs, role {} and a probe certificate are in place",
                    req.role
                )?;
            } else {
                writeln!(
                    out,
                    "bootstrap complete: Vault issues under {} as an intermediate of this root",
                    req.mount
                )?;
            }
            Ok(0)
        }
        VaultCommand::Tls(a) => {
            let report = tls::run(&tls::TlsRequest {
                dir: a.dir,
                out: a.out,
                hosts: a.hosts,
                operators: a.operators,
                nodes: a.nodes,
                storage: a.storage,
                address: a.address,
                port: a.port,
                key: a.leaf.key,
                days: a.leaf.days,
                force: a.leaf.force,
                passphrase_file: a.passphrase.passphrase_file,
            })?;
            out.work_done(format!(
                "{} and {} were written",
                issue::certificates(report.issued.len() as u64),
                report.listener_hcl.display()
            ));
            for c in &report.issued {
                writeln!(
                    out,
                    "issued {}: {}/{{cert,key,chain,ca}}.pem  SANs {}",
                    c.name,
                    c.target.display(),
                    c.sans.join(", ")
                )?;
            }
            writeln!(
                out,
                "wrote {} (paste into Vault's configuration)",
                report.listener_hcl.display()
            )?;
            if let Some(r) = &report.retry_join_hcl {
                writeln!(
                    out,
                    "wrote {} (retry_join blocks for storage \"raft\")",
                    r.display()
                )?;
            }
            if let Some(st) = &report.storage_hcl {
                writeln!(out, "wrote {} (storage \"postgresql\" for Vault; its comments say what the database server needs)",
                    st.display()
                )?;
            }
            Ok(0)
        }
        VaultCommand::Commands(a) => {
            let req = offline::OfflineRequest {
                cli: a.cli,
                dir: a.dir.display().to_string(),
                mount: a.role.mount,
                max_ttl: a.role.max_ttl,
                common_name: a.role.common_name,
                key_type: bootstrap::vault_key_type(a.role.key),
                role: a.role.role,
                allowed_domains: a.role.allowed_domains,
                role_max_ttl: a.role.role_max_ttl,
                issuing_url: a.role.issuing_url,
                crl_url: a.role.crl_url,
            };
            req.validate()?;
            write!(out, "{}", offline::render(&req))?;
            Ok(0)
        }
    }
}
