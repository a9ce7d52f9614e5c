//! Where the facade meets the engine: the one place engine values become HTTP ones and back.
//! A parsed body becomes the engine's `CancelCommand`, an authenticated `Client` answers the
//! engine's `Grants`, a `PrepareError` becomes its problem document (`ApiError`), and the
//! gateway's `Settings` give the engine the sections it reads.

use std::time::Duration;

use cancelgate_core::ErrorCode;
use cancelgate_engine::cancel::{CancelCommand, Grants, PrepareError};
use cancelgate_engine::settings::EngineSettings;

use crate::api::CancelBody;
use crate::clients::Client;
use crate::error::ApiError;
use crate::settings::Settings;

impl<'a> From<&'a CancelBody> for CancelCommand<'a> {
    fn from(body: &'a CancelBody) -> Self {
        CancelCommand {
            provider: &body.provider,
            account: body.account.as_deref(),
            reference: &body.reference,
            reason: body.reason.as_deref(),
            language: body.language.as_deref(),
        }
    }
}

impl Grants for Client {
    fn may_use(&self, provider: &str, account: &str) -> bool {
        Client::may_use(self, provider, account)
    }
}

impl From<PrepareError> for ApiError {
    fn from(error: PrepareError) -> Self {
        let detail = error.to_string();
        match error {
            PrepareError::ProviderUnavailable => {
                ApiError::new(ErrorCode::ProviderUnavailable, detail).with_retry_after(Duration::from_secs(60))
            }
            PrepareError::UnknownProvider => ApiError::invalid("provider", detail),
            PrepareError::UnknownAccount => ApiError::invalid("account", detail),
            PrepareError::Forbidden => ApiError::new(ErrorCode::Forbidden, detail),
            PrepareError::BadReference { provider, .. } => {
                let mut error = ApiError::invalid("reference", detail);
                error.provider = Some(provider.to_owned());
                error
            }
        }
    }
}

impl<'a> From<&'a Settings> for EngineSettings<'a> {
    fn from(settings: &'a Settings) -> Self {
        EngineSettings { providers: &settings.providers, redis: settings.redis.as_ref() }
    }
}
