//! The issuing pipeline every issuing command runs between "the arguments
//! parse" and "the files are there": every name, SAN, constraint and output
//! path is validated before a key exists; existing targets are refused
//! unless a plan resumes or `--force` is given; the files a command writes
//! beside the certificates (config.yml, *.hcl) are checked too; then the key
//! is unlocked (or the one the ceremony holds is used), the CA's lock taken
//! and the bulk engine run.
//!
//! The steps are separate so that each command keeps the order in which
//! its errors come first: `uca issue` and `uca vault tls` use [`prepare`],
//! while `uca registry` validates without the CA (a ceremony prepares it
//! before its root exists) and refuses CA targets last.
//!
//! [`prepare`]: Issuance::prepare

use std::path::{Path, PathBuf};

use crate::ca::archive::StreamTarget;
use crate::ca::bulk::{self, Existing, IssuedCert, Progress, RunOptions, Summary};
use crate::ca::ledger::LedgerLock;
use crate::ca::plan::Plan;
use crate::ca::store::{CaStore, Signer};
use crate::support::error::{Error, Result};
use crate::support::output;

/// A validated plan and where it goes, ready to issue.
pub struct Issuance {
    plan: Plan,
    out: PathBuf,
    existing: Existing,
    force: bool,
    /// The certificate directories that existed when the plan was validated.
    pre_existing: Vec<PathBuf>,
    /// One tar stream instead of directories (`--archive`); `out` is then
    /// the root of its member names.
    archive: Option<StreamTarget>,
    /// Every Secret in one multi-document manifest (`--k8s-manifest`).
    k8s_manifest: Option<StreamTarget>,
}

/// Where the signing key comes from.
pub enum Key<'a> {
    /// Decrypt the CA key (from this passphrase file, or asked for), then
    /// take the CA's lock.
    Unlock(Option<&'a PathBuf>),
    /// A key already in memory (the ceremony's) and the lock its holder took.
    Held(&'a Signer, &'a LedgerLock),
}

impl Issuance {
    /// What `uca issue` and `uca vault tls` check, in this order:
    /// [`validate`](Self::validate), [`refuse_ca_targets`](Self::refuse_ca_targets),
    /// then [`with_side_files`](Self::with_side_files).
    pub fn prepare(
        store: &CaStore,
        plan: Plan,
        out: &Path,
        existing: Existing,
        force: bool,
        side_files: &[&Path],
    ) -> Result<Issuance> {
        let issuance = Issuance::validate(plan, out, existing, force)?;
        issuance.refuse_ca_targets(store)?;
        issuance.with_side_files(side_files)
    }

    /// Every name, SAN, constraint and output path, before any key is made.
    /// Needs no CA: a ceremony validates before its root exists.
    pub fn validate(plan: Plan, out: &Path, existing: Existing, force: bool) -> Result<Issuance> {
        let pre_existing = plan.validate_all(out)?;
        Ok(Issuance {
            plan,
            out: out.to_path_buf(),
            existing,
            force,
            pre_existing,
            archive: None,
            k8s_manifest: None,
        })
    }

    /// [`validate`](Self::validate) for a plan written as one archive
    /// whose member names start at `root`: every name, SAN, constraint and
    /// member path, and the archive file new (or `force`) and creatable.
    /// Nothing under `root` is looked at: it is only a name.
    pub fn validate_archive(
        plan: Plan,
        root: &Path,
        archive: StreamTarget,
        force: bool,
    ) -> Result<Issuance> {
        plan.validate_members(root)?;
        archive.check("--archive", force, None)?;
        Ok(Issuance {
            plan,
            out: root.to_path_buf(),
            existing: Existing::Refuse,
            force,
            pre_existing: Vec::new(),
            archive: Some(archive),
            k8s_manifest: None,
        })
    }

