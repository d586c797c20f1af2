//! Tests of the power protocol against the simulated platform.
