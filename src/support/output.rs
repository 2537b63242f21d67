//! Publishing a certificate's files: they are written into a hidden temporary
//! directory beside the target and renamed into place, so a reader (or a
//! crash) sees either the complete set or nothing.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::support::error::{Error, IoContext, Result};
use crate::support::fsutil;

/// Fails if `target` exists and `force` is not set.
pub fn check_free(target: &Path, force: bool) -> Result<()> {
    if !force && fs::symlink_metadata(target).is_ok() {
        return Err(Error::Exists(target.to_path_buf()));
    }
    Ok(())
}

/// A hidden name beside `target`, unique to this process and call: the
/// process id and a counter (no system call needed, unlike a random tag).
fn hidden_sibling(target: &Path, what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let tag = (u64::from(pid) << 32) | u64::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    crate::support::fsutil::hidden_sibling(target, what, tag)
}

fn write_new(path: &Path, contents: &[u8], mode: u32, sync: bool) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .ctx("create", path)?;
    f.write_all(contents).ctx("write", path)?;
    if sync {
        f.sync_all().ctx("sync", path)?;
    }
    Ok(())
}

/// One file to write, relative to the directory it is published in.
pub struct RenderedFile {
    pub path: String,
    pub contents: zeroize::Zeroizing<Vec<u8>>,
    pub mode: fsutil::Mode,
}

/// A file whose bytes recur in every directory of a run (the CA
/// certificate: `ca.pem`, `certs.d/ca.crt`). After the first directory
/// publishes it, every later copy is a hard link to that first one: one
/// link(2) instead of creating, writing and closing a file. A copy that
/// cannot be linked (another file system, the first one gone) is written
/// and becomes the one later copies link to.
pub struct SharedCopies<'a> {
    bytes: &'a [u8],
    /// Each shared file's relative path -> where it was first published.
    first: std::collections::HashMap<String, PathBuf>,
}

impl<'a> SharedCopies<'a> {
    pub fn new(bytes: &'a [u8]) -> SharedCopies<'a> {
        SharedCopies {
            bytes,
            first: std::collections::HashMap::new(),
        }
    }

    fn is_shared(&self, f: &RenderedFile) -> bool {
        f.mode == fsutil::Mode::Public && f.contents.as_slice() == self.bytes
    }

    /// Puts `f` at `path` as a link to its first copy; false if it must be
    /// written instead.
    fn link(&self, f: &RenderedFile, path: &Path) -> bool {
        self.is_shared(f)
            && self
                .first
                .get(&f.path)
                .is_some_and(|first| fs::hard_link(first, path).is_ok())
    }
}

/// Writes `files` as the directory `target`. The temporary directory is
/// private to this call, so its files are written directly; the one rename at
/// the end is what makes the set appear atomically. With `sync`, files and
/// directories are synced here; bulk issuance passes `false` and syncs a
/// whole batch at once instead.
pub fn publish_dir(target: &Path, files: &[RenderedFile], replace: bool, sync: bool) -> Result<()> {
    check_free(target, replace)?;
    let parent = fsutil::parent_of(target);
    if !parent.is_dir() {
        fsutil::create_dir(parent, 0o755)?;
    }
    publish_checked(target, files, replace, sync, None)
}

/// [`publish_dir`] for a caller that has already checked the target and
/// created its parent (the bulk engine, which checks a whole plan first).
pub fn publish_checked(
    target: &Path,
    files: &[RenderedFile],
    replace: bool,
    sync: bool,
    mut shared: Option<&mut SharedCopies<'_>>,
) -> Result<()> {
    let parent = fsutil::parent_of(target);
    let tmp = hidden_sibling(target, "tmp");
    // Set once the temporary directory is ours: a failure before that (a
    // directory of that name already there) must not remove someone else's.
    let mut created = false;
    let result = (|| {
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&tmp)
            .ctx("create", &tmp)?;
        created = true;
        for f in files {
            let path = tmp.join(&f.path);
            let dir = fsutil::parent_of(&path);
            if f.path.contains('/') && !dir.is_dir() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir)
                    .ctx("create", dir)?;
            }
            let linked = shared.as_deref().is_some_and(|c| c.link(f, &path));
            if !linked {
                write_new(&path, &f.contents, f.mode.bits(), sync)?;
                if let Some(copies) = shared.as_deref_mut().filter(|c| c.is_shared(f)) {
                    copies.first.insert(f.path.clone(), target.join(&f.path));
                }
            }
        }
        if sync {
            fsutil::sync_dir(&tmp)?;
        }
        match crate::support::fsutil::rename_noreplace(&tmp, target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && replace => {
                replace_with(&tmp, target)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(target.to_path_buf()))
            }
            Err(e) => Err(Error::io("rename into", target, e)),
        }
    })();
    if result.is_err() && created {
        let _ = fs::remove_dir_all(&tmp);
    }
    result?;
    if sync {
        fsutil::sync_dir(parent)?;
    }
    Ok(())
}

