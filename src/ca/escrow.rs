//! M-of-N escrow of a sealed root's key. At the seal the key is encrypted
//! again under a fresh random 256-bit secret (`private/escrow-key.pem`) and
//! the secret is split into N Shamir shares, one file per custodian, any M
//! of which recombine it (`pki::shamir`). The copy under the operator's
//! passphrase is destroyed, so no passphrase someone kept opens the key.
//! Each share file names its CA and the split, and carries a check over
//! its own fields (a damaged file is named before any recombination) and a
//! commitment to the secret, which the signed manifest carries too (shares
//! of another split, or altered ones, are refused before decrypting).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::pki::age::{self, Recipient};
use crate::pki::passphrase::Passphrase;
use crate::pki::shamir;
use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};

pub const ESCROW_KEY_FILE: &str = "private/escrow-key.pem";
const FORMAT: &str = "uca-escrow-share-1";

/// What the seal was asked for: `--escrow-shares M/N --escrow-dir DIR`.
#[derive(Clone, Debug)]
pub struct EscrowSpec {
    pub threshold: u8,
    pub shares: u8,
    pub dir: PathBuf,
    /// Replace existing share files.
    pub force: bool,
    /// None, or one age recipient per share, in order: share i is
    /// encrypted to custodian i.
    pub custodians: Vec<Recipient>,
}

/// The escrow as the manifest and the seal record state it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EscrowRecord {
    pub threshold: u8,
    pub shares: u8,
    pub key_file: String,
    /// SHA-256 commitment to the secret (see [`commitment`]).
    pub secret_sha256: String,
    /// The age recipient each share was encrypted to, in share order
    /// (none when the shares were written in the clear).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custodians: Vec<String>,
}

impl EscrowRecord {
    /// Who share `i` (0-based) is for, as the seal's report says it.
    pub fn holder(&self, i: usize) -> String {
        match self.custodians.get(i) {
            Some(c) => format!("encrypted to {c}: give to that custodian"),
            None => "give to one custodian".to_string(),
        }
    }
}

/// One custodian's file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareFile {
    pub format: String,
    /// SHA-256 of the root certificate (ca.pem's DER).
    pub ca: String,
    pub index: u8,
    pub threshold: u8,
    pub shares: u8,
    /// The share, hex.
    pub share: String,
    pub secret_sha256: String,
    /// SHA-256 over every field above.
    pub check: String,
}

/// Parses `M/N` with 2 <= M <= N <= 255.
pub fn parse_threshold(text: &str) -> Result<(u8, u8)> {
    let bad = || {
        Error::invalid(
            "--escrow-shares",
            text,
            "expected M/N with 2 <= M <= N <= 255: any M of N custodians recover the key (e.g. 3/5)",
        )
    };
    let (m, n) = text.split_once('/').ok_or_else(bad)?;
    let (m, n): (u8, u8) = (m.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if m < 2 || m > n {
        return Err(bad());
    }
    Ok((m, n))
}

/// Where the custodians' recipients were given, for error messages.
#[derive(Clone, Copy, Debug)]
pub enum CustodianSource {
    Flag,
    Plan,
}

impl CustodianSource {
    fn name(self) -> &'static str {
        match self {
            CustodianSource::Flag => "--custodian",
            CustodianSource::Plan => "[escrow] custodians",
        }
    }
}

/// `--escrow-shares M/N --escrow-dir DIR` (clap requires both) and the
/// custodians' recipients, checked before anything is written.
pub fn spec(
    shares: Option<&str>,
    dir: Option<PathBuf>,
    custodians: &[String],
    source: CustodianSource,
    force: bool,
) -> Result<Option<EscrowSpec>> {
    let (Some(text), Some(dir)) = (shares, dir) else {
        return Ok(None);
    };
    let (threshold, shares) = parse_threshold(text)?;
    Ok(Some(EscrowSpec {
        threshold,
        shares,
        dir,
        force,
        custodians: parse_custodians(custodians, shares, source)?,
    }))
}

/// None, or exactly one distinct age recipient per share.
fn parse_custodians(
    texts: &[String],
    shares: u8,
    source: CustodianSource,
) -> Result<Vec<Recipient>> {
    let what = source.name();
    if !texts.is_empty() && texts.len() != usize::from(shares) {
        return Err(Error::msg(format!(
            "{} {what} recipients given for {shares} shares; give none, or exactly {shares}: share i is encrypted to the i-th",
            texts.len()
        )));
    }
    let mut parsed: Vec<Recipient> = Vec::with_capacity(texts.len());
    for text in texts {
        let recipient = Recipient::parse(text, what)?;
        if let Some(first) = parsed.iter().find(|r| r.key() == recipient.key()) {
            return Err(Error::invalid(
                what,
                text.as_str(),
                format!(
                    "it repeats the recipient {}; each share goes to a different custodian's key",
                    first.text
                ),
            ));
        }
        parsed.push(recipient);
    }
    Ok(parsed)
}

