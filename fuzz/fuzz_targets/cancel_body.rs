#![no_main]
//! Any bytes as a `POST /v1/cancellations` body: a body or a 400 that names a field, never a panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(error) = cancelgate_gateway::api::CancelBody::parse(data) {
        assert_eq!(error.code, cancelgate_core::ErrorCode::InvalidRequest);
        assert!(error.param.as_deref().is_some_and(|p| !p.is_empty()));
    }
});
