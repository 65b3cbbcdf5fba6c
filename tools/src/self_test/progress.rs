//! The progress bar of a `self_test` run: one tick per completed RPC, drawn on stderr only when
//! stderr is a terminal and the caller enables it (not with `--json`).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `total` steps. Hidden (but still counting, so `position()` works) when `!enabled` or
/// stderr is not a terminal.
pub fn bar(total: u64, enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let style =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} RPCs {per_sec} eta {eta}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(total).with_style(style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_bar_is_hidden_but_counts() {
        let pb = bar(10, false);
        assert!(pb.is_hidden());
        assert_eq!(pb.length(), Some(10));
        pb.inc(3);
        assert_eq!(pb.position(), 3);
        pb.finish_and_clear();
    }

    #[test]
    fn enabled_bar_follows_the_terminal() {
        // Under `cargo test` stderr is usually captured (not a tty); either way the bar must be
        // hidden exactly when stderr is not a terminal.
        let pb = bar(5, true);
        assert_eq!(pb.is_hidden(), !std::io::stderr().is_terminal());
        assert_eq!(pb.length(), Some(5));
        pb.finish_and_clear();
    }
}
