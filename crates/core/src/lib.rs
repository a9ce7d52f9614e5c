//! Domain types of cancelgate, shared by the gateway and every provider adapter.
//!
//! Architecture invariant: this crate performs no I/O and knows no provider, no HTTP client,
//! no server framework and no storage. It defines the vocabulary the rest speaks:
//! the [`CancelProvider`] trait, request/response *values* ([`HttpRequest`], [`HttpResponse`]),
//! what an upstream answer means ([`Outcome`]) and the unified error taxonomy ([`ErrorCode`]).

mod account;
pub mod classify;
mod code;
mod http_value;
mod outcome;
mod provider;
mod reference;
#[cfg(feature = "test-util")]
pub mod testing;
mod timestamp;
mod transport;

pub use account::{Account, CredentialField, MissingCredential};
pub use code::{ErrorCode, RefusalReason};
pub use http_value::{
    Header, HeaderValueKind, HttpRequest, HttpResponse, UPSTREAM_JSON_LIMIT, UPSTREAM_TEXT_LIMIT, parse_retry_after,
};
pub use outcome::{AttemptContext, Confirmation, Effect, Outcome, Refusal, UpstreamFault};
pub use provider::{BuildError, CancelProvider, CancelRequest, Capabilities, ProviderId};
pub use reference::{InvalidReference, Reference, check_reference};
pub use timestamp::parse_timestamp;
pub use transport::{TransportError, TransportErrorKind};
