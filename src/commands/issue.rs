//! `uca issue`: NAMEs from the command line or a whole plan file, both
//! validated completely before the first key is made, then issued by the
//! bulk engine.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::ca::archive::StreamTarget;
use crate::ca::bulk::{Existing, IssuedCert, Summary};
use crate::ca::issuance::{Issuance, Key};
use crate::ca::plan::{Group, NamePattern, Plan};
use crate::ca::store::CaStore;
use crate::commands::args::{LeafArgs, PassphraseArgs};
use crate::pki::formats::OutputFormat;
use crate::pki::keys::KeyType;
use crate::pki::names::San;
use crate::pki::profile::{ExtraUsage, Lifetime, Profile};
use crate::pki::san_rule::SanRule;
use crate::pki::subject::SubjectTemplate;
use crate::support::error::{Error, Result};
use crate::support::stdout::{self, Stdout};
use crate::support::timefmt;

// `uca issue`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Output directory: each NAME gets OUT/NAME/{cert,key,chain,ca}.pem
    #[arg(long, value_name = "OUT", required_unless_present = "archive")]
    pub out: Option<PathBuf>,
    /// Certificate names (host names or IP addresses); each is the CN and a SAN
    #[arg(
        value_name = "NAME",
        required_unless_present = "plan",
        conflicts_with = "plan"
    )]
    pub names: Vec<String>,
    /// Issue every certificate of a plan file instead of NAMEs (re-running completes an interrupted run)
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// With --plan: also issue again, with new keys, the plan's certificates that expire within PERIOD (e.g. 30d); the others are kept
    #[arg(
        long,
        value_name = "PERIOD",
        requires = "plan",
        conflicts_with = "names"
    )]
    pub renew_within: Option<String>,
    /// With --plan: write the whole plan's output as one tar archive (- for standard output) instead of directories, members named as under OUT (keys 0600 inside)
    #[arg(
        long,
        value_name = "FILE",
        requires = "plan",
        conflicts_with_all = ["out", "renew_within", "names"]
    )]
    pub archive: Option<PathBuf>,
    /// With --plan: write the Secrets of the plan's k8s-format groups as one multi-document manifest (- for standard output) instead of each NAME/secret.yaml
    #[arg(
        long,
        value_name = "FILE",
        requires = "plan",
        conflicts_with_all = ["names", "renew_within"]
    )]
    pub k8s_manifest: Option<PathBuf>,
    /// With --renew-within: certify each renewed certificate's existing key.pem again instead of a new key
    #[arg(long, requires = "renew_within")]
    pub reuse_key: bool,
    /// Print a JSON summary instead of one line per certificate
    #[arg(long)]
    pub json: bool,
    /// What the certificates may be used for
    #[arg(long, value_enum, default_value_t = Profile::Both)]
    pub profile: Profile,
    /// Extra SAN for every certificate (repeatable): DNS:x, IP:x, EMAIL:x or URI:x
    #[arg(long, value_name = "KIND:VALUE")]
    pub san: Vec<String>,
    /// SAN rule (repeatable; replaces the CA's default rules): base, none, or a template like '{name}.svc.internal'
    #[arg(long, value_name = "RULE")]
    pub san_rule: Vec<String>,
    /// Subject instead of CN=NAME, RFC 4514 syntax in the order written, e.g. 'O=Acme,OU=db,CN={name}' ({name} {base} {host} {hostbase}; a CN must be one of the SANs)
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "plan")]
    pub subject: Option<String>,
    /// Extended key usage beyond the profile's (repeatable): codeSigning, emailProtection or a dotted OID
    #[arg(long, value_name = "USAGE", conflicts_with = "plan")]
    pub eku: Vec<String>,
    /// Validity as a length instead of --days: 90m, 12h, 30d (the one minute of backdating counts inside it)
    #[arg(long, value_name = "LENGTH", conflicts_with_all = ["days", "not_after", "plan"])]
    pub valid_for: Option<String>,
    /// Validity until this RFC 3339 time instead of --days, e.g. 2027-01-31T00:00:00Z
    #[arg(long, value_name = "TIME", conflicts_with_all = ["days", "plan"])]
    pub not_after: Option<String>,
    #[command(flatten)]
    pub leaf: LeafArgs,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// What to issue: NAMEs with one set of options, or a plan file.
