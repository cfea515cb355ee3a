//! A recursive-descent parser from tokens to the checked tree. `!` binds
//! tightest, then `AND` (written, or terms side by side), then `OR`.

use super::ast::{AnnotationTest, EqualityOp, Expr, ExprKind, GroupRef, RootCause, RootCauseLevel, ServiceSelector};
use super::check::{self, Context, Keyword, Literal};
use super::lexer::{Lexer, Operator, Token, TokenKind, shortened, too_deep};
use super::{FilterError, MAX_DEPTH};

/// Parses and checks a whole expression.
pub(crate) fn parse(input: &str) -> Result<Expr, FilterError> {
    let mut parser = Parser { lexer: Lexer::new(input), peeked: None, depth: 0 };
    if matches!(parser.peek()?.kind, TokenKind::End) {
        return Err(FilterError::new(0, "empty filter expression"));
    }
    let expr = parser.or(Context::Trace, None)?;
    let token = parser.next()?;
    match token.kind {
        TokenKind::End => Ok(expr),
        TokenKind::RightParen | TokenKind::RightBrace => {
            Err(FilterError::new(token.position, format!("unmatched {}", token.kind)))
        }
        _ => Err(expected("AND, OR or the end of the expression", None, &token)),
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The next token, once looked at.
    peeked: Option<Token<'a>>,
    /// How many parentheses, braces and `!` enclose the current token.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&mut self) -> Result<&Token<'a>, FilterError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn next(&mut self) -> Result<Token<'a>, FilterError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn peek_word(&mut self, lowercase: &str) -> Result<bool, FilterError> {
        Ok(matches!(self.peek()?.kind, TokenKind::Word(word) if word.eq_ignore_ascii_case(lowercase)))
    }

    /// The operator the next token is, if it is one.
    fn peek_operator(&mut self) -> Result<Option<Operator>, FilterError> {
        Ok(self.peek()?.kind.operator())
    }

    /// Whether the next token starts a term, which then joins the one before
    /// it with an implicit AND.
    fn starts_term(&mut self) -> Result<bool, FilterError> {
        Ok(match self.peek()?.kind {
            TokenKind::Not | TokenKind::LeftParen => true,
            TokenKind::Word(word) => !is_reserved(word),
            _ => false,
        })
    }

    /// One level deeper, for the `(`, `{` or `!` at `position`.
    fn enter(&mut self, position: usize) -> Result<(), FilterError> {
        if self.depth == MAX_DEPTH {
            return Err(too_deep(position));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `after` names what came before, for error messages.
    fn or(&mut self, context: Context, after: Option<&str>) -> Result<Expr, FilterError> {
        let first = self.and(context, after)?;
        let mut rest = Vec::new();
        while self.peek_word("or")? {
            self.next()?;
            rest.push(self.and(context, Some("OR"))?);
        }
        Ok(combine(first, rest, ExprKind::Or))
    }

    fn and(&mut self, context: Context, after: Option<&str>) -> Result<Expr, FilterError> {
        let first = self.unary(context, after)?;
        let mut rest = Vec::new();
        loop {
            if self.peek_word("and")? {
                self.next()?;
                rest.push(self.unary(context, Some("AND"))?);
            } else if self.starts_term()? {
                rest.push(self.unary(context, None)?);
            } else {
                break;
            }
        }
        Ok(combine(first, rest, ExprKind::And))
    }

    fn unary(&mut self, context: Context, after: Option<&str>) -> Result<Expr, FilterError> {
        if !matches!(self.peek()?.kind, TokenKind::Not) {
            return self.primary(context, after);
        }
        let position = self.next()?.position;
        self.enter(position)?;
        let operand = self.unary(context, Some("\"!\""))?;
        self.leave();
        Ok(Expr { position, kind: ExprKind::Not(Box::new(operand)) })
    }

    fn primary(&mut self, context: Context, after: Option<&str>) -> Result<Expr, FilterError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::LeftParen => {
                self.enter(token.position)?;
                let inner = self.or(context, Some("\"(\""))?;
                self.close(token.position, ')', "AND, OR or \")\"")?;
                self.leave();
                Ok(inner)
            }
            TokenKind::Word(word) if !is_reserved(word) => self.keyword(word, token.position, context),
            _ => Err(expected("a filter", after, &token)),
        }
    }

    /// Consumes the `closer` of the `(` or `{` at `open`; `expected_instead`
    /// says what else could have come.
    fn close(&mut self, open: usize, closer: char, expected_instead: &str) -> Result<(), FilterError> {
        let token = self.next()?;
        match (closer, &token.kind) {
            (')', TokenKind::RightParen) | ('}', TokenKind::RightBrace) => Ok(()),
            (_, TokenKind::End) => {
                let opener = if closer == ')' { '(' } else { '{' };
                Err(FilterError::new(open, format!("unclosed \"{opener}\"")))
            }
            _ => Err(expected(expected_instead, None, &token)),
        }
    }

    /// The term a word at `position` starts.
    fn keyword(&mut self, word: &str, position: usize, context: Context) -> Result<Expr, FilterError> {
        let lowercase = word.to_ascii_lowercase();
        let kind = match lowercase.as_str() {
            "service" => {
                top_level_only("service()", position, context)?;
                self.service()?
            }
            "edge" => {
                top_level_only("edge()", position, context)?;
                self.edge()?
            }
            "group.name" => {
                top_level_only("group.name", position, context)?;
                ExprKind::Group(GroupRef::Name(self.group("group.name")?))
            }
            "group.arn" => {
                top_level_only("group.arn", position, context)?;
                ExprKind::Group(GroupRef::Arn(self.group("group.arn")?))
            }
            "rootcause.json" => {
                top_level_only("rootcause.json", position, context)?;
                self.equals_only("rootcause.json")?;
                let token = self.next()?;
                match token.kind {
                    TokenKind::Json(json) => ExprKind::RootCauseJson(json),
                    _ => return Err(expected("a JSON array #[...]", Some("="), &token)),
                }
            }
            "id" => return Err(FilterError::new(position, "id() is only valid inside service() or edge()")),
            _ if lowercase.starts_with("rootcause.") => self.root_cause(word, &lowercase, position, context)?,
            _ if lowercase.starts_with("annotation.") => self.annotation(word, position, context)?,
            _ => match Keyword::lookup(&lowercase) {
                Some(keyword) => self.comparison(keyword, position, context)?,
                None => return Err(unknown_keyword(word, &lowercase, position)),
            },
        };
        Ok(Expr { position, kind })
    }

    /// A boolean, number or string keyword, bare or compared.
    fn comparison(&mut self, keyword: Keyword, position: usize, context: Context) -> Result<ExprKind, FilterError> {
        if !context.allows(keyword) {
            return Err(FilterError::new(position, format!("{} is not valid {context}", keyword.name())));
        }
        let Some(op) = self.peek_operator()? else {
            return match keyword {
                Keyword::Boolean(keyword) => Ok(ExprKind::Boolean { keyword, op: EqualityOp::Eq, value: true }),
                Keyword::String(keyword) => Ok(ExprKind::IsSet(keyword)),
                Keyword::Number(keyword) => {
                    let token = self.next()?;
                    Err(expected("a comparison operator", Some(keyword.name()), &token))
                }
            };
        };
        let op_position = self.next()?.position;
        let typed = check::operator(keyword, op, op_position)?;
        let (value, value_position) = self.literal(&op.to_string())?;
        check::comparison(typed, value, value_position)
    }

    /// `annotation.KEY`, bare or compared; the value's type picks the operators.
    fn annotation(&mut self, word: &str, position: usize, context: Context) -> Result<ExprKind, FilterError> {
        let key = &word["annotation.".len()..];
        if key.is_empty() {
            return Err(FilterError::new(position + word.len(), "expected an annotation key after \"annotation.\""));
        }
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            let message = format!("annotation key \"{}\" may hold only letters, digits and _", shortened(key));
            return Err(FilterError::new(position + "annotation.".len(), message));
        }
        top_level_only(&format!("annotation.{}", shortened(key)), position, context)?;
        let test = match self.peek_operator()? {
            Some(op) => {
                self.next()?;
                let (value, value_position) = self.literal(&op.to_string())?;
                check::annotation(op, value, value_position)?
            }
            None => AnnotationTest::IsSet,
        };
        Ok(ExprKind::Annotation { key: key.to_owned(), test })
    }

    /// The value after an operator.
    fn literal(&mut self, after: &str) -> Result<(Literal, usize), FilterError> {
        let token = self.next()?;
        let literal = match token.kind {
            TokenKind::String(value) => Literal::String(value),
            TokenKind::Number(value) => Literal::Number(value),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("true") => Literal::Boolean(true),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("false") => Literal::Boolean(false),
            // AWS's own example has `name = traces`: a bare word is a string.
            TokenKind::Word(word) if !is_reserved(word) => Literal::String(word.to_owned()),
            _ => return Err(expected("a value", Some(after), &token)),
        };
        Ok((literal, token.position))
    }

    /// `service(selector)` or `service()`, then an optional filter in braces.
    fn service(&mut self) -> Result<ExprKind, FilterError> {
        let open = self.open_paren("service")?;
        let service = match self.peek()?.kind {
            TokenKind::RightParen => ServiceSelector::default(),
            _ => self.selector("\"service(\"")?,
        };
        self.close(open, ')', "\")\"")?;
        let filter = self.braces(Context::Service)?;
        Ok(ExprKind::Service { service, filter })
    }

    /// `edge(source, destination)`, then an optional filter in braces.
    fn edge(&mut self) -> Result<ExprKind, FilterError> {
        let open = self.open_paren("edge")?;
        let source = self.selector("\"edge(\"")?;
        let comma = self.next()?;
        if !matches!(comma.kind, TokenKind::Comma) {
            return Err(expected("\",\"", Some("the source service"), &comma));
        }
        let destination = self.selector("\",\"")?;
        self.close(open, ')', "\")\"")?;
        let filter = self.braces(Context::Edge)?;
        Ok(ExprKind::Edge { source, destination, filter })
    }

    fn open_paren(&mut self, after: &str) -> Result<usize, FilterError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::LeftParen => Ok(token.position),
            _ => Err(expected("\"(\"", Some(after), &token)),
        }
    }

    /// A quoted service name or `id(…)`.
    fn selector(&mut self, after: &str) -> Result<ServiceSelector, FilterError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::String(name) => Ok(ServiceSelector { name: Some(name), ..ServiceSelector::default() }),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("id") => self.id(token.position),
            _ => Err(expected("a quoted service name or id(...)", Some(after), &token)),
        }
    }

    /// `id(name: "…", type: "…", account.id: "…")`, the `id` at `position`
    /// read: each argument at most once, in any order, at least one.
    fn id(&mut self, position: usize) -> Result<ServiceSelector, FilterError> {
        let open = self.open_paren("id")?;
        if matches!(self.peek()?.kind, TokenKind::RightParen) {
            return Err(FilterError::new(position, "id() needs at least one of name, type or account.id"));
        }
        let mut selector = ServiceSelector::default();
        let mut after = "\"id(\"";
        loop {
            let token = self.next()?;
            let TokenKind::Word(word) = token.kind else {
                return Err(expected("name, type or account.id", Some(after), &token));
            };
            let (argument, field) = match word.to_ascii_lowercase().as_str() {
                "name" => ("name", &mut selector.name),
                "type" => ("type", &mut selector.kind),
                "account.id" => ("account.id", &mut selector.account_id),
                _ => {
                    let message =
                        format!("unknown id() argument \"{}\", expected name, type or account.id", shortened(word));
                    return Err(FilterError::new(token.position, message));
                }
            };
            if field.is_some() {
                return Err(FilterError::new(token.position, format!("id() argument {argument} given twice")));
            }
            let colon = self.next()?;
            if !matches!(colon.kind, TokenKind::Colon) {
                return Err(expected("\":\"", Some(argument), &colon));
            }
            let value = self.next()?;
            let TokenKind::String(value) = value.kind else {
                return Err(expected("a quoted string", Some(&format!("{argument}:")), &value));
            };
            *field = Some(value);
            let token = self.next()?;
            match token.kind {
                TokenKind::RightParen => return Ok(selector),
                TokenKind::Comma => after = "\",\"",
                TokenKind::End => return Err(FilterError::new(open, "unclosed \"(\"")),
                _ => return Err(expected("\",\" or \")\"", None, &token)),
            }
        }
    }

    /// An optional filter in braces, evaluated in `context`.
    fn braces(&mut self, context: Context) -> Result<Option<Box<Expr>>, FilterError> {
        if !matches!(self.peek()?.kind, TokenKind::LeftBrace) {
            return Ok(None);
        }
        let open = self.next()?.position;
        Ok(Some(Box::new(self.block(open, context)?)))
    }

    /// The filter after the `{` at `open`, and its `}`.
    fn block(&mut self, open: usize, context: Context) -> Result<Expr, FilterError> {
        self.enter(open)?;
        let filter = self.or(context, Some("\"{\""))?;
        self.close(open, '}', "AND, OR or \"}\"")?;
        self.leave();
        Ok(filter)
    }

    /// `rootcause.CAUSE.LEVEL { filter }`.
    fn root_cause(
        &mut self,
        word: &str,
        lowercase: &str,
        position: usize,
        context: Context,
    ) -> Result<ExprKind, FilterError> {
        let parts = lowercase.strip_prefix("rootcause.").and_then(|rest| rest.split_once('.'));
        let cause = parts.and_then(|(cause, _)| RootCause::ALL.into_iter().find(|known| known.name() == cause));
        let level = parts.and_then(|(_, level)| RootCauseLevel::ALL.into_iter().find(|known| known.name() == level));
        let (Some(cause), Some(level)) = (cause, level) else {
            return Err(unknown_keyword(word, lowercase, position));
        };
        if !check::root_cause_exists(cause, level) {
            let message = format!("rootcause.{} has no {} level, only service and entity", cause.name(), level.name());
            return Err(FilterError::new(position, message));
        }
        top_level_only(lowercase, position, context)?;
        let token = self.next()?;
        if !matches!(token.kind, TokenKind::LeftBrace) {
            return Err(expected("\"{\"", Some(lowercase), &token));
        }
        let filter = Box::new(self.block(token.position, Context::RootCause(cause, level))?);
        Ok(ExprKind::RootCause { cause, level, filter })
    }

    /// `= "…"` after `group.name` or `group.arn`: the group's name or ARN.
    fn group(&mut self, keyword: &str) -> Result<String, FilterError> {
        self.equals_only(keyword)?;
        let token = self.next()?;
        match token.kind {
            TokenKind::String(value) => Ok(value),
            TokenKind::Word(word) if !is_reserved(word) => Ok(word.to_owned()),
            _ => Err(expected("a quoted string", Some("="), &token)),
        }
    }

    /// Consumes the `=` after `keyword`, the only operator it takes.
    fn equals_only(&mut self, keyword: &str) -> Result<(), FilterError> {
        let token = self.next()?;
        match token.kind.operator() {
            Some(Operator::Eq) => Ok(()),
            Some(op) => {
                Err(FilterError::new(token.position, format!("operator {op} does not apply to {keyword}, only =")))
            }
            None => Err(expected("\"=\"", Some(keyword), &token)),
        }
    }
}

