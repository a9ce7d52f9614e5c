//! The credentials each simulator accepts.

/// ChargeAPI: `Authorization: Bearer <this>`.
pub const CHARGEAPI_SECRET_KEY: &str = "ch_sk_test_sandbox";
/// Front Payment: `Authorization: Bearer <this>`.
pub const FRONTPAYMENT_TOKEN: &str = "fp_sandbox_token";
/// Accommodation, partner `partner_demo`: header `api-key`.
pub const ACCOMMODATION_API_KEY: &str = "acc_sandbox_key";
/// Accommodation, partner `partner_demo`: `settings.access.code` (number or string).
pub const ACCOMMODATION_CONNECTION_CODE: &str = "10001";
/// Accommodation: the name of the main partner.
pub const ACCOMMODATION_PARTNER: &str = "partner_demo";
/// Accommodation, partner `partner_other`: header `api-key`.
pub const ACCOMMODATION_OTHER_API_KEY: &str = "acc_other_key";
/// Accommodation, partner `partner_other`: connection code.
pub const ACCOMMODATION_OTHER_CONNECTION_CODE: &str = "20002";
/// Accommodation: the name of the other partner.
pub const ACCOMMODATION_OTHER_PARTNER: &str = "partner_other";
