//! rebuild (work in progress).
