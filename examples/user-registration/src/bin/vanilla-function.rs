//! `VanillaFunction`: the registration handler without any tracer code. With
//! Active tracing its traces hold only what the platform records.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use user_registration::{NewUser, Registered, users_api_url};

async fn handler(event: LambdaEvent<NewUser>) -> Result<Registered, Error> {
    let user = event.payload;
    user.validate()?;
    println!("registering {}", user.email);
    let record = user.into_record();
    let response = reqwest::Client::new().post(format!("{}/users", users_api_url())).json(&record).send().await?;
    let status = response.error_for_status()?.status().as_u16();
    Ok(Registered { user_id: record.user_id, status })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
