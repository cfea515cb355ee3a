//! The checked syntax tree of a filter expression, its canonical printing, and
//! the substitution of group references.

use std::fmt;

use super::FilterError;

/// A checked filter expression: one node, and where it starts in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// Byte offset in the input where the node starts.
    pub position: usize,
    /// What the node is.
    pub kind: ExprKind,
}

/// The kinds of node of a filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `AND`, or terms side by side: every operand holds (two or more).
    And(Vec<Expr>),
    /// `OR`: some operand holds (two or more).
    Or(Vec<Expr>),
    /// `!`: the operand does not hold.
    Not(Box<Expr>),
    /// A boolean keyword compared with `true` or `false`; a bare `ok` is `ok = true`.
    Boolean {
        /// The keyword.
        keyword: BooleanKeyword,
        /// `=` or `!=`.
        op: EqualityOp,
        /// The value compared with.
        value: bool,
    },
    /// A number keyword compared with a number.
    Number {
        /// The keyword.
        keyword: NumberKeyword,
        /// The comparison.
        op: NumberOp,
        /// The value compared with.
        value: f64,
    },
    /// A string keyword compared with a string.
    String {
        /// The keyword.
        keyword: StringKeyword,
        /// The comparison.
        op: StringOp,
        /// The value compared with, unescaped.
        value: String,
    },
    /// A bare string keyword: the field is set.
    IsSet(StringKeyword),
    /// `annotation.KEY`, bare (is set) or compared with a value.
    Annotation {
        /// The annotation key, as written.
        key: String,
        /// What is asked of the annotation's value.
        test: AnnotationTest,
    },
    /// `service(…)`: the trace has a node the selector matches and, with a
    /// filter, one of that node's segments matches the filter.
    Service {
        /// Which nodes.
        service: ServiceSelector,
        /// The filter in braces, evaluated on the node's segments.
        filter: Option<Box<Expr>>,
    },
    /// `edge(source, destination)`: the trace has a call between the two
    /// nodes and, with a filter, one of the segments on that call matches it.
    Edge {
        /// The calling node.
        source: ServiceSelector,
        /// The called node.
        destination: ServiceSelector,
        /// The filter in braces, evaluated on the segments of the call.
        filter: Option<Box<Expr>>,
    },
    /// `group.name = "…"` or `group.arn = "…"`: the filter of a stored group,
    /// to be substituted with [`Expr::resolve_groups`].
    Group(GroupRef),
    /// `rootcause.CAUSE.LEVEL { filter }`: some root cause of that kind, at
    /// that level, matches the filter.
    RootCause {
        /// Fault, error or response time.
        cause: RootCause,
        /// Service, entity or exception.
        level: RootCauseLevel,
        /// The filter in braces, evaluated on each root cause of that level.
        filter: Box<Expr>,
    },
    /// `rootcause.json = #[…]`: the trace has root causes matching these
    /// JSON root cause objects (a JSON array, as `GetTraceSummaries` returns
    /// them in `FaultRootCauses` and the like).
    RootCauseJson(serde_json::Value),
}

/// The boolean keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BooleanKeyword {
    /// `ok`: the response status was 2XX.
    Ok,
    /// `error`: the response status was 4XX.
    Error,
    /// `throttle`: the response status was 429.
    Throttle,
    /// `fault`: the response status was 5XX.
    Fault,
    /// `partial`: some segment is incomplete.
    Partial,
    /// `inferred`: some segment is inferred (a node drawn from a downstream call).
    Inferred,
    /// `root`: the segment is the trace's entry point.
    Root,
    /// `first`: the root cause is the first of its list.
    First,
    /// `last`: the root cause is the last of its list.
    Last,
    /// `remote`: the root cause entity is remote.
    Remote,
}

/// The number keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberKeyword {
    /// `responsetime`: seconds the server took to respond.
    ResponseTime,
    /// `duration`: seconds of the whole request, downstream calls included.
    Duration,
    /// `http.status`: the response status code.
    HttpStatus,
    /// `index`: the root cause's position in its list.
    Index,
    /// `coverage`: the root cause entity's response time over the root segment's.
    Coverage,
}

