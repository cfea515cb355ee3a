//! ClickHouse's HTTP interface: one statement per request, data in
//! `RowBinary` both ways.

use std::time::Duration;

use crate::Error;

/// The longest a statement's text may be: `IN` lists of a batch's traces
/// pass ClickHouse's default 256 KiB.
const MAX_QUERY_SIZE: usize = 64 << 20;
/// The most bytes one answer may hold.
const MAX_ANSWER_BYTES: u64 = 4 << 30;

/// A connection pool to one ClickHouse server.
pub(super) struct Client {
    agent: ureq::Agent,
    url: String,
    authorization: Option<String>,
    /// Inserts into `Distributed` tables wait until every shard has its rows.
    distributed: bool,
}

impl Client {
    pub(super) fn new(url: &str, user: Option<&str>, password: Option<&str>, distributed: bool) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let authorization = (user.is_some() || password.is_some()).then(|| {
            let credentials = format!("{}:{}", user.unwrap_or("default"), password.unwrap_or(""));
            format!("Basic {}", base64(credentials.as_bytes()))
        });
        let url = format!("{}/", url.trim_end_matches('/'));
        Client { agent, url, authorization, distributed }
    }

    /// Runs one statement; returns the answer's bytes (`FORMAT RowBinary`
    /// for rows).
    pub(super) fn query(&self, sql: &str) -> Result<Vec<u8>, Error> {
        let request = self.agent.post(&self.url).query("max_query_size", MAX_QUERY_SIZE.to_string());
        self.send(request, sql.as_bytes(), sql)
    }

    /// Inserts `rows` with `statement` (`INSERT INTO t (columns) FORMAT RowBinary`).
    pub(super) fn insert(&self, statement: &str, rows: &[u8]) -> Result<(), Error> {
        let mut request = self.agent.post(&self.url).query("query", statement);
        if self.distributed {
            request = request.query("insert_distributed_sync", "1");
        }
        self.send(request, rows, statement).map(drop)
    }

    fn send(
        &self,
        mut request: ureq::RequestBuilder<ureq::typestate::WithBody>,
        body: &[u8],
        statement: &str,
    ) -> Result<Vec<u8>, Error> {
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        let failed = |error: &dyn std::fmt::Display| {
            Error::ClickHouse(format!("{}: {error} (in {})", self.url, statement_head(statement)))
        };
        let mut response = request.send(body).map_err(|error| failed(&error))?;
        let status = response.status();
        let answer =
            response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_vec().map_err(|error| failed(&error))?;
        if !status.is_success() {
            let message = String::from_utf8_lossy(&answer);
            return Err(failed(&format_args!("{status}: {}", message.trim())));
        }
        Ok(answer)
    }
}

/// The start of a statement, for error messages.
fn statement_head(statement: &str) -> &str {
    let end = statement.char_indices().nth(120).map_or(statement.len(), |(index, _)| index);
    &statement[..end]
}

/// Standard base64 with padding, for HTTP basic authentication.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"default:s3cret"), "ZGVmYXVsdDpzM2NyZXQ=");
    }

    #[test]
    fn errors_quote_the_start_of_a_statement() {
        assert_eq!(statement_head("SELECT 1"), "SELECT 1");
        assert_eq!(statement_head(&"é".repeat(500)).chars().count(), 120);
    }
}
