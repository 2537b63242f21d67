//! The distribution's trust store: the root goes into the directory of
//! local anchors and the distribution's tool rebuilds the bundles.
//!
//! - Debian, Ubuntu: `/usr/local/share/ca-certificates/NAME.crt`, then
//!   `update-ca-certificates` (`--fresh` after a removal, so the symbolic
//!   links to the removed file go too). For another root file system the
//!   host's `update-ca-certificates` is pointed at that tree's directories;
//!   the tree's hooks are not run (they would run on this machine).
//! - Alpine: the same directory and tool, on this machine only.
//! - RHEL, Fedora: `/etc/pki/ca-trust/source/anchors/NAME.crt`, then
//!   `update-ca-trust`, on this machine only.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{find_program, os, Action, StorePlan, TrustStoreArgs, TrustedRoot};
use crate::support::error::{Error, Result};
use crate::support::fsutil;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Debian,
    Alpine,
    RedHat,
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

fn detect(root: &Path) -> Result<Layout> {
    let at = |p: &str| root.join(p);
    if at("etc/pki/ca-trust/source/anchors").is_dir() {
        return Ok(Layout {
            family: Family::RedHat,
            anchors: at("etc/pki/ca-trust/source/anchors"),
            bundle: at("etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),
            written: vec![at("etc/pki/ca-trust/extracted")],
            tool: "update-ca-trust",
        });
    }
    let family = if at("etc/alpine-release").is_file() {
        Family::Alpine
    } else if at("etc/ca-certificates.conf").is_file() {
        Family::Debian
    } else {
        return Err(Error::msg(format!(
            "no system trust store found under {}: expected etc/ca-certificates.conf (Debian, Ubuntu), etc/alpine-release (Alpine) or etc/pki/ca-trust/source/anchors (RHEL, Fedora); install the ca-certificates package",
            root.display()
        )));
    };
    Ok(Layout {
        family,
        anchors: at("usr/local/share/ca-certificates"),
        bundle: at("etc/ssl/certs/ca-certificates.crt"),
        written: vec![at("etc/ssl/certs")],
        tool: "update-ca-certificates",
    })
}

/// The tool's command line: for this machine as it is; for another root,
/// the Debian script with every directory inside that root.
fn tool_argv(layout: &Layout, root: Option<&Path>, tool: &Path, removal: bool) -> Vec<OsString> {
    let mut argv = vec![tool.as_os_str().to_owned()];
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
    if other_root.is_some() && layout.family != Family::Debian {
        return Err(Error::msg(format!(
            "{} cannot change another root file system; run uca trust install inside {} (e.g. in the image build) instead of --root",
            layout.tool,
            fs_root.display()
        )));
    }
    let Some(tool) = find_program(layout.tool) else {
        return Err(Error::msg(format!(
            "{} is not on PATH; install the ca-certificates package (it provides {})",
            layout.tool, layout.tool
        )));
    };
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