pub enum IssueWhat {
    Names {
        names: Vec<String>,
        profile: Profile,
        sans: Vec<String>,
        san_rules: Vec<String>,
        subject: Option<String>,
        eku: Vec<String>,
        key: KeyType,
        lifetime: Lifetime,
    },
    /// A plan file, and the period within which its recorded
    /// certificates are renewed (`--renew-within`).
    Plan(PathBuf, Option<(time::Duration, bool)>),
}

pub struct IssueRequest {
    pub dir: PathBuf,
    /// The output directory, or with `archive` the root of member names.
    pub out: PathBuf,
    pub archive: Option<StreamTarget>,
    pub k8s_manifest: Option<StreamTarget>,
    pub what: IssueWhat,
    pub force: bool,
    pub passphrase_file: Option<PathBuf>,
    pub progress: bool,
}

/// `uca issue`: issues, printing a line per certificate for NAMEs (or a
/// summary for a plan, or JSON), then what was issued where.
pub fn run(args: IssueArgs, out: &mut Stdout) -> Result<u8> {
    let what = match args.plan {
        Some(plan) => IssueWhat::Plan(
            plan,
            args.renew_within
                .as_deref()
                .map(|p| timefmt::parse_period("--renew-within", p))
                .transpose()?
                .map(|within| (within, args.reuse_key)),
        ),
        None => IssueWhat::Names {
            names: args.names,
            profile: args.profile,
            sans: args.san,
            san_rules: args.san_rule,
            subject: args.subject,
            eku: args.eku,
            key: args.leaf.key,
            lifetime: Lifetime::from_options(
                args.leaf.days,
                args.valid_for.as_deref(),
                args.not_after.as_deref(),
            )?,
        },
    };
    let per_line = matches!(what, IssueWhat::Names { .. }) && !args.json;
    let archive = args.archive.as_deref().map(StreamTarget::from_arg);
    let k8s_manifest = args.k8s_manifest.as_deref().map(StreamTarget::from_arg);
    if archive == Some(StreamTarget::Stdout) || k8s_manifest == Some(StreamTarget::Stdout) {
        out.report_on_stderr();
    }
    // Where the report says the certificates went.
    let into = match &archive {
        Some(a) => PathBuf::from(a.shown()),
        None => args.out.clone().unwrap_or_default(),
    };
    let req = IssueRequest {
        dir: args.dir,
        out: args.out.unwrap_or_default(),
        archive,
        k8s_manifest,
        what,
        force: args.leaf.force,
        passphrase_file: args.passphrase.passphrase_file,
        progress: !args.json,
    };
    // A line that cannot be printed does not stop the issuance; the
    // failure is reported once the work is done.
    let summary = execute(&req, &mut |c| {
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
        crate::support::stdout::certificates(summary.issued),
        into.display()
    ));
    report_summary(out, &summary, &into, args.json, per_line)?;
    Ok(0)
}

