//! File rules shared by every command: outputs appear atomically
//! (temporary file + rename), secrets are created 0600 from the first byte,
//! nothing is replaced without `--force` (a rename never replaces what
//! another process created meanwhile), reads are capped, and an output
//! path is checked for being creatable before any work starts.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::error::{Error, IoContext, Result};
use crate::support::sys;

/// Who may read a file that uca writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Public,
    Secret,
    ReadOnlySecret,
}

impl Mode {
    pub fn bits(self) -> u32 {
        match self {
            Mode::Public => 0o644,
            Mode::Secret => 0o600,
            Mode::ReadOnlySecret => 0o400,
        }
    }
}

fn temp_name(path: &Path) -> PathBuf {
    use rand_core::RngCore;
    hidden_sibling(path, "tmp", rand_core::OsRng.next_u64())
}

/// Longest file-name component a file system accepts (Linux NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Longest path a system call accepts, without its terminating NUL.
pub const PATH_MAX: usize = 4095;
/// Bytes of a target's name kept in its hidden siblings' names.
const HIDDEN_HEAD_MAX: usize = 200;

/// The part of `name` a hidden sibling carries: at most 200 bytes, so that
/// `.HEAD.WHAT-TAG` stays within NAME_MAX even for a 253-character DNS name.
pub fn hidden_head(name: &str) -> &str {
    let mut end = name.len().min(HIDDEN_HEAD_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// `.NAME.WHAT-TAG` beside `target`: hidden, so a half-written file or
/// directory never looks like a result, and recognisable, so leftovers of a
/// killed run can be found and removed.
pub fn hidden_sibling(target: &Path, what: &str, tag: u64) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{}.{what}-{tag:016x}", hidden_head(&name)))
}

/// Length in bytes of the longest hidden sibling name of a target named
/// `name` (`.HEAD.WHAT-` and 16 hex digits; WHAT is `tmp` or `old`).
pub fn hidden_sibling_len(name: &str) -> usize {
    1 + hidden_head(name).len() + ".tmp-".len() + 16
}

/// The parts `(HEAD, WHAT, TAG)` of a name made by [`hidden_sibling`], or
/// `None` for any other name.
pub fn parse_hidden_sibling(file_name: &str) -> Option<(&str, &str, u64)> {
    let rest = file_name.strip_prefix('.')?;
    let (head_what, tag) = rest.rsplit_once('-')?;
    if tag.len() != 16 || !tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let (head, what) = head_what.rsplit_once('.')?;
    if head.is_empty() || head.starts_with('.') {
        return None;
    }
    Some((head, what, u64::from_str_radix(tag, 16).ok()?))
}

/// Writes `contents` to a fresh temporary file beside `path` (created with the
/// final mode), optionally syncs it, then renames it into place.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: Mode,
    force: bool,
    sync: bool,
) -> Result<()> {
    write_atomic_with(path, mode, force, sync, |f, tmp| {
        f.write_all(contents).ctx("write", tmp)
    })
}

/// [`write_atomic`] for a file too large to hold in memory: `write` streams
/// it into the temporary file (named by its second argument, for errors)
/// and returns what it computed on the way (e.g. the file's digest).
pub fn write_atomic_with<T>(
    path: &Path,
    mode: Mode,
    force: bool,
    sync: bool,
    write: impl FnOnce(&mut File, &Path) -> Result<T>,
) -> Result<T> {
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(Error::Exists(path.to_path_buf()));
    }
    let tmp = temp_name(path);
    // Set once the temporary file exists: a failure before that (e.g. a file
    // of that name already there) must not remove what someone else made.
    let mut created = false;
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.bits())
            .open(&tmp)
            .ctx("create", &tmp)?;
        created = true;
        let value = write(&mut f, &tmp)?;
        if sync {
            f.sync_all().ctx("sync", &tmp)?;
        }
        // The umask may have narrowed the mode; set it exactly.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode.bits()))
            .ctx("set permissions on", &tmp)?;
        if force {
            fs::rename(&tmp, path).ctx("rename into", path)?;
        } else {
            // A hard link fails if the target appeared meanwhile: no silent clobber.
            fs::hard_link(&tmp, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::Exists(path.to_path_buf())
                } else {
                    Error::io("create", path, e)
                }
            })?;
            fs::remove_file(&tmp).ctx("remove", &tmp)?;
        }
        Ok(value)
    })();
    if result.is_err() && created {
        let _ = fs::remove_file(&tmp);
    }
    let value = result?;
    if sync {
        sync_dir(parent_of(path))?;
    }
    Ok(value)
}