/// The string keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringKeyword {
    /// `http.url`: the request URL.
    HttpUrl,
    /// `http.method`: the request method.
    HttpMethod,
    /// `http.useragent`: the request's user agent.
    HttpUserAgent,
    /// `http.clientip`: the requester's IP address.
    HttpClientIp,
    /// `user`: the `user` field of a segment.
    User,
    /// `name`: the name of a service, root cause entity or exception.
    Name,
    /// `type`: the type (origin) of a service.
    Type,
    /// `message`: a root cause exception's message.
    Message,
    /// `availabilityzone`: the EC2 availability zone of a segment.
    AvailabilityZone,
    /// `instance.id`: the EC2 instance id of a segment.
    InstanceId,
    /// `resource.arn`: the resource ARN of a segment.
    ResourceArn,
    /// `account.id`: the AWS account of a root cause service.
    AccountId,
}

/// `=` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EqualityOp {
    /// `=`.
    Eq,
    /// `!=`.
    Ne,
}

/// The operators of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberOp {
    /// `=`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// The operators of strings; all compare case-sensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringOp {
    /// `=`.
    Eq,
    /// `!=`.
    Ne,
    /// `CONTAINS`; `CONTAINS ""` holds when the field is set.
    Contains,
    /// `BEGINSWITH`.
    BeginsWith,
    /// `ENDSWITH`.
    EndsWith,
}

/// What is asked of an annotation; the literal's type picks the operators.
#[derive(Debug, Clone, PartialEq)]
pub enum AnnotationTest {
    /// Bare `annotation.KEY`: the annotation is set.
    IsSet,
    /// Compared with `true` or `false`.
    Boolean {
        /// `=` or `!=`.
        op: EqualityOp,
        /// The value compared with.
        value: bool,
    },
    /// Compared with a number.
    Number {
        /// The comparison.
        op: NumberOp,
        /// The value compared with.
        value: f64,
    },
    /// Compared with a string.
    String {
        /// The comparison.
        op: StringOp,
        /// The value compared with, unescaped.
        value: String,
    },
}

/// Which service-map nodes a `service()` or `edge()` names: a quoted name is
/// `id(name: …)`, `service()` leaves every field out and matches every node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ServiceSelector {
    /// The node's name.
    pub name: Option<String>,
    /// The node's type, e.g. `AWS::Lambda::Function`.
    pub kind: Option<String>,
    /// The node's AWS account.
    pub account_id: Option<String>,
}

/// A reference to a stored group, whose filter stands in for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupRef {
    /// `group.name = "…"`.
    Name(String),
    /// `group.arn = "…"`.
    Arn(String),
}

/// The kinds of root cause X-Ray analyses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootCause {
    /// `rootcause.fault`.
    Fault,
    /// `rootcause.error`.
    Error,
    /// `rootcause.responsetime`.
    ResponseTime,
}

/// The levels of a root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootCauseLevel {
    /// `.service`: the services on the root cause path.
    Service,
    /// `.entity`: the entities (segments, subsegments) on a service's path.
    Entity,
    /// `.exception`: the exceptions of an entity (fault and error only).
    Exception,
}

impl Expr {
    /// The groups this expression refers to, in input order.
    pub fn group_refs(&self) -> Vec<&GroupRef> {
        let mut groups = Vec::new();
        self.collect_groups(&mut groups);
        groups
    }

