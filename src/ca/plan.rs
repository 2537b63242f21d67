//! Plan files: a TOML description of a CA and every certificate a platform
//! needs. A plan is validated as a whole (every name, SAN, range, constraint
//! and output path) before the first key is made, and its certificates are
//! then produced by a streaming iterator so that 100,000 names never sit in
//! memory at once.
//!
//! ```toml
//! [ca]                                  # used by `uca ceremony`
//! name = "Acme Platform Root"
//! key = "ec-p256"
//! days = 3650
//! pathlen = 1
//! permit = ["internal", "10.0.0.0/8"]
//! crl_url = "http://pki.internal/root.crl"  # optional: into every intermediate
//!
//! [defaults]                            # every group inherits these
//! profile = "both"
//! key = "ec-p256"
//! days = 397
//! san_rules = ["base"]
//! formats = ["pem"]
//!
//! [[group]]
//! name = "web"
//! names = ["web{1..50}.internal"]       # ranges: {1..50}, {01..10}
//! profile = "server"
//! san_rules = ["base", "{hostbase}.svc.internal"]
//! sans = ["IP:10.0.0.10"]
//! formats = ["pem", "combined", "k8s"]
//! out = "web"                           # subdirectory of OUT (optional)
//!
//! [registry]                            # `uca ceremony`: OUT/registry, as `uca registry`
//! hosts = ["registry.internal:5000"]
//! client_auth = true
//! clients = ["ci1.internal"]
//! listen = "10.0.0.5:5000"              # http.addr (default ":5000")
//!
//! [escrow]                              # `uca ceremony`: seal with M-of-N escrow
//! shares = "3/5"
//! dir = "shares"                        # relative to the plan file
//! custodians = ["age1...", ...]         # optional: share i encrypted to the i-th
//! ```

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use rcgen::DistinguishedName;
use serde::Deserialize;
use toml::Spanned;

use crate::pki::constraints::{NameConstraints, Permit};
use crate::pki::formats::OutputFormat;
use crate::pki::keys::KeyType;
use crate::pki::names::San;
use crate::pki::passphrase::Passphrase;
use crate::pki::profile::{ExtraUsage, LeafNames, Lifetime, Profile, Validity};
use crate::pki::san_rule::{self, SanRule};
use crate::pki::subject::{SubjectTemplate, SubjectValues};
use crate::support::error::{Error, Result, Spelling};
use crate::support::hashfilter::HashFilter;

/// Where a group came from: errors about its names point back at what the
/// user wrote, never at a group the user did not write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupOrigin {
    /// A `[[group]]` of a plan file, by its name.
    PlanFile(String),
    /// NAMEs on the command line: the error already names the NAME.
    CommandLine,
    /// Names a command took from one of its options, e.g. `--storage`.
    Option(&'static str),
}

/// Largest number of certificates one plan may describe.
pub const MAX_CERTIFICATES: u64 = 1_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub ca: Option<CaSection>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default, rename = "group")]
    pub groups: Vec<GroupSection>,
    /// `[vault]`: a Vault/OpenBao PKI mount that `uca ceremony` bootstraps
    /// with an intermediate of the new root (see `sections::VaultSettings`).
    pub vault: Option<crate::ca::sections::VaultSettings>,
    /// `[registry]`: a container registry's certificates, for `uca ceremony`
    /// (see `sections::RegistrySpec`).
    pub registry: Option<crate::ca::sections::RegistrySpec>,
    /// `[escrow]`: seal the ceremony's root with M-of-N escrow.
    pub escrow: Option<EscrowSection>,
    /// `[intermediate]`: two tiers; the root signs only this issuing CA.
    pub intermediate: Option<IntermediateSection>,
}

/// `[intermediate]` in a ceremony plan: the root signs this one issuing CA
/// (path length 0, the root's name constraints narrowed by `permit`) and
/// is sealed at once; every certificate of the plan comes from it.
///
/// ```toml
/// [intermediate]
/// name = "Acme Issuing CA"
/// key = "ec-p256"          # optional
/// days = 1825              # optional: default until the root expires
/// permit = ["svc.internal"] # optional: within the root's
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntermediateSection {
    pub name: String,
    #[serde(default = "default_ca_key")]
    pub key: KeyType,
    pub days: Option<u32>,
    #[serde(default)]
    pub permit: Vec<String>,
}

/// `[escrow]`: `shares = "M/N"`, the directory of the share files and,
/// optionally, `custodians = ["age1...", ...]`: one age recipient per
/// share, in order, each share encrypted to its custodian.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscrowSection {
    pub shares: String,
    pub dir: PathBuf,
    #[serde(default)]
    pub custodians: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    pub name: String,
    #[serde(default = "default_ca_key")]
    pub key: KeyType,
    #[serde(default = "default_ca_days")]
    pub days: u32,
    #[serde(default = "default_pathlen")]
    pub pathlen: u8,
    #[serde(default)]
    pub permit: Vec<String>,
    /// Where the root's CRL is published (as `uca init --crl-url`).
    pub crl_url: Option<String>,
}

