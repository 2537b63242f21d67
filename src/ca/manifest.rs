//! `manifest.json`, what a seal signs: every certificate the CA issued,
//! written and read as a stream so that memory stays flat however many
//! there are. `manifest.sig` signs `manifest.sha256`, which holds the
//! manifest's SHA-256 exactly as `openssl dgst -sha256 -r manifest.json`
//! prints it, so stock OpenSSL checks a seal with
//! [`openssl_verify_command`]; [`verify_manifest`] checks it and the files
//! it lists. A manifest sealed before `manifest.sha256` existed is signed
//! directly, and still verifies.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ca::escrow::EscrowRecord;
use crate::ca::ledger::LedgerEntry;
use crate::ca::revocation::{self, CrlRecord};
use crate::ca::store::{self, CaStore};
use crate::pki::keys::KeyType;
use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::fsutil;

/// Everything `manifest.json` says but its certificates, which are only
/// ever streamed: written by [`write_manifest`] one certificate per line,
/// read back by [`read_verified_manifest`] one entry at a time.
#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestHeader {
    pub ca: ManifestCa,
    pub sealed_at: String,
    pub signature_file: String,
    /// The file the signature covers, holding the manifest's SHA-256;
    /// absent from manifests whose signature covers them directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_file: Option<String>,
    pub verify_with: String,
    /// The CRLs the root signed before its seal (`DIR/crl/`).
    #[serde(default)]
    pub crls: Vec<CrlRecord>,
    /// M-of-N escrow of the key, when sealed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow: Option<EscrowRecord>,
}

/// What the manifest says of each certificate: enough to find the file and
/// check it. SANs and validity start stay in the ledger and the certificate.
#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub serial: String,
    pub subject: String,
    pub profile: String,
    pub not_after: String,
    pub sha256: String,
    pub path: Option<String>,
    /// For a certificate written into an archive (`--archive`): the
    /// archive (absolute path, or `-` for standard output) and the member
    /// holding its cert.pem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

impl From<LedgerEntry> for ManifestEntry {
    fn from(e: LedgerEntry) -> Self {
        ManifestEntry {
            serial: e.serial,
            subject: e.subject,
            profile: e.profile,
            not_after: e.not_after,
            sha256: e.sha256,
            path: e.path,
            archive: e.archive,
            member: e.member,
        }
    }
}

/// A [`Write`] that computes the SHA-256 of everything written through it.
struct Sha256Writer<W> {
    inner: W,
    digest: ring::digest::Context,
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A [`Read`] that computes the SHA-256 of everything read through it.
struct Sha256Reader<R> {
    inner: R,
    digest: ring::digest::Context,
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
}

impl<R> Sha256Reader<R> {
    fn new(inner: R) -> Self {
        Sha256Reader {
            inner,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
        }
    }