    fn collect_groups<'a>(&'a self, groups: &mut Vec<&'a GroupRef>) {
        if let ExprKind::Group(group) = &self.kind {
            groups.push(group);
        }
        for child in self.children() {
            child.collect_groups(groups);
        }
    }

    /// This expression with each group reference replaced by the group's
    /// filter, as `lookup` gives it. Positions inside a substituted filter
    /// are offsets into that group's own expression. An unknown group, or a
    /// group whose filter refers to a group itself, is an error at the
    /// reference: groups are resolved one level deep, so they cannot loop.
    pub fn resolve_groups(&self, mut lookup: impl FnMut(&GroupRef) -> Option<Expr>) -> Result<Expr, FilterError> {
        let mut resolved = self.clone();
        resolved.substitute_groups(&mut lookup)?;
        Ok(resolved)
    }

    fn substitute_groups(&mut self, lookup: &mut impl FnMut(&GroupRef) -> Option<Expr>) -> Result<(), FilterError> {
        if let ExprKind::Group(group) = &self.kind {
            let filter =
                lookup(group).ok_or_else(|| FilterError::new(self.position, format!("no group has {group}")))?;
            if !filter.group_refs().is_empty() {
                return Err(FilterError::new(self.position, format!("the filter of {group} refers to another group")));
            }
            *self = filter;
            return Ok(());
        }
        for child in self.children_mut() {
            child.substitute_groups(lookup)?;
        }
        Ok(())
    }

    /// The nodes directly under this one.
    fn children(&self) -> &[Expr] {
        match &self.kind {
            ExprKind::And(operands) | ExprKind::Or(operands) => operands,
            ExprKind::Not(operand) | ExprKind::RootCause { filter: operand, .. } => std::slice::from_ref(operand),
            ExprKind::Service { filter: Some(filter), .. } | ExprKind::Edge { filter: Some(filter), .. } => {
                std::slice::from_ref(filter)
            }
            _ => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Expr] {
        match &mut self.kind {
            ExprKind::And(operands) | ExprKind::Or(operands) => operands,
            ExprKind::Not(operand) | ExprKind::RootCause { filter: operand, .. } => std::slice::from_mut(operand),
            ExprKind::Service { filter: Some(filter), .. } | ExprKind::Edge { filter: Some(filter), .. } => {
                std::slice::from_mut(filter)
            }
            _ => &mut [],
        }
    }
}

impl BooleanKeyword {
    /// Every boolean keyword.
    pub(crate) const ALL: [Self; 10] = [
        Self::Ok,
        Self::Error,
        Self::Throttle,
        Self::Fault,
        Self::Partial,
        Self::Inferred,
        Self::Root,
        Self::First,
        Self::Last,
        Self::Remote,
    ];

    /// The keyword as written, in lowercase.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Throttle => "throttle",
            Self::Fault => "fault",
            Self::Partial => "partial",
            Self::Inferred => "inferred",
            Self::Root => "root",
            Self::First => "first",
            Self::Last => "last",
            Self::Remote => "remote",
        }
    }
}

impl NumberKeyword {
    /// Every number keyword.
    pub(crate) const ALL: [Self; 5] =
        [Self::ResponseTime, Self::Duration, Self::HttpStatus, Self::Index, Self::Coverage];

    /// The keyword as written, in lowercase.
    pub fn name(self) -> &'static str {
        match self {
            Self::ResponseTime => "responsetime",
            Self::Duration => "duration",
            Self::HttpStatus => "http.status",
            Self::Index => "index",
            Self::Coverage => "coverage",
        }
    }
}

impl StringKeyword {
    /// Every string keyword.
    pub(crate) const ALL: [Self; 12] = [
        Self::HttpUrl,
        Self::HttpMethod,
        Self::HttpUserAgent,
        Self::HttpClientIp,
        Self::User,
        Self::Name,
        Self::Type,
        Self::Message,
        Self::AvailabilityZone,
        Self::InstanceId,
        Self::ResourceArn,
        Self::AccountId,
    ];

    /// The keyword as written, in lowercase.
    pub fn name(self) -> &'static str {
        match self {
            Self::HttpUrl => "http.url",
            Self::HttpMethod => "http.method",
            Self::HttpUserAgent => "http.useragent",
            Self::HttpClientIp => "http.clientip",
            Self::User => "user",
            Self::Name => "name",
            Self::Type => "type",
            Self::Message => "message",
            Self::AvailabilityZone => "availabilityzone",
            Self::InstanceId => "instance.id",
            Self::ResourceArn => "resource.arn",
            Self::AccountId => "account.id",
        }
    }
}

impl RootCause {
    /// Every kind of root cause.
    pub(crate) const ALL: [Self; 3] = [Self::Fault, Self::Error, Self::ResponseTime];

    /// The middle part of `rootcause.CAUSE.LEVEL`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fault => "fault",
            Self::Error => "error",
            Self::ResponseTime => "responsetime",
        }
    }
}

impl RootCauseLevel {
    /// Every level of root cause.
    pub(crate) const ALL: [Self; 3] = [Self::Service, Self::Entity, Self::Exception];

    /// The last part of `rootcause.CAUSE.LEVEL`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Entity => "entity",
            Self::Exception => "exception",
        }
    }
}

