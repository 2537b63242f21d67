//! `uca vault commands`: the exact commands for an air-gapped bootstrap,
//! where the CA machine never talks to Vault. The CSR and the signed chain
//! cross the air gap as files.
//!
//! Every value is validated as `uca vault bootstrap` validates it, and every
//! value printed for the shell is single-quoted by [`sh`], so no value can
//! become shell syntax.

use std::fmt::Write;

use crate::ca::sections::VaultPki;
use crate::commands::vault::bootstrap::{check_pki_settings, vault_key_type};
use crate::support::error::{Error, Result};

pub struct OfflineRequest {
    pub cli: String,
    pub dir: String,
    /// The mount's namespace: a `-namespace` on every Vault command, and
    /// part of the URLs' path, since whoever fetches them sends no header.
    pub namespace: Option<String>,
    pub pki: VaultPki,
}

impl OfflineRequest {
    /// The same checks as `uca vault bootstrap`, and a `--dir` that fits on
    /// one line.
    pub fn validate(&self) -> Result<()> {
        if self.cli != "bao" && self.cli != "vault" {
            return Err(Error::invalid(
                "--cli",
                self.cli.as_str(),
                "expected bao or vault",
            ));
        }
        if self.dir.chars().any(char::is_control) {
            return Err(Error::invalid(
                "--dir",
                crate::pki::names::printable(&self.dir),
                "it contains a control character",
            ));
        }
        if let Some(ns) = &self.namespace {
            crate::commands::vault::client::check_namespace(ns)?;
        }
        check_pki_settings(&self.pki)
    }

    /// The CLI and, in a namespace, its `-namespace` flag: what every Vault
    /// command starts with, before its subcommand's own words.
    pub fn cli(&self, subcommand: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {subcommand} -namespace={}", self.cli, sh(ns)),
            None => format!("{} {subcommand}", self.cli),
        }
    }
}

