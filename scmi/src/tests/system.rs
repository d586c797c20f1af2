//! Tests of the system protocol against the simulated platform.
