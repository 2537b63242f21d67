//! The distribution's trust store: the root goes into the directory of
//! local anchors and the distribution's tool rebuilds the bundles.
//!
//! - Debian, Ubuntu: `/usr/local/share/ca-certificates/NAME.crt`, then
//!   `update-ca-certificates` (`--fresh` after a removal, so the symbolic
//!   links to the removed file go too). For another root file system the
//!   host's `update-ca-certificates` is pointed at that tree's directories;
//!   the tree's hooks are not run (they would run on this machine).
//! - Alpine: the same directory and tool (Alpine's own).
//! - RHEL, Fedora and their kin: `/etc/pki/ca-trust/source/anchors/NAME.crt`,
//!   then `update-ca-trust extract`.
//!
//! The family is read from the tree's `etc/os-release` (`ID`, then
//! `ID_LIKE`), else from the files each family's package leaves. Alpine's
//! and RHEL's tools take no directories, so for another root the tree's own
//! tool is run inside it (`chroot DIR TOOL`): it changes only that tree, and
//! needs root.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{find_program, os, Action, StorePlan, TrustStoreArgs, TrustedRoot};
use crate::support::error::{Error, Result};
use crate::support::{fsutil, sys};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Debian,
    Alpine,
    RedHat,
}

impl Family {
    /// The family an os-release `ID` or `ID_LIKE` word names.
    fn from_os_id(id: &str) -> Option<Family> {
        match id {
            "debian" | "ubuntu" | "raspbian" | "linuxmint" | "pop" => Some(Family::Debian),
            "alpine" | "postmarketos" => Some(Family::Alpine),
            "rhel" | "fedora" | "centos" | "rocky" | "almalinux" | "ol" | "amzn" => {
                Some(Family::RedHat)
            }
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Debian => "Debian/Ubuntu",
            Family::Alpine => "Alpine",
            Family::RedHat => "RHEL/Fedora",
        }
    }

    /// The package that provides the tool, to name in an error.
    fn package(self) -> &'static str {
        match self {
            Family::Debian | Family::Alpine => "the ca-certificates package",
            Family::RedHat => {
                "the ca-certificates package (with p11-kit, whose trust tool it runs)"
            }
        }
    }
}

struct Layout {
    family: Family,
    /// Where local anchors go.
    anchors: PathBuf,
    /// The bundle the tool writes, read to tell whether the root is in it.
    bundle: PathBuf,
    /// Directories the tool writes besides the anchors.
    written: Vec<PathBuf>,
    tool: &'static str,
}

/// The `ID` and `ID_LIKE` words of the tree's os-release, in that order.
fn os_release_ids(root: &Path) -> Vec<String> {
    let text = ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| {
            fsutil::read_capped(&root.join(p), fsutil::limits::PEM, "read", "os-release").ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.trim().split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| {
                v.trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_ascii_lowercase()
            })
            .unwrap_or_default()
    };
    let mut ids = vec![value("ID")];
    ids.extend(value("ID_LIKE").split_whitespace().map(str::to_string));
    ids.retain(|i| !i.is_empty());
    ids
}

/// The family: from os-release, else from each family's own files.
fn family_of(root: &Path) -> Result<Family> {
    if let Some(f) = os_release_ids(root)
        .iter()
        .find_map(|id| Family::from_os_id(id))
    {
        return Ok(f);
    }
    let at = |p: &str| root.join(p);
    if at("etc/pki/ca-trust/source/anchors").is_dir() {
        Ok(Family::RedHat)
    } else if at("etc/alpine-release").is_file() {
        Ok(Family::Alpine)
    } else if at("etc/ca-certificates.conf").is_file() {
        Ok(Family::Debian)
    } else {
        Err(Error::msg(format!(
            "no system trust store found under {}: expected etc/os-release naming Debian, Ubuntu, Alpine, RHEL or Fedora, or etc/ca-certificates.conf, etc/alpine-release or etc/pki/ca-trust/source/anchors; install the ca-certificates package",
            root.display()
        )))
    }
}

