#![no_main]
//! Any string as a accommodation reference (plus reason and language): accepted ones stay in the path.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::reference_and_request(
    &cancelgate_provider_accommodation::Accommodation,
    data
));
