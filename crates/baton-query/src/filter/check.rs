//! The typing rules of the language: the keywords and their types, where each
//! keyword is valid, and which operators and values each accepts. The parser
//! applies them as it reads, so the first error in the input is reported.

use std::fmt;

use super::FilterError;
use super::ast::{
    AnnotationTest, BooleanKeyword, EqualityOp, ExprKind, NumberKeyword, NumberOp, RootCause, RootCauseLevel,
    StringKeyword, StringOp,
};
use super::lexer::Operator;

/// A boolean, number or string keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Boolean(BooleanKeyword),
    Number(NumberKeyword),
    String(StringKeyword),
}

impl Keyword {
    /// The keyword a lowercase word names.
    pub(crate) fn lookup(lowercase: &str) -> Option<Keyword> {
        Keyword::all().find(|keyword| keyword.name() == lowercase)
    }

    fn all() -> impl Iterator<Item = Keyword> {
        let booleans = BooleanKeyword::ALL.into_iter().map(Keyword::Boolean);
        let numbers = NumberKeyword::ALL.into_iter().map(Keyword::Number);
        booleans.chain(numbers).chain(StringKeyword::ALL.into_iter().map(Keyword::String))
    }

    /// The keyword as written, in lowercase.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Keyword::Boolean(keyword) => keyword.name(),
            Keyword::Number(keyword) => keyword.name(),
            Keyword::String(keyword) => keyword.name(),
        }
    }
}

/// E.g. `number keyword responsetime`.
impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Keyword::Boolean(_) => "boolean",
            Keyword::Number(_) => "number",
            Keyword::String(_) => "string",
        };
        write!(f, "{kind} keyword {}", self.name())
    }
}

/// Where a filter is evaluated: on the trace, or in braces on the segments
/// of a service or edge, or on root causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    Trace,
    Service,
    Edge,
    RootCause(RootCause, RootCauseLevel),
}

impl Context {
    /// Whether `keyword` may appear here. The complex keywords (`service()`,
    /// `edge()`, `annotation.KEY`, `group.*`, `rootcause.*`) are valid only
    /// at the top level: AWS rules out annotations inside `service()` and
    /// `edge()` filters, and the others describe a whole trace.
    pub(crate) fn allows(self, keyword: Keyword) -> bool {
        use BooleanKeyword as B;
        use NumberKeyword as N;
        use StringKeyword as S;
        match self {
            Context::Trace => describes_request(keyword) || keyword == Keyword::Boolean(B::Inferred),
            Context::Service => {
                describes_request(keyword)
                    || matches!(keyword, Keyword::Boolean(B::Inferred | B::Root) | Keyword::String(S::Name | S::Type))
            }
            Context::Edge => describes_request(keyword),
            Context::RootCause(cause, level) => match keyword {
                Keyword::Boolean(B::First | B::Last) | Keyword::Number(N::Index) | Keyword::String(S::Name) => true,
                Keyword::Boolean(B::Inferred) | Keyword::String(S::Type | S::AccountId) => {
                    level == RootCauseLevel::Service
                }
                Keyword::Boolean(B::Remote) => level == RootCauseLevel::Entity,
                Keyword::Number(N::Coverage) => level == RootCauseLevel::Entity && cause == RootCause::ResponseTime,
                Keyword::String(S::Message) => level == RootCauseLevel::Exception,
                _ => false,
            },
        }
    }
}

/// The keywords of a request and its segments: valid on the trace and in
/// `service()` and `edge()` filters.
fn describes_request(keyword: Keyword) -> bool {
    use BooleanKeyword as B;
    use NumberKeyword as N;
    use StringKeyword as S;
    matches!(
        keyword,
        Keyword::Boolean(B::Ok | B::Error | B::Throttle | B::Fault | B::Partial)
            | Keyword::Number(N::ResponseTime | N::Duration | N::HttpStatus)
            | Keyword::String(
                S::HttpUrl
                    | S::HttpMethod
                    | S::HttpUserAgent
                    | S::HttpClientIp
                    | S::User
                    | S::AvailabilityZone
                    | S::InstanceId
                    | S::ResourceArn
            )
    )
}

/// E.g. `inside service() { ... }`, to follow "is not valid".
impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Context::Trace => f.write_str("at the top level"),
            Context::Service => f.write_str("inside service() { ... }"),
            Context::Edge => f.write_str("inside edge() { ... }"),
            Context::RootCause(cause, level) => {
                write!(f, "inside rootcause.{}.{} {{ ... }}", cause.name(), level.name())
            }
        }
    }
}

/// Whether X-Ray has this level for this kind of root cause: response time
/// root causes have no exceptions.
pub(crate) fn root_cause_exists(cause: RootCause, level: RootCauseLevel) -> bool {
    !(cause == RootCause::ResponseTime && level == RootCauseLevel::Exception)
}

/// A value as written after an operator; a bare word is a string.
#[derive(Debug)]
pub(crate) enum Literal {
    Boolean(bool),
    Number(f64),
    String(String),
}

impl Literal {
    fn type_name(&self) -> &'static str {
        match self {
            Literal::Boolean(_) => "a boolean",
            Literal::Number(_) => "a number",
            Literal::String(_) => "a string",
        }
    }
}

/// A keyword with an operator of its type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TypedOp {
    Boolean(BooleanKeyword, EqualityOp),
    Number(NumberKeyword, NumberOp),
    String(StringKeyword, StringOp),
}