    fn hex(self) -> String {
        x509::hex(self.digest.finish().as_ref())
    }
}

/// The manifest as [`write_manifest`] wrote it: its SHA-256 (hex) and the
/// number of certificates it lists.
pub struct WrittenManifest {
    pub sha256: String,
    pub certificates: usize,
}

/// Streams the manifest into `out`, one ledger entry at a time, through a
/// SHA-256: memory stays flat however many certificates the CA issued, and
/// the digest that the signature covers (through [`digest_line`]) comes
/// out at the end. `out_path` names `out` in errors.
pub fn write_manifest(
    out: impl Write,
    out_path: &Path,
    store: &CaStore,
    header: &ManifestHeader,
) -> Result<WrittenManifest> {
    let io = |e: std::io::Error| Error::io("write", out_path, e);
    let mut out = BufWriter::with_capacity(
        1 << 16,
        Sha256Writer {
            inner: out,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
        },
    );
    write_manifest_header(&mut out, header).map_err(io)?;
    out.write_all(b",\n  \"certificates\": [").map_err(io)?;
    let mut certificates = 0usize;
    let mut failed = None;
    store.ledger().scan(|entry| {
        if failed.is_none() {
            let separator: &[u8] = if certificates == 0 {
                b"\n    "
            } else {
                b",\n    "
            };
            failed = out
                .write_all(separator)
                .and_then(|()| {
                    Ok(serde_json::to_writer(
                        &mut out,
                        &ManifestEntry::from(entry),
                    )?)
                })
                .err();
            certificates += 1;
        }
    })?;
    if let Some(e) = failed {
        return Err(io(e));
    }
    let end: &[u8] = if certificates == 0 {
        b"]\n}\n"
    } else {
        b"\n  ]\n}\n"
    };
    out.write_all(end).map_err(io)?;
    let hashed = out.into_inner().map_err(|e| io(e.into_error()))?;
    Ok(WrittenManifest {
        sha256: x509::hex(hashed.digest.finish().as_ref()),
        certificates,
    })
}

/// The manifest up to its certificates, one field a line.
fn write_manifest_header(out: &mut impl Write, h: &ManifestHeader) -> std::io::Result<()> {
    out.write_all(b"{\n  \"ca\": ")?;
    serde_json::to_writer(&mut *out, &h.ca)?;
    let mut fields = vec![
        ("sealed_at", h.sealed_at.as_str()),
        ("signature_file", h.signature_file.as_str()),
    ];
    if let Some(digest_file) = &h.digest_file {
        fields.push(("digest_file", digest_file));
    }
    fields.push(("verify_with", &h.verify_with));
    for (k, v) in fields {
        write!(out, ",\n  \"{k}\": ")?;
        serde_json::to_writer(&mut *out, v)?;
    }
    out.write_all(b",\n  \"crls\": ")?;
    serde_json::to_writer(&mut *out, &h.crls)?;
    if let Some(escrow) = &h.escrow {
        out.write_all(b",\n  \"escrow\": ")?;
        serde_json::to_writer(&mut *out, escrow)?;
    }
    Ok(())
}

/// The text of `manifest.sha256`, which the signature covers: exactly what
/// `openssl dgst -sha256 -r manifest.json` prints (and `sha256sum -c`
/// reads), so that stock OpenSSL checks the manifest against it.
pub fn digest_line(sha256_hex: &str) -> String {
    format!("{sha256_hex} *{}\n", store::MANIFEST_FILE)
}

/// The SHA-256 that a `manifest.sha256` text names; only [`digest_line`]'s
/// exact form is accepted.
fn parse_digest_line(text: &[u8], path: &Path) -> Result<String> {
    let hex = text.get(..64).unwrap_or_default();
    let is_hex = hex
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    match std::str::from_utf8(hex) {
        Ok(hex) if is_hex && text == digest_line(hex).as_bytes() => Ok(hex.to_string()),
        _ => Err(Error::invalid(
            "manifest digest",
            path.display().to_string(),
            format!(
                "expected one line '<SHA-256 in hex> *{}' as uca seal writes it; restore the file from a backup",
                store::MANIFEST_FILE
            ),
        )),
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestCa {
    pub name: String,
    pub sha256: String,
    pub key: KeyType,
    pub not_after: String,
}

/// The stock OpenSSL command line that checks the seal, run from the CA
/// directory: the signature over `manifest.sha256`, then that it names the
/// SHA-256 of `manifest.json` (`cmp` exits non-zero on any difference).
/// `pkeyutl -certin` takes the public key straight from ca.pem, so checking
/// writes no file (an extracted ca.pub would land in the sealed CA
/// directory); `openssl dgst -verify` with an extracted key checks the same
/// signature.
pub fn openssl_verify_command(key: KeyType) -> String {
    let digest = key
        .openssl_digest()
        .map(|d| format!(" -digest {d}"))
        .unwrap_or_default();
    format!(
        "openssl pkeyutl -verify -certin -inkey {ca} -rawin{digest} -in {sums} -sigfile {sig} && openssl dgst -sha256 -r {manifest} | cmp - {sums}",
        ca = store::CERT_FILE,
        sums = store::MANIFEST_DIGEST_FILE,
        sig = store::MANIFEST_SIG_FILE,
        manifest = store::MANIFEST_FILE,
    )
}

/// A manifest whose signature verified, read to its end: its header, and
/// the SHA-256 of `manifest.json` that the signature binds (the start of
/// the recovery log's chain).
pub struct VerifiedManifest {
    pub header: ManifestHeader,
    pub sha256: String,
}

/// Checks `manifest.sig` with the key of `ca_path`, then streams the
/// manifest, calling `each` for every certificate entry; returns the rest
/// once the manifest is known to be the signed one and to name that CA.
///
/// The signature covers `manifest.sha256` beside the manifest, which names
/// the manifest's SHA-256. A manifest sealed before that file existed has
/// its signature over the manifest itself, read whole as before.
pub fn read_verified_manifest(
    manifest_path: &Path,
    sig_path: &Path,
    ca_path: &Path,
    each: &mut dyn FnMut(ManifestEntry),
) -> Result<VerifiedManifest> {
    // A FIFO or device in its place is refused before anything else.
    drop(fsutil::open_regular_file(
        manifest_path,
        "read",
        "manifest",
    )?);
    let sig = fsutil::read_capped_file(
        sig_path,
        fsutil::limits::SECRET,
        "read",
        "manifest signature",
    )?;
    let ca_der = x509::read_certificates(ca_path)?.remove(0);
    let ca = x509::parse(&ca_der).map_err(Error::msg)?;
    // The algorithm follows the key in ca.pem; the manifest's own "key"
    // field is a claim inside the signed text, not a fact to act on.
    let alg = KeyType::of_certificate(&ca)?.verification_algorithm();
    let key = ring::signature::UnparsedPublicKey::new(
        alg,
        ca.public_key().subject_public_key.data.as_ref(),
    );
    let digest_path = sibling(manifest_path, store::MANIFEST_DIGEST_FILE);
    let verified = if fsutil::exists(&digest_path) {
        let digest =
            fsutil::read_capped_file(&digest_path, DIGEST_LIMIT, "read", "manifest digest")?;
        if key.verify(&digest, &sig).is_err() {
            return Err(not_signed(sig_path, &digest_path, ca_path));
        }
        let signed_sha256 = parse_digest_line(&digest, &digest_path)?;
        if sha256_of_file(manifest_path)? != signed_sha256 {
            return Err(altered(manifest_path, &digest_path));
        }
        read_signed_manifest(manifest_path, &digest_path, &signed_sha256, each)?
    } else {
        read_legacy_manifest(
            manifest_path,
            &digest_path,
            sig_path,
            ca_path,
            &sig,
            &key,
            each,
        )?
    };
    if x509::sha256_hex(&ca_der) != verified.header.ca.sha256 {
        return Err(Error::Verification(format!(
            "{} is not the CA the manifest names (SHA-256 {})",
            ca_path.display(),
            verified.header.ca.sha256
        )));
    }
    Ok(verified)
}

/// `manifest.sha256` holds one line of 81 bytes.
const DIGEST_LIMIT: u64 = 4096;

fn sibling(path: &Path, name: &str) -> PathBuf {
    fsutil::parent_of(path).join(name)
}

fn not_signed(sig_path: &Path, signed_path: &Path, ca_path: &Path) -> Error {
    Error::Verification(format!(
        "the signature {} does not match {} under the key of {}: it was altered or signed by another CA",
        sig_path.display(),
        signed_path.display(),
        ca_path.display()
    ))
}

fn altered(manifest_path: &Path, digest_path: &Path) -> Error {
    Error::Verification(format!(
        "{} does not have the SHA-256 that the signed {} names: the manifest was altered after sealing; restore it from a backup",
        manifest_path.display(),
        digest_path.display()
    ))
}

/// The SHA-256 (hex) of a file uca wrote, read as a stream.
pub fn sha256_of_file(path: &Path) -> Result<String> {
    let file = fsutil::open_regular_file(path, "read", "manifest")?;
    let mut hashed = Sha256Reader::new(file);
    std::io::copy(&mut hashed, &mut std::io::sink()).map_err(|e| Error::io("read", path, e))?;
    Ok(hashed.hex())
}

/// Streams a manifest whose SHA-256 the signature binds, hashing what it
/// parses: a file replaced between the check and this read is refused.
fn read_signed_manifest(
    manifest_path: &Path,
    digest_path: &Path,
    signed_sha256: &str,
    each: &mut dyn FnMut(ManifestEntry),
) -> Result<VerifiedManifest> {
    let file = fsutil::open_regular_file(manifest_path, "read", "manifest")?;
    let mut reader = BufReader::with_capacity(1 << 16, Sha256Reader::new(file));
    let parsed = parse_manifest(&mut reader, each);
    // Hashed to its end whether or not it parsed: an altered file is named
    // as such rather than by the parse error its change caused.
    std::io::copy(&mut reader, &mut std::io::sink())
        .map_err(|e| Error::io("read", manifest_path, e))?;
    if reader.into_inner().hex() != signed_sha256 {
        return Err(altered(manifest_path, digest_path));
    }
    let header = parsed.map_err(|e| not_a_manifest(manifest_path, e))?;
    Ok(VerifiedManifest {
        header,
        sha256: signed_sha256.to_string(),
    })
}

/// A manifest sealed before `manifest.sha256` existed: the signature is
/// over the manifest itself, so it is read whole, as it was then.
fn read_legacy_manifest(
    manifest_path: &Path,
    digest_path: &Path,
    sig_path: &Path,
    ca_path: &Path,
    sig: &[u8],
    key: &ring::signature::UnparsedPublicKey<&[u8]>,
    each: &mut dyn FnMut(ManifestEntry),
) -> Result<VerifiedManifest> {
    let json =
        fsutil::read_capped_file(manifest_path, fsutil::limits::MANIFEST, "read", "manifest")?;
    if key.verify(&json, sig).is_err() {
        return Err(Error::Verification(format!(
            "{} is missing, and the signature {} does not match {} itself under the key of {} (as it would for a CA sealed before {} existed): restore {} from a backup",
            digest_path.display(),
            sig_path.display(),
            manifest_path.display(),
            ca_path.display(),
            store::MANIFEST_DIGEST_FILE,
            digest_path.display()
        )));
    }
    let header =
        parse_manifest(json.as_slice(), each).map_err(|e| not_a_manifest(manifest_path, e))?;
    Ok(VerifiedManifest {
        header,
        sha256: x509::sha256_hex(&json),
    })
}

fn not_a_manifest(path: &Path, e: serde_json::Error) -> Error {
    Error::invalid(
        "manifest",
        path.display().to_string(),
        format!("not a uca manifest: {e}"),
    )
}

/// Parses one manifest from `reader` (any JSON layout, trailing
/// whitespace only), handing each certificate entry to `each` as it is
/// read and keeping the rest.
fn parse_manifest(
    reader: impl Read,
    each: &mut dyn FnMut(ManifestEntry),
) -> std::result::Result<ManifestHeader, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let header = ManifestSeed(each).deserialize(&mut de)?;
    de.end()?;
    Ok(header)
}

/// Deserializes a manifest object: its `certificates` go one by one to the
/// callback, every other field into a [`ManifestHeader`].
struct ManifestSeed<'a>(&'a mut dyn FnMut(ManifestEntry));

impl<'de> serde::de::DeserializeSeed<'de> for ManifestSeed<'_> {
    type Value = ManifestHeader;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<ManifestHeader, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ManifestSeed<'_> {
    type Value = ManifestHeader;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a uca manifest object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<ManifestHeader, A::Error> {
        use serde::de::Error as _;
        let mut fields = serde_json::Map::new();
        let mut certificates = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "certificates" {
                if certificates {
                    return Err(A::Error::duplicate_field("certificates"));
                }
                map.next_value_seed(EntriesSeed(&mut *self.0))?;
                certificates = true;
            } else if fields.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate field `{key}`")));
            } else {
                let value = map.next_value::<serde_json::Value>()?;
                fields.insert(key, value);
            }
        }
        if !certificates {
            return Err(A::Error::missing_field("certificates"));
        }
        serde_json::from_value(serde_json::Value::Object(fields)).map_err(A::Error::custom)
    }
}

