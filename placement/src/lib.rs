//! placement (work in progress).