/// `op`, at `position`, as `keyword`'s type has it.
pub(crate) fn operator(keyword: Keyword, op: Operator, position: usize) -> Result<TypedOp, FilterError> {
    let typed = match keyword {
        Keyword::Boolean(keyword) => equality_op(op).map(|op| TypedOp::Boolean(keyword, op)),
        Keyword::Number(keyword) => number_op(op).map(|op| TypedOp::Number(keyword, op)),
        Keyword::String(keyword) => string_op(op).map(|op| TypedOp::String(keyword, op)),
    };
    typed.ok_or_else(|| FilterError::new(position, format!("operator {op} does not apply to {keyword}")))
}

/// The comparison of a keyword with `value`, found at `position`.
pub(crate) fn comparison(typed: TypedOp, value: Literal, position: usize) -> Result<ExprKind, FilterError> {
    match (typed, value) {
        (TypedOp::Boolean(keyword, op), Literal::Boolean(value)) => Ok(ExprKind::Boolean { keyword, op, value }),
        (TypedOp::Number(keyword, op), Literal::Number(value)) => Ok(ExprKind::Number { keyword, op, value }),
        (TypedOp::String(keyword, op), Literal::String(value)) => Ok(ExprKind::String { keyword, op, value }),
        (typed, value) => {
            let keyword = match typed {
                TypedOp::Boolean(keyword, _) => Keyword::Boolean(keyword),
                TypedOp::Number(keyword, _) => Keyword::Number(keyword),
                TypedOp::String(keyword, _) => Keyword::String(keyword),
            };
            Err(FilterError::new(position, format!("cannot compare {keyword} with {}", value.type_name())))
        }
    }
}

/// The test of an annotation with `op` and `value`, found at `position`: the
/// value's type picks the operators (`=` and `!=` apply to every type).
pub(crate) fn annotation(op: Operator, value: Literal, position: usize) -> Result<AnnotationTest, FilterError> {
    let found = value.type_name();
    let test = match value {
        Literal::Boolean(value) => equality_op(op).map(|op| AnnotationTest::Boolean { op, value }),
        Literal::Number(value) => number_op(op).map(|op| AnnotationTest::Number { op, value }),
        Literal::String(value) => string_op(op).map(|op| AnnotationTest::String { op, value }),
    };
    test.ok_or_else(|| {
        let expected = if number_op(op).is_some() { "a number" } else { "a quoted string" };
        FilterError::new(position, format!("expected {expected} after {op}, found {found}"))
    })
}

fn equality_op(op: Operator) -> Option<EqualityOp> {
    match op {
        Operator::Eq => Some(EqualityOp::Eq),
        Operator::Ne => Some(EqualityOp::Ne),
        _ => None,
    }
}

fn number_op(op: Operator) -> Option<NumberOp> {
    match op {
        Operator::Eq => Some(NumberOp::Eq),
        Operator::Ne => Some(NumberOp::Ne),
        Operator::Lt => Some(NumberOp::Lt),
        Operator::Le => Some(NumberOp::Le),
        Operator::Gt => Some(NumberOp::Gt),
        Operator::Ge => Some(NumberOp::Ge),
        Operator::Contains | Operator::BeginsWith | Operator::EndsWith => None,
    }
}

fn string_op(op: Operator) -> Option<StringOp> {
    match op {
        Operator::Eq => Some(StringOp::Eq),
        Operator::Ne => Some(StringOp::Ne),
        Operator::Contains => Some(StringOp::Contains),
        Operator::BeginsWith => Some(StringOp::BeginsWith),
        Operator::EndsWith => Some(StringOp::EndsWith),
        Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => None,
    }
}

/// The keyword a mistyped lowercase `word` most likely meant, if one is a
/// few edits away.
pub(crate) fn suggestion(word: &str) -> Option<String> {
    // Longer words are no typo of a keyword, and would cost more to compare.
    const MAX_CHARS: usize = 40;
    let chars: Vec<char> = word.chars().collect();
    if chars.len() > MAX_CHARS {
        return None;
    }
    let simple = Keyword::all().map(|keyword| keyword.name().to_owned());
    let complex = ["service", "edge", "group.name", "group.arn", "rootcause.json"].map(str::to_owned);
    let root_causes = RootCause::ALL.into_iter().flat_map(|cause| {
        RootCauseLevel::ALL
            .into_iter()
            .filter(move |&level| root_cause_exists(cause, level))
            .map(move |level| format!("rootcause.{}.{}", cause.name(), level.name()))
    });
    let max_edits = (chars.len() / 4).max(1);
    simple
        .chain(complex)
        .chain(root_causes)
        .map(|candidate| (edit_distance(&chars, &candidate), candidate))
        .filter(|&(edits, _)| edits <= max_edits)
        .min_by_key(|&(edits, _)| edits)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance: insertions, deletions and substitutions of chars.
fn edit_distance(word: &[char], candidate: &str) -> usize {
    let mut previous: Vec<usize> = (0..=word.len()).collect();
    for (row, c) in candidate.chars().enumerate() {
        let mut current = vec![row + 1];
        for (column, &w) in word.iter().enumerate() {
            let substitution = previous[column] + usize::from(w != c);
            current.push(substitution.min(previous[column + 1] + 1).min(current[column] + 1));
        }
        previous = current;
    }
    previous[word.len()]
}
