//! Tests of the reset protocol against the simulated platform.