// === Display: the canonical, fully parenthesised form golden files hold ===

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::And(operands) => list(f, "and", operands),
            ExprKind::Or(operands) => list(f, "or", operands),
            ExprKind::Not(operand) => write!(f, "(not {operand})"),
            ExprKind::Boolean { keyword, op: EqualityOp::Eq, value: true } => f.write_str(keyword.name()),
            ExprKind::Boolean { keyword, op, value } => write!(f, "({op} {} {value})", keyword.name()),
            ExprKind::Number { keyword, op, value } => write!(f, "({op} {} {value})", keyword.name()),
            ExprKind::String { keyword, op, value } => write!(f, "({op} {} {})", keyword.name(), Quoted(value)),
            ExprKind::IsSet(keyword) => f.write_str(keyword.name()),
            ExprKind::Annotation { key, test: AnnotationTest::IsSet } => write!(f, "annotation.{key}"),
            ExprKind::Annotation { key, test: AnnotationTest::Boolean { op, value } } => {
                write!(f, "({op} annotation.{key} {value})")
            }
            ExprKind::Annotation { key, test: AnnotationTest::Number { op, value } } => {
                write!(f, "({op} annotation.{key} {value})")
            }
            ExprKind::Annotation { key, test: AnnotationTest::String { op, value } } => {
                write!(f, "({op} annotation.{key} {})", Quoted(value))
            }
            ExprKind::Service { service, filter } => {
                write!(f, "(service {service}")?;
                filter_suffix(f, filter.as_deref())
            }
            ExprKind::Edge { source, destination, filter } => {
                write!(f, "(edge {source} {destination}")?;
                filter_suffix(f, filter.as_deref())
            }
            ExprKind::Group(GroupRef::Name(name)) => write!(f, "(= group.name {})", Quoted(name)),
            ExprKind::Group(GroupRef::Arn(arn)) => write!(f, "(= group.arn {})", Quoted(arn)),
            ExprKind::RootCause { cause, level, filter } => {
                write!(f, "(rootcause.{}.{} {filter})", cause.name(), level.name())
            }
            ExprKind::RootCauseJson(json) => write!(f, "(= rootcause.json #{json})"),
        }
    }
}

fn list(f: &mut fmt::Formatter<'_>, head: &str, operands: &[Expr]) -> fmt::Result {
    write!(f, "({head}")?;
    for operand in operands {
        write!(f, " {operand}")?;
    }
    f.write_str(")")
}

fn filter_suffix(f: &mut fmt::Formatter<'_>, filter: Option<&Expr>) -> fmt::Result {
    match filter {
        Some(filter) => write!(f, " {filter})"),
        None => f.write_str(")"),
    }
}

impl fmt::Display for ServiceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A name alone prints as the quoted name, so `"a"` and `id(name: "a")` print alike.
        if let (Some(name), None, None) = (&self.name, &self.kind, &self.account_id) {
            return write!(f, "{}", Quoted(name));
        }
        f.write_str("(id")?;
        let fields = [("name", &self.name), ("type", &self.kind), ("account.id", &self.account_id)];
        for (field, value) in fields {
            if let Some(value) = value {
                write!(f, " {field} {}", Quoted(value))?;
            }
        }
        f.write_str(")")
    }
}

impl fmt::Display for GroupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupRef::Name(name) => write!(f, "group.name {}", Quoted(name)),
            GroupRef::Arn(arn) => write!(f, "group.arn {}", Quoted(arn)),
        }
    }
}

impl fmt::Display for EqualityOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EqualityOp::Eq => "=",
            EqualityOp::Ne => "!=",
        })
    }
}

impl fmt::Display for NumberOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NumberOp::Eq => "=",
            NumberOp::Ne => "!=",
            NumberOp::Lt => "<",
            NumberOp::Le => "<=",
            NumberOp::Gt => ">",
            NumberOp::Ge => ">=",
        })
    }
}

impl fmt::Display for StringOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StringOp::Eq => "=",
            StringOp::Ne => "!=",
            StringOp::Contains => "contains",
            StringOp::BeginsWith => "beginswith",
            StringOp::EndsWith => "endswith",
        })
    }
}

/// A string as the filter language quotes it: `"` and `\` escaped.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            if matches!(c, '"' | '\\') {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}