/// One word for a POSIX shell: single-quoted, a `'` written as `'\''`. A
/// word made only of characters no shell treats specially is left bare, so
/// the common case reads as it would be typed.
pub fn sh(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Renders the commands of a request that [`OfflineRequest::validate`]
/// accepted. Fixed words are written as they are; every value, and every
/// word built from one, goes through [`sh`].
pub fn render(r: &OfflineRequest) -> String {
    let mut s = String::new();
    render_generate(&mut s, r);
    render_sign(&mut s, r);
    render_import(&mut s, r);
    render_configure(&mut s, r);
    render_probe(&mut s, r);
    s
}

/// 1. The mount, and Vault's intermediate key and CSR.
fn render_generate(s: &mut String, r: &OfflineRequest) {
    let m = r.pki.mount.as_str();
    let q = |s: String| sh(&s);
    let within = match &r.namespace {
        Some(ns) => format!("; every command names the namespace {ns}"),
        None => "; for a namespace, print these with --namespace NS, not VAULT_NAMESPACE/BAO_NAMESPACE, so the URLs name it too".into(),
    };
    let _ = writeln!(s, "# 1. On a machine that reaches Vault (VAULT_ADDR/BAO_ADDR, token and TLS set in the environment{within}):");
    let _ = writeln!(
        s,
        "{} -path={} -max-lease-ttl={} pki",
        r.cli("secrets enable"),
        sh(m),
        sh(&r.pki.max_ttl)
    );
    let _ = writeln!(
        s,
        "{} -field=csr {} common_name={} key_type={} key_bits={} > {}",
        r.cli("write"),
        q(format!("{m}/intermediate/generate/internal")),
        sh(&r.pki.common_name),
        sh(vault_key_type(r.pki.key).0),
        sh(&vault_key_type(r.pki.key).1.to_string()),
        q(format!("{m}.csr"))
    );
}

/// 2. Signing the CSR on the CA machine.
fn render_sign(s: &mut String, r: &OfflineRequest) {
    let m = r.pki.mount.as_str();
    let q = |s: String| sh(&s);
    let _ = writeln!(
        s,
        "\n# 2. Carry {m}.csr to the CA machine and sign it there:"
    );
    let _ = writeln!(
        s,
        "uca sign --dir {} --intermediate --pathlen 0 --chain --out {} {}",
        sh(&r.dir),
        q(format!("{m}-chain.pem")),
        q(format!("{m}.csr"))
    );
}

/// 3. Importing the chain and making its issuer the default.
fn render_import(s: &mut String, r: &OfflineRequest) {
    let write = r.cli("write");
    let read = r.cli("read");
    let m = r.pki.mount.as_str();
    let q = |s: String| sh(&s);
    let _ = writeln!(
        s,
        "\n# 3. Carry {m}-chain.pem (intermediate + root) back and import it:"
    );
    let _ = writeln!(
        s,
        "{write} -format=json {} certificate=@{}   # check that \"mapping\" names a key",
        q(format!("{m}/intermediate/set-signed")),
        q(format!("{m}-chain.pem"))
    );
    let _ = writeln!(
        s,
        "{write} {} issuer_name=uca-SERIAL16 leaf_not_after_behavior=err   # ISSUER_ID: the key of \"mapping\"; SERIAL16: the first 16 hex digits of the serial uca sign printed",
        q(format!("{m}/issuer/ISSUER_ID"))
    );
    let _ = writeln!(
        s,
        "{write} {} default=ISSUER_ID",
        q(format!("{m}/config/issuers"))
    );
    let _ = writeln!(
        s,
        "{read} -field=default {}   # must be ISSUER_ID",
        q(format!("{m}/config/issuers"))
    );
}

/// The issuing and CRL URLs, and the role.
fn render_configure(s: &mut String, r: &OfflineRequest) {
    let v = r.cli.as_str();
    let write = r.cli("write");
    let m = r.pki.mount.as_str();
    let ns = r
        .namespace
        .as_deref()
        .map(|n| format!("{n}/"))
        .unwrap_or_default();
    let q = |s: String| sh(&s);
    // --cluster-addr, else the address the CLI itself uses (bao reads
    // BAO_ADDR first): the one part left to the shell, in double quotes,
    // and one node of a cluster, which the comment says.
    let cluster = r
        .pki
        .cluster_addr
        .as_deref()
        .map(|c| sh(c.trim_end_matches('/')));
    let addr = match &cluster {
        Some(c) => c.as_str(),
        None if v == "bao" => "\"${BAO_ADDR:-$VAULT_ADDR}\"",
        None => "\"$VAULT_ADDR\"",
    };
    if cluster.is_none() && (r.pki.issuing_url.is_none() || r.pki.crl_url.is_none()) {
        let _ = writeln!(
            s,
            "# The AIA/CRL URLs name the node these commands run against; in a cluster, pass --cluster-addr with its load-balanced address so they outlive that node."
        );
    }
    let url = |given: &Option<String>, tail: &str| match given {
        Some(u) => sh(u),
        None => format!("{addr}{}", q(format!("/v1/{ns}{m}/{tail}"))),
    };
    let _ = writeln!(
        s,
        "{write} {} issuing_certificates={} crl_distribution_points={}",
        q(format!("{m}/config/urls")),
        url(&r.pki.issuing_url, "ca"),
        url(&r.pki.crl_url, "crl")
    );
    let _ = writeln!(
        s,
        "{write} {} allowed_domains={} allow_subdomains=true allow_bare_domains=false allow_glob_domains=false allow_wildcard_certificates=false allow_ip_sans=false allow_localhost=false enforce_hostnames=true server_flag=true client_flag=true key_type=ec key_bits=256 max_ttl={} ttl={}",
        q(format!("{m}/roles/{}", r.pki.role)),
        sh(&r.pki.allowed_domains.join(",")),
        sh(&r.pki.role_max_ttl),
        sh(&r.pki.role_max_ttl)
    );
}

/// 4. A probe certificate through the role, verified against the root.
fn render_probe(s: &mut String, r: &OfflineRequest) {
    let (write, read) = (r.cli("write"), r.cli("read"));
    let m = r.pki.mount.as_str();
    let q = |s: String| sh(&s);
    let probe = format!(
        "uca-probe.{}",
        r.pki
            .allowed_domains
            .first()
            .map(String::as_str)
            .unwrap_or("example.internal")
    );
    // probe.pem holds the leaf and then the chain of the mount's
    // default issuer, which the role issues from: `uca verify` then builds
    // the path to the root from the file alone, and a leaf from any other
    // issuer does not verify.
    let _ = writeln!(
        s,
        "\n# 4. Probe: issue through the role and verify against the root."
    );
    // `-field` prints no newline into a file: the `echo` keeps the chain's
    // first line apart from the leaf's last.
    let _ = writeln!(
        s,
        "{{ {write} -field=certificate {} common_name={} ttl=5m; echo; {read} -field=certificate {}; }} > probe.pem",
        q(format!("{m}/issue/{}", r.pki.role)),
        sh(&probe),
        q(format!("{m}/cert/ca_chain"))
    );
    let _ = writeln!(
        s,
        "uca verify probe.pem --ca {} --name {}",
        q(format!("{}/ca.pem", r.dir)),
        sh(&probe)
    );
}

#[cfg(test)]
mod tests {
    use super::sh;

    #[test]
    fn words_are_single_quoted() {
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("pki_int/roles/web"), "pki_int/roles/web");
        assert_eq!(sh(""), "''");
        assert_eq!(sh("~x"), "'~x'");
        assert_eq!(sh("it's"), "'it'\\''s'");
        assert_eq!(sh("$(id);`x`"), "'$(id);`x`'");
    }
}