/// The end-of-run summary: counts, where, earliest expiry, rate.
fn report_summary(
    stdout: &mut Stdout,
    s: &Summary,
    out: &Path,
    json: bool,
    quiet: bool,
) -> Result<()> {
    for dir in &s.left_in_place {
        stdout::to_stderr(&format!(
            "uca: note: left {} in place: it is named like a leftover of uca but is not provably one; remove it yourself if it is not yours",
            dir.display()
        ));
    }
    let expiry = s.earliest_expiry.map(timefmt::rfc3339);
    let secs = s.elapsed.as_secs_f64();
    if json {
        let doc = serde_json::json!({
            "issued": s.issued,
            "renewed": s.renewed,
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
            "issued {} certificates in {:.2}s ({:.0}/s) into {}{}{}{}",
            s.issued,
            secs,
            if secs > 0.0 {
                s.issued as f64 / secs
            } else {
                0.0
            },
            out.display(),
            if s.renewed > 0 {
                format!(" ({} of them renewed)", s.renewed)
            } else {
                String::new()
            },
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

/// Builds a one-group plan from command-line NAMEs.
fn plan_from_names(store: &CaStore, what: &IssueWhat) -> Result<Plan> {
    let IssueWhat::Names {
        names,
        profile,
        sans,
        san_rules,
        subject,
        eku,
        key,
        lifetime,
    } = what
    else {
        unreachable!("called for names only")
    };
    if names.is_empty() {
        return Err(Error::msg(
            "no NAME given; usage: uca issue --dir DIR --out OUT NAME...",
        ));
    }
    let rules = if san_rules.is_empty() {
        store.san_rules.clone()
    } else {
        san_rules
            .iter()
            .map(|r| SanRule::parse(r))
            .collect::<Result<Vec<_>>>()?
    };
    let extra = sans
        .iter()
        .map(|s| San::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let validity = lifetime.within(store.not_after)?;
    let subject = subject.as_deref().map(SubjectTemplate::parse).transpose()?;
    let extra_usages = eku
        .iter()
        .map(|u| ExtraUsage::parse(u, *profile))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = std::collections::HashSet::new();
    for n in names {
        let own = San::for_name(n)?;
        if !seen.insert(own) {
            return Err(Error::invalid("name", n.as_str(), "it is given twice"));
        }
    }
    let group = Group {
        origin: crate::ca::plan::GroupOrigin::CommandLine,
        patterns: names.iter().map(|n| NamePattern::literal(n)).collect(),
        profile: *profile,
        key: *key,
        validity,
        rules,
        extra,
        formats: vec![OutputFormat::Pem],
        out: PathBuf::new(),
        pkcs12_password: None,
        k8s_namespace: "default".into(),
        subject,
        extra_usages,
    };
    Ok(Plan::single_group(store.constraints.clone(), group))
}

/// Validates everything, unlocks the CA, takes its lock and issues.
pub fn execute(req: &IssueRequest, on_issued: &mut dyn FnMut(&IssuedCert)) -> Result<Summary> {
    let store = CaStore::open(&req.dir)?;
    store.ensure_unsealed()?;
    if req.archive.is_none() {
        store.refuse_private_output(&req.out)?;
    }
    let (plan, existing) = match &req.what {
        IssueWhat::Plan(path, renew_within) => {
            let plan = Plan::load(path, Some((&store.constraints, store.not_after)))?;
            if let Some(ca) = &plan.ca {
                if ca.name != store.name {
                    return Err(Error::invalid(
                        "plan",
                        path.display().to_string(),
                        format!(
                            "its [ca] is '{}' but {} holds '{}'",
                            ca.name,
                            req.dir.display(),
                            store.name
                        ),
                    ));
                }
            }
            let existing = match renew_within {
                Some((within, reuse_key)) => Existing::Renew {
                    within: *within,
                    reuse_key: *reuse_key,
                },
                None => Existing::Resume,
            };
            (plan, existing)
        }
        names => (plan_from_names(&store, names)?, Existing::Refuse),
    };
    let mut issuance = match &req.archive {
        Some(archive) => Issuance::validate_archive(plan, &req.out, archive.clone(), req.force)?,
        None => Issuance::validate(plan, &req.out, existing, req.force)?,
    };
    if let Some(manifest) = &req.k8s_manifest {
        issuance = issuance.with_k8s_manifest(manifest.clone())?;
    }
    issuance.refuse_ca_targets(&store)?;
    let issuance = issuance.with_side_files(&[])?;
    let key = Key::Unlock(req.passphrase_file.as_ref());
    crate::commands::progress::issue(&issuance, &store, key, req.progress, on_issued)
}