/// The `certificates` array, handed over one entry at a time.
struct EntriesSeed<'a>(&'a mut dyn FnMut(ManifestEntry));

impl<'de> serde::de::DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EntriesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of certificate entries")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<ManifestEntry>()? {
            (self.0)(entry);
        }
        Ok(())
    }
}

/// Result of checking a manifest and the files it lists.
pub struct ManifestCheck {
    pub crls: usize,
    /// The CRL files the manifest lists, relative to the CA directory.
    pub crl_paths: Vec<String>,
    pub certificates: usize,
    pub files_ok: usize,
    /// Entries whose file was later re-issued (`--force`) at the same path:
    /// only the newest entry for a path describes the file on disk.
    pub replaced: usize,
    pub problems: Vec<String>,
    /// Certificates whose archive went to standard output: nothing to read.
    pub unchecked: usize,
    /// The SHA-256 of manifest.json that the signature binds.
    pub sha256: String,
}

/// Verifies `manifest.sig` (through `manifest.sha256`) with the public key
/// of `ca_pem`, then every listed certificate file's SHA-256, streaming
/// the entries.
pub fn verify_manifest(
    manifest_path: &Path,
    sig_path: &Path,
    ca_path: &Path,
) -> Result<ManifestCheck> {
    let ca_dir = fsutil::parent_of(manifest_path);
    let mut files = FileCheck::default();
    let mut certificates = 0;
    let verified = read_verified_manifest(manifest_path, sig_path, ca_path, &mut |entry| {
        certificates += 1;
        files.check(entry);
    })?;
    let mut problems = revocation::check_files(ca_dir, &verified.header.crls);
    let (files_ok, replaced, unchecked) = (files.ok, files.replaced, files.unchecked);
    problems.extend(files.problems());
    Ok(ManifestCheck {
        crls: verified.header.crls.len(),
        crl_paths: verified
            .header
            .crls
            .iter()
            .map(|c| c.path.clone())
            .collect(),
        certificates,
        files_ok,
        replaced,
        problems,
        unchecked,
        sha256: verified.sha256,
    })
}

