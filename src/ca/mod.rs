//! Layer 2, ca: the CA directory and the issuing engine. The store (the
//! directory, its facts read from ca.pem, the signer), the ledger, a new
//! root or a CA below another root (subordinate), plans and bulk issuance, the issuing pipeline that runs them,
//! signing CSRs, the plan file's [registry] and [vault] sections, and
//! sealing, its streamed manifest, the root's CRLs, M-of-N escrow and
//! recovery.
//! Uses `pki` and `support`.

pub mod archive;
pub mod bulk;
pub mod escrow;
pub mod issuance;
pub mod ledger;
pub mod manifest;
pub mod plan;
pub mod recovery;
pub mod revocation;
pub mod root;
pub mod seal;
pub mod sections;
pub mod signing;
pub mod store;
pub mod subordinate;
