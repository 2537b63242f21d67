//! Runs a parsed command line: turns arguments into requests, calls the
//! module that does the work, and tells the user exactly what was written
//! where.

use crate::ca::seal;
use crate::cli::{Cli, Command};
use crate::commands::{ceremony, check, init, inspect, issue, registry, sign, verify};
use crate::docs;
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
        Command::Init(a) => {
            let report = init::run(&init::InitRequest {
                dir: a.dir,
                name: a.name,
                key: a.key,
                days: a.days,
                pathlen: a.pathlen,
                permits: a.permit,
                san_rules: a.san_rule,
                passphrase_file: a.passphrase.passphrase_file,
                generate_passphrase: a.generate_passphrase,
            })?;
            let d = report.dir.display();
            out.work_done(format!("the CA was created in {d}"));
            writeln!(out, "created CA in {d}")?;
            writeln!(out, "  certificate  {d}/ca.pem (give this to every client)")?;
            writeln!(
                out,
                "  key          {d}/private/ca-key.pem (encrypted PKCS#8)"
            )?;
            if report.passphrase_stored {
                writeln!(
                    out,
                    "  passphrase   {d}/private/passphrase (destroyed by: uca seal --dir {d})"
                )?;
            }
            writeln!(out, "  expires      {}", report.not_after)?;
            writeln!(out, "  SHA-256      {}", report.fingerprint)?;
            Ok(0)
        }
        Command::Issue(a) => {
            let what = match a.plan {
                Some(plan) => issue::IssueWhat::Plan(plan),
                None => issue::IssueWhat::Names {
                    names: a.names,
                    profile: a.profile,
                    sans: a.san,
                    san_rules: a.san_rule,
                    key: a.leaf.key,
                    days: a.leaf.days,
                },
            };
            let per_line = matches!(what, issue::IssueWhat::Names { .. }) && !a.json;
            let req = issue::IssueRequest {
                dir: a.dir,
                out: a.out.clone(),
                what,
                force: a.leaf.force,
                passphrase_file: a.passphrase.passphrase_file,
                progress: !a.json,
            };
            // A line that cannot be printed does not stop the issuance; the
            // failure is reported once the work is done.
            let summary = issue::run(&req, &mut |c| {
                if per_line {
                    let _ = writeln!(
                        out,
                        "issued {}: {}/{{cert,key,chain,ca}}.pem  serial {}  expires {}  SANs {}",
                        c.name,
                        c.target.display(),
                        c.serial,
                        c.not_after,
                        c.sans.join(", ")
                    );
                }
            })?;
            out.work_done(format!(
                "{} issued into {}",
                certificates(summary.issued),
                a.out.display()
            ));
            report_summary(out, &summary, &a.out, a.json, per_line)?;
            Ok(0)
        }
        Command::Ceremony(a) => {
            let report = ceremony::run(
                &ceremony::CeremonyRequest {
                    plan: a.plan,
                    out: a.out,
                    escrow_passphrase: a.escrow_passphrase,
                    progress: !a.json,
                },
                &mut |_| {},
            )?;
            out.work_done(format!(
                "the ceremony is complete and {} is sealed",
                report.ca_dir.display()
            ));
            let s = &report.summary;
            let expiry = s.earliest_expiry.map(crate::support::timefmt::rfc3339);
            if a.json {
                let doc = serde_json::json!({
                    "ca": report.ca_dir.display().to_string(),
                    "certs": report.certs_dir.display().to_string(),
                    "issued": s.issued,
                    "manifest_certificates": report.seal.certificates,
                    "earliest_expiry": expiry,
                    "root_sha256": report.fingerprint,
                    "sealed_at": report.seal.sealed_at,
                    "seconds": s.elapsed.as_secs_f64(),
                    "escrow": report.escrow.as_ref().map(|(p, k)| serde_json::json!({"passphrase": p.display().to_string(), "key": k.display().to_string()})),
                    "registry": report.registry.as_ref().map(|r| r.out.display().to_string()),
                    "vault": report.vault_steps,
                });
                writeln!(out, "{doc}")?;
            } else {
                // The manifest also lists what [registry] and [vault] issued.
                let total = report.seal.certificates as u64;
                let sections = match total.saturating_sub(s.issued) {
                    0 => String::new(),
                    n => format!(
                        " ({} from the plan's groups, {n} for its [registry]/[vault] sections)",
                        s.issued
                    ),
                };
                writeln!(
                    out,
                    "ceremony complete: {total} certificates{sections} in {:.2}s",
                    s.elapsed.as_secs_f64()
                )?;
                writeln!(out, "  certificates   {}", report.certs_dir.display())?;
                writeln!(
                    out,
                    "  sealed CA      {} (sealed at {})",
                    report.ca_dir.display(),
                    report.seal.sealed_at
                )?;
                writeln!(
                    out,
                    "  manifest       {}/manifest.json + manifest.sig",
                    report.ca_dir.display()
                )?;
                if let Some(e) = expiry {
                    writeln!(out, "  earliest expiry {e}")?;
                }
                writeln!(out, "  root SHA-256   {}", report.fingerprint)?;
                for step in &report.vault_steps {
                    writeln!(out, "  vault          {step}")?;
                }
                match &report.escrow {
                    Some((p, k)) => writeln!(
                        out,
                        "  escrow         key {} with passphrase in {}: move both offline now",
                        k.display(),
                        p.display()
                    )?,
                    None => writeln!(out, "  CA key         existed only in memory and is gone")?,
                }
                if let Some(r) = &report.registry {
                    r.print(out).map_err(|_| out.error())?;
                }
            }
            Ok(0)
        }
        Command::Vault(v) => run_vault(*v, out),
        Command::Registry(a) => {
            let report = registry::run(&registry::RegistryRequest {
                dir: a.dir,
                out: a.out,
                spec: registry::RegistrySpec {
                    hosts: a.hosts,
                    client_auth: a.client_auth,
                    clients: a.clients,
                    sans: a.san,
                    key: a.leaf.key,
                    days: a.leaf.days,
                },
                force: a.leaf.force,
                passphrase_file: a.passphrase.passphrase_file,
            })?;
            out.work_done(format!(
                "the registry's certificates and configuration were written to {}",
                report.out.display()
            ));
            report.print(out).map_err(|_| out.error())?;
            if let Some(note) = report.warning() {
                crate::support::stdout::to_stderr(&note);
            }
            Ok(0)
        }
        Command::Sign(a) => {
            let report = sign::run(&sign::SignRequest {
                dir: a.dir,
                csr: a.csr,
                options: crate::ca::signing::SignOptions {
                    profile: a.profile,
                    intermediate: a.intermediate,
                    pathlen: a.pathlen,
                    permits: a.permit,
                    sans: a.san,
                    days: a.days,
                },
                out: a.out,
                chain: a.chain,
                force: a.force,
                passphrase_file: a.passphrase.passphrase_file,
            })?;
            out.work_done(match &report.out {
                Some(path) => format!(
                    "serial {} was signed and written to {}",
                    report.serial,
                    path.display()
                ),
                None => format!(
                    "serial {} was signed and recorded in the ledger; it was only to be printed, so sign the CSR again with --out FILE",
                    report.serial
                ),
            });
            match &report.out {
                Some(path) => writeln!(
                    out,
                    "signed {}: {}  serial {}  expires {}{}",
                    report.subject,
                    path.display(),
                    report.serial,
                    report.not_after,
                    if report.sans.is_empty() {
                        String::new()
                    } else {
                        format!("  SANs {}", report.sans.join(", "))
                    }
                )?,
                None => write!(out, "{}", report.pem)?,
            }
            Ok(0)
        }
        Command::Seal(a) => {
            let used_file = a.passphrase.passphrase_file.clone();
            let r = seal::run(&a.dir, a.passphrase.passphrase_file.as_ref(), a.destroy_key)?;
            let d = r.dir.display();
            out.work_done(match &used_file {
                Some(f) => format!(
                    "{d} was sealed; the passphrase is still in {}: destroy that copy too",
                    f.display()
                ),
                None => format!("{d} was sealed"),
            });
            if r.resumed {
                writeln!(out, "completed the interrupted seal of {d}")?;
            }
            writeln!(
                out,
                "sealed {d} at {}: it will never issue or sign again",
                r.sealed_at
            )?;
            writeln!(
                out,
                "  manifest     {d}/manifest.json ({} certificates)",
                r.certificates
            )?;
            writeln!(out, "  signature    {d}/manifest.sig")?;
            writeln!(
                out,
                "  passphrase   {}",
                if r.passphrase_destroyed {
                    "stored copy overwritten and removed"
                } else {
                    "none was stored in the CA directory"
                }
            )?;
            if r.key_destroyed {
                writeln!(out, "  key          overwritten and removed")?;
            }
            writeln!(out, "  check with   cd {d} && {}", r.verify_command)?;
            if let Some(f) = used_file {
                crate::support::stdout::to_stderr(&format!(
                    "uca: note: the passphrase is still in {}; destroy that copy too",
                    f.display()
                ));
            }
            Ok(0)
        }
        Command::Inspect(a) => {
            out.print(&inspect::render_file(&a.file, a.json)?)?;
            Ok(0)
        }
        Command::Verify(a) => {
            writeln!(out, "{}", verify::run(&a)?)?;
            Ok(0)
        }
        Command::Trust(cmd) => {
            out.print(&crate::commands::trust::run_command(&cmd)?)?;
            Ok(0)
        }
        Command::Check(a) => {
            // "Could not check", not WARN, for a monitoring system.
            out.exit_on_failure(check::EXIT_UNCHECKED);
            let (status, report) = check::run(&a.paths, &a.within, a.json)?;
            out.print(&report)?;
            Ok(status)
        }
        Command::Completions(a) => {
            // Rendered in memory: clap_complete panics on a failed write.
            let mut script = Vec::new();
            docs::completions(a.shell, &mut script);
            out.print(&String::from_utf8_lossy(&script))?;
            Ok(0)
        }
    }
}