/// Words that are operators or values, never the start of a term.
fn is_reserved(word: &str) -> bool {
    ["and", "or", "true", "false"].iter().any(|reserved| word.eq_ignore_ascii_case(reserved))
        || Operator::from_word(word).is_some()
}

/// One operand, or the `And` or `Or` of them all.
fn combine(first: Expr, rest: Vec<Expr>, make: fn(Vec<Expr>) -> ExprKind) -> Expr {
    if rest.is_empty() {
        return first;
    }
    let position = first.position;
    Expr { position, kind: make(std::iter::once(first).chain(rest).collect()) }
}

/// Complex keywords (`what`, at `position`) are valid only at the top level.
fn top_level_only(what: &str, position: usize, context: Context) -> Result<(), FilterError> {
    match context {
        Context::Trace => Ok(()),
        _ => Err(FilterError::new(position, format!("{what} is not valid {context}"))),
    }
}

/// The error for finding `found` where `what` was expected, after `after`.
fn expected(what: &str, after: Option<&str>, found: &Token<'_>) -> FilterError {
    let after = after.map(|after| format!(" after {after}")).unwrap_or_default();
    let message = match found.kind {
        TokenKind::End => format!("unexpected end of expression, expected {what}{after}"),
        _ => format!("expected {what}{after}, found {}", found.kind),
    };
    FilterError::new(found.position, message)
}

fn unknown_keyword(word: &str, lowercase: &str, position: usize) -> FilterError {
    let hint = check::suggestion(lowercase).map(|keyword| format!(" (did you mean {keyword}?)")).unwrap_or_default();
    FilterError::new(position, format!("unknown keyword \"{}\"{hint}", shortened(word)))
}
