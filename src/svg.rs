//! SVG output of `simulate --svg` and `backtest --svg`. The charts are drawn by `fks-plot`
//! (plotters), which only the `svg` cargo feature compiles in: the product build (the
//! Docker image) leaves it out and answers `--svg` with [`SvgError::NotCompiled`].

/// True when this build can write SVG charts.
pub const AVAILABLE: bool = cfg!(feature = "svg");

/// Why no SVG was produced.
#[derive(Debug, thiserror::Error)]
pub enum SvgError {
    /// The `svg` feature is off in this build.
    #[error(
        "this build has no SVG output: rebuild with the `svg` cargo feature \
         (`cargo build -p flink-keda-scaler --features svg`; the workspace build has it)"
    )]
    NotCompiled,
    /// Drawing failed.
    #[cfg(feature = "svg")]
    #[error(transparent)]
    Draw(#[from] fks_plot::PlotError),
}

/// Fails with [`SvgError::NotCompiled`] when `wanted` and this build cannot write SVG: the
/// commands check before doing any work.
pub fn check_available(wanted: bool) -> Result<(), SvgError> {
    if wanted && !AVAILABLE {
        return Err(SvgError::NotCompiled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_wanted_is_always_fine_and_the_error_names_the_feature() {
        assert!(check_available(false).is_ok());
        assert_eq!(check_available(true).is_ok(), AVAILABLE);
        let msg = SvgError::NotCompiled.to_string();
        assert!(msg.contains("`svg` cargo feature"), "{msg}");
        assert!(msg.contains("--features svg"), "{msg}");
    }
}
