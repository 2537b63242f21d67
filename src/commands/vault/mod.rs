//! Vault/OpenBao: uca's root becomes the parent of Vault's PKI intermediate
//! (`bootstrap`), Vault gets its own TLS from the root (`tls`), and an
//! air-gapped ceremony gets the exact commands to run (`offline`).

pub mod bootstrap;
pub mod client;
pub mod offline;
pub mod storage;
pub mod tls;
