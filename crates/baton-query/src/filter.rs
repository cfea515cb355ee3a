//! X-Ray's filter-expression language, as `GetTraceSummaries`, groups and
//! the console's search take it: [`parse`] reads and type-checks an
//! expression into an [`Expr`], or gives one [`FilterError`] with the byte
//! offset of the problem. Evaluating an [`Expr`] on a trace is not done here.
//!
//! ```
//! use baton_query::filter;
//!
//! let expr = filter::parse(r#"service("api") { fault } AND responseTime > 2"#).unwrap();
//! assert_eq!(expr.to_string(), r#"(and (service "api" fault) (> responsetime 2))"#);
//!
//! let input = r#"responsetime > "slow""#;
//! let error = filter::parse(input).unwrap_err();
//! assert_eq!(error.to_string(), "cannot compare number keyword responsetime with a string at 15");
//! assert_eq!(error.caret(input), "responsetime > \"slow\"\n               ^");
//! ```
//!
//! # The language
//!
//! Terms are joined by `AND` (or by juxtaposition: `ok !partial duration < 3`)
//! and `OR`, negated by `!` and grouped by parentheses; `!` binds tightest,
//! then `AND`, then `OR`. Keywords and word operators are case-insensitive.
//! A term is:
//! - a boolean keyword, bare (`ok`), or `= true|false`, `!= true|false`;
//! - a number keyword with `=`, `!=`, `<`, `<=`, `>`, `>=` and a number
//!   (`-1`, `2`, `0.7`);
//! - a string keyword, bare (the field is set), or with `=`, `!=`,
//!   `CONTAINS`, `BEGINSWITH`, `ENDSWITH` and a string: double-quoted, with
//!   `\"` and `\\` as escapes, or a bare word (`name = traces`);
//! - `annotation.KEY` (letters, digits, `_`), bare (set) or compared with a
//!   boolean, number or string and the operators of that type;
//! - `service(NODE)`, `service()` (any node), `edge(NODE, NODE)`, each with an
//!   optional `{ filter }` on the node's or the call's segments; `NODE` is a
//!   quoted name or `id(name: "…", type: "…", account.id: "…")` with at
//!   least one argument;
//! - `group.name = "…"`, `group.arn = "…"`: a stored group's filter, see
//!   [`Expr::resolve_groups`];
//! - `rootcause.CAUSE.LEVEL { filter }`, CAUSE `fault`, `error` or
//!   `responsetime`, LEVEL `service`, `entity` or `exception` (not for
//!   `responsetime`); `rootcause.json = #[…]`, a JSON array of root causes.
//!
//! Where each keyword is valid (the complex keywords only at the top level;
//! AWS rules out annotations in `service()` and `edge()` filters):
//!
//! | keyword | top | `service{}` | `edge{}` | `rootcause.*.service{}` | `.entity{}` | `.exception{}` |
//! |---|---|---|---|---|---|---|
//! | `ok` `error` `throttle` `fault` `partial` | ✓ | ✓ | ✓ | | | |
//! | `responsetime` `duration` `http.status` | ✓ | ✓ | ✓ | | | |
//! | `http.url` `http.method` `http.useragent` `http.clientip` | ✓ | ✓ | ✓ | | | |
//! | `user` `availabilityzone` `instance.id` `resource.arn` | ✓ | ✓ | ✓ | | | |
//! | `inferred` | ✓ | ✓ | | ✓ | | |
//! | `root` | | ✓ | | | | |
//! | `name` | | ✓ | | ✓ | ✓ | ✓ |
//! | `type` | | ✓ | | ✓ | | |
//! | `account.id` | | | | ✓ | | |
//! | `first` `last` `index` | | | | ✓ | ✓ | ✓ |
//! | `remote` | | | | | ✓ | |
//! | `coverage` | | | | | ✓ (`responsetime` only) | |
//! | `message` | | | | | | ✓ |
//! | `annotation.*` `service()` `edge()` `group.*` `rootcause.*` | ✓ | | | | | |
//!
//! # Limits
//!
//! An input may hold [`MAX_INPUT_BYTES`] bytes and nest [`MAX_DEPTH`]
//! parentheses, braces, `!` and JSON brackets; past either, parsing stops
//! with an error at that point. Parsing takes time linear in the input.

mod ast;
mod check;
mod lexer;
mod parser;

use std::fmt;

pub use ast::{
    AnnotationTest, BooleanKeyword, EqualityOp, Expr, ExprKind, GroupRef, NumberKeyword, NumberOp, RootCause,
    RootCauseLevel, ServiceSelector, StringKeyword, StringOp,
};

/// The longest input [`parse`] reads, in bytes.
pub const MAX_INPUT_BYTES: usize = 4096;

/// How deep parentheses, braces, `!` and JSON brackets may nest.
pub const MAX_DEPTH: usize = 32;

/// Reads and checks a filter expression.
pub fn parse(input: &str) -> Result<Expr, FilterError> {
    parser::parse(input)
}

/// Why an input is not a valid filter expression, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    position: usize,
    message: String,
}

impl FilterError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> FilterError {
        FilterError { position, message: message.into() }
    }

    /// The byte offset of the problem in the input: a char boundary, at most
    /// the input's length (which means "at the end").
    pub fn position(&self) -> usize {
        self.position
    }

    /// What is wrong, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Two lines for a terminal: the line of `input` that holds the problem,
    /// and a `^` under it.
    pub fn caret(&self, input: &str) -> String {
        let position = input.floor_char_boundary(self.position);
        let line_start = input[..position].rfind('\n').map_or(0, |newline| newline + 1);
        let line_end = input[position..].find('\n').map_or(input.len(), |newline| position + newline);
        // Tabs stay tabs so that the caret lines up however wide the terminal draws them.
        let indent: String = input[line_start..position].chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        format!("{}\n{indent}^", &input[line_start..line_end])
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.message, self.position)
    }
}

impl std::error::Error for FilterError {}

#[cfg(test)]
mod tests;