fn default_ca_key() -> KeyType {
    KeyType::EcP256
}
fn default_ca_days() -> u32 {
    3650
}
fn default_pathlen() -> u8 {
    1
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub profile: Option<Profile>,
    pub key: Option<KeyType>,
    // Spanned: an error about these names the line that gives them.
    pub days: Option<Spanned<u32>>,
    /// Instead of `days`: `12h`, `30d` (see `Lifetime::valid_for`).
    pub valid_for: Option<Spanned<String>>,
    /// Instead of `days`: an RFC 3339 time.
    pub not_after: Option<Spanned<String>>,
    /// An RFC 4514 subject template (see `pki::subject`).
    pub subject: Option<Spanned<String>>,
    /// Extended key usages beyond the profile's.
    pub eku: Option<Vec<Spanned<String>>>,
    pub san_rules: Option<Vec<String>>,
    pub sans: Option<Vec<String>>,
    pub formats: Option<Vec<OutputFormat>>,
    pub pkcs12_password_file: Option<PathBuf>,
    pub k8s_namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSection {
    pub name: String,
    pub names: Vec<String>,
    pub profile: Option<Profile>,
    pub key: Option<KeyType>,
    // Spanned: an error about these names the line that gives them.
    pub days: Option<Spanned<u32>>,
    /// Instead of `days`: `12h`, `30d` (see `Lifetime::valid_for`).
    pub valid_for: Option<Spanned<String>>,
    /// Instead of `days`: an RFC 3339 time.
    pub not_after: Option<Spanned<String>>,
    /// An RFC 4514 subject template (see `pki::subject`).
    pub subject: Option<Spanned<String>>,
    /// Extended key usages beyond the profile's.
    pub eku: Option<Vec<Spanned<String>>>,
    pub san_rules: Option<Vec<String>>,
    pub sans: Option<Vec<String>>,
    pub formats: Option<Vec<OutputFormat>>,
    pub out: Option<PathBuf>,
    pub pkcs12_password_file: Option<PathBuf>,
    pub k8s_namespace: Option<String>,
}

/// One pattern of a group's `names`, e.g. `web{1..50}.internal`.
#[derive(Clone, Debug)]
pub struct NamePattern {
    prefix: String,
    range: Option<(u64, u64, usize)>,
    suffix: String,
    /// The output directory's name when it is not the NAME itself.
    dir: Option<String>,
}

impl NamePattern {
    pub fn parse(text: &str) -> std::result::Result<NamePattern, String> {
        let Some(open) = text.find('{') else {
            return Ok(NamePattern {
                prefix: text.to_string(),
                range: None,
                suffix: String::new(),
                dir: None,
            });
        };
        let close = text[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or("a '{' is not closed")?;
        let inner = &text[open + 1..close];
        let (a, b) = inner
            .split_once("..")
            .ok_or("expected a range like {1..50}")?;
        let parse = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("'{s}' in {{{inner}}} is not a whole number"))
        };
        let (start, end) = (parse(a)?, parse(b)?);
        if start > end {
            return Err(format!("the range {{{inner}}} runs backwards"));
        }
        let suffix = &text[close + 1..];
        if suffix.contains('{') || suffix.contains('}') {
            return Err("only one range per name is allowed".into());
        }
        let width = if a.len() > 1 && a.starts_with('0') {
            a.len()
        } else {
            0
        };
        Ok(NamePattern {
            prefix: text[..open].to_string(),
            range: Some((start, end, width)),
            suffix: suffix.to_string(),
            dir: None,
        })
    }

    /// A name taken as it is (command-line NAMEs: no range syntax).
    pub fn literal(name: &str) -> NamePattern {
        NamePattern {
            prefix: name.to_string(),
            range: None,
            suffix: String::new(),
            dir: None,
        }
    }

    /// A literal name issued into the directory `dir` (a plain file name)
    /// instead of one named after it, e.g. `uca registry`'s OUT/server.
    pub fn literal_in(name: &str, dir: &str) -> NamePattern {
        NamePattern {
            dir: Some(dir.to_string()),
            ..NamePattern::literal(name)
        }
    }

    pub fn count(&self) -> u64 {
        // Saturating: {0..18446744073709551615} has 2^64 names, one more than
        // a u64 holds; any such plan is far over MAX_CERTIFICATES anyway.
        self.range.map_or(1, |(a, b, _)| (b - a).saturating_add(1))
    }

    pub fn iter(&self) -> impl Iterator<Item = String> + '_ {
        let (a, b, w) = self.range.unwrap_or((0, 0, 0));
        (a..=b).map(move |i| match self.range {
            None => self.prefix.clone(),
            Some(_) => format!("{}{:0w$}{}", self.prefix, i, self.suffix, w = w),
        })
    }
}

/// A group with its settings resolved against the defaults and validated.
#[derive(Debug)]
pub struct Group {
    pub origin: GroupOrigin,
    pub patterns: Vec<NamePattern>,
    pub profile: Profile,
    pub key: KeyType,
    pub validity: Validity,
    pub rules: Vec<SanRule>,
    pub extra: Vec<San>,
    pub formats: Vec<OutputFormat>,
    pub out: PathBuf,
    pub pkcs12_password: Option<Passphrase>,
    pub k8s_namespace: String,
    /// `subject = ...` / `--subject`: `None` keeps uca's CN = NAME.
    pub subject: Option<SubjectTemplate>,
    /// `eku = [...]` / `--eku`: usages beyond the profile's.
    pub extra_usages: Vec<ExtraUsage>,
}

/// The groups a command builds from its own options (`uca vault tls`, `uca
/// registry`): PEM certificates with no SAN rules, one key type and
/// validity for all.
#[derive(Clone, Copy)]
pub struct PemGroups {
    pub key: KeyType,
    pub days: u32,
    pub validity: Validity,
}

impl PemGroups {
    /// The certificates `option` asked for, in `dir` under OUT.
    pub fn group(
        &self,
        option: &'static str,
        profile: Profile,
        dir: &str,
        patterns: Vec<NamePattern>,
    ) -> Group {
        Group {
            origin: GroupOrigin::Option(option),
            patterns,
            profile,
            key: self.key,
            validity: self.validity,
            rules: Vec::new(),
            extra: Vec::new(),
            formats: vec![OutputFormat::Pem],
            out: PathBuf::from(dir),
            pkcs12_password: None,
            k8s_namespace: "default".into(),
            subject: None,
            extra_usages: Vec::new(),
        }
    }
}

