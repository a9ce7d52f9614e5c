//! End-to-end tests over real HTTP: the gateway on 127.0.0.1 (port 0) with the shipped config,
//! upstreams mocked by wiremock on 127.0.0.1.

// Tests panic on what they did not expect: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accommodation;
mod authz;
mod bad_input;
mod batches;
mod chargeapi;
mod client_quota;
mod concurrency;
mod console;
mod crash;
mod deploy;
mod drain;
mod driving;
mod frontpayment;
mod h2c;
mod helpers;
mod hostile;
mod idempotency;
mod ledger_outage;
mod newcomer;
mod observability;
mod openapi;
mod operate;
mod operations;
mod own_postgres;
mod postgres;
#[path = "../../crates/ledger/tests/support/postgres_env.rs"]
mod postgres_env;
mod process;
mod properties;
mod provider_units;
mod quota;
mod receiver;
mod redis_env;
mod refusal_document;
mod resilience;
mod sandbox_outcomes;
mod secrets;
mod shutdown;
mod webhook_harness;
mod webhook_verifier;
mod webhooks;
mod webhooks_e2e;
mod webhooks_process;
mod webhooks_support;
