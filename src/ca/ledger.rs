//! The ledger: one JSON line per issued certificate, appended under an
//! exclusive lock and synced before uca reports success. A torn last line
//! (power loss mid-append) is dropped on the next append; every complete line
//! stays. Serials are checked against it so none is ever reused.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::support::error::{Error, IoContext, Result};
use crate::support::fsutil;
use crate::support::hashfilter::HashFilter;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Hex, lower case, no separators.
    pub serial: String,
    pub subject: String,
    pub sans: Vec<String>,
    /// `server`, `client`, `both` or `intermediate`.
    pub profile: String,
    pub key: String,
    pub not_before: String,
    pub not_after: String,
    /// SHA-256 of the certificate's DER, hex.
    pub sha256: String,
    /// Where the certificate was written, if uca wrote it.
    pub path: Option<String>,
    pub issued_at: String,
    /// The serial of the certificate this one renewed at the same path
    /// (`uca issue --plan --renew-within`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Where the certificate went when it was written into a tar archive
    /// (`--archive`) instead of a directory: the archive (absolute path, or
    /// `-` for standard output), the member holding its cert.pem, and the
    /// SHA-256 of that member's bytes (`tar -xOf A M | sha256sum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_sha256: Option<String>,
}

pub struct Ledger {
    path: PathBuf,
    lock_path: PathBuf,
}

/// Held while issuing: only one uca process signs with a CA at a time.
pub struct LedgerLock {
    _file: File,
}

impl Ledger {
    pub fn new(ca_dir: &Path) -> Ledger {
        Ledger {
            path: ca_dir.join("ledger.jsonl"),
            lock_path: ca_dir.join("ledger.lock"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the CA's exclusive lock.
    pub fn lock(&self) -> Result<LedgerLock> {
        let file = fsutil::open_in_place(
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600),
            &self.lock_path,
            "open the lock file",
        )?;
        file.lock().ctx("lock", &self.lock_path)?;
        self.check_appendable()?;
        Ok(LedgerLock { _file: file })
    }

    /// Under the lock, before anything is signed or published: the ledger
    /// must be able to take the entries, so that no certificate is ever
    /// published that the ledger (and so the sealed manifest) would miss.
    fn check_appendable(&self) -> Result<()> {
        if fsutil::exists(&self.path) {
            fsutil::open_in_place(
                OpenOptions::new().append(true),
                &self.path,
                "open the ledger",
            )?;
            return Ok(());
        }
        let dir = fsutil::parent_of(&self.path);
        if !fsutil::is_writable_dir(dir) {
            return Err(Error::msg(format!(
                "cannot create the ledger {}: this user may not write to {}; nothing was signed",
                self.path.display(),
                dir.display()
            )));
        }
        Ok(())
    }

    /// Calls `each` for every complete entry, streaming. A torn final line
    /// (no newline: a crash mid-append) is ignored; a malformed complete line
    /// is an error naming its line number.
    pub fn scan(&self, mut each: impl FnMut(LedgerEntry)) -> Result<()> {
        if !fsutil::exists(&self.path) {
            return Ok(());
        }
        let file =
            fsutil::open_in_place(OpenOptions::new().read(true), &self.path, "read the ledger")?;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut number = 0;
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .ctx("read the ledger", &self.path)?;
            if n == 0 || !line.ends_with('\n') {
                return Ok(());
            }
            number += 1;
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(&line).map_err(|e| {
                Error::msg(format!(
                    "the ledger {} is damaged at line {number}: {e}",
                    self.path.display()
                ))
            })?;
            each(entry);
        }
    }

    /// The serials the ledger has used, with room for `more` serials to
    /// be drawn; see [`used_serials_with_room`].
    pub fn used_serials(&self, more: u64) -> Result<HashFilter> {
        let mut used = used_serials_with_room(self.most_entries().saturating_add(more));
        self.scan(|e| {
            used.insert(e.serial.as_str());
        })?;
        Ok(used)
    }

    /// At least as many as the ledger's entries, from its size alone: an
    /// entry's serial, SHA-256 and field names take more than 128 bytes.
    pub fn most_entries(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len() / 128)
    }

    /// Appends entries in one write and syncs. Call only while holding the lock.
    pub fn append(&self, _lock: &LedgerLock, entries: &[LedgerEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(entries.len() * 400);
        for e in entries {
            serde_json::to_writer(&mut buf, e)
                .map_err(|e| Error::msg(format!("cannot encode a ledger entry: {e}")))?;
            buf.push(b'\n');
        }
        let mut f = fsutil::open_in_place(
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(0o644),
            &self.path,
            "open the ledger",
        )?;
        // Drop a torn tail left by a crash in the middle of an earlier append.
        let len = f.metadata().ctx("read the ledger", &self.path)?.len();
        if len > 0 {
            f.seek(SeekFrom::Start(len - 1))
                .ctx("read the ledger", &self.path)?;
            let mut last = [0u8; 1];
            f.read_exact(&mut last).ctx("read the ledger", &self.path)?;
            if last[0] != b'\n' {
                let mut text = Vec::new();
                f.seek(SeekFrom::Start(0))
                    .ctx("read the ledger", &self.path)?;
                f.read_to_end(&mut text)
                    .ctx("read the ledger", &self.path)?;
                let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                f.set_len(keep as u64)
                    .ctx("repair the ledger", &self.path)?;
            }
        }
        f.seek(SeekFrom::End(0))
            .ctx("append to the ledger", &self.path)?;
        f.write_all(&buf).ctx("append to the ledger", &self.path)?;
        f.sync_all().ctx("sync the ledger", &self.path)?;
        Ok(())
    }
}

/// Room for `count` serials (hex, as the ledger records them), 16 bits
/// each: a serial already used is always refused, and an unused one looks
/// used (and is only drawn again) at most 1 time in 16. Serials stay unique
/// in 2 to 4 bytes each, where a set of their hex strings took about 100.
pub fn used_serials_with_room(count: u64) -> HashFilter {
    HashFilter::with_room_for(count, 16)
}