    /// Writes the Secrets of the plan's k8s-format groups into one
    /// multi-document manifest at `target` instead of each certificate's
    /// secret.yaml. Refused when no group has the k8s format, or when it
    /// would share standard output with the archive.
    pub fn with_k8s_manifest(mut self, target: StreamTarget) -> Result<Issuance> {
        use crate::pki::formats::OutputFormat;
        if !self
            .plan
            .groups
            .iter()
            .any(|g| g.formats.contains(&OutputFormat::K8s))
        {
            return Err(Error::invalid(
                "--k8s-manifest",
                target.shown(),
                "no group of the plan has the k8s format; add formats = [\"k8s\", ...] to a group",
            ));
        }
        if target == StreamTarget::Stdout && self.archive == Some(StreamTarget::Stdout) {
            return Err(Error::invalid(
                "--k8s-manifest",
                "-",
                "the archive already goes to standard output; give the manifest a FILE",
            ));
        }
        if let (StreamTarget::File(a), Some(StreamTarget::File(b))) = (&target, &self.archive) {
            if crate::support::fsutil::resolve(a)? == crate::support::fsutil::resolve(b)? {
                return Err(Error::invalid(
                    "--k8s-manifest",
                    a.display().to_string(),
                    "it is the --archive file too; give each its own file",
                ));
            }
        }
        target.check("--k8s-manifest", self.force, None)?;
        self.k8s_manifest = Some(target);
        Ok(self)
    }

    /// The archive this issuance writes, if it writes one.
    pub fn archive(&self) -> Option<&StreamTarget> {
        self.archive.as_ref()
    }

    /// No certificate directory may replace the CA directory or part of it.
    pub fn refuse_ca_targets(&self, store: &CaStore) -> Result<()> {
        for stream in [&self.archive, &self.k8s_manifest] {
            if let Some(StreamTarget::File(file)) = stream {
                store.refuse_ca_path(file)?;
            }
        }
        match &self.archive {
            Some(_) => Ok(()),
            None => store.refuse_ca_targets(&self.plan, &self.out),
        }
    }

