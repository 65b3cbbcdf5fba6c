//! Rebuild status as DAOS reports it (`daos_rebuild_status`) and the words `pool query` prints
//! (`src/control/cmd/daos/pretty/pool.go`): idle, done, busy, stopping, stopped, failing, failed.

use std::fmt;

use daos_common::Der;

/// Progress state of the newest rebuild of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildState {
    /// No rebuild has run.
    NotStarted,
    /// Scanning or pulling.
    InProgress,
    /// Finished (successfully or not: see `errno`).
    Completed,
}

/// `daos_rebuild_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildStatus {
    /// Pool map version being rebuilt.
    pub version: u32,
    /// Seconds since it started.
    pub seconds: u32,
    /// 0, or the negative `DER_*` it failed (or was stopped) with.
    pub errno: i32,
    /// Progress state.
    pub state: RebuildState,
    /// Objects to be rebuilt.
    pub toberb_obj_nr: u64,
    /// Objects rebuilt.
    pub obj_nr: u64,
    /// Records rebuilt.
    pub rec_nr: u64,
    /// Bytes rebuilt.
    pub size: u64,
}

impl RebuildStatus {
    /// The one word DAOS's `pool query` uses for this status.
    pub fn word(&self) -> &'static str {
        let stopped = self.errno == Der::OpCanceled.rc();
        match (self.state, self.errno) {
            (RebuildState::NotStarted, _) => "idle",
            (RebuildState::InProgress, 0) => "busy",
            (RebuildState::InProgress, _) if stopped => "stopping",
            (RebuildState::InProgress, _) => "failing",
            (RebuildState::Completed, 0) => "done",
            (RebuildState::Completed, _) if stopped => "stopped",
            (RebuildState::Completed, _) => "failed",
        }
    }

    /// The state word in parentheses of a failed/stopped line.
    fn state_word(&self) -> &'static str {
        match self.state {
            RebuildState::InProgress => "busy",
            _ => "idle",
        }
    }
}

impl fmt::Display for RebuildStatus {
    /// `- Rebuild busy, 1 objs, 524288000 recs` or `- Rebuild stopped (state=idle, status=-2027)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errno == 0 {
            write!(
                f,
                "- Rebuild {}, {} objs, {} recs",
                self.word(),
                self.obj_nr,
                self.rec_nr
            )
        } else {
            write!(
                f,
                "- Rebuild {} (state={}, status={})",
                self.word(),
                self.state_word(),
                self.errno
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: RebuildState, errno: i32) -> RebuildStatus {
        RebuildStatus {
            version: 77,
            seconds: 3,
            errno,
            state,
            toberb_obj_nr: 2,
            obj_nr: 1,
            rec_nr: 524_288_000,
            size: 0,
        }
    }

    #[test]
    fn lines_match_daos_pool_query() {
        assert_eq!(
            st(RebuildState::InProgress, 0).to_string(),
            "- Rebuild busy, 1 objs, 524288000 recs"
        );
        assert_eq!(
            st(RebuildState::Completed, -2027).to_string(),
            "- Rebuild stopped (state=idle, status=-2027)"
        );
        assert_eq!(st(RebuildState::Completed, 0).word(), "done");
        assert_eq!(st(RebuildState::NotStarted, 0).word(), "idle");
        assert_eq!(st(RebuildState::InProgress, -1006).word(), "failing");
        assert_eq!(st(RebuildState::InProgress, -2027).word(), "stopping");
        assert_eq!(st(RebuildState::Completed, -1006).word(), "failed");
    }
}
