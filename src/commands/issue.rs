//! `uca issue`: NAMEs from the command line or a whole plan file, both
//! validated completely before the first key is made, then issued by the
//! bulk engine.

use std::path::PathBuf;

use crate::ca::bulk::{self, Existing, IssuedCert, RunOptions, Summary};
use crate::ca::plan::{Group, NamePattern, Plan};
use crate::ca::store::CaStore;
use crate::pki::formats::OutputFormat;
use crate::pki::keys::KeyType;
use crate::pki::names::San;
use crate::pki::profile::{Profile, Validity};
use crate::pki::san_rule::SanRule;
use crate::support::error::{Error, Result};

/// What to issue: NAMEs with one set of options, or a plan file.
pub enum IssueWhat {
    Names {
        names: Vec<String>,
        profile: Profile,
        sans: Vec<String>,
        san_rules: Vec<String>,
        key: KeyType,
        days: u32,
    },
    Plan(PathBuf),
}

pub struct IssueRequest {
    pub dir: PathBuf,
    pub out: PathBuf,
    pub what: IssueWhat,
    pub force: bool,
    pub passphrase_file: Option<PathBuf>,
    pub progress: bool,
}

/// Builds a one-group plan from command-line NAMEs.
fn plan_from_names(store: &CaStore, what: &IssueWhat) -> Result<Plan> {
    let IssueWhat::Names {
        names,
        profile,
        sans,
        san_rules,
        key,
        days,
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
    let validity = Validity::days_from_now(*days)?.within(store.not_after, *days)?;
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
        days: *days,
        validity,
        rules,
        extra,
        formats: vec![OutputFormat::Pem],
        out: PathBuf::new(),
        pkcs12_password: None,
        k8s_namespace: "default".into(),
    };
    Ok(Plan::single_group(store.constraints.clone(), group))
}

/// Validates everything, unlocks the CA, takes its lock and issues.
pub fn run(req: &IssueRequest, on_issued: &mut dyn FnMut(&IssuedCert)) -> Result<Summary> {
    let store = CaStore::open(&req.dir)?;
    store.ensure_unsealed()?;
    store.refuse_private_output(&req.out)?;
    let out = req.out.clone();
    let (plan, existing) = match &req.what {
        IssueWhat::Plan(path) => {
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
            (plan, Existing::Resume)
        }
        names => (plan_from_names(&store, names)?, Existing::Refuse),
    };
    // Every name, SAN, constraint and output path, before any key is made.
    let pre_existing = plan.validate_all(&out)?;
    store.refuse_ca_targets(&plan, &out)?;
    // Refused here before the passphrase is asked for; the bulk engine
    // decides again under the CA's lock.
    if existing == Existing::Refuse && !req.force {
        if let Some(first) = pre_existing.first() {
            return Err(Error::Exists(first.clone()));
        }
    }
    let signer = store.unlock(req.passphrase_file.as_ref())?;
    let lock = store.ledger().lock()?;
    let opts = RunOptions {
        existing,
        force: req.force,
        progress: req.progress,
    };
    bulk::execute(&store, &signer, &plan, &out, &lock, &opts, on_issued)
}
