//! `uca init`: create a CA directory with a self-signed root whose key is
//! encrypted at rest; or (`--csr-out`, then `--import-cert`) a CA whose
//! certificate another root signs.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::ca::root::{check_new_ca_dir, make_root, store_root};
use crate::ca::subordinate;
use crate::commands::args::PassphraseArgs;
use crate::pki::constraints::Permit;
use crate::pki::keys::KeyType;
use crate::pki::names;
use crate::pki::passphrase::NewPassphrase;
use crate::pki::profile::Validity;
use crate::pki::san_rule::SanRule;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::stdout::Stdout;

// `uca init`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// CA directory to create (must be new or empty)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The CA's common name, e.g. "Acme Internal Root"
    #[arg(long, value_name = "NAME", required_unless_present = "import_cert")]
    pub name: Option<String>,
    /// Key type of the CA
    #[arg(long, value_enum, default_value_t = KeyType::EcP256)]
    pub key: KeyType,
    /// Validity of the CA certificate in days [default: 3650; with --intermediate-of: until the root expires]
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// How many intermediate CAs may hang below the root (1 lets Vault/OpenBao be one)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub pathlen: u8,
    /// Permitted name subtree (repeatable): a DNS suffix such as `internal` or an IP range such as 10.0.0.0/8
    #[arg(long, value_name = "SUFFIX_OR_CIDR")]
    pub permit: Vec<String>,
    /// Default SAN rule for `uca issue` (repeatable): base, none, or a template like '{base}.svc.internal'
    #[arg(long, value_name = "RULE")]
    pub san_rule: Vec<String>,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Where the root's CRL will be published: put into every intermediate it signs and named by its CRLs
    #[arg(long, value_name = "URL")]
    pub crl_url: Option<String>,
    /// Generate a random passphrase and store it in DIR/private/passphrase (0400) until `uca seal`
    #[arg(long, conflicts_with = "passphrase_file")]
    pub generate_passphrase: bool,
    /// Make a CA below another root: write a CSR for the new key to FILE (the key stays encrypted in DIR) instead of a self-signed root
    #[arg(long, value_name = "FILE", conflicts_with_all = ["days", "permit"])]
    pub csr_out: Option<PathBuf>,
    /// Make an issuing intermediate (path length 0) signed now by the uca root in ROOT_DIR, its name constraints the root's (narrowed by --permit)
    #[arg(long, value_name = "ROOT_DIR", conflicts_with_all = ["csr_out", "pathlen"])]
    pub intermediate_of: Option<PathBuf>,
    /// With --intermediate-of: read the root's passphrase from FILE (else the root's stored one, UCA_PASSPHRASE or a prompt)
    #[arg(long, value_name = "FILE", requires = "intermediate_of")]
    pub root_passphrase_file: Option<PathBuf>,
    /// Complete the CA that --csr-out started with FILE: its certificate, then the chain up to the root
    #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "key", "days", "pathlen", "permit", "san_rule", "passphrase_file", "generate_passphrase", "csr_out", "crl_url", "intermediate_of"])]
    pub import_cert: Option<PathBuf>,
}

pub struct InitRequest {
    pub dir: PathBuf,
    pub name: String,
    pub key: KeyType,
    pub days: u32,
    pub pathlen: u8,
    pub permits: Vec<String>,
    pub san_rules: Vec<String>,
    pub passphrase_file: Option<PathBuf>,
    pub generate_passphrase: bool,
    pub crl_url: Option<String>,
}

/// What `init` created, for the summary.
pub struct InitReport {
    pub dir: PathBuf,
    pub fingerprint: String,
    pub not_after: String,
    pub passphrase_stored: bool,
}

