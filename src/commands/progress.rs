//! The bar `uca issue --plan` and `uca ceremony` draw while the bulk engine
//! works: only on a terminal, never with `--json`, and not for a single
//! certificate. The engine reports; drawing it is this layer's business.

use std::io::IsTerminal;

use crate::ca::bulk::{IssuedCert, Progress, Summary};
use crate::ca::issuance::{Issuance, Key};
use crate::ca::store::CaStore;
use crate::support::error::Result;

/// Runs `issuance` with the bar drawn when `enabled` (and on a terminal);
/// `on_issued` sees each certificate once it is durable and recorded.
pub fn issue(
    issuance: &Issuance,
    store: &CaStore,
    key: Key<'_>,
    enabled: bool,
    on_issued: &mut dyn FnMut(&IssuedCert),
) -> Result<Summary> {
    let bar = Bar::new(issuance.plan().total, enabled);
    let summary = issuance.run(store, key, &mut bar.observe(on_issued));
    summary
}

pub struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    pub fn new(total: u64, enabled: bool) -> Bar {
        if !enabled || !std::io::stderr().is_terminal() || total < 2 {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} certificates {per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        Bar(Some(bar))
    }

    /// What the engine reports: advances the bar and passes each issued
    /// certificate on to `then`.
    pub fn observe<'a>(
        &'a self,
        then: &'a mut dyn FnMut(&IssuedCert),
    ) -> impl FnMut(Progress<'_>) + 'a {
        move |progress| {
            let advance = match progress {
                Progress::Skipped(n) => n,
                Progress::Issued(issued) => {
                    then(issued);
                    1
                }
            };
            if let Some(bar) = &self.0 {
                bar.inc(advance);
            }
        }
    }
}

impl Drop for Bar {
    /// The bar goes when the run ends, also when it fails, so the error
    /// line starts on a clean line.
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