impl Group {
    /// The group with `extra` SANs in every certificate.
    pub fn with_extra(mut self, extra: Vec<San>) -> Group {
        self.extra = extra;
        self
    }

    /// The subject of the certificate for `name`: the group's template
    /// filled in, else CN = NAME. The CN is left out when NAME is an IP
    /// address (OpenSSL and curl check a CN as a DNS name against the CA's
    /// DNS name constraints and would refuse it) or longer than a CN may
    /// be; the SANs then carry the identity.
    pub fn subject_of(&self, name: &str) -> Result<DistinguishedName> {
        if let Some(template) = &self.subject {
            return template.render(&SubjectValues {
                name,
                group: self.plan_group_name(),
            });
        }
        let is_ip = name.parse::<std::net::IpAddr>().is_ok();
        Ok(if !is_ip && name.len() <= 64 {
            crate::pki::profile::subject_cn(name)
        } else {
            DistinguishedName::new()
        })
    }

    /// The plan group's name, which `{group}` in a subject template stands
    /// for; `None` for groups made from command-line options.
    pub fn plan_group_name(&self) -> Option<&str> {
        match &self.origin {
            GroupOrigin::PlanFile(group) => Some(group),
            _ => None,
        }
    }

    /// Which certificate an error is about: "plan group 'web', name 'web1'".
    fn label(&self, name: &str) -> String {
        match &self.origin {
            GroupOrigin::PlanFile(group) => format!("plan group '{group}', name '{name}'"),
            GroupOrigin::Option(option) => format!("{option}, name '{name}'"),
            GroupOrigin::CommandLine => format!("name '{name}'"),
        }
    }

    /// The group itself, as its origin names it.
    fn describe(&self) -> String {
        match &self.origin {
            GroupOrigin::PlanFile(group) => format!("plan group '{group}'"),
            GroupOrigin::Option(option) => option.to_string(),
            GroupOrigin::CommandLine => "the NAMEs".into(),
        }
    }

    /// How an error about `name` in this group begins.
    pub fn error_prefix(&self, name: &str) -> String {
        match &self.origin {
            GroupOrigin::PlanFile(group) => format!("plan group '{group}', name '{name}': "),
            GroupOrigin::Option(option) => format!("{option}, name '{name}': "),
            GroupOrigin::CommandLine => String::new(),
        }
    }

    pub fn count(&self) -> u64 {
        self.patterns
            .iter()
            .map(NamePattern::count)
            .fold(0, u64::saturating_add)
    }
}

/// A validated plan, ready to issue.
#[derive(Debug)]
pub struct Plan {
    pub path: PathBuf,
    pub ca: Option<CaSection>,
    pub ca_constraints: NameConstraints,
    pub groups: Vec<Group>,
    pub total: u64,
    pub registry: Option<crate::ca::sections::RegistrySpec>,
    pub vault: Option<crate::ca::sections::VaultSettings>,
    /// `[escrow]`, its directory resolved against the plan's.
    pub escrow: Option<EscrowSection>,
    /// `[intermediate]`; `ca_constraints` are then the intermediate's.
    pub intermediate: Option<IntermediateSection>,
}

/// One certificate of a plan.
#[derive(Debug)]
pub struct PlanItem<'a> {
    pub group: &'a Group,
    pub name: String,
    pub subject: DistinguishedName,
    pub sans: Vec<San>,
    pub target: PathBuf,
}

fn relative_subdir(group: &str, p: &Path) -> Result<PathBuf> {
    let shown = || crate::pki::names::printable(&p.to_string_lossy());
    let ok = !p.as_os_str().is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !p.to_string_lossy().chars().any(char::is_control);
    if !ok {
        return Err(Error::invalid(
            "group out",
            shown(),
            format!("group '{group}': expected a relative path inside OUT without '..' (e.g. web)"),
        ));
    }
    for c in p.iter() {
        if c.as_encoded_bytes().starts_with(b".") {
            // uca's temporary and moved-aside directories are hidden names:
            // a hidden output directory could be taken for one of them.
            return Err(Error::invalid(
                "group out",
                shown(),
                format!("group '{group}': '{}' starts with '.', which uca keeps for its temporary directories; expected a visible name (e.g. web)", c.to_string_lossy()),
            ));
        }
        if c.len() > crate::support::fsutil::NAME_MAX {
            return Err(Error::invalid(
                "group out",
                shown(),
                format!("group '{group}': a part of it is {} bytes long, over the {} a file name may have", c.len(), crate::support::fsutil::NAME_MAX),
            ));
        }
    }
    Ok(p.to_path_buf())
}

/// The name a certificate is issued for: `raw` as the plan wrote it,
/// checked and in canonical form (DNS names lower-cased, IPs normalised).
fn canonical_name(raw: &str) -> Result<String> {
    Ok(match San::for_name(raw)? {
        San::Dns(d) => d,
        San::Ip(ip) => ip.to_string(),
        _ => unreachable!("for_name yields DNS or IP"),
    })
}

/// A certificate's directory: OUT/[out/]NAME, or the pattern's own directory.
fn target_of(out: &Path, g: &Group, p: &NamePattern, name: &str) -> PathBuf {
    out.join(&g.out).join(p.dir.as_deref().unwrap_or(name))
}

/// Where a plan's outputs go on disk, for the checks that need the whole
/// plan at once: no output inside another, no path too long.
struct OutputLayout<'a> {
    plan: &'a Plan,
    /// Each group's directory, resolved (symbolic links followed).
    group_dirs: Vec<PathBuf>,
    /// Each group's files that do not depend on the name (every format's
    /// but pkcs12's), worked out once rather than per certificate.
    fixed_files: Vec<Vec<String>>,
    /// Every group directory and each of its ancestors, with the index of a
    /// group whose directory it is or holds: no certificate directory may be
    /// one of these, or it would replace (or be) that group's directory.
    holders: HashMap<PathBuf, usize>,
    /// The group of the item last looked at (items come group by group).
    current: usize,
}

