//! Component states and the DAOS transition diagram
//! (`docs/graph/pool_component_state_transition_diagram.gv`, digest §3).

use std::fmt;

/// State of a pool component, with DAOS's numeric values (`PO_COMP_ST_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
#[repr(u8)]
pub enum CompState {
    /// Added by extend, not yet holding data; skipped by I/O placement.
    New = 1,
    /// Being reintegrated (or extended): receives data, not yet serving reads.
    Up = 2,
    /// Up and in: fully serving.
    UpIn = 4,
    /// Failed/excluded; its shards are being rebuilt elsewhere.
    Down = 8,
    /// Failed and rebuilt: out of the pool.
    DownOut = 16,
    /// Being drained: up for I/O, down for rebuild.
    Drain = 32,
}

impl CompState {
    /// DAOS's numeric value.
    pub fn bits(self) -> u8 {
        self as u8
    }

    /// Parse DAOS's numeric value.
    pub fn from_bits(v: u8) -> Option<CompState> {
        Some(match v {
            1 => CompState::New,
            2 => CompState::Up,
            4 => CompState::UpIn,
            8 => CompState::Down,
            16 => CompState::DownOut,
            32 => CompState::Drain,
            _ => return None,
        })
    }

    /// Whether `self -> to` is an edge of the DAOS diagram (including rebuild-failure reverts).
    ///
    /// - extend: NEW -> UP -> UPIN, or NEW -> UPIN; a NEW target that fails stays NEW (fseq set) and
    ///   goes NEW -> DOWN at extend end.
    /// - exclude: UPIN -> DOWN -> DOWNOUT; drain: UPIN -> DRAIN -> DOWNOUT (or DOWN if it fails).
    /// - reintegrate: DOWNOUT -> UP -> UPIN (DOWN -> UP too); UP -> DOWN/DOWNOUT on failure.
    /// - reverts: DRAIN -> UPIN, UP -> DOWNOUT/DOWN/NEW. Exclusion is never reverted.
    pub fn can_transition(self, to: CompState) -> bool {
        use CompState::*;
        matches!(
            (self, to),
            (New, Up)
                | (New, UpIn)
                | (New, Down)
                | (Up, UpIn)
                | (Up, Down)
                | (Up, DownOut)
                | (Up, New)
                | (UpIn, Down)
                | (UpIn, Drain)
                | (Down, DownOut)
                | (Down, Up)
                | (DownOut, Up)
                | (Drain, DownOut)
                | (Drain, Down)
                | (Drain, UpIn)
        )
    }

    /// DAOS name (`NEW`, `UP`, `UPIN`, `DOWN`, `DOWNOUT`, `DRAIN`).
    pub fn name(self) -> &'static str {
        match self {
            CompState::New => "NEW",
            CompState::Up => "UP",
            CompState::UpIn => "UPIN",
            CompState::Down => "DOWN",
            CompState::DownOut => "DOWNOUT",
            CompState::Drain => "DRAIN",
        }
    }

    /// All states, in numeric order.
    pub const ALL: [CompState; 6] = [
        CompState::New,
        CompState::Up,
        CompState::UpIn,
        CompState::Down,
        CompState::DownOut,
        CompState::Drain,
    ];
}

impl fmt::Display for CompState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_daos() {
        let v: Vec<u8> = CompState::ALL.iter().map(|s| s.bits()).collect();
        assert_eq!(v, [1, 2, 4, 8, 16, 32]);
        for s in CompState::ALL {
            assert_eq!(CompState::from_bits(s.bits()), Some(s));
        }
        assert_eq!(CompState::from_bits(3), None);
    }

    #[test]
    fn exclusion_is_not_revertible() {
        assert!(CompState::UpIn.can_transition(CompState::Down));
        assert!(!CompState::Down.can_transition(CompState::UpIn));
        assert!(!CompState::DownOut.can_transition(CompState::UpIn));
        assert!(!CompState::UpIn.can_transition(CompState::New));
    }
}
