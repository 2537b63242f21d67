//! The ledger: one JSON line per issued certificate, appended under an
//! exclusive lock and synced before uca reports success. A torn last line
//! (power loss mid-append) is dropped on the next append; every complete line
//! stays. Serials are checked against it so none is ever reused.

use std::collections::hash_map::DefaultHasher;
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::support::error::{Error, IoContext, Result};
use crate::support::fsutil;

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

    /// The serials the ledger has used, as a [`UsedSerials`] with room for
    /// `more` serials to be drawn.
    pub fn used_serials(&self, more: u64) -> Result<UsedSerials> {
        let mut used = UsedSerials::with_room_for(self.most_entries().saturating_add(more));
        self.scan(|e| used.insert(&e.serial))?;
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

/// Every serial used so far, as bits: one bit per hash of a serial, sized
/// so that at most 1 bit in 16 is set. A serial is never reported unused
/// once inserted; an unused serial whose bit another set (1 draw in 16 or
/// fewer) is only drawn again, so uniqueness holds while memory is 2 to 4
/// bytes a serial (2 MB for a million, where a set of their hex strings
/// took about 100 MB).
pub struct UsedSerials {
    bits: Vec<u64>,
}

impl UsedSerials {
    /// Room for `count` serials at 16 bits each, at least 64 Ki bits.
    pub fn with_room_for(count: u64) -> UsedSerials {
        let bits = count
            .saturating_mul(16)
            .clamp(1 << 16, 1 << 40)
            .next_power_of_two();
        UsedSerials {
            bits: vec![0; (bits / 64) as usize],
        }
    }

    /// The bit of `serial` (hex, as the ledger records it).
    fn index(&self, serial: &str) -> (usize, u64) {
        let mut hasher = DefaultHasher::new();
        serial.hash(&mut hasher);
        let bit = hasher.finish() & (self.bits.len() as u64 * 64 - 1);
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    pub fn insert(&mut self, serial: &str) {
        let (word, mask) = self.index(serial);
        self.bits[word] |= mask;
    }

    /// Whether `serial` may have been used: false means it never was.
    pub fn may_contain(&self, serial: &str) -> bool {
        let (word, mask) = self.index(serial);
        self.bits[word] & mask != 0
    }

    /// Inserts `serial` if it was surely unused; false if it may be used.
    pub fn insert_if_unused(&mut self, serial: &str) -> bool {
        if self.may_contain(serial) {
            return false;
        }
        self.insert(serial);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::UsedSerials;

    #[test]
    fn a_used_serial_is_never_reported_unused() {
        let serials: Vec<String> = (0..100_000u32).map(|i| format!("{i:040x}")).collect();
        let mut used = UsedSerials::with_room_for(serials.len() as u64);
        for s in &serials {
            assert!(used.insert_if_unused(s) || used.may_contain(s));
        }
        assert!(serials.iter().all(|s| used.may_contain(s)));
        assert!(serials.iter().all(|s| !used.insert_if_unused(s)));
        // Sized at 16 bits a serial: few unused serials look used.
        let looks_used = (100_000..200_000u32)
            .filter(|i| used.may_contain(&format!("{i:040x}")))
            .count();
        assert!(looks_used < 100_000 / 8, "{looks_used} of 100000 look used");
    }

    #[test]
    fn at_most_four_bytes_a_serial() {
        let used = UsedSerials::with_room_for(1_000_000);
        assert!(used.bits.len() * 8 <= 4 * 1024 * 1024);
    }
}