impl<'a> OutputLayout<'a> {
    /// The layout on disk under `out`, symbolic links followed.
    fn new(plan: &'a Plan, out: &Path) -> Result<OutputLayout<'a>> {
        Self::with_dirs(plan, |g| crate::support::fsutil::resolve(&out.join(&g.out)))
    }

    /// The layout inside an archive: member paths under `root`, as if
    /// extracted at `/` (lengths stay those of a real extraction's at best).
    fn in_archive(plan: &'a Plan, root: &Path) -> Result<OutputLayout<'a>> {
        Self::with_dirs(plan, |g| Ok(Path::new("/").join(root).join(&g.out)))
    }

    fn with_dirs(
        plan: &'a Plan,
        dir_of: impl Fn(&Group) -> Result<PathBuf>,
    ) -> Result<OutputLayout<'a>> {
        let mut group_dirs = Vec::with_capacity(plan.groups.len());
        let mut fixed_files = Vec::with_capacity(plan.groups.len());
        let mut holders = HashMap::new();
        for (i, g) in plan.groups.iter().enumerate() {
            let fixed: Vec<OutputFormat> = g
                .formats
                .iter()
                .copied()
                .filter(|f| *f != OutputFormat::Pkcs12)
                .collect();
            fixed_files.push(crate::pki::formats::file_paths(&fixed, ""));
            let dir = dir_of(g)?;
            for ancestor in dir.ancestors() {
                holders.entry(ancestor.to_path_buf()).or_insert(i);
            }
            group_dirs.push(dir);
        }
        Ok(OutputLayout {
            plan,
            group_dirs,
            fixed_files,
            holders,
            current: 0,
        })
    }

    fn group_index(&mut self, g: &Group) -> usize {
        if !std::ptr::eq(&self.plan.groups[self.current], g) {
            self.current = self
                .plan
                .groups
                .iter()
                .position(|x| std::ptr::eq(x, g))
                .expect("an item's group belongs to its plan");
        }
        self.current
    }

    /// A certificate directory of group `g` as resolved: the key under
    /// which two items are the same output.
    fn resolved(&mut self, g: &Group, target: &Path) -> PathBuf {
        let gi = self.group_index(g);
        self.group_dirs[gi].join(target.file_name().unwrap_or_default())
    }

    /// Checks one certificate's outputs; returns its directory as resolved,
    /// the key under which two items are the same output.
    fn check(&mut self, out: &Path, item: &PlanItem<'_>) -> Result<PathBuf> {
        let g = item.group;
        let gi = self.group_index(g);
        let label = || g.label(&item.name);
        let component = item.target.file_name().unwrap_or_default();
        let resolved = self.resolved(g, &item.target);
        if let Some(&holder) = self.holders.get(&resolved) {
            let other = &self.plan.groups[holder];
            return Err(Error::msg(format!(
                "{}: its directory {} is, or holds, the output directory {} of {}; one would replace the other: give one of them another name or out",
                label(),
                item.target.display(),
                out.join(&other.out).display(),
                other.describe(),
            )));
        }
        let component = component.to_string_lossy();
        let dir_len = self.group_dirs[gi].as_os_str().len()
            + 1
            + component
                .len()
                .max(crate::support::fsutil::hidden_sibling_len(&component));
        let named_files = if g.formats.contains(&OutputFormat::Pkcs12) {
            crate::pki::formats::file_paths(&[OutputFormat::Pkcs12], &item.name)
        } else {
            Vec::new()
        };
        for file in self.fixed_files[gi].iter().chain(&named_files) {
            if let Some(long) = file
                .split('/')
                .find(|c| c.len() > crate::support::fsutil::NAME_MAX)
            {
                return Err(Error::msg(format!(
                    "{}: its file name {long} would be {} bytes long, over the {} a file name may have; use a shorter name or another format",
                    label(),
                    long.len(),
                    crate::support::fsutil::NAME_MAX
                )));
            }
            let total = dir_len + 1 + file.len();
            if total > crate::support::fsutil::PATH_MAX {
                return Err(Error::msg(format!(
                    "{}: its file {}/{file} would have a path of {total} bytes (with OUT made absolute), over the {} a path may have; use a shorter OUT, out or name",
                    label(),
                    item.target.display(),
                    crate::support::fsutil::PATH_MAX
                )));
            }
        }
        Ok(resolved)
    }
}

/// One listing per output directory instead of a stat per certificate:
/// plans are large and output directories few.
#[derive(Default)]
struct Listings(HashMap<PathBuf, HashSet<std::ffi::OsString>>);

impl Listings {
    fn exists(&mut self, target: &Path) -> bool {
        let parent = crate::support::fsutil::parent_of(target).to_path_buf();
        let listing = self.0.entry(parent).or_insert_with_key(|dir| {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok().map(|e| e.file_name()))
                        .collect()
                })
                .unwrap_or_default()
        });
        target.file_name().is_some_and(|n| listing.contains(n))
    }
}

fn plan_error(path: &Path, why: String) -> Error {
    Error::invalid("plan", path.display().to_string(), why)
}

/// An error of `Permit::parse`, which words it for `--permit`, as the
/// plan's `permit` key of `section`.
fn permit_error(path: &Path, section: &str, e: Error) -> Error {
    match e {
        Error::Invalid {
            value, expected, ..
        } => plan_error(
            path,
            format!("{section} permit: invalid value '{value}': {expected}"),
        ),
        other => plan_error(path, format!("{section} permit: {other}")),
    }
}