/// The certificate files of a manifest, checked as its entries stream by.
/// An entry whose file differs waits in `pending`: a later entry for the
/// same path (a re-issue at that path) makes it `replaced`; any still
/// waiting at the end is a problem. Memory grows with those only, never
/// with the entries whose file matches.
#[derive(Default)]
struct FileCheck {
    ok: usize,
    replaced: usize,
    /// By path: when it was found (the order problems are reported in)
    /// and the problem the entry's file has.
    pending: HashMap<String, (usize, String)>,
    found: usize,
    /// The archive being read, at the member last matched: an archive's
    /// members come in the order of its ledger entries.
    archive: Option<ArchiveCursor>,
    /// Archived certificates that cannot be checked here (written to
    /// standard output).
    unchecked: usize,
}

/// An archive read forward, member by member.
struct ArchiveCursor {
    path: String,
    reader: Option<crate::support::tar::TarReader<std::io::BufReader<std::fs::File>>>,
}

impl FileCheck {
    fn check(&mut self, entry: ManifestEntry) {
        if let (Some(archive), Some(member)) = (&entry.archive, &entry.member) {
            return self.check_member(archive, member, &entry);
        }
        let Some(path) = entry.path else { return };
        if self.pending.remove(&path).is_some() {
            self.replaced += 1;
        }
        let file = Path::new(&path);
        let problem = match x509::read_certificates(file) {
            Ok(certs) if certs.first().map(|c| x509::sha256_hex(c)) == Some(entry.sha256) => {
                self.ok += 1;
                return;
            }
            Ok(_) => format!(
                "{}: fingerprint differs from the manifest (serial {})",
                file.display(),
                entry.serial
            ),
            Err(_) if !file.exists() => {
                format!("{}: missing (serial {})", file.display(), entry.serial)
            }
            Err(e) => format!("{}: {e}", file.display()),
        };
        self.found += 1;
        self.pending.insert(path, (self.found, problem));
    }

