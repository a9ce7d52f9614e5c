//! W3C Trace Context: a caller's well-formed `traceparent` is accepted, its trace id logged on
//! the request's span, and the header forwarded upstream beside `X-Request-Id`.
//!
//! Only version `00` in its exact form is taken (`00-<32 hex>-<16 hex>-<2 hex>`, lower case,
//! neither id all zeros); anything else is ignored, never echoed into a log or a header. The
//! gateway does not start traces of its own: with no valid header nothing is forwarded.

use std::sync::Arc;

pub const HEADER: &str = "traceparent";

/// A validated `traceparent` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent(Arc<str>);

impl TraceParent {
    pub fn parse(raw: &str) -> Option<Self> {
        let parts: Vec<&str> = raw.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts.as_slice() else {
            return None;
        };
        let hex =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        let ok = *version == "00"
            && hex(trace_id, 32)
            && hex(parent_id, 16)
            && hex(flags, 2)
            && !zero(trace_id)
            && !zero(parent_id);
        ok.then(|| Self(Arc::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 32 hex digits that name the whole trace.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }
}

tokio::task_local! {
    static CURRENT: Option<TraceParent>;
}

/// The trace context of the request being served on this task, if the caller sent one.
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(Clone::clone).ok().flatten()
}

/// Run `fut` with `trace` as the current trace context (carried into spawned driver tasks).
pub fn scope<F: Future>(trace: Option<TraceParent>, fut: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(trace, fut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_version_00_is_accepted() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(good).unwrap();
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.as_str(), good);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nx: y",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }
}
