//! Tests of the clock protocol against the simulated platform.