/// The file of share `index` (1-based) of `n`: `.json.age` when it is
/// encrypted to a custodian (decrypted, it is the `.json` file).
pub fn share_path(spec: &EscrowSpec, index: u8) -> PathBuf {
    let encrypted = if spec.custodians.is_empty() {
        ""
    } else {
        ".age"
    };
    spec.dir
        .join(format!("share-{index}-of-{}.json{encrypted}", spec.shares))
}

/// Refuses, before anything is signed or destroyed, an escrow directory
/// inside the CA directory (the shares would sit beside the key they
/// open) and existing share files unless `force`.
pub fn check_spec(spec: &EscrowSpec, ca_dir: &Path) -> Result<()> {
    let ca = fsutil::resolve(ca_dir)?;
    let dir = fsutil::resolve(&spec.dir)?;
    if dir.starts_with(&ca) {
        return Err(Error::invalid(
            "--escrow-dir",
            spec.dir.display().to_string(),
            format!(
                "it is inside the CA directory {}; the shares must leave the machine with their custodians, apart from the key they open",
                ca_dir.display()
            ),
        ));
    }
    fsutil::check_dir_creatable("--escrow-dir", &spec.dir)?;
    for index in 1..=spec.shares {
        crate::support::output::check_free(&share_path(spec, index), spec.force)?;
    }
    Ok(())
}

/// The commitment to the secret that shares and manifest carry.
pub fn commitment(secret: &[u8]) -> String {
    let mut data = b"uca escrow secret\n".to_vec();
    data.extend_from_slice(secret);
    x509::sha256_hex(&data)
}

fn share_check(s: &ShareFile) -> String {
    x509::sha256_hex(
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            s.format, s.ca, s.index, s.threshold, s.shares, s.share, s.secret_sha256
        )
        .as_bytes(),
    )
}

/// A fresh secret, the passphrase it stands for, and its commitment.
pub struct NewSecret {
    secret: Zeroizing<Vec<u8>>,
    pub passphrase: Passphrase,
}

impl NewSecret {
    pub fn generate() -> NewSecret {
        use rand_core::RngCore;
        let mut secret = Zeroizing::new(vec![0u8; 32]);
        rand_core::OsRng.fill_bytes(&mut secret);
        let passphrase = Passphrase::from_secret(&secret);
        NewSecret { secret, passphrase }
    }

    pub fn record(&self, spec: &EscrowSpec) -> EscrowRecord {
        EscrowRecord {
            threshold: spec.threshold,
            shares: spec.shares,
            key_file: ESCROW_KEY_FILE.to_string(),
            secret_sha256: commitment(&self.secret),
            custodians: spec.custodians.iter().map(|c| c.text.clone()).collect(),
        }
    }

    /// Splits the secret and writes one file per custodian, 0600, each
    /// atomically, in a directory of mode 0700.
    pub fn write_shares(&self, spec: &EscrowSpec, ca_fingerprint: &str) -> Result<Vec<PathBuf>> {
        fsutil::create_dir(&spec.dir, 0o700)?;
        let parts = shamir::split(&self.secret, spec.threshold, spec.shares);
        let mut written = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let mut file = ShareFile {
                format: FORMAT.into(),
                ca: ca_fingerprint.into(),
                index: i as u8 + 1,
                threshold: spec.threshold,
                shares: spec.shares,
                share: x509::hex(part),
                secret_sha256: commitment(&self.secret),
                check: String::new(),
            };
            file.check = share_check(&file);
            let text = Zeroizing::new(
                serde_json::to_string_pretty(&file)
                    .map_err(|e| Error::msg(format!("cannot encode a share: {e}")))?
                    + "\n",
            );
            let bytes = match spec.custodians.get(i) {
                Some(custodian) => {
                    Zeroizing::new(age::encrypt_armored(custodian, text.as_bytes())?)
                }
                None => text,
            };
            let path = share_path(spec, file.index);
            fsutil::write_atomic(&path, bytes.as_bytes(), Mode::Secret, spec.force, true)?;
            written.push(path);
        }
        fsutil::sync_dir(&spec.dir)?;
        Ok(written)
    }
}

/// A share file read and checked against itself, not yet against a CA.
pub struct Share {
    pub path: PathBuf,
    pub file: ShareFile,
    bytes: Zeroizing<Vec<u8>>,
}

fn damaged(path: &Path, why: impl Into<String>) -> Error {
    Error::invalid("share", path.display().to_string(), why)
}