fn group_error(path: &Path, group: &str, why: String) -> Error {
    plan_error(path, format!("group '{group}': {why}"))
}

/// The sections a plan has fit what it is used for: `[vault]` and
/// `[registry]` only in a ceremony, and something to issue.
fn check_sections(path: &Path, file: &PlanFile, existing_ca: bool) -> Result<()> {
    if file.vault.is_some() && existing_ca {
        return Err(plan_error(path,
            "its [vault] section is for uca ceremony; with an existing CA run: uca vault bootstrap --dir DIR --addr URL ...".into(),
        ));
    }
    if file.registry.is_some() && existing_ca {
        return Err(plan_error(path,
            "its [registry] section is for uca ceremony; with an existing CA run: uca registry --dir DIR --out OUT HOST[:PORT]...".into(),
        ));
    }
    if file.intermediate.is_some() && existing_ca {
        return Err(plan_error(path,
            "its [intermediate] section is for uca ceremony; with an existing root run: uca init --dir DIR --name NAME --intermediate-of ROOT_DIR".into(),
        ));
    }
    if file.intermediate.is_some() && file.vault.is_some() {
        return Err(plan_error(path,
            "[vault] and [intermediate] together: the issuing intermediate has path length 0 and cannot sign Vault's; bootstrap Vault from a CA made with uca init --intermediate-of and --pathlen, or leave [intermediate] out".into(),
        ));
    }
    if file.intermediate.is_some() && file.registry.as_ref().is_some_and(|r| r.client_auth) {
        return Err(plan_error(path,
            "[registry] client_auth and [intermediate] together: the registry's client CA would be a second intermediate below one of path length 0".into(),
        ));
    }
    if file.escrow.is_some() && existing_ca {
        return Err(plan_error(path,
            "its [escrow] section is for uca ceremony; with an existing CA run: uca seal --dir DIR --escrow-shares M/N --escrow-dir DIR".into(),
        ));
    }
    if file.groups.is_empty() && file.registry.is_none() && file.vault.is_none() {
        return Err(plan_error(
            path,
            "it has no [[group]]; nothing to issue".into(),
        ));
    }
    Ok(())
}

/// The name constraints and the end of validity of the CA a ceremony will
/// create from the plan's `[ca]` section, which every group must fit.
fn new_ca_limits(
    path: &Path,
    ca: Option<&CaSection>,
) -> Result<(NameConstraints, time::OffsetDateTime)> {
    let Some(ca) = ca else {
        return Err(plan_error(
            path,
            "a ceremony needs a [ca] section (name, key, days, pathlen, permit)".into(),
        ));
    };
    crate::pki::names::validate_ca_name(&ca.name)?;
    let permits = ca
        .permit
        .iter()
        .map(|p| Permit::parse(p))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| permit_error(path, "[ca]", e))?;
    let validity = Lifetime::days_spelled(ca.days, Spelling::PlanKey)
        .map(|l| l.from_now())
        .map_err(|e| plan_error(path, format!("[ca]: {e}")))?;
    Ok((NameConstraints(permits), validity.not_after))
}

/// The issuing intermediate's constraints (the root's, narrowed by its
/// `permit`) and the end of its validity (within the root's).
fn intermediate_limits(
    path: &Path,
    int: &IntermediateSection,
    root: &NameConstraints,
    root_not_after: time::OffsetDateTime,
) -> Result<(NameConstraints, time::OffsetDateTime)> {
    let err = |e: Error| plan_error(path, format!("[intermediate]: {e}"));
    crate::pki::names::validate_ca_name(&int.name).map_err(err)?;
    let permits = int
        .permit
        .iter()
        .map(|p| Permit::parse(p))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| permit_error(path, "[intermediate]", e))?;
    let constraints = root.narrowed(&permits).map_err(|outside| {
        plan_error(
            path,
            format!("[intermediate] permit {outside} lies outside the root's name constraints"),
        )
    })?;
    let not_after = match int.days {
        Some(days) => {
            Lifetime::days_spelled(days, Spelling::PlanKey)
                .and_then(|l| l.within(root_not_after))
                .map_err(err)?
                .not_after
        }
        None => root_not_after,
    };
    Ok((constraints, not_after))
}

/// A group's name is printable, cannot be read as an option, and is unique.
fn check_group_name(path: &Path, g: &GroupSection, seen: &mut HashSet<String>) -> Result<()> {
    crate::pki::names::check_typography("group name", &g.name)?;
    if g.name.starts_with('-') {
        // It would read like an option in errors ("--host, name ...").
        return Err(group_error(
            path,
            &g.name,
            "a group name may not start with '-'".into(),
        ));
    }
    if !seen.insert(g.name.clone()) {
        return Err(plan_error(
            path,
            format!("group '{}' is defined twice", g.name),
        ));
    }
    Ok(())
}

