//! Integration tests: the simulators over real HTTP on 127.0.0.1 (one binary, one module per area).

// clippy's allow-*-in-tests covers `#[test]` functions only, not this test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accommodation;
mod admin;
mod chargeapi;
mod faults;
mod frontpayment;
mod helpers;
