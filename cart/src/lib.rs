//! cart (work in progress).
