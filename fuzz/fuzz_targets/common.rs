//! Shared by the fuzz targets: one check per property, applied to each adapter.

use cancelgate_core::{Account, AttemptContext, CancelProvider, CancelRequest, HttpResponse};

/// Status (2 bytes), flags (1 byte), then the body: any answer classifies without panicking.
pub fn classify(provider: &dyn CancelProvider, data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let Ok(status) = http::StatusCode::from_u16(status) else { return };
    let mut response = HttpResponse::new(status, bytes::Bytes::copy_from_slice(&data[3..]));
    response.truncated = data[2] & 1 == 1;
    if data[2] & 2 == 2 {
        response.headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("7"));
    }
    let context = AttemptContext { after_ambiguous: data[2] & 4 == 4 };
    let _ = provider.classify_cancel(&response, context);
    let _ = response.body_for_record();
}

/// Any string: a reference the adapter accepts can never change the upstream URL, and the request
/// built from it (with any reason and language) is well formed.
pub fn reference_and_request(provider: &dyn CancelProvider, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\u{1}');
    let raw = parts.next().unwrap_or("");
    let reason = parts.next().map(str::to_owned);
    let language = parts.next().map(str::to_owned);
    let Ok(reference) = provider.parse_reference(raw) else { return };
    let r = reference.as_str();
    assert!(!r.is_empty() && r.len() <= 128, "{r:?}");
    assert!(r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{r:?}");
    let mut account = Account::new("default");
    for field in provider.credential_fields() {
        account = if field.secret {
            account.with_secret(field.key, "secret")
        } else {
            account.with_setting(field.key, "note")
        };
    }
    let request = CancelRequest { reference, reason, language };
    if let Ok(http) = provider.build_cancel(&request, &account) {
        assert!(http.path.starts_with('/'), "{}", http.path);
        assert!(!http.path.contains(['?', '#', '%', ' ']) && !http.path.contains(".."), "{}", http.path);
        assert!(http.path.parse::<http::Uri>().is_ok(), "{}", http.path);
    }
}
