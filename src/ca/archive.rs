//! `--archive FILE|-`: a plan's whole output layout as one tar stream
//! instead of directories. The members are exactly the files the directory
//! layout would hold (the same rendered bytes, keys mode 0600), named as they
//! would be under OUT, so `tar -xf FILE -C OUT` gives that layout.
//!
//! The archive is written in plan order, batch by batch; a batch is flushed
//! (and for a file, synced) before the ledger records it, so the ledger never
//! names a member a crash could take away: a killed run leaves a truncated
//! archive whose recorded members are all whole.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::support::error::{Error, IoContext, Result};
use crate::support::fsutil;
use crate::support::output::RenderedFile;
use crate::support::tar::TarWriter;

/// Where `--archive` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveTarget {
    File(PathBuf),
    Stdout,
}

impl ArchiveTarget {
    /// `-` is standard output; anything else a file.
    pub fn from_arg(arg: &Path) -> ArchiveTarget {
        if arg == Path::new("-") {
            ArchiveTarget::Stdout
        } else {
            ArchiveTarget::File(arg.to_path_buf())
        }
    }

    /// What the ledger records: the absolute path, or `-`.
    pub fn recorded_name(&self) -> Result<String> {
        match self {
            ArchiveTarget::Stdout => Ok("-".into()),
            ArchiveTarget::File(p) => Ok(fsutil::resolve(p)?.display().to_string()),
        }
    }

    /// For messages: the path as given, or "standard output".
    pub fn shown(&self) -> String {
        match self {
            ArchiveTarget::Stdout => "standard output".into(),
            ArchiveTarget::File(p) => p.display().to_string(),
        }
    }

    /// Checked before any key is made: a file must be new (or `--force`)
    /// and creatable, never inside `private` (the CA's private folder);
    /// standard output must not be a terminal.
    pub fn check(&self, force: bool, private: Option<&Path>) -> Result<()> {
        match self {
            ArchiveTarget::Stdout => {
                if crate::support::stdout::data_stream().is_terminal() {
                    return Err(Error::invalid(
                        "--archive",
                        "-",
                        "standard output is a terminal; redirect it to a file or a pipe, or give --archive FILE",
                    ));
                }
                Ok(())
            }
            ArchiveTarget::File(path) => {
                if let Some(private) = private {
                    if fsutil::resolve(path)?.starts_with(fsutil::resolve(private)?) {
                        return Err(Error::invalid(
                            "--archive",
                            path.display().to_string(),
                            format!(
                                "it is inside the CA's private folder {}; choose another file",
                                private.display()
                            ),
                        ));
                    }
                }
                match std::fs::symlink_metadata(path) {
                    Ok(m) if m.is_dir() => Err(Error::invalid(
                        "--archive",
                        path.display().to_string(),
                        "it is a directory; give a file name such as certs.tar",
                    )),
                    Ok(_) if !force => Err(Error::Exists(path.clone())),
                    Ok(_) => Ok(()),
                    Err(_) => fsutil::check_file_creatable("--archive", path),
                }
            }
        }
    }
}

/// The open archive of one run.
pub struct ArchiveSink {
    tar: TarWriter<BufWriter<Box<dyn Write + Send + Sync>>>,
    /// The file, to sync after each batch (none for standard output).
    file: Option<File>,
    target: ArchiveTarget,
    recorded_name: String,
    /// Directories above the certificate directories already written (a
    /// few per group; the certificate directories themselves are not kept).
    dirs: HashSet<String>,
    /// Whether the new file's directory entry has been synced.
    dir_synced: bool,
}

