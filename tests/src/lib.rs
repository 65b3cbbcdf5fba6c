//! Shared harness for the multi-process tests (process spawning, ready-line waiting, cleanup).
