//! Tests of the sensor protocol against the simulated platform.
