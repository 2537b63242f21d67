//! `uca vault commands --plan PLAN [--group NAME]`: the commands that issue
//! a plan's certificates again from the Vault/OpenBao intermediate, for the
//! leaves of a sealed root. Vault makes each key; `jq` splits its answer into
//! the files uca lays out (cert.pem, key.pem 0600, chain.pem), one line a
//! certificate, every value quoted by [`sh`].

use std::fmt::Write;
use std::path::Path;

use crate::ca::plan::{Group, GroupOrigin, Plan, PlanItem};
use crate::ca::store::CaStore;
use crate::commands::vault::offline::{sh, OfflineRequest};
use crate::pki::names::San;
use crate::support::error::{Error, Result};
use crate::support::timefmt;

/// Which certificates of which plan, and where they go.
pub struct ReissueRequest<'a> {
    /// The (sealed) root's directory: the plan's names are checked against
    /// its constraints, as `uca issue --plan` would.
    pub ca_dir: &'a Path,
    pub plan_path: &'a Path,
    pub group: Option<&'a str>,
    pub out: &'a Path,
}

/// Loads the plan and renders its (or one group's) re-issue commands.
pub fn render(r: &OfflineRequest, req: &ReissueRequest<'_>) -> Result<String> {
    let store = CaStore::open(req.ca_dir)?;
    let plan = Plan::load(req.plan_path, Some((&store.constraints, store.not_after)))?;
    if let Some(name) = req.group {
        if !plan.groups.iter().any(|g| group_name(g) == name) {
            let known: Vec<&str> = plan.groups.iter().map(group_name).collect();
            return Err(Error::invalid(
                "--group",
                name,
                format!(
                    "{} has the groups {}",
                    req.plan_path.display(),
                    known.join(", ")
                ),
            ));
        }
    }
    if let Some(bad) = req.out.to_str().filter(|o| o.chars().any(char::is_control)) {
        return Err(Error::invalid(
            "--out",
            crate::pki::names::printable(bad),
            "it contains a control character",
        ));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Re-issue {} from Vault: role {} of {} signs, Vault makes each key, jq splits",
        req.group.map_or_else(
            || "every plan group".to_string(),
            |g| format!("plan group {g}")
        ),
        r.pki.role,
        r.pki.mount
    );
    let _ = writeln!(
        s,
        "# its answer into cert.pem, key.pem (0600) and chain.pem. The role decides the subject;"
    );
    let _ = writeln!(
        s,
        "# IP SANs need a role that allows them (uca vault bootstrap --allow-ip-sans)."
    );
    let now = timefmt::now();
    for item in plan.items(req.out) {
        let item = item?;
        if req.group.is_some_and(|g| g != group_name(item.group)) {
            continue;
        }
        let hours = (item.group.validity.not_after - now).whole_hours().max(1);
        let _ = writeln!(s, "{}", issue_line(r, &item, hours)?);
    }
    Ok(s)
}

/// One certificate: the directory, Vault's answer (it holds the key, so
/// everything runs under umask 077), the three files, the answer removed.
fn issue_line(r: &OfflineRequest, item: &PlanItem<'_>, hours: i64) -> Result<String> {
    let dir = item.target.display().to_string();
    let file = |name: &str| sh(&format!("{dir}/{name}"));
    // Vault takes DNS names, IP addresses and URIs in fields of their own,
    // and no email address: such a certificate is refused, never issued
    // without one of its names.
    let (mut dns, mut ips, mut uris) = (Vec::new(), Vec::new(), Vec::new());
    for san in &item.sans {
        match san {
            San::Dns(d) => dns.push(d.as_str()),
            San::Ip(ip) => ips.push(ip.to_string()),
            San::Uri(u) => uris.push(u.as_str()),
            San::Email(e) => {
                return Err(Error::msg(format!(
                    "{}its SAN EMAIL:{e} cannot be asked of Vault's issue endpoint; issue this group with uca before the seal, or drop the email SAN",
                    item.group.error_prefix(&item.name)
                )))
            }
        }
    }
    let common_name = dns.first().map_or(item.name.as_str(), |d| d);
    let mut fields = format!("common_name={}", sh(common_name));
    if !dns.is_empty() {
        fields.push_str(&format!(" alt_names={}", sh(&dns.join(","))));
    }
    if !ips.is_empty() {
        fields.push_str(&format!(" ip_sans={}", sh(&ips.join(","))));
    }
    if !uris.is_empty() {
        fields.push_str(&format!(" uri_sans={}", sh(&uris.join(","))));
    }
    let answer = file("vault.json");
    Ok(format!(
        "(umask 077 && mkdir -p {d} && {write} -format=json {path} {fields} ttl={hours}h > {answer} && jq -er .data.private_key {answer} > {key} && jq -er .data.certificate {answer} > {cert} && jq -er '.data.ca_chain[]' {answer} > {chain} && chmod 644 {cert} {chain} && chmod 755 {d} && rm {answer})",
        d = sh(&dir),
        write = r.cli("write"),
        path = sh(&format!("{}/issue/{}", r.pki.mount, r.pki.role)),
        key = file("key.pem"),
        cert = file("cert.pem"),
        chain = file("chain.pem"),
    ))
}

/// A plan group's name (every group of a plan file has one).
fn group_name(g: &Group) -> &str {
    match &g.origin {
        GroupOrigin::PlanFile(name) => name,
        _ => "",
    }
}