/// The most uca reads from a file, by kind. Every file named by the user (or
/// found in a directory the user named) is read through [`read_capped`].
pub mod limits {
    /// A certificate signing request.
    pub const CSR: u64 = 64 * 1024;
    /// Certificates, keys and bundles in PEM or DER.
    pub const PEM: u64 = 4 * 1024 * 1024;
    /// A plan file.
    pub const PLAN: u64 = 4 * 1024 * 1024;
    /// A passphrase, token or private key.
    pub const SECRET: u64 = 64 * 1024;
    /// ca.toml and sealed.json.
    pub const SETTINGS: u64 = 1024 * 1024;
    /// A sealed manifest: one line per certificate ever issued.
    pub const MANIFEST: u64 = 1024 * 1024 * 1024;
}

/// Reads `path` (`action` names it in an I/O error, `what` in a size
/// error), refusing it once more than `limit` bytes have been read.
/// The cap is on bytes read, never on the size the file claims, so
/// `/dev/zero`, a FIFO or a growing file cannot keep uca reading. The
/// buffer is allocated once, so a secret is never copied by a reallocation
/// (callers that read secrets wrap the result in `Zeroizing`).
pub fn read_capped(
    path: &Path,
    limit: u64,
    action: &'static str,
    what: &'static str,
) -> Result<Vec<u8>> {
    // Blocking again after the open, so a pipe (`<(...)`) is read as its
    // writer produces it, and one without a writer reads as empty.
    let file = open_without_waiting(path, action)?;
    // O_NONBLOCK means nothing to a regular file (the common case, and
    // `uca check` reads thousands): only other kinds need it cleared.
    let meta = file.metadata().ctx(action, path)?;
    if !meta.is_file() {
        sys::clear_nonblocking(&file).map_err(|e| Error::io(action, path, e))?;
    }
    let size = meta.is_file().then_some(meta.len());
    read_open_capped(file, size, path, limit, action, what)
}

/// [`read_capped`] for a file uca itself wrote (the manifest and its
/// signature): it must be a regular file, so that the large limit such a
/// file needs can never make uca buffer a stream such as /dev/zero.
pub fn read_capped_file(
    path: &Path,
    limit: u64,
    action: &'static str,
    what: &'static str,
) -> Result<Vec<u8>> {
    let file = open_regular_file(path, action, what)?;
    let size = file.metadata().ctx(action, path)?.len();
    read_open_capped(file, Some(size), path, limit, action, what)
}

/// Opens a file uca itself wrote (the manifest) for reading as a stream:
/// it must be a regular file, so that reading it to its end ends.
pub fn open_regular_file(path: &Path, action: &'static str, what: &'static str) -> Result<File> {
    let file = open_without_waiting(path, action)?;
    if !file.metadata().ctx(action, path)?.is_file() {
        return Err(Error::invalid(
            what,
            path.display().to_string(),
            format!("it is not a regular file; a {what} is a file uca seal wrote"),
        ));
    }
    Ok(file)
}

/// Opens `path` for reading with O_NONBLOCK, so that a FIFO nobody writes
/// to cannot hold the open forever.
fn open_without_waiting(path: &Path, action: &'static str) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ctx(action, path)
}

/// Reads `file` (of `size` bytes, if a regular file) up to `limit`.
fn read_open_capped(
    file: File,
    size: Option<u64>,
    path: &Path,
    limit: u64,
    action: &'static str,
    what: &'static str,
) -> Result<Vec<u8>> {
    use std::io::Read;
    // A regular file gets a buffer of its size, rather than the
    // preallocation a secret read from a pipe gets.
    let expected = size.map_or(SECRET_PREALLOCATION, |len| len.min(SECRET_PREALLOCATION));
    let initial = usize::try_from(limit.min(expected) + 1).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(initial);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .ctx(action, path)?;
    if bytes.len() as u64 > limit {
        return Err(Error::invalid(
            what,
            path.display().to_string(),
            format!("it holds more than {limit} bytes; a {what} is at most {limit}"),
        ));
    }
    Ok(bytes)
}

