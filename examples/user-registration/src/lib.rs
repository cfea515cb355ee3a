//! What both functions of the walkthrough share: the event, the users API's
//! answer, and the check of a registration.

use serde::{Deserialize, Serialize};

/// The event: a user to register.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewUser {
    /// The user's name.
    pub name: String,
    /// The user's e-mail address, which must hold an `@`.
    pub email: String,
}

/// What is submitted to the users API: the user under a new id.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct UserRecord {
    /// The id this registration gives the user.
    pub user_id: String,
    /// The user's name.
    pub name: String,
    /// The user's e-mail address.
    pub email: String,
}

/// The function's response.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Registered {
    /// The registered user's id.
    pub user_id: String,
    /// The HTTP status of the users API's answer.
    pub status: u16,
}

/// Why a registration is refused before it is submitted.
#[derive(Debug, thiserror::Error)]
pub enum InvalidUser {
    /// The name is empty.
    #[error("the user has no name")]
    NoName,
    /// The e-mail address has no `@`.
    #[error("{0:?} is not an e-mail address")]
    BadEmail(String),
}

impl NewUser {
    /// Checks the registration before it is submitted.
    pub fn validate(&self) -> Result<(), InvalidUser> {
        if self.name.trim().is_empty() {
            return Err(InvalidUser::NoName);
        }
        if !self.email.contains('@') {
            return Err(InvalidUser::BadEmail(self.email.clone()));
        }
        Ok(())
    }

    /// The record to submit, under a new user id.
    pub fn into_record(self) -> UserRecord {
        UserRecord { user_id: format!("u-{:012x}", fastrand::u64(..1 << 48)), name: self.name, email: self.email }
    }
}

/// Where the users API is: `USERS_API_URL`, else its default local address.
pub fn users_api_url() -> String {
    std::env::var("USERS_API_URL").unwrap_or_else(|_| "http://127.0.0.1:4400".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_needs_a_name_and_an_email_address() {
        let user = |name: &str, email: &str| NewUser { name: name.into(), email: email.into() };
        assert!(user("Ada", "ada@example.com").validate().is_ok());
        assert_eq!(user(" ", "ada@example.com").validate().unwrap_err().to_string(), "the user has no name");
        assert_eq!(user("Ada", "ada").validate().unwrap_err().to_string(), "\"ada\" is not an e-mail address");
    }
}
