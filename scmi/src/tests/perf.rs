//! Tests of the perf protocol against the simulated platform.
