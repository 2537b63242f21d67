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

/// `.NAME.WHAT-TAG` beside `target`: hidden, so a half-written file or
/// directory never looks like a result, and recognisable, so leftovers of a
/// killed run can be found and removed.
pub fn hidden_sibling(target: &Path, what: &str, tag: u64) -> PathBuf {
    let mut name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // At most 200 bytes of it, so that the hidden name stays within NAME_MAX
    // (255) even for a 253-character DNS name.
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    target.with_file_name(format!(".{name}.{what}-{tag:016x}"))
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
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.bits())
            .open(&tmp)
            .ctx("create", &tmp)?;
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
    if result.is_err() {
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

#[cfg(target_os = "linux")]
fn rename_noreplace_syscall(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace_syscall(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Whether this process may create entries in the directory `dir`.
pub fn is_writable_dir(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path that outlives the call.
    dir.is_dir() && unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0
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
