#![no_main]
//! Any status and any bytes: the chargeapi classifier gives an outcome, never a panic.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::classify(&cancelgate_provider_chargeapi::ChargeApi, data));
