//! `uca sign`: certificates for keys uca never sees (a component that keeps
//! its own key, a Vault/OpenBao intermediate), written to `--out` or
//! standard output. The checks and the signing are `ca::signing`'s.

use std::path::PathBuf;

use crate::ca::signing::{prepare, read_csr, sign_prepared, SignOptions};
use crate::ca::store::CaStore;
use crate::support::error::Result;
use crate::support::fsutil::{self, Mode};
use crate::{pki::x509, support::timefmt};

pub struct SignRequest {
    pub dir: PathBuf,
    pub csr: PathBuf,
    pub options: SignOptions,
    pub out: Option<PathBuf>,
    pub chain: bool,
    pub force: bool,
    pub passphrase_file: Option<PathBuf>,
}

pub struct SignReport {
    pub pem: String,
    pub out: Option<PathBuf>,
    pub serial: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub not_after: String,
}

pub fn run(req: &SignRequest) -> Result<SignReport> {
    let store = CaStore::open(&req.dir)?;
    store.ensure_unsealed()?;
    let csr = read_csr(&req.csr)?;
    let shown = req.csr.display().to_string();
    let prepared = prepare(&store, &csr, &shown, &req.options)?;
    if let Some(out) = &req.out {
        store.refuse_private_output(out)?;
        store.refuse_ca_path(out)?;
        crate::support::output::check_free(out, req.force)?;
        fsutil::check_file_creatable("--out", out)?;
    }
    let not_after = timefmt::rfc3339(prepared.validity.not_after);
    let signer = store.unlock(req.passphrase_file.as_ref())?;
    let lock = store.ledger().lock()?;
    let path = req
        .out
        .as_ref()
        .map(|p| fsutil::absolute(p).display().to_string());
    let with_chain = |der: &[u8]| {
        let mut pem = x509::pem_certificate(der);
        if req.chain {
            pem.push_str(&store.cert_pem());
        }
        pem
    };
    let (der, serial) = sign_prepared(&store, &signer, &lock, prepared, path, |der| {
        match &req.out {
            Some(out) => fsutil::write_atomic(
                out,
                with_chain(der).as_bytes(),
                Mode::Public,
                req.force,
                true,
            ),
            None => Ok(()),
        }
    })?;
    let pem = with_chain(&der);
    let (subject, sans) = x509::recorded_names(&der)?;
    Ok(SignReport {
        pem,
        out: req.out.clone(),
        serial,
        subject,
        sans,
        not_after,
    })
}