/// One `[[group]]`, each setting resolved (the group's own, else
/// `[defaults]`, else uca's default) and validated.
fn group_from_section(
    path: &Path,
    text: &str,
    g: &GroupSection,
    d: &Defaults,
    ca_not_after: time::OffsetDateTime,
    base_dir: &Path,
) -> Result<Group> {
    let gerr = |why: String| group_error(path, &g.name, why);
    let patterns = group_patterns(path, g)?;
    let rules = match g.san_rules.as_ref().or(d.san_rules.as_ref()) {
        Some(r) => r
            .iter()
            .map(|r| SanRule::parse(r))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| gerr(e.to_string()))?,
        None => vec![SanRule::Base],
    };
    let mut extra = Vec::new();
    for s in d.sans.iter().flatten().chain(g.sans.iter().flatten()) {
        let san = San::parse(s).map_err(|e| gerr(e.to_string()))?;
        if !extra.contains(&san) {
            extra.push(san);
        }
    }
    let formats = g
        .formats
        .clone()
        .or_else(|| d.formats.clone())
        .unwrap_or_else(|| vec![OutputFormat::Pem]);
    if formats.is_empty() {
        return Err(gerr("formats is empty".into()));
    }
    let profile = g.profile.or(d.profile).unwrap_or(Profile::Both);
    if formats.contains(&OutputFormat::Certsd) && profile == Profile::Server {
        return Err(gerr(
            "format certsd is a client identity for Docker/Podman; use profile client or both"
                .into(),
        ));
    }
    let pkcs12_password = if formats.contains(&OutputFormat::Pkcs12) {
        Some(group_pkcs12_password(path, g, d, base_dir)?)
    } else {
        None
    };
    let k8s_namespace = group_k8s_namespace(path, g, d)?;
    let (subject, extra_usages, validity) =
        group_identity(path, text, g, d, profile, ca_not_after)?;
    let out = match &g.out {
        Some(p) => relative_subdir(&g.name, p)?,
        None => PathBuf::new(),
    };
    Ok(Group {
        origin: GroupOrigin::PlanFile(g.name.clone()),
        patterns,
        profile,
        key: g.key.or(d.key).unwrap_or(KeyType::EcP256),
        validity,
        rules,
        extra,
        formats,
        out,
        pkcs12_password,
        k8s_namespace,
        subject,
        extra_usages,
    })
}

