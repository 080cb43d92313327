//! Loom models of corepool live in `tests/`; see docs/verification.md.