/// Buffers up to this size are allocated whole before reading: secrets fit
/// in them, and larger inputs grow as they are read.
const SECRET_PREALLOCATION: u64 = limits::SECRET;

/// [`read_capped`] for text: UTF-8 required.
pub fn read_capped_text(
    path: &Path,
    limit: u64,
    action: &'static str,
    what: &'static str,
) -> Result<String> {
    String::from_utf8(read_capped(path, limit, action, what)?).map_err(|_| {
        Error::invalid(
            what,
            path.display().to_string(),
            "it is not valid UTF-8 text",
        )
    })
}

pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx("sync", dir)
}

/// Creates a directory (and missing parents) with the given mode for the last component.
pub fn create_dir(path: &Path, mode: u32) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .ctx("create the directory", path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).ctx("set permissions on", path)
}

/// Renames `from` (a file or directory) to `to` only if `to` does not
/// exist, so nothing another process created meanwhile is ever replaced.
/// Linux's `renameat2(RENAME_NOREPLACE)` does it in one step. Where the file
/// system lacks it, a file is hard-linked (which fails if `to` exists) and
/// then unlinked; for a directory an empty `to` is claimed with `mkdir` and
/// then replaced by the rename, which POSIX allows only for an empty
/// directory. Fails with `AlreadyExists` if `to` was taken.
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    match rename_noreplace_syscall(from, to) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) => {
            rename_noreplace_fallback(from, to)
        }
        done => done,
    }
}

fn rename_noreplace_fallback(from: &Path, to: &Path) -> std::io::Result<()> {
    if !fs::symlink_metadata(from)?.is_dir() {
        fs::hard_link(from, to)?;
        return fs::remove_file(from);
    }
    fs::create_dir(to)?;
    fs::rename(from, to).map_err(|e| {
        if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) {
            // Someone else claimed the empty directory this process made:
            // it is theirs now.
            std::io::Error::from(std::io::ErrorKind::AlreadyExists)
        } else {
            let _ = fs::remove_dir(to);
            e
        }
    })
}

fn rename_noreplace_syscall(from: &Path, to: &Path) -> std::io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    sys::renameat2_noreplace(&c(from)?, &c(to)?)
}

/// Whether this process may create entries in the directory `dir`.
pub fn is_writable_dir(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    dir.is_dir() && sys::may_write_into(&c)
}

/// Checks, before anything is signed, that the directory `dir` and every
/// directory inside it can be emptied by this user: replacing a
/// certificate directory ends with removing the old one, and a failure
/// then would leave the old key behind and the new certificate unrecorded.
pub fn check_replaceable(dir: &Path) -> Result<()> {
    if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    if !is_writable_dir(dir) {
        return Err(Error::invalid(
            "output",
            dir.display().to_string(),
            "it cannot be replaced: this user may not remove what is in it (make it writable, or remove it)",
        ));
    }
    for entry in fs::read_dir(dir).ctx("read", dir)? {
        let path = entry.ctx("read", dir)?.path();
        check_replaceable(&path)?;
    }
    Ok(())
}

/// The deepest ancestor of `path` (or `path` itself) that exists.
pub fn existing_ancestor(path: &Path) -> PathBuf {
    let mut p = path;
    loop {
        if fs::symlink_metadata(p).is_ok() {
            return p.to_path_buf();
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => return PathBuf::from("."),
        }
    }
}

/// Checks, before anything is made, that the directory `dir` can be written
/// to, or created with its missing parents: the deepest part of it that
/// exists must be a directory this user may write to.
pub fn check_dir_creatable(what: &'static str, dir: &Path) -> Result<()> {
    let ancestor = existing_ancestor(dir);
    if !ancestor.is_dir() {
        return Err(Error::invalid(
            what,
            dir.display().to_string(),
            format!("{} is not a directory", ancestor.display()),
        ));
    }
    if !is_writable_dir(&ancestor) {
        return Err(Error::invalid(
            what,
            dir.display().to_string(),
            format!("this user may not write to {}", ancestor.display()),
        ));
    }
    Ok(())
}

