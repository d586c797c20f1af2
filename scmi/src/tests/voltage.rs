//! Tests of the voltage protocol against the simulated platform.
