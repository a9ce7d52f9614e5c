//! End-to-end tests over real HTTP: the gateway on 127.0.0.1 (port 0) with the shipped config,
//! upstreams mocked by wiremock on 127.0.0.1.

// Tests panic on what they did not expect: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accommodation;
mod authz;
mod bad_input;
mod chargeapi;
mod frontpayment;
mod helpers;
mod hostile;
mod newcomer;
mod operations;
mod properties;
mod secrets;