/// Checks, before anything is made, that the file `path` can be created:
/// its directory must exist (none is created for it) and be writable.
pub fn check_file_creatable(what: &'static str, path: &Path) -> Result<()> {
    let dir = parent_of(path);
    let why = if fs::symlink_metadata(dir).is_err() {
        format!("its directory {} does not exist", dir.display())
    } else if !dir.is_dir() {
        format!("{} is not a directory", dir.display())
    } else if !is_writable_dir(dir) {
        format!("this user may not write to its directory {}", dir.display())
    } else {
        return Ok(());
    };
    Err(Error::invalid(what, path.display().to_string(), why))
}

/// Overwrites a file with random bytes, syncs, then unlinks it. On a
/// journaling or copy-on-write file system the old blocks may survive on the
/// device; this removes every copy the file system still exposes.
pub fn shred(path: &Path) -> Result<bool> {
    use rand_core::RngCore;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(false);
    };
    if meta.is_file() {
        let mut noise = vec![0u8; meta.len().max(64) as usize];
        rand_core::OsRng.fill_bytes(&mut noise);
        // Secrets are stored read-only (0400). Root writes through that;
        // the owner must first make the file writable, which owning it allows.
        fs::set_permissions(path, fs::Permissions::from_mode(Mode::Secret.bits()))
            .ctx("make writable to overwrite", path)?;
        let mut f = OpenOptions::new()
            .write(true)
            .open(path)
            .ctx("overwrite", path)?;
        f.write_all(&noise).ctx("overwrite", path)?;
        f.sync_all().ctx("sync", path)?;
    }
    fs::remove_file(path).ctx("remove", path)?;
    sync_dir(parent_of(path))?;
    Ok(true)
}

/// Opens one of the CA's own files (the ledger, its lock) in place. Anything
/// planted there other than a regular file is refused: a symbolic link
/// would send uca's writes outside the CA directory, and a FIFO or device
/// would make it wait or read forever.
pub fn open_in_place(options: &mut OpenOptions, path: &Path, action: &'static str) -> Result<File> {
    let not_regular = || {
        Error::msg(format!(
            "{} is not a regular file (something else was put there: a symbolic link, a directory, a FIFO or a device); uca uses the CA's own files only in place: remove it",
            path.display()
        ))
    };
    // Looked at first, so a directory or a FIFO without a reader is named
    // as such rather than as the open's own EISDIR or ENXIO.
    if fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(not_regular());
    }
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_regular(),
            _ => Error::io(action, path, e),
        })?;
    if !file.metadata().ctx(action, path)?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Whether anything (a file, a directory, even a dangling symbolic link)
/// is at `path`.
pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// An absolute form of `p` for the ledger, without requiring it to exist.
pub fn absolute(p: &Path) -> PathBuf {
    crate::support::fsutil::resolve(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Resolves a path that may not exist yet: the deepest existing ancestor is
/// canonicalised (following symlinks), the rest appended.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .ctx("read the current directory", Path::new("."))?
            .join(path)
    };
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Ok(out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return Ok(abs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_noreplace_never_replaces_with_or_without_renameat2() {
        let scratch = tempfile::tempdir().unwrap();
        let p = |n: &str| scratch.path().join(n);
        type Rename = fn(&Path, &Path) -> std::io::Result<()>;
        for (i, rename) in [rename_noreplace as Rename, rename_noreplace_fallback]
            .iter()
            .enumerate()
        {
            let (file, dir, taken_file, taken_dir) = (
                p(&format!("f{i}")),
                p(&format!("d{i}")),
                p(&format!("tf{i}")),
                p(&format!("td{i}")),
            );
            fs::write(&file, "new").unwrap();
            fs::create_dir(&dir).unwrap();
            fs::write(&taken_file, "theirs").unwrap();
            fs::create_dir(&taken_dir).unwrap();
            for (from, to) in [(&file, &taken_file), (&dir, &taken_dir)] {
                let e = rename(from, to).unwrap_err();
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::AlreadyExists,
                    "{}",
                    to.display()
                );
                assert!(from.exists());
            }
            assert_eq!(fs::read_to_string(&taken_file).unwrap(), "theirs");
            rename(&file, &p(&format!("f{i}-moved"))).unwrap();
            rename(&dir, &p(&format!("d{i}-moved"))).unwrap();
            assert!(!file.exists() && !dir.exists());
            assert_eq!(
                fs::read_to_string(p(&format!("f{i}-moved"))).unwrap(),
                "new"
            );
        }
    }
}