/// A path inside the archive: '/'-separated, relative.
fn member_name(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl ArchiveSink {
    /// Opens the archive under the CA's lock. An existing file is replaced
    /// only with `force`, and never when the ledger records certificates in
    /// it (`recorded`: the archives the ledger names).
    pub fn open(
        target: &ArchiveTarget,
        force: bool,
        recorded: &HashSet<String>,
        mtime: u64,
    ) -> Result<ArchiveSink> {
        let recorded_name = target.recorded_name()?;
        let (out, file): (Box<dyn Write + Send + Sync>, Option<File>) = match target {
            ArchiveTarget::Stdout => (Box::new(crate::support::stdout::data_stream()), None),
            ArchiveTarget::File(path) => {
                if std::fs::symlink_metadata(path).is_ok() {
                    if !force {
                        return Err(Error::Exists(path.clone()));
                    }
                    if recorded.contains(&recorded_name) {
                        return Err(Error::msg(format!(
                            "{} holds certificates the ledger records; uca never removes them, even with --force: choose another archive file",
                            path.display()
                        )));
                    }
                    std::fs::remove_file(path).ctx("replace", path)?;
                }
                // Private keys are inside: the archive is the owner's only.
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .ctx("create", path)?;
                let sync = f.try_clone().ctx("open", path)?;
                (Box::new(f), Some(sync))
            }
        };
        Ok(ArchiveSink {
            tar: TarWriter::new(BufWriter::with_capacity(1 << 18, out), mtime),
            file,
            target: target.clone(),
            recorded_name,
            dirs: HashSet::new(),
            dir_synced: false,
        })
    }

    pub fn recorded_name(&self) -> &str {
        &self.recorded_name
    }

    fn io(&self, e: std::io::Error) -> Error {
        match &self.target {
            ArchiveTarget::File(p) => Error::io("write", p, e),
            ArchiveTarget::Stdout => {
                Error::msg(format!("cannot write the archive to standard output: {e}"))
            }
        }
    }

    /// Writes one certificate directory `dir` (relative, as under OUT) and
    /// its files.
    pub fn write_dir(&mut self, dir: &Path, files: &[RenderedFile]) -> Result<()> {
        let dir_name = member_name(dir);
        let mut ancestors: Vec<String> = dir
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .map(member_name)
            .collect();
        ancestors.reverse();
        for a in ancestors {
            if !self.dirs.contains(&a) {
                self.tar.dir(&a, 0o755).map_err(|e| self.io(e))?;
                self.dirs.insert(a);
            }
        }
        self.tar.dir(&dir_name, 0o755).map_err(|e| self.io(e))?;
        let mut subdirs: Vec<&str> = Vec::new();
        for f in files {
            if let Some((sub, _)) = f.path.rsplit_once('/') {
                if !subdirs.contains(&sub) {
                    self.tar
                        .dir(&format!("{dir_name}/{sub}"), 0o755)
                        .map_err(|e| self.io(e))?;
                    subdirs.push(sub);
                }
            }
            self.tar
                .file(
                    &format!("{dir_name}/{}", f.path),
                    f.mode.bits(),
                    &f.contents,
                )
                .map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// The member name of `file` in certificate directory `dir`.
    pub fn member(dir: &Path, file: &str) -> String {
        format!("{}/{file}", member_name(dir))
    }

    /// Makes what was written so far durable (a file) or delivered (standard
    /// output): called before the ledger records it.
    pub fn flush(&mut self) -> Result<()> {
        self.tar.get_mut().flush().map_err(|e| self.io(e))?;
        if let Some(f) = &self.file {
            f.sync_data().map_err(|e| self.io(e))?;
        }
        if let (false, ArchiveTarget::File(p)) = (self.dir_synced, &self.target) {
            fsutil::sync_dir(fsutil::parent_of(p))?;
            self.dir_synced = true;
        }
        Ok(())
    }

    /// Ends the archive, flushed and synced (with its directory entry).
    pub fn finish(self) -> Result<()> {
        let target = self.target.clone();
        let io = |e: std::io::Error| match &target {
            ArchiveTarget::File(p) => Error::io("write", p, e),
            ArchiveTarget::Stdout => {
                Error::msg(format!("cannot write the archive to standard output: {e}"))
            }
        };
        let mut out = self.tar.finish().map_err(io)?;
        out.flush().map_err(io)?;
        if let (Some(f), ArchiveTarget::File(p)) = (&self.file, &target) {
            f.sync_all().map_err(io)?;
            fsutil::sync_dir(fsutil::parent_of(p))?;
        }
        Ok(())
    }
}