    /// Refuses, unless `--force`, a certificate directory that exists (when
    /// not resuming a plan), then any of `files` the command writes beside
    /// the certificates that exists. Refused here before the passphrase is
    /// asked for; the bulk engine decides again under the CA's lock.
    pub fn with_side_files(self, files: &[&Path]) -> Result<Issuance> {
        if self.force {
            return Ok(self);
        }
        if self.existing == Existing::Refuse {
            if let Some(first) = self.pre_existing.first() {
                return Err(Error::Exists(first.clone()));
            }
        }
        for file in files {
            output::check_free(file, false)?;
        }
        Ok(self)
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn out(&self) -> &Path {
        &self.out
    }

    pub fn force(&self) -> bool {
        self.force
    }

    /// Unlocks the key (or uses the held one), takes the CA's lock and
    /// issues the plan. `on_progress` hears of each certificate once it is
    /// durable and recorded, and of those left in place.
    pub fn run(
        &self,
        store: &CaStore,
        key: Key<'_>,
        on_progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Summary> {
        with_key(store, key, |signer, lock| {
            self.issue(store, signer, lock, on_progress)
        })
    }

    /// [`run`](Self::run) without progress, collecting what was issued for
    /// `then`, which writes the command's side files while the CA's lock is
    /// still held.
    pub fn run_then<T>(
        &self,
        store: &CaStore,
        key: Key<'_>,
        then: impl FnOnce(Vec<IssuedCert>) -> Result<T>,
    ) -> Result<T> {
        with_key(store, key, |signer, lock| {
            let mut issued = Vec::new();
            self.issue(store, signer, lock, &mut |p| {
                if let Progress::Issued(c) = p {
                    issued.push(c.clone());
                }
            })?;
            then(issued)
        })
    }

    fn issue(
        &self,
        store: &CaStore,
        signer: &Signer,
        lock: &LedgerLock,
        on_progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Summary> {
        let opts = RunOptions {
            existing: self.existing,
            force: self.force,
            archive: self.archive.clone(),
            k8s_manifest: self.k8s_manifest.clone(),
        };
        bulk::execute(
            store,
            signer,
            &self.plan,
            &self.out,
            lock,
            &opts,
            on_progress,
        )
    }
}

/// Runs `f` with the signing key and the CA's lock: unlocked and taken now,
/// or the ones the caller holds.
fn with_key<T>(
    store: &CaStore,
    key: Key<'_>,
    f: impl FnOnce(&Signer, &LedgerLock) -> Result<T>,
) -> Result<T> {
    let key = key.take(store)?;
    let (signer, lock) = key.parts();
    f(signer, lock)
}

impl<'a> Key<'a> {
    /// The signer and the CA's lock: the held ones, or the key decrypted
    /// and the lock taken now, in that order.
    pub fn take(self, store: &CaStore) -> Result<SigningKey<'a>> {
        match self {
            Key::Held(signer, lock) => Ok(SigningKey::Held(signer, lock)),
            Key::Unlock(passphrase_file) => {
                let signer = store.unlock(passphrase_file)?;
                let lock = store.ledger().lock()?;
                Ok(SigningKey::Unlocked(Box::new(signer), lock))
            }
        }
    }
}

/// A signer ready to sign, with the CA's lock held.
pub enum SigningKey<'a> {
    Held(&'a Signer, &'a LedgerLock),
    /// Unlocked for this command: the key is wiped and the lock released
    /// when this is dropped.
    Unlocked(Box<Signer>, LedgerLock),
}

impl SigningKey<'_> {
    pub fn parts(&self) -> (&Signer, &LedgerLock) {
        match self {
            SigningKey::Held(signer, lock) => (signer, lock),
            SigningKey::Unlocked(signer, lock) => (signer, lock),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::plan::{NamePattern, PemGroups};
    use crate::pki::constraints::NameConstraints;
    use crate::pki::keys::KeyType;
    use crate::pki::profile::{Profile, Validity};

    /// A one-certificate plan: OUT/web.internal.
    fn plan() -> Plan {
        let groups = PemGroups {
            key: KeyType::EcP256,
            days: 30,
            validity: Validity::days_from_now(30).unwrap(),
        };
        let names = vec![NamePattern::literal("web.internal")];
        Plan::single_group(
            NameConstraints::default(),
            groups.group("NAME", Profile::Server, "", names),
        )
    }

    fn refused(result: Result<Issuance>) -> PathBuf {
        match result {
            Err(Error::Exists(path)) => path,
            Err(e) => panic!("refused for another reason: {e}"),
            Ok(_) => panic!("not refused"),
        }
    }

    #[test]
    fn an_existing_target_is_refused_before_a_key_unless_resuming_or_forced() {
        let scratch = tempfile::tempdir().unwrap();
        let out = scratch.path();
        std::fs::create_dir(out.join("web.internal")).unwrap();
        let validated = |existing, force| Issuance::validate(plan(), out, existing, force);
        let path = refused(validated(Existing::Refuse, false).and_then(|i| i.with_side_files(&[])));
        assert_eq!(path, out.join("web.internal"));
        assert!(validated(Existing::Resume, false)
            .and_then(|i| i.with_side_files(&[]))
            .is_ok());
        assert!(validated(Existing::Refuse, true)
            .and_then(|i| i.with_side_files(&[]))
            .is_ok());
    }

    #[test]
    fn an_existing_side_file_is_refused_unless_forced() {
        let scratch = tempfile::tempdir().unwrap();
        let out = scratch.path();
        let side = out.join("listener.hcl");
        std::fs::write(&side, "kept").unwrap();
        let validated = |force| Issuance::validate(plan(), out, Existing::Refuse, force);
        let path = refused(validated(false).and_then(|i| i.with_side_files(&[&side])));
        assert_eq!(path, side);
        assert!(validated(true)
            .and_then(|i| i.with_side_files(&[&side]))
            .is_ok());
    }
}