/// "1 certificate", "2 certificates".
fn certificates(n: u64) -> String {
    format!("{n} certificate{}", if n == 1 { "" } else { "s" })
}

/// The end-of-run summary: counts, where, earliest expiry, rate.
fn report_summary(
    stdout: &mut Stdout,
    s: &crate::ca::bulk::Summary,
    out: &std::path::Path,
    json: bool,
    quiet: bool,
) -> Result<()> {
    for dir in &s.left_in_place {
        crate::support::stdout::to_stderr(&format!(
            "uca: note: left {} in place: it is named like a leftover of uca but is not provably one; remove it yourself if it is not yours",
            dir.display()
        ));
    }
    let expiry = s.earliest_expiry.map(crate::support::timefmt::rfc3339);
    let secs = s.elapsed.as_secs_f64();
    if json {
        let doc = serde_json::json!({
            "issued": s.issued,
            "skipped": s.skipped,
            "left_in_place": s.left_in_place.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "out": out.display().to_string(),
            "earliest_expiry": expiry,
            "seconds": secs,
        });
        writeln!(stdout, "{doc}")?;
    } else if !quiet {
        writeln!(
            stdout,
            "issued {} certificates in {:.2}s ({:.0}/s) into {}{}{}",
            s.issued,
            secs,
            if secs > 0.0 {
                s.issued as f64 / secs
            } else {
                0.0
            },
            out.display(),
            if s.skipped > 0 {
                format!("; {} already issued, kept", s.skipped)
            } else {
                String::new()
            },
            expiry
                .map(|e| format!("; earliest expiry {e}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
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
                certificates(report.issued.len() as u64),
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
