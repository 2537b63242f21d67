//! `uca init`: create a CA directory with a self-signed root whose key is
//! encrypted at rest.

use std::path::PathBuf;

use clap::Args;

use crate::ca::root::{check_new_ca_dir, make_root, store_root};
use crate::commands::args::PassphraseArgs;
use crate::pki::constraints::Permit;
use crate::pki::keys::KeyType;
use crate::pki::names;
use crate::pki::passphrase::NewPassphrase;
use crate::pki::profile::Validity;
use crate::pki::san_rule::SanRule;
use crate::support::error::Result;
use crate::support::stdout::Stdout;

// `uca init`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// CA directory to create (must be new or empty)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The CA's common name, e.g. "Acme Internal Root"
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Key type of the CA
    #[arg(long, value_enum, default_value_t = KeyType::EcP256)]
    pub key: KeyType,
    /// Validity of the CA certificate in days
    #[arg(long, value_name = "N", default_value_t = 3650)]
    pub days: u32,
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
    let report = execute(&InitRequest {
        dir: args.dir,
        name: args.name,
        key: args.key,
        days: args.days,
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
    let san_rules = if req.san_rules.is_empty() {
        vec![SanRule::Base]
    } else {
        req.san_rules
            .iter()
            .map(|r| SanRule::parse(r))
            .collect::<Result<Vec<_>>>()?
    };
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