/// `uca init`: creates the CA and says where each part of it is.
pub fn run(args: InitArgs, out: &mut Stdout) -> Result<u8> {
    if let Some(file) = &args.import_cert {
        return run_import(&args.dir, file, out);
    }
    let name = args.name.clone().unwrap_or_default();
    if args.csr_out.is_some() || args.intermediate_of.is_some() {
        return run_request(&args, name, out);
    }
    let report = execute(&InitRequest {
        dir: args.dir,
        name,
        key: args.key,
        days: args.days.unwrap_or(3650),
        pathlen: args.pathlen,
        permits: args.permit,
        san_rules: args.san_rule,
        passphrase_file: args.passphrase.passphrase_file,
        generate_passphrase: args.generate_passphrase,
        crl_url: args.crl_url,
    })?;
    let d = report.dir.display();
    out.work_done(format!("the CA was created in {d}"));
    report.render(out)?;
    Ok(0)
}

/// `uca init --csr-out`: the key and a CSR; the CA waits for its
/// certificate. `uca init --intermediate-of`: the same key and CSR, signed
/// at once by the uca root given.
fn run_request(args: &InitArgs, name: String, out: &mut Stdout) -> Result<u8> {
    names::validate_ca_name(&name)?;
    let san_rules = parse_san_rules(&args.san_rule)?;
    if let Some(url) = &args.crl_url {
        crate::pki::crl::check_url(url)?;
    }
    if let Some(csr_out) = &args.csr_out {
        fsutil::check_file_creatable("--csr-out", csr_out)?;
        if std::fs::symlink_metadata(csr_out).is_ok() {
            return Err(Error::Exists(csr_out.to_path_buf()));
        }
    }
    let root = args
        .intermediate_of
        .as_ref()
        .map(|dir| crate::ca::store::CaStore::open(dir))
        .transpose()?;
    if let Some(root) = &root {
        root.ensure_unsealed()?;
        check_intermediate_options(args, root)?;
    }
    check_new_ca_dir(&args.dir)?;
    let new_passphrase = NewPassphrase::obtain(
        args.passphrase.passphrase_file.as_ref(),
        args.generate_passphrase,
    )?;
    let mut request = subordinate::make_request(&name, args.key, args.pathlen, san_rules)?;
    request.settings.crl_url = args.crl_url.clone();
    let encrypted = request.key.encrypt(new_passphrase.passphrase())?;
    let stored = match &new_passphrase {
        NewPassphrase::Generated(p) => Some(p),
        NewPassphrase::Given(_) => None,
    };
    let d = args.dir.display();
    if let Some(root) = &root {
        let imported = subordinate::make_under_root(
            &args.dir,
            request,
            &encrypted,
            stored,
            &subordinate::UnderRoot {
                root,
                root_passphrase_file: args.root_passphrase_file.as_ref(),
                permits: args.permit.clone(),
                days: args.days,
            },
        )?;
        out.work_done(format!("the intermediate CA was created in {d}"));
        writeln!(
            out,
            "created intermediate CA '{}' in {d}, signed by the root '{}' (path length 0)",
            imported.name, imported.root_name
        )?;
        writeln!(out, "  certificate  {d}/ca.pem (this CA, then the root)")?;
        writeln!(
            out,
            "  key          {d}/private/ca-key.pem (encrypted PKCS#8)"
        )?;
        writeln!(out, "  expires      {}", imported.not_after)?;
        writeln!(out, "  SHA-256      {}", imported.fingerprint)?;
        writeln!(
            out,
            "clients trust the root; its only act may be this one: uca seal --dir {}",
            root.dir().display()
        )?;
        return Ok(0);
    }
    let csr_out = args
        .csr_out
        .as_ref()
        .expect("--csr-out or --intermediate-of");
    subordinate::store_request(&args.dir, &request, &encrypted, stored)?;
    fsutil::write_atomic(
        csr_out,
        request.csr_pem.as_bytes(),
        Mode::Public,
        false,
        true,
    )?;
    out.work_done(format!(
        "the CA in {d} was created and waits for its certificate"
    ));
    writeln!(
        out,
        "created CA key in {d}/private/ca-key.pem (encrypted PKCS#8)"
    )?;
    writeln!(
        out,
        "wrote {} (CSR for '{name}'; have it signed as a CA by the parent CA)",
        csr_out.display()
    )?;
    writeln!(out, "then: uca init --dir {d} --import-cert CHAIN.pem   (the certificate, then its chain up to the root)")?;
    Ok(0)
}

