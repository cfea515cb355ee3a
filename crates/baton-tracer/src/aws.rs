//! An AWS SDK for Rust interceptor: every operation a client makes (all its
//! retries included) becomes an `aws` subsegment of the caller's current
//! subsegment, named after the service as X-Ray names it (`DynamoDB`, `SQS`,
//! `S3`…), with the `aws` block (`operation`, `region`, `request_id`,
//! `retries`, and `table_name` or `queue_url` when the request names one),
//! the `http.response`, and the service's error as a remote cause. Every
//! attempt carries the trace headers (`X-Amzn-Trace-Id` and W3C `traceparent`).
//!
//! ```no_run
//! use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
//! use baton_tracer::aws::TracingInterceptor;
//!
//! // With aws-config: `aws_sdk_dynamodb::config::Builder::from(&sdk_config).interceptor(TracingInterceptor)`.
//! let config = aws_sdk_dynamodb::Config::builder()
//!     .behavior_version(BehaviorVersion::latest())
//!     .region(Region::new("eu-west-1"))
//!     .interceptor(TracingInterceptor)
//!     .build();
//! let client = aws_sdk_dynamodb::Client::from_conf(config);
//! ```

use std::fmt;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_types::region::Region;
use serde::Deserialize;

use crate::entity::{Namespace, Subsegment};

/// Records each AWS SDK operation as an `aws` subsegment and propagates the trace headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingInterceptor;

/// The operation's subsegment, kept in the operation's config bag from hook to hook.
/// Dropping the bag ends it, so a call whose future the caller drops still ends.
struct Call(Subsegment);

impl Drop for Call {
    fn drop(&mut self) {
        std::mem::replace(&mut self.0, Subsegment::off()).end();
    }
}

impl fmt::Debug for Call {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_tuple("Call").field(&self.0.id()).finish()
    }
}

impl Storable for Call {
    type Storer = StoreReplace<Self>;
}

/// The request parameters X-Ray shows in the `aws` block.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Resources {
    table_name: Option<String>,
    queue_url: Option<String>,
}

impl Intercept for TracingInterceptor {
    fn name(&self) -> &'static str {
        "baton-tracer"
    }

    // Not `read_before_execution`: for an interceptor set on the client, it
    // runs before the operation's configuration, which names the service and
    // operation, is loaded. Nothing is awaited in between.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else { return Ok(()) };
        let subsegment = Subsegment::begin(metadata.service().to_owned());
        subsegment.set_namespace(Namespace::Aws);
        subsegment.set_aws("operation", metadata.name());
        if let Some(region) = cfg.load::<Region>() {
            subsegment.set_aws("region", region.as_ref());
        }
        cfg.interceptor_state().store_put(Call(subsegment));
        Ok(())
    }

    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Call(subsegment)) = cfg.load::<Call>() else { return Ok(()) };
        let request = context.request();
        // JSON protocols only (DynamoDB, and SQS, which the SDK calls with JSON too);
        // other bodies may be large binary payloads.
        let json = request.headers().get("content-type").is_some_and(|kind| kind.contains("json"));
        if !subsegment.is_recording() || !json {
            return Ok(());
        }
        if let Some(body) = request.body().bytes()
            && let Ok(resources) = serde_json::from_slice::<Resources>(body)
        {
            if let Some(table) = resources.table_name {
                subsegment.set_aws("table_name", table);
            }
            if let Some(queue) = resources.queue_url {
                subsegment.set_aws("queue_url", queue);
            }
        }
        Ok(())
    }

    // After signing, on every attempt: SigV4 does not sign these headers. The X-Ray one
    // replaces the one the SDK copies from `_X_AMZN_TRACE_ID` in Lambda,
    // whose parent is the invocation rather than this subsegment.
    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Call(subsegment)) = cfg.load::<Call>() else { return Ok(()) };
        for (name, value) in subsegment.outgoing_headers() {
            if let Err(error) = context.request_mut().headers_mut().try_insert(name, value) {
                tracing::debug!(%error, name, "baton-tracer: cannot set a trace header on the AWS request");
            }
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Call(subsegment)) = cfg.load::<Call>() else { return Ok(()) };
        if let Some(attempts) = cfg.load::<RequestAttempts>() {
            subsegment.set_aws("retries", attempts.attempts().saturating_sub(1));
        }
        let response = context.response();
        if let Some(response) = response {
            let headers = response.headers();
            if let Some(id) = headers.get("x-amzn-requestid").or_else(|| headers.get("x-amz-request-id")) {
                subsegment.set_aws("request_id", id);
            }
            let content_length = headers.get("content-length").and_then(|length| length.parse().ok());
            subsegment.set_http_response(response.status().as_u16(), content_length);
        }
        if let Some(Err(error)) = context.output_or_error() {
            match (error.as_operation_error(), response) {
                (Some(service_error), Some(response)) => {
                    let code = error_code(response).unwrap_or_else(|| "ServiceError".into());
                    subsegment.record_remote_exception(&code, &service_error.to_string());
                    // The status flagged 4xx and 5xx; S3 also reports some errors in a 200.
                    if response.status().as_u16() < 400 {
                        subsegment.set_fault();
                    }
                }
                // No answer, or one that could not be read: the call failed on this side.
                _ => subsegment.record_error(error),
            }
        }
        // The bag keeps its `Call` (whose drop then ends nothing more).
        subsegment.clone().end();
        Ok(())
    }
}

/// The service's error code: the `x-amzn-ErrorType` header, or the body's
/// `__type` (JSON protocols) or `<Code>` (XML protocols), without the
/// namespace (`…#Code`) or URL (`Code:http…`) some services add.
fn error_code(response: &HttpResponse) -> Option<String> {
    #[derive(Deserialize)]
    struct JsonError {
        #[serde(rename = "__type")]
        kind: String,
    }

    let raw = match response.headers().get("x-amzn-errortype") {
        Some(header) => header.to_owned(),
        None => {
            let body = response.body().bytes()?;
            match serde_json::from_slice::<JsonError>(body) {
                Ok(error) => error.kind,
                Err(_) => {
                    let (_, rest) = std::str::from_utf8(body).ok()?.split_once("<Code>")?;
                    rest.split_once("</Code>")?.0.to_owned()
                }
            }
        }
    };
    let code = raw.rsplit('#').next()?.split(':').next()?.trim();
    (!code.is_empty()).then(|| code.to_owned())
}