/// A group's subject template, extra usages and validity, each the
/// group's own or `[defaults]`'; an error names the line that gives it.
fn group_identity(
    path: &Path,
    text: &str,
    g: &GroupSection,
    d: &Defaults,
    profile: Profile,
    ca_not_after: time::OffsetDateTime,
) -> Result<(Option<SubjectTemplate>, Vec<ExtraUsage>, Validity)> {
    let at = |span: Range<usize>, e: Error| {
        let line = line_of(text, span.start);
        plan_error(path, format!("line {line}: group '{}': {e}", g.name))
    };
    let validity = match group_lifetime(g, d).map_err(|(span, e)| at(span, e))? {
        Some((lifetime, span)) => lifetime.within(ca_not_after).map_err(|e| at(span, e))?,
        None => Lifetime::days_spelled(397, Spelling::PlanKey)?
            .within(ca_not_after)
            .map_err(|e| group_error(path, &g.name, e.to_string()))?,
    };
    let subject = g
        .subject
        .as_ref()
        .or(d.subject.as_ref())
        .map(|t| {
            SubjectTemplate::parse_spelled(t.get_ref(), Spelling::PlanKey)
                .map_err(|e| at(t.span(), e))
        })
        .transpose()?;
    let extra_usages = g
        .eku
        .as_ref()
        .or(d.eku.as_ref())
        .into_iter()
        .flatten()
        .map(|u| {
            ExtraUsage::parse_spelled(u.get_ref(), profile, Spelling::PlanKey)
                .map_err(|e| at(u.span(), e))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((subject, extra_usages, validity))
}

/// A lifetime and where the plan gives it, or an error and where.
type LocatedLifetime = std::result::Result<Option<(Lifetime, Range<usize>)>, (Range<usize>, Error)>;

/// A group's lifetime: its own `days`, `valid_for` or `not_after` (at most
/// one), else `[defaults]`' (at most one); `None` for uca's 397 days.
fn group_lifetime(g: &GroupSection, d: &Defaults) -> LocatedLifetime {
    fn one_of(
        days: Option<&Spanned<u32>>,
        valid_for: Option<&Spanned<String>>,
        not_after: Option<&Spanned<String>>,
        section: &str,
    ) -> LocatedLifetime {
        let spelled = Spelling::PlanKey;
        let lifetime = match (days, valid_for, not_after) {
            (None, None, None) => return Ok(None),
            (Some(n), None, None) => (Lifetime::days_spelled(*n.get_ref(), spelled), n.span()),
            (None, Some(v), None) => (Lifetime::valid_for_spelled(v.get_ref(), spelled), v.span()),
            (None, None, Some(t)) => (Lifetime::not_after_spelled(t.get_ref(), spelled), t.span()),
            _ => {
                let spans = [
                    days.map(Spanned::span),
                    valid_for.map(Spanned::span),
                    not_after.map(Spanned::span),
                ];
                let second = spans
                    .into_iter()
                    .flatten()
                    .max_by_key(|s| s.start)
                    .unwrap_or_default();
                return Err((
                    second,
                    Error::msg(format!(
                        "{section}give one of days, valid_for and not_after, not several"
                    )),
                ));
            }
        };
        match lifetime {
            (Ok(l), span) => Ok(Some((l, span))),
            (Err(e), span) => Err((span, e)),
        }
    }
    let own = one_of(
        g.days.as_ref(),
        g.valid_for.as_ref(),
        g.not_after.as_ref(),
        "",
    )?;
    let defaults = one_of(
        d.days.as_ref(),
        d.valid_for.as_ref(),
        d.not_after.as_ref(),
        "[defaults]: ",
    )?;
    Ok(own.or(defaults))
}

/// The line of the plan's text that holds byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    // Counting newlines, not lines: a span at a line's first column must
    // not name the line before it.
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

fn group_patterns(path: &Path, g: &GroupSection) -> Result<Vec<NamePattern>> {
    if g.names.is_empty() {
        return Err(group_error(path, &g.name, "its names list is empty".into()));
    }
    g.names
        .iter()
        .map(|n| {
            // Both are the plan's raw text: one line, whatever it holds.
            NamePattern::parse(n).map_err(|why| {
                let (n, why) = (
                    crate::pki::names::printable(n),
                    crate::pki::names::printable(&why),
                );
                group_error(path, &g.name, format!("name '{n}': {why}"))
            })
        })
        .collect()
}

/// The pkcs12 format's bundle password, read from the file the group (or
/// `[defaults]`) names, relative to the plan.
fn group_pkcs12_password(
    path: &Path,
    g: &GroupSection,
    d: &Defaults,
    base_dir: &Path,
) -> Result<Passphrase> {
    let gerr = |why: String| group_error(path, &g.name, why);
    let file = g
        .pkcs12_password_file
        .as_ref()
        .or(d.pkcs12_password_file.as_ref())
        .ok_or_else(|| {
            gerr(
                "format pkcs12 needs pkcs12_password_file (a file holding the bundle password)"
                    .into(),
            )
        })?;
    let file = if file.is_absolute() {
        file.clone()
    } else {
        base_dir.join(file)
    };
    Passphrase::from_file(&file).map_err(|e| gerr(crate::pki::names::printable(&e.to_string())))
}

fn group_k8s_namespace(path: &Path, g: &GroupSection, d: &Defaults) -> Result<String> {
    let k8s_namespace = g
        .k8s_namespace
        .clone()
        .or_else(|| d.k8s_namespace.clone())
        .unwrap_or_else(|| "default".into());
    // Kubernetes namespaces are RFC 1123 labels: lower case only. A name
    // such as "Prod" would be written into secret.yaml as given and then
    // refused by the cluster, so it is refused here, before any key.
    if !crate::pki::formats::is_rfc1123_label(&k8s_namespace) {
        return Err(group_error(
            path,
            &g.name,
            format!(
                "k8s_namespace '{}' is not a valid namespace (a DNS label); expected lower-case letters, digits and '-', at most 63 characters",
                crate::pki::names::printable(&k8s_namespace)
            ),
        ));
    }
    Ok(k8s_namespace)
}

impl Plan {
    /// Appends a group (for plans built in code).
    pub fn push(&mut self, group: Group) {
        self.total += group.count();
        self.groups.push(group);
    }

    /// A plan of one group under an existing CA's constraints.
    pub fn single_group(ca_constraints: NameConstraints, group: Group) -> Plan {
        let total = group.count();
        Plan {
            path: PathBuf::from("(command line)"),
            ca: None,
            ca_constraints,
            groups: vec![group],
            total,
            registry: None,
            vault: None,
            escrow: None,
            intermediate: None,
        }
    }

    /// Reads and validates a plan file. `ca_constraints`/`ca_not_after` are
    /// those of an existing CA (`issue --plan`); for a ceremony they come from
    /// the plan's own `[ca]` section.
    pub fn load(
        path: &Path,
        existing_ca: Option<(&NameConstraints, time::OffsetDateTime)>,
    ) -> Result<Plan> {
        let text = crate::support::fsutil::read_capped_text(
            path,
            crate::support::fsutil::limits::PLAN,
            "read the plan",
            "plan",
        )?;
        let file: PlanFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(0);
            Error::invalid(
                "plan",
                path.display().to_string(),
                format!("line {line}: {}", e.message().replace(['\n', '\r'], " ")),
            )
        })?;
        Plan::from_file(path, &text, file, existing_ca)
    }

    fn from_file(
        path: &Path,
        text: &str,
        file: PlanFile,
        existing_ca: Option<(&NameConstraints, time::OffsetDateTime)>,
    ) -> Result<Plan> {
        check_sections(path, &file, existing_ca.is_some())?;
        let (constraints, ca_not_after) = match existing_ca {
            Some((c, not_after)) => (c.clone(), not_after),
            None => new_ca_limits(path, file.ca.as_ref())?,
        };
        // Two tiers: the plan's certificates come from the intermediate,
        // within its constraints and its lifetime.
        let (constraints, ca_not_after) = match &file.intermediate {
            Some(int) => intermediate_limits(path, int, &constraints, ca_not_after)?,
            None => (constraints, ca_not_after),
        };
        let base_dir = crate::support::fsutil::parent_of(path);
        let mut group_names = HashSet::new();
        let mut groups = Vec::new();
        let mut total: u64 = 0;
        for g in &file.groups {
            check_group_name(path, g, &mut group_names)?;
            let group = group_from_section(path, text, g, &file.defaults, ca_not_after, base_dir)?;
            total = total.saturating_add(group.count());
            if total > MAX_CERTIFICATES {
                return Err(plan_error(
                    path,
                    format!("it describes more than {MAX_CERTIFICATES} certificates"),
                ));
            }
            groups.push(group);
        }
        Ok(Plan {
            path: path.to_path_buf(),
            ca: file.ca,
            registry: file.registry,
            vault: file.vault,
            escrow: file.escrow.map(|e| EscrowSection {
                shares: e.shares,
                dir: base_dir.join(e.dir),
                custodians: e.custodians,
            }),
            ca_constraints: constraints,
            groups,
            total,
            intermediate: file.intermediate,
        })
    }

    /// Every certificate, in plan order, each validated (names, SANs, name
    /// constraints). `out` is the output root.
    pub fn items<'a>(&'a self, out: &'a Path) -> impl Iterator<Item = Result<PlanItem<'a>>> + 'a {
        self.groups.iter().flat_map(move |g| {
            g.patterns.iter().flat_map(move |p| {
                p.iter().map(move |raw| {
                    let item_err = |e: Error| match g.origin {
                        // The message already names the bad value.
                        GroupOrigin::CommandLine => e,
                        _ => Error::msg(format!(
                            "{}{e}",
                            g.error_prefix(&crate::pki::names::printable(&raw))
                        )),
                    };
                    let name = canonical_name(&raw).map_err(item_err)?;
                    let sans = san_rule::sans_for(&name, &g.rules, &g.extra).map_err(item_err)?;
                    if g.formats.contains(&OutputFormat::K8s) {
                        crate::pki::formats::k8s_secret_name(&name).map_err(item_err)?;
                    }
                    for san in &sans {
                        self.ca_constraints.check(san).map_err(item_err)?;
                    }
                    let subject = g.subject_of(&name).map_err(item_err)?;
                    // The CN a template gives must be one of the SANs:
                    // checked now, before any key, as the signer will.
                    if g.subject.is_some() {
                        LeafNames::checked(subject.clone(), sans.clone(), &self.ca_constraints)
                            .map_err(item_err)?;
                    }
                    let target = target_of(out, g, p, &name);
                    Ok(PlanItem {
                        group: g,
                        name,
                        subject,
                        sans,
                        target,
                    })
                })
            })
        })
    }

    /// Every certificate's directory under `out`, with its group and name,
    /// in plan order: the names' canonical forms only, without the SAN and
    /// constraint checks of [`items`](Self::items), for passes over a plan
    /// that [`validate_all`](Self::validate_all) accepted.
    pub fn targets<'a>(
        &'a self,
        out: &'a Path,
    ) -> impl Iterator<Item = Result<(&'a Group, String, PathBuf)>> + 'a {
        self.groups.iter().flat_map(move |g| {
            g.patterns.iter().flat_map(move |p| {
                p.iter().map(move |raw| {
                    let name = canonical_name(&raw)?;
                    let target = target_of(out, g, p, &name);
                    Ok((g, name, target))
                })
            })
        })
    }

    /// Validates every item and output path (no output inside another, every
    /// file and path within the system's length limits, every format's
    /// names valid); returns the targets that already exist (for the caller
    /// to decide: skip, resume or refuse).
    pub fn validate_all(&self, out: &Path) -> Result<Vec<PathBuf>> {
        let mut layout = OutputLayout::new(self, out)?;
        let mut listings = Listings::default();
        let mut existing = Vec::new();
        self.check_items(out, &mut layout, |item| {
            if listings.exists(&item.target) {
                existing.push(item.target);
            }
        })?;
        // Every output directory can be made, before the first key is.
        let mut dirs: Vec<&PathBuf> = listings.0.keys().collect();
        dirs.sort();
        for dir in dirs {
            crate::support::fsutil::check_dir_creatable("output directory", dir)?;
        }
        Ok(existing)
    }

    /// Validates every item and member path of the plan written as one
    /// archive whose members start at `root` (`--archive`): the checks of
    /// [`validate_all`](Self::validate_all) that do not look at the disk.
    pub fn validate_members(&self, root: &Path) -> Result<()> {
        let mut layout = OutputLayout::in_archive(self, root)?;
        self.check_items(root, &mut layout, |_| {})
    }

    /// Checks each item and its outputs against `layout`, none produced
    /// twice; `each` sees every item that passed.
    fn check_items(
        &self,
        out: &Path,
        layout: &mut OutputLayout<'_>,
        mut each: impl FnMut(PlanItem<'_>),
    ) -> Result<()> {
        // Flat memory however large the plan: a few bits an output, and
        // the few outputs whose bit was already set, checked exactly after.
        let mut seen = HashFilter::with_room_for(self.total, 32);
        let mut suspects: HashSet<PathBuf> = HashSet::new();
        for item in self.items(out) {
            let item = item?;
            let resolved = layout.check(out, &item)?;
            if !seen.insert(&resolved) {
                suspects.insert(resolved);
            }
            each(item);
        }
        if !suspects.is_empty() {
            self.refuse_produced_twice(out, layout, &suspects)?;
        }
        Ok(())
    }

    /// Refuses the first output that two items produce, among `suspects`
    /// (outputs that may have been seen before): a second pass over the
    /// plan, holding only those.
    fn refuse_produced_twice(
        &self,
        out: &Path,
        layout: &mut OutputLayout<'_>,
        suspects: &HashSet<PathBuf>,
    ) -> Result<()> {
        let mut found = HashSet::new();
        for t in self.targets(out) {
            let (g, name, target) = t?;
            let resolved = layout.resolved(g, &target);
            if suspects.contains(&resolved) && !found.insert(resolved) {
                return Err(Error::msg(format!(
                    "{}{} is produced twice",
                    g.error_prefix(&name),
                    target.display()
                )));
            }
        }
        Ok(())
    }

    /// The certificate directories of a validated plan that exist now. The
    /// bulk engine asks again while holding the CA's lock: what another run
    /// issued meanwhile is then seen, never issued twice.
    pub fn existing_targets(&self, out: &Path) -> Result<Vec<PathBuf>> {
        let mut listings = Listings::default();
        let mut existing = Vec::new();
        for t in self.targets(out) {
            let (_, _, target) = t?;
            if listings.exists(&target) {
                existing.push(target);
            }
        }
        Ok(existing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand() {
        let p = NamePattern::parse("web{1..3}.internal").unwrap();
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            ["web1.internal", "web2.internal", "web3.internal"]
        );
        let p = NamePattern::parse("n{08..10}").unwrap();
        assert_eq!(p.iter().collect::<Vec<_>>(), ["n08", "n09", "n10"]);
        assert_eq!(
            NamePattern::parse("db").unwrap().iter().collect::<Vec<_>>(),
            ["db"]
        );
        assert!(NamePattern::parse("web{3..1}").is_err());
        assert!(NamePattern::parse("web{1..x}").is_err());
        assert!(NamePattern::parse("web{1..2}{3..4}").is_err());
        assert!(NamePattern::parse("web{1..").is_err());
    }
}