/// Reads a share file; a damaged one (not JSON, wrong format, a check
/// that does not match its contents) is named.
pub fn read_share(path: &Path) -> Result<Share> {
    let bytes = Zeroizing::new(fsutil::read_capped(
        path,
        fsutil::limits::SETTINGS,
        "read",
        "share file",
    )?);
    let text = std::str::from_utf8(&bytes).map_err(|_| match age::is_age_file(&bytes) {
        true => encrypted(path),
        false => damaged(path, "it is not valid UTF-8 text: not a uca escrow share"),
    })?;
    parse_share(text, path)
}

/// A share still encrypted to its custodian: how to open it.
pub fn encrypted(path: &Path) -> Error {
    let shown = path.display().to_string();
    let plain = shown.strip_suffix(".age").unwrap_or("share.json");
    Error::invalid(
        "share",
        shown.as_str(),
        format!(
            "it is encrypted to a custodian's age key; that custodian decrypts it first (age -d -i KEY_FILE -o {plain} {shown}) and gives the decrypted {plain}"
        ),
    )
}

/// A share's text, as a file holds it or a custodian pastes it; `path`
/// names it in errors.
pub fn parse_share(text: &str, path: &Path) -> Result<Share> {
    if age::is_age_file(text.as_bytes()) {
        return Err(encrypted(path));
    }
    let file: ShareFile = serde_json::from_str(text).map_err(|e| {
        damaged(
            path,
            format!("it is damaged or not a uca escrow share ({e})"),
        )
    })?;
    if file.format != FORMAT {
        return Err(damaged(
            path,
            format!("its format is '{}', expected {FORMAT}", file.format),
        ));
    }
    if share_check(&file) != file.check {
        return Err(damaged(
            path,
            "it is damaged: its check does not match its contents",
        ));
    }
    let bytes = hex_decode(&file.share)
        .ok_or_else(|| damaged(path, "it is damaged: the share is not hexadecimal"))?;
    if file.index == 0
        || file.index > file.shares
        || file.threshold < 2
        || file.threshold > file.shares
    {
        return Err(damaged(
            path,
            "it is damaged: its index or threshold is out of range",
        ));
    }
    Ok(Share {
        path: path.to_path_buf(),
        file,
        bytes,
    })
}

fn hex_decode(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(Zeroizing::new(bytes))
}

/// Checks each share against the CA (`fingerprint`) and its signed escrow
/// record, refuses repeats, and once `record.threshold` valid shares are
/// there recombines the passphrase, in memory only. Returns it with the
/// indices used.
pub fn recombine(
    shares: &[Share],
    fingerprint: &str,
    record: &EscrowRecord,
    ca_dir: &Path,
) -> Result<(Passphrase, Vec<u8>)> {
    let mut used: Vec<&Share> = Vec::new();
    for share in shares {
        let f = &share.file;
        if f.ca != fingerprint {
            return Err(damaged(&share.path, format!(
                "it belongs to another CA (root SHA-256 {}), not to {} (root SHA-256 {fingerprint})",
                f.ca,
                ca_dir.display()
            )));
        }
        if (f.threshold, f.shares) != (record.threshold, record.shares) {
            return Err(damaged(
                &share.path,
                format!(
                    "it is from a {}-of-{} split; the key of {} was escrowed {}-of-{}",
                    f.threshold,
                    f.shares,
                    ca_dir.display(),
                    record.threshold,
                    record.shares
                ),
            ));
        }
        if f.secret_sha256 != record.secret_sha256 {
            return Err(damaged(&share.path, format!(
                "it is from another escrow of this CA: its secret commitment differs from the one in {}'s signed manifest",
                ca_dir.display()
            )));
        }
        if let Some(first) = used.iter().find(|u| u.file.index == f.index) {
            return Err(damaged(
                &share.path,
                format!(
                    "it repeats share {} (already given as {}); bring {} different shares",
                    f.index,
                    first.path.display(),
                    record.threshold
                ),
            ));
        }
        used.push(share);
    }
    if used.len() < usize::from(record.threshold) {
        return Err(Error::msg(format!(
            "{} valid share{} given; the key of {} needs {} of its {}: nothing was decrypted",
            used.len(),
            if used.len() == 1 { "" } else { "s" },
            ca_dir.display(),
            record.threshold,
            record.shares
        )));
    }
    let parts: Vec<(u8, &[u8])> = used
        .iter()
        .map(|s| (s.file.index, s.bytes.as_slice()))
        .collect();
    let secret = shamir::combine(&parts);
    if commitment(&secret) != record.secret_sha256 {
        return Err(Error::msg(
            "the shares do not recombine to the escrowed secret (one was altered and its check recomputed): nothing was decrypted",
        ));
    }
    let mut indices: Vec<u8> = used.iter().map(|s| s.file.index).collect();
    indices.sort_unstable();
    Ok((Passphrase::from_secret(&secret), indices))
}
