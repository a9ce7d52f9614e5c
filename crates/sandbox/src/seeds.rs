//! The seeded references (see the crate docs for what each demonstrates), the never-seeded
//! ones that give a 404, and the benchmark prefixes.

/// Confirmed, RFC 3339 timestamps: the documented example.
pub const CHARGEAPI_CONFIRMED: &str = "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq";
/// Confirmed, UNIX-seconds timestamps.
pub const CHARGEAPI_CONFIRMED_UNIX: &str = "res_unixTimestamps01";
/// Pending (cancellable).
pub const CHARGEAPI_PENDING: &str = "res_pending01";
/// Already cancelled.
pub const CHARGEAPI_ALREADY_CANCELLED: &str = "res_alreadyCancelled01";
/// Completed.
pub const CHARGEAPI_COMPLETED: &str = "res_completed01";
/// Expired.
pub const CHARGEAPI_EXPIRED: &str = "res_expired01";
/// Failed.
pub const CHARGEAPI_FAILED: &str = "res_failed01";
/// Never seeded: 404.
pub const CHARGEAPI_UNKNOWN: &str = "res_doesNotExist01";
/// `res_bench[A-Za-z0-9]*` is a lazily created confirmed reservation.
pub const CHARGEAPI_BENCH_PREFIX: &str = "res_bench";

/// Reserved (cancellable).
pub const FRONTPAYMENT_RESERVED: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00";
/// Completed (captured).
pub const FRONTPAYMENT_COMPLETED: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f01";
/// Cancelled.
pub const FRONTPAYMENT_CANCELLED: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f02";
/// Expired.
pub const FRONTPAYMENT_EXPIRED: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f03";
/// Never seeded: 404.
pub const FRONTPAYMENT_UNKNOWN: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1fff";
/// A UUID starting with this is a lazily created reserved reservation.
pub const FRONTPAYMENT_BENCH_PREFIX: &str = "00000000-";

/// Cancellable (`partner_demo`, check-in in a year): the documented example.
pub const ACCOMMODATION_CANCELLABLE: &str = "BK_EXAMPLE_001";
/// Already cancelled.
pub const ACCOMMODATION_ALREADY_CANCELLED: &str = "BK_CANCELLED_001";
/// Status pending.
pub const ACCOMMODATION_PENDING: &str = "BK_PENDING_001";
/// Check-in date passed.
pub const ACCOMMODATION_PAST_CHECK_IN: &str = "BK_PAST_CHECKIN_001";
/// Not refundable.
pub const ACCOMMODATION_NON_REFUNDABLE: &str = "BK_NON_REFUNDABLE_001";
/// No cancellation policy.
pub const ACCOMMODATION_NO_POLICY: &str = "BK_NO_POLICY_001";
/// Owned by `partner_other`.
pub const ACCOMMODATION_OTHER_PARTNER: &str = "BK_OTHER_PARTNER_001";
/// Never seeded: 404.
pub const ACCOMMODATION_UNKNOWN: &str = "BK_UNKNOWN_001";
/// `BK_BENCH_[A-Za-z0-9_-]*` is a lazily created cancellable booking.
pub const ACCOMMODATION_BENCH_PREFIX: &str = "BK_BENCH_";
