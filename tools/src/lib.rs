//! Library half of the daos-rs tools: argument grammars and report formatting, unit-testable.