/// Puts the directory `tmp` in place of the existing `target`, which the
/// caller was allowed to replace. rename(2) cannot replace a non-empty
/// directory: the old one is moved aside, the new one put in, then the old
/// one dropped; if the new one cannot go in, the old one is put back.
fn replace_with(tmp: &Path, target: &Path) -> Result<()> {
    let old = hidden_sibling(target, "old");
    crate::support::fsutil::rename_noreplace(target, &old).ctx("move aside", target)?;
    if let Err(e) = crate::support::fsutil::rename_noreplace(tmp, target) {
        let _ = fs::rename(&old, target);
        return Err(Error::io("rename into", target, e));
    }
    let meta = fs::symlink_metadata(&old).ctx("read", &old)?;
    if meta.is_dir() {
        fs::remove_dir_all(&old).ctx("remove", &old)
    } else {
        fs::remove_file(&old).ctx("remove", &old)
    }
}

/// Makes everything written so far on `dir`'s file system durable with one
/// call: cheaper than one fsync per file when thousands were written.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    let d = fs::File::open(dir).ctx("open", dir)?;
    crate::support::sys::sync_filesystem_of(&d).ctx("sync the file system of", dir)
}

/// The hidden directories in `dir` named like a publishing leftover
/// (`.HEAD.tmp-TAG`, `.HEAD.old-TAG`), with their HEAD. Only candidates:
/// [`remove_leftover`] decides whether one really is uca's.
pub fn leftover_candidates(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for e in entries {
        let e = e.ctx("read", dir)?;
        let name = e.file_name();
        let Some((head, what, _)) = name.to_str().and_then(fsutil::parse_hidden_sibling) else {
            continue;
        };
        // Only directories: publishing never leaves a temporary file behind.
        if (what == "tmp" || what == "old") && e.file_type().ctx("read", &e.path())?.is_dir() {
            found.push((head.to_string(), e.path()));
        }
    }
    Ok(found)
}

/// Removes `leftover`, a candidate beside a certificate directory that uca
/// is about to write, only if it is provably what a killed uca run left: the
/// process its tag names is not running, and it holds nothing but regular
/// files that uca writes into a certificate directory (`allowed`, relative
/// paths). Returns whether it was removed; anything else is left in place.
pub fn remove_leftover(leftover: &Path, allowed: &[String]) -> Result<bool> {
    let Some((_, _, tag)) = leftover
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(fsutil::parse_hidden_sibling)
    else {
        return Ok(false);
    };
    if writer_may_be_running(tag) || !holds_only(leftover, "", allowed)? {
        return Ok(false);
    }
    fs::remove_dir_all(leftover).ctx("remove", leftover)?;
    Ok(true)
}

/// Whether the process whose id is the upper half of a publishing tag may
/// still be writing. A tag whose upper half cannot be a process id was not
/// made by uca's publishing, so it counts as running (never removed).
fn writer_may_be_running(tag: u64) -> bool {
    // Linux's largest possible process id (PID_MAX_LIMIT).
    const PID_MAX_LIMIT: u64 = 1 << 22;
    let pid = tag >> 32;
    if pid == 0 || pid > PID_MAX_LIMIT || pid == u64::from(std::process::id()) {
        return true;
    }
    crate::support::sys::process_exists(pid as u32)
}

/// Whether `dir` holds only regular files whose paths (below the leftover,
/// `prefix` for the level) are in `allowed`, and directories leading to them.
fn holds_only(dir: &Path, prefix: &str, allowed: &[String]) -> Result<bool> {
    for e in fs::read_dir(dir).ctx("read", dir)? {
        let e = e.ctx("read", dir)?;
        let Some(name) = e.file_name().to_str().map(|n| format!("{prefix}{n}")) else {
            return Ok(false);
        };
        let kind = e.file_type().ctx("read", &e.path())?;
        let ok = if kind.is_file() {
            allowed.contains(&name)
        } else if kind.is_dir() {
            let sub = format!("{name}/");
            allowed.iter().any(|a| a.starts_with(&sub)) && holds_only(&e.path(), &sub, allowed)?
        } else {
            false
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}
