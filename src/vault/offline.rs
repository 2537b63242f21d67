//! `uca vault commands`: the exact commands for an air-gapped bootstrap,
//! where the CA machine never talks to Vault. The CSR and the signed chain
//! cross the air gap as files.

use std::fmt::Write;

pub struct OfflineRequest {
    pub cli: String,
    pub dir: String,
    pub mount: String,
    pub max_ttl: String,
    pub common_name: String,
    pub key_type: (&'static str, u32),
    pub role: String,
    pub allowed_domains: Vec<String>,
    pub role_max_ttl: String,
    pub issuing_url: Option<String>,
    pub crl_url: Option<String>,
}

fn quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn render(r: &OfflineRequest) -> String {
    let v = &r.cli;
    let m = &r.mount;
    let mut s = String::new();
    let _ = writeln!(s, "# 1. On a machine that reaches Vault (VAULT_ADDR/BAO_ADDR, token and TLS set in the environment; VAULT_NAMESPACE/BAO_NAMESPACE for a namespace):");
    let _ = writeln!(
        s,
        "{v} secrets enable -path={m} -max-lease-ttl={} pki",
        r.max_ttl
    );
    let _ = writeln!(
        s,
        "{v} write -field=csr {m}/intermediate/generate/internal common_name={} key_type={} key_bits={} > {m}.csr",
        quote(&r.common_name),
        r.key_type.0,
        r.key_type.1
    );
    let _ = writeln!(
        s,
        "\n# 2. Carry {m}.csr to the CA machine and sign it there:"
    );
    let _ = writeln!(
        s,
        "uca sign --dir {} --intermediate --pathlen 0 --chain --out {m}-chain.pem {m}.csr",
        quote(&r.dir)
    );
    let _ = writeln!(
        s,
        "\n# 3. Carry {m}-chain.pem (intermediate + root) back and import it:"
    );
    let _ = writeln!(s, "{v} write -format=json {m}/intermediate/set-signed certificate=@{m}-chain.pem   # check that \"mapping\" names a key");
    let _ = writeln!(
        s,
        "{v} write {m}/issuer/ISSUER_ID issuer_name=uca-SERIAL16 leaf_not_after_behavior=err   # ISSUER_ID: the key of \"mapping\"; SERIAL16: the first 16 hex digits of the serial uca sign printed"
    );
    let _ = writeln!(s, "{v} write {m}/config/issuers default=ISSUER_ID");
    let _ = writeln!(
        s,
        "{v} read -field=default {m}/config/issuers   # must be ISSUER_ID"
    );
    // The address the CLI itself uses: bao reads BAO_ADDR first.
    let addr = if v == "bao" {
        "${BAO_ADDR:-$VAULT_ADDR}"
    } else {
        "$VAULT_ADDR"
    };
    let issuing = r
        .issuing_url
        .clone()
        .unwrap_or_else(|| format!("\"{addr}/v1/{m}/ca\""));
    let crl = r
        .crl_url
        .clone()
        .unwrap_or_else(|| format!("\"{addr}/v1/{m}/crl\""));
    let _ = writeln!(
        s,
        "{v} write {m}/config/urls issuing_certificates={issuing} crl_distribution_points={crl}"
    );
    let _ = writeln!(
        s,
        "{v} write {m}/roles/{} allowed_domains={} allow_subdomains=true allow_bare_domains=false allow_glob_domains=false allow_wildcard_certificates=false allow_ip_sans=false allow_localhost=false enforce_hostnames=true server_flag=true client_flag=true key_type=ec key_bits=256 max_ttl={} ttl={}",
        r.role,
        quote(&r.allowed_domains.join(",")),
        r.role_max_ttl,
        r.role_max_ttl
    );
    let probe = format!(
        "uca-probe.{}",
        r.allowed_domains
            .first()
            .map(String::as_str)
            .unwrap_or("example.internal")
    );
    let _ = writeln!(
        s,
        "\n# 4. Probe: issue through the role and verify against the root."
    );
    let _ = writeln!(
        s,
        "{v} write -format=json {m}/issue/{} common_name={probe} ttl=5m > probe.json",
        r.role
    );
    let _ = writeln!(
        s,
        "# extract .data.certificate to probe.pem and .data.ca_chain to probe-chain.pem, then:"
    );
    let _ = writeln!(
        s,
        "uca verify probe.pem --ca {}/ca.pem --name {probe}",
        quote(&r.dir)
    );
    s
}