fn detect(root: &Path) -> Result<Layout> {
    let at = |p: &str| root.join(p);
    let family = family_of(root)?;
    if family == Family::RedHat {
        return Ok(Layout {
            family,
            anchors: at("etc/pki/ca-trust/source/anchors"),
            bundle: at("etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),
            written: vec![at("etc/pki/ca-trust/extracted")],
            tool: "update-ca-trust",
        });
    }
    Ok(Layout {
        family,
        anchors: at("usr/local/share/ca-certificates"),
        bundle: at("etc/ssl/certs/ca-certificates.crt"),
        written: vec![at("etc/ssl/certs")],
        tool: "update-ca-certificates",
    })
}

/// Where the tool is: on this machine's PATH, or, for another root whose
/// tool takes no directories (Alpine, RHEL), inside that tree, run there
/// with chroot. A missing tool is one line naming the package.
enum Tool {
    Host(PathBuf),
    /// The tree, and the tool's path inside it (`/usr/bin/update-ca-trust`).
    InTree(PathBuf, PathBuf),
}

fn find_tool(layout: &Layout, other_root: Option<&Path>) -> Result<Tool> {
    let tree = other_root.filter(|_| layout.family != Family::Debian);
    let Some(tree) = tree else {
        return find_program(layout.tool).map(Tool::Host).ok_or_else(|| {
            Error::msg(format!(
                "{} is not on PATH; install {} (it provides {})",
                layout.tool,
                layout.family.package(),
                layout.tool
            ))
        });
    };
    let inside = ["usr/sbin", "usr/bin", "sbin", "bin"]
        .iter()
        .map(|d| Path::new("/").join(d).join(layout.tool))
        .find(|p| super::is_executable(&tree.join(p.strip_prefix("/").unwrap_or(p))));
    match inside {
        Some(p) => Ok(Tool::InTree(tree.to_path_buf(), p)),
        None => Err(Error::msg(format!(
            "{} is not in {} ({} tree: looked in usr/sbin, usr/bin, sbin, bin); install {} in that tree",
            layout.tool,
            tree.display(),
            layout.family.name(),
            layout.family.package()
        ))),
    }
}

/// The tool's command line: for this machine as it is; for another root,
/// the Debian script with every directory inside that root.
fn tool_argv(layout: &Layout, root: Option<&Path>, tool: &Tool, removal: bool) -> Vec<OsString> {
    let mut argv = match tool {
        Tool::Host(path) => vec![path.as_os_str().to_owned()],
        Tool::InTree(tree, path) => vec![
            os("chroot"),
            tree.as_os_str().to_owned(),
            path.as_os_str().to_owned(),
        ],
    };
    if layout.family == Family::Debian {
        if let Some(r) = root {
            let inside = |p: &str| r.join(p).into_os_string();
            argv.extend([
                os("--certsconf"),
                inside("etc/ca-certificates.conf"),
                os("--certsdir"),
                inside("usr/share/ca-certificates"),
                os("--localcertsdir"),
                inside("usr/local/share/ca-certificates"),
                os("--etccertsdir"),
                inside("etc/ssl/certs"),
                // The tree's hooks would run on this machine: none are run.
                os("--hooksdir"),
                inside("nonexistent-uca-hooks-are-not-run"),
            ]);
        }
        if removal {
            argv.push(os("--fresh"));
        }
    } else if layout.family == Family::RedHat {
        argv.push(os("extract"));
    }
    argv
}

pub fn plan(root_cert: &TrustedRoot, args: &TrustStoreArgs, install: bool) -> Result<StorePlan> {
    let other_root = args.root.as_deref().map(fsutil::absolute);
    let fs_root = other_root.clone().unwrap_or_else(|| PathBuf::from("/"));
    if !fs_root.is_dir() {
        return Err(Error::invalid(
            "--root",
            fs_root.display().to_string(),
            "an existing directory holding a root file system",
        ));
    }
    let layout = detect(&fs_root)?;
    if other_root.is_some() {
        check_inside(&fs_root, &layout)?;
    }
    let conf = fs_root.join("etc/ca-certificates.conf");
    if other_root.is_some() && layout.family == Family::Debian && !conf.is_file() {
        return Err(Error::msg(format!(
            "{} is missing, which update-ca-certificates reads for that tree; install the ca-certificates package in {}",
            conf.display(),
            fs_root.display()
        )));
    }
    let tool = find_tool(&layout, other_root.as_deref())?;
    if matches!(tool, Tool::InTree(..)) && !args.dry_run && sys::effective_uid() != 0 {
        return Err(Error::msg(format!(
            "{} tree's {} runs inside {} with chroot, which needs root; run as root (sudo uca trust ...)",
            layout.family.name(),
            layout.tool,
            fs_root.display()
        )));
    }
    let file = layout.anchors.join(format!("{}.crt", root_cert.stem));
    let present = present(&file, root_cert)?;
    let store = "system".to_string();
    let tool_run = |removal| Action::Run(tool_argv(&layout, other_root.as_deref(), &tool, removal));
    if install {
        if present && bundle_has(&layout.bundle, root_cert) {
            return Ok(unchanged(
                store,
                format!("already installed ({})", file.display()),
            ));
        }
        check_writable(&layout, args, true)?;
        let mut actions = Vec::new();
        if !present {
            if !layout.anchors.is_dir() {
                actions.push(Action::CreateDir(layout.anchors.clone()));
            }
            actions.push(Action::Write(file.clone(), root_cert.pem().into_bytes()));
        }
        actions.push(tool_run(false));
        return Ok(StorePlan {
            store,
            actions,
            unchanged: None,
            done: format!(
                "installed {} and rebuilt {}",
                file.display(),
                layout.bundle.display()
            ),
        });
    }
    if !present {
        return Ok(unchanged(
            store,
            format!("not installed (no {})", file.display()),
        ));
    }
    check_writable(&layout, args, false)?;
    Ok(StorePlan {
        store,
        actions: vec![Action::Remove(file.clone()), tool_run(true)],
        unchanged: None,
        done: format!(
            "removed {} and rebuilt {}",
            file.display(),
            layout.bundle.display()
        ),
    })
}

/// Every directory the change touches in another root must resolve inside
/// it: a symbolic link there (e.g. `etc/ssl/certs -> /etc/ssl/certs`) would
/// otherwise make uca and the tool change this machine's store.
fn check_inside(fs_root: &Path, layout: &Layout) -> Result<()> {
    let root = std::fs::canonicalize(fs_root).map_err(|e| Error::io("resolve", fs_root, e))?;
    let mut dirs = vec![
        layout.anchors.clone(),
        fs_root.join("usr/share/ca-certificates"),
        fs_root.join("etc/ca-certificates.conf"),
    ];
    dirs.extend(layout.written.iter().cloned());
    for dir in dirs {
        let existing = fsutil::existing_ancestor(&dir);
        let resolved =
            std::fs::canonicalize(&existing).map_err(|e| Error::io("resolve", &existing, e))?;
        if !resolved.starts_with(&root) {
            return Err(Error::msg(format!(
                "{} leads to {}, outside --root {}; uca changes nothing outside it: make it a real directory inside the tree",
                existing.display(),
                resolved.display(),
                fs_root.display()
            )));
        }
    }
    Ok(())
}

fn unchanged(store: String, why: String) -> StorePlan {
    StorePlan {
        store,
        actions: Vec::new(),
        unchanged: Some(why),
        done: String::new(),
    }
}

/// Whether our file is there. A file of our name holding anything else is
/// not ours to replace or remove.
fn present(file: &Path, root_cert: &TrustedRoot) -> Result<bool> {
    if std::fs::symlink_metadata(file).is_err() {
        return Ok(false);
    }
    let held = super::read_roots(file).ok();
    match held.as_deref() {
        Some([one]) if one.der == root_cert.der => Ok(true),
        _ => Err(Error::msg(format!(
            "{} exists but does not hold the root {}; remove it by hand if it is stale",
            file.display(),
            root_cert.fingerprint
        ))),
    }
}

fn bundle_has(bundle: &Path, root_cert: &TrustedRoot) -> bool {
    let Ok(bytes) = fsutil::read_capped(bundle, fsutil::limits::PEM * 16, "read", "CA bundle")
    else {
        return false;
    };
    super::pem_certificates(&String::from_utf8_lossy(&bytes)).contains(&root_cert.der)
}

/// Every directory the change writes must be writable by this user, before
/// anything is changed.
fn check_writable(layout: &Layout, args: &TrustStoreArgs, install: bool) -> Result<()> {
    let mut dirs = vec![layout.anchors.clone()];
    dirs.extend(layout.written.iter().cloned());
    for dir in dirs {
        let target = fsutil::existing_ancestor(&dir);
        if !fsutil::is_writable_dir(&target) {
            let verb = if install { "install" } else { "uninstall" };
            let fix = if args.root.is_some() {
                format!("make {} writable for this user", target.display())
            } else {
                format!("run as root (sudo uca trust {verb} ...)")
            };
            return Err(Error::msg(format!(
                "cannot change the system trust store: this user may not write to {}; {fix}",
                target.display()
            )));
        }
    }
    Ok(())
}
