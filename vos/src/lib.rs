//! vos (work in progress).
