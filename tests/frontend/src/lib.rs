//! Placeholder; filled by the front-end test suite.
