//! Reading a connection string at init from Secrets Manager or SSM Parameter Store, with the
//! AWS SDK for Rust and the function role's credentials, so no connection string sits in a
//! plain environment variable. The SDK is only loaded when one of these sources is configured.

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::config::{MONGODB_URI_PARAMETER, MONGODB_URI_SECRET_ID, UriSource};
use crate::redact::{register_uri, scrub};

/// Why a connection string could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

/// Keys a JSON secret may keep the connection string under.
const JSON_KEYS: &[&str] = &["uri", "MONGODB_URI", "connectionString"];

pub async fn resolve(source: &UriSource) -> Result<String, SecretError> {
    let uri = match source {
        UriSource::Plain(uri) => return Ok(uri.clone()),
        UriSource::Secret(id) => {
            let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
            let client = aws_sdk_secretsmanager::Client::new(&config);
            let output = client
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .map_err(|e| {
                    SecretError(format!(
                        "{MONGODB_URI_SECRET_ID}={id:?}: cannot read the secret from Secrets Manager: {}",
                        describe(e)
                    ))
                })?;
            let text = output.secret_string().ok_or_else(|| {
                SecretError(format!(
                    "{MONGODB_URI_SECRET_ID}={id:?}: the secret has no string value"
                ))
            })?;
            uri_from_secret_text(text).ok_or_else(|| {
                SecretError(format!(
                    "{MONGODB_URI_SECRET_ID}={id:?}: the secret is neither a connection string nor JSON with a \"uri\" key"
                ))
            })?
        }
        UriSource::Parameter(name) => {
            let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
            let client = aws_sdk_ssm::Client::new(&config);
            let output = client
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| {
                    SecretError(format!(
                        "{MONGODB_URI_PARAMETER}={name:?}: cannot read the parameter from SSM Parameter Store: {}",
                        describe(e)
                    ))
                })?;
            let text = output.parameter().and_then(|p| p.value()).ok_or_else(|| {
                SecretError(format!(
                    "{MONGODB_URI_PARAMETER}={name:?}: the parameter has no value"
                ))
            })?;
            uri_from_secret_text(text).ok_or_else(|| {
                SecretError(format!(
                    "{MONGODB_URI_PARAMETER}={name:?}: the parameter is not a connection string"
                ))
            })?
        }
    };
    register_uri(&uri);
    Ok(uri)
}

/// An AWS error in one line: the service's error code and message when the service answered
/// (AccessDeniedException, ResourceNotFoundException, ...), else why the call did not get through.
fn describe<E, R>(err: SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or("no message")
            )
        }
        other => DisplayErrorContext(&other).to_string(),
    };
    scrub(&text)
}

/// A secret holds either the connection string itself or a JSON object with it under one of
/// [`JSON_KEYS`].
fn uri_from_secret_text(text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with("mongodb://") || text.starts_with("mongodb+srv://") {
        return Some(text.to_owned());
    }
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    JSON_KEYS
        .iter()
        .find_map(|key| json.get(key).and_then(|v| v.as_str()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_may_be_the_uri_or_json_holding_it() {
        assert_eq!(
            uri_from_secret_text(" mongodb://h/ \n").as_deref(),
            Some("mongodb://h/")
        );
        assert_eq!(
            uri_from_secret_text(r#"{"uri": "mongodb+srv://c.example.net"}"#).as_deref(),
            Some("mongodb+srv://c.example.net")
        );
        assert_eq!(uri_from_secret_text(r#"{"password": "x"}"#), None);
        assert_eq!(uri_from_secret_text("hunter2"), None);
    }
}
