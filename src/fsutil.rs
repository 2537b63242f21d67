//! File writing rules shared by every command: outputs appear atomically
//! (temporary file + rename), secrets are created 0600 from the first byte,
//! nothing is replaced without `--force`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

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
        f.write_all(contents).ctx("write", &tmp)?;
        if sync {
            f.sync_all().ctx("sync", &tmp)?;
        }
        // The umask may have narrowed the mode; set it exactly.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode.bits()))
            .ctx("set permissions on", &tmp)?;
        if force {
            fs::rename(&tmp, path).ctx("rename into", path)
        } else {
            // A hard link fails if the target appeared meanwhile: no silent clobber.
            fs::hard_link(&tmp, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::Exists(path.to_path_buf())
                } else {
                    Error::io("create", path, e)
                }
            })?;
            fs::remove_file(&tmp).ctx("remove", &tmp)
        }
    })();
    if result.is_err() && created {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if sync {
        sync_dir(parent_of(path))?;
    }
    Ok(())
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
