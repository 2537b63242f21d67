//! Publishing a certificate's files: they are written into a hidden temporary
//! directory beside the target and renamed into place, so a reader (or a
//! crash) sees either the complete set or nothing.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{self, Mode};

pub struct OutputFile<'a> {
    pub name: &'static str,
    pub contents: &'a [u8],
    pub mode: Mode,
}

/// Fails if `target` exists and `force` is not set.
pub fn check_free(target: &Path, force: bool) -> Result<()> {
    if !force && fs::symlink_metadata(target).is_ok() {
        return Err(Error::Exists(target.to_path_buf()));
    }
    Ok(())
}

fn hidden_sibling(target: &Path, what: &str) -> PathBuf {
    use rand_core::RngCore;
    let tag = rand_core::OsRng.next_u64();
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.{what}-{tag:016x}"))
}

/// Writes `files` as the directory `target`. With `sync`, every file and the
/// directory are synced before the rename (the caller may instead sync a
/// whole batch at once).
pub fn publish_dir(target: &Path, files: &[OutputFile<'_>], force: bool, sync: bool) -> Result<()> {
    check_free(target, force)?;
    let parent = fsutil::parent_of(target);
    fsutil::create_dir(parent, 0o755)?;
    let tmp = hidden_sibling(target, "tmp");
    let result = (|| {
        fs::create_dir(&tmp).ctx("create", &tmp)?;
        for f in files {
            fsutil::write_atomic(&tmp.join(f.name), f.contents, f.mode, false, sync)?;
        }
        if sync {
            fsutil::sync_dir(&tmp)?;
        }
        match fs::rename(&tmp, target) {
            Ok(()) => Ok(()),
            Err(_) if force && fs::symlink_metadata(target).is_ok() => {
                // rename(2) cannot replace a non-empty directory: move the
                // old one aside, put the new one in, then drop the old.
                let old = hidden_sibling(target, "old");
                fs::rename(target, &old).ctx("move aside", target)?;
                fs::rename(&tmp, target).ctx("rename into", target)?;
                if old.is_dir() && !fs::symlink_metadata(&old).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
                    fs::remove_dir_all(&old).ctx("remove", &old)
                } else {
                    fs::remove_file(&old).ctx("remove", &old)
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                Err(Error::Exists(target.to_path_buf()))
            }
            Err(e) => Err(Error::io("rename into", target, e)),
        }
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result?;
    if sync {
        fsutil::sync_dir(parent)?;
    }
    Ok(())
}
