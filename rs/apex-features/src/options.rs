//! The bar-feature options a feature table is made with, one table of defaults and bounds for every reader.

use apex_core::Bounds;
use serde::{Deserialize, Serialize};

use crate::FeatureError;
use crate::vmd::VmdParams;

apex_core::param_table! {
    /// The options of `apexctl features` that shape a bar table's `rv` and `vmd_k` columns. A GP tree evolved on
    /// such a table reads the same columns wherever it runs, so the simulator and the adversarial fitness compute
    /// their features with the options the table was made with. The one definition of their defaults and bounds:
    /// `_core.param_table("features")` hands the table to Python (the CLI's `--rv-bars`, `--vmd-modes` and
    /// `--vmd-window` read it).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct FeatureOptions {
        rv_bars: usize = 30, Bounds::closed(1.0, 10_000.0),
            "Bar returns in each realized-volatility (rv) window.";
        vmd_modes: usize = 3, Bounds::closed(0.0, 16.0),
            "VMD modes of the close (0: no vmd columns).";
        vmd_window: usize = 64, Bounds::closed(4.0, 4096.0),
            "Bars in each rolling VMD window; at least 2 x the modes.";
    }
}

impl FeatureOptions {
    /// rv over `rv_bars` returns and VMD of `vmd_modes` modes (0: none) over `vmd_window` bars.
    #[must_use]
    pub fn new(rv_bars: usize, vmd_modes: usize, vmd_window: usize) -> FeatureOptions {
        FeatureOptions { rv_bars, vmd_modes, vmd_window }
    }

    /// The VMD decomposition these options ask for, `None` without modes.
    #[must_use]
    pub fn vmd(&self) -> Option<VmdParams> {
        (self.vmd_modes > 0).then(|| VmdParams {
            modes: self.vmd_modes,
            window: self.vmd_window,
            ..VmdParams::default()
        })
    }

    /// Checks every option against its bounds, and that a VMD window holds its modes.
    ///
    /// # Errors
    /// `FeatureError::Params` naming the first option out of range.
    pub fn validate(&self) -> Result<(), FeatureError> {
        if let Some((name, value, why)) = self.out_of_bounds() {
            return Err(FeatureError::Params(format!("{name} {why}, got {value}")));
        }
        if self.vmd_modes > 0 && self.vmd_window < 2 * self.vmd_modes {
            return Err(FeatureError::Params(format!(
                "vmd_window must be at least 2 x vmd_modes, got {} for {} modes",
                self.vmd_window, self.vmd_modes
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_name_the_option() {
        FeatureOptions::default().validate().unwrap();
        assert_eq!(FeatureOptions::default().vmd().map(|v| (v.modes, v.window)), Some((3, 64)));
        assert_eq!(FeatureOptions::new(30, 0, 64).vmd(), None);
        let error = FeatureOptions::new(0, 3, 64).validate().unwrap_err().to_string();
        assert!(error.starts_with("rv_bars must be in [1, 10000]"), "{error}");
        let error = FeatureOptions::new(30, 8, 10).validate().unwrap_err().to_string();
        assert!(error.contains("vmd_window must be at least 2 x vmd_modes"), "{error}");
    }
}