/// `--days` and `--permit` checked against the root before any key is made
/// or the root's passphrase is asked for.
fn check_intermediate_options(args: &InitArgs, root: &crate::ca::store::CaStore) -> Result<()> {
    if root.pathlen == Some(0) {
        return Err(Error::msg(format!(
            "the root in {} has path length 0, so it cannot sign an intermediate CA",
            root.dir().display()
        )));
    }
    crate::ca::signing::intermediate_constraints(&root.constraints, &args.permit)?;
    if let Some(days) = args.days {
        crate::pki::profile::Lifetime::days(days)?.within(root.not_after)?;
    }
    Ok(())
}

/// `uca init --import-cert`: the pending CA completed.
fn run_import(dir: &Path, file: &Path, out: &mut Stdout) -> Result<u8> {
    let imported = subordinate::import(dir, file)?;
    let d = dir.display();
    out.work_done(format!("the CA in {d} got its certificate"));
    writeln!(
        out,
        "completed CA '{}' in {d} below the root '{}'",
        imported.name, imported.root_name
    )?;
    writeln!(
        out,
        "  certificate  {d}/ca.pem (the CA's certificate and its chain: {} certificates)",
        imported.chain_len
    )?;
    writeln!(out, "  expires      {}", imported.not_after)?;
    writeln!(out, "  SHA-256      {}", imported.fingerprint)?;
    writeln!(
        out,
        "clients trust the root '{}'; each leaf's chain.pem carries this CA",
        imported.root_name
    )?;
    Ok(0)
}

fn parse_san_rules(rules: &[String]) -> Result<Vec<SanRule>> {
    if rules.is_empty() {
        return Ok(vec![SanRule::Base]);
    }
    rules.iter().map(|r| SanRule::parse(r)).collect()
}

impl InitReport {
    fn render(&self, out: &mut Stdout) -> Result<()> {
        let d = self.dir.display();
        writeln!(out, "created CA in {d}")?;
        writeln!(out, "  certificate  {d}/ca.pem (give this to every client)")?;
        writeln!(
            out,
            "  key          {d}/private/ca-key.pem (encrypted PKCS#8)"
        )?;
        if self.passphrase_stored {
            writeln!(
                out,
                "  passphrase   {d}/private/passphrase (destroyed by: uca seal --dir {d})"
            )?;
        }
        writeln!(out, "  expires      {}", self.not_after)?;
        writeln!(out, "  SHA-256      {}", self.fingerprint)?;
        Ok(())
    }
}

/// Validates every argument, then makes and stores the root.
pub fn execute(req: &InitRequest) -> Result<InitReport> {
    // Everything is validated before the passphrase is asked for or a key made.
    names::validate_ca_name(&req.name)?;
    let permits = req
        .permits
        .iter()
        .map(|p| Permit::parse(p))
        .collect::<Result<Vec<_>>>()?;
    let san_rules = parse_san_rules(&req.san_rules)?;
    let validity = Validity::days_from_now(req.days)?;
    if let Some(url) = &req.crl_url {
        crate::pki::crl::check_url(url)?;
    }
    check_new_ca_dir(&req.dir)?;
    let new_passphrase =
        NewPassphrase::obtain(req.passphrase_file.as_ref(), req.generate_passphrase)?;

    let mut root = make_root(
        &req.name,
        req.key,
        validity,
        req.pathlen,
        permits,
        san_rules,
    )?;
    root.settings.crl_url = req.crl_url.clone();
    let encrypted = root.key.encrypt(new_passphrase.passphrase())?;
    let stored = match &new_passphrase {
        NewPassphrase::Generated(p) => Some(p),
        NewPassphrase::Given(_) => None,
    };
    store_root(&req.dir, &root, Some(&encrypted), stored)?;
    Ok(InitReport {
        dir: req.dir.clone(),
        fingerprint: root.settings.fingerprint.clone(),
        not_after: root.settings.not_after.clone(),
        passphrase_stored: stored.is_some(),
    })
}
