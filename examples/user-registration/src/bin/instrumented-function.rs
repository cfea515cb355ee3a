//! `InstrumentedFunction`: the same handler traced with baton-tracer. The
//! handler is captured (`## handler`, ColdStart and Service annotations),
//! `submit_user` is a captured method (`## submit_user`) that annotates the
//! user id and keeps the request as metadata, and the call to the users API
//! is a `remote` subsegment whose trace header the API receives.

use std::sync::LazyLock;

use baton_tracer::capture_method;
use baton_tracer::lambda::capture_lambda_handler;
use baton_tracer::reqwest::TracingMiddleware;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use user_registration::{InvalidUser, NewUser, Registered, UserRecord, users_api_url};

static CLIENT: LazyLock<ClientWithMiddleware> =
    LazyLock::new(|| ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware).build());

#[derive(Debug, thiserror::Error)]
enum RegistrationError {
    #[error(transparent)]
    Invalid(#[from] InvalidUser),
    #[error("the users API answered {0}")]
    Refused(u16),
    #[error(transparent)]
    Http(#[from] reqwest_middleware::Error),
    #[error(transparent)]
    Tracer(#[from] baton_tracer::TracerError),
}

#[capture_method(name = "## submit_user")]
async fn submit_user(record: &UserRecord) -> Result<Registered, RegistrationError> {
    baton_tracer::put_annotation("user_id", record.user_id.as_str())?;
    baton_tracer::put_metadata("request", record)?;
    let response = CLIENT.post(format!("{}/users", users_api_url())).json(record).send().await?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(RegistrationError::Refused(status));
    }
    Ok(Registered { user_id: record.user_id.clone(), status })
}

async fn handler(event: LambdaEvent<NewUser>) -> Result<Registered, Error> {
    let user = event.payload;
    user.validate().map_err(RegistrationError::from)?;
    println!("registering {}", user.email);
    Ok(submit_user(&user.into_record()).await?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(capture_lambda_handler(service_fn(handler))).await
}