    /// Finds `member` further on in `archive` and compares the certificate
    /// in it with the entry's fingerprint.
    fn check_member(&mut self, archive: &str, member: &str, entry: &ManifestEntry) {
        if archive == "-" {
            self.unchecked += 1;
            return;
        }
        if self.archive.as_ref().is_none_or(|c| c.path != archive) {
            let reader = std::fs::File::open(archive).ok().map(|f| {
                crate::support::tar::TarReader::new(
                    std::io::BufReader::with_capacity(1 << 16, f),
                    fsutil::limits::PEM,
                )
            });
            self.archive = Some(ArchiveCursor {
                path: archive.to_string(),
                reader,
            });
        }
        let cursor = self.archive.as_mut().expect("set above");
        let problem = match cursor.reader.as_mut() {
            None => format!("{archive}: missing or unreadable (serial {})", entry.serial),
            Some(reader) => loop {
                match reader.next_file() {
                    Ok(Some(m)) if m.path == member => {
                        let der = x509::parse_blocks(&m.contents)
                            .ok()
                            .and_then(|b| b.into_iter().next())
                            .map(|b| x509::sha256_hex(b.contents()));
                        if der.as_deref() == Some(entry.sha256.as_str()) {
                            self.ok += 1;
                            return;
                        }
                        break format!(
                            "{archive}: member {member}: fingerprint differs from the manifest (serial {})",
                            entry.serial
                        );
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => {
                        break format!(
                            "{archive}: no member {member} after the ones checked before it (serial {})",
                            entry.serial
                        )
                    }
                    Err(e) => break format!("{archive}: {e} (serial {})", entry.serial),
                }
            },
        };
        self.found += 1;
        self.pending
            .insert(format!("{archive}#{member}"), (self.found, problem));
    }

    /// The problems still pending, in the order their entries came.
    fn problems(self) -> impl Iterator<Item = String> {
        let mut pending: Vec<_> = self.pending.into_values().collect();
        pending.sort_unstable_by_key(|(found, _)| *found);
        pending.into_iter().map(|(_, problem)| problem)
    }
}
