//! The users API the registration functions call: `POST /users` stores a
//! user under its id. Each request is a segment
//! named `users-api`, continuing the caller's trace from `X-Amzn-Trace-Id`
//! (or, from an OpenTelemetry-instrumented caller, W3C `traceparent`), so
//! the service map shows the function calling it. Listens on
//! `USERS_API_ADDR` (default 127.0.0.1:4400); traces go to
//! `AWS_XRAY_DAEMON_ADDRESS` when it is set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use baton_tracer::{HttpRequest, Segment};
use serde_json::{Value, json};
use user_registration::UserRecord;

/// Users by id.
type Users = Arc<Mutex<HashMap<String, UserRecord>>>;

async fn create_user(
    State(users): State<Users>,
    headers: HeaderMap,
    Json(user): Json<UserRecord>,
) -> (StatusCode, Json<Value>) {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let host = header("host").unwrap_or("localhost");
    let segment = Segment::builder("users-api")
        .incoming_headers(header("x-amzn-trace-id"), header("traceparent"))
        .http_request(host, HttpRequest::new("POST", &format!("http://{host}/users")))
        .begin();
    let id = user.user_id.clone();
    users.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), user);
    segment.set_http_response(StatusCode::CREATED.as_u16(), None);
    segment.end();
    (StatusCode::CREATED, Json(json!({"id": id})))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::var("USERS_API_ADDR").unwrap_or_else(|_| "127.0.0.1:4400".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening http {} (users API)", listener.local_addr()?);
    let router = Router::new().route("/users", post(create_user)).with_state(Users::default());
    axum::serve(listener, router).await
}
