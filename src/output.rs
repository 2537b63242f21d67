//! Publishing a certificate's files: they are written into a hidden temporary
//! directory beside the target and renamed into place, so a reader (or a
//! crash) sees either the complete set or nothing.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::formats::RenderedFile;
use crate::fsutil;

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
    crate::fsutil::hidden_sibling(target, what, tag)
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
    publish_checked(target, files, replace, sync)
}

/// [`publish_dir`] for a caller that has already checked the target and
/// created its parent (the bulk engine, which checks a whole plan first).
pub fn publish_checked(
    target: &Path,
    files: &[RenderedFile],
    replace: bool,
    sync: bool,
) -> Result<()> {
    let parent = fsutil::parent_of(target);
    let tmp = hidden_sibling(target, "tmp");
    let result = (|| {
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&tmp)
            .ctx("create", &tmp)?;
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
            write_new(&path, &f.contents, f.mode.bits(), sync)?;
        }
        if sync {
            fsutil::sync_dir(&tmp)?;
        }
        match fs::rename(&tmp, target) {
            Ok(()) => Ok(()),
            Err(_) if replace && fs::symlink_metadata(target).is_ok() => {
                // rename(2) cannot replace a non-empty directory: move the
                // old one aside, put the new one in, then drop the old.
                let old = hidden_sibling(target, "old");
                fs::rename(target, &old).ctx("move aside", target)?;
                fs::rename(&tmp, target).ctx("rename into", target)?;
                let meta = fs::symlink_metadata(&old).ctx("read", &old)?;
                if meta.is_dir() {
                    fs::remove_dir_all(&old).ctx("remove", &old)
                } else {
                    fs::remove_file(&old).ctx("remove", &old)
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    || e.raw_os_error() == Some(libc::ENOTEMPTY) =>
            {
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

/// Makes everything written so far on `dir`'s file system durable with one
/// call: cheaper than one fsync per file when thousands were written.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let d = fs::File::open(dir).ctx("open", dir)?;
    // SAFETY: syncfs takes a valid open descriptor, which `d` is for the call.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(Error::io(
            "sync the file system of",
            dir,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Removes temporary and moved-aside directories that a killed run left in
/// `dir` (`.NAME.tmp-<hex>`, `.NAME.old-<hex>`); nothing else is touched.
pub fn remove_leftovers(dir: &Path) -> Result<usize> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for e in entries {
        let e = e.ctx("read", dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with('.')
            && name.rsplit_once('-').is_some_and(|(head, tag)| {
                (head.ends_with(".tmp") || head.ends_with(".old"))
                    && tag.len() == 16
                    && tag.bytes().all(|b| b.is_ascii_hexdigit())
            });
        if ours {
            let path = e.path();
            if e.file_type().ctx("read", &path)?.is_dir() {
                fs::remove_dir_all(&path).ctx("remove", &path)?;
            } else {
                fs::remove_file(&path).ctx("remove", &path)?;
            }
            removed += 1;
        }
    }
    Ok(removed)
}
