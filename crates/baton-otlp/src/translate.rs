//! Spans to segment documents, following what AWS's OpenTelemetry exporter
//! does (the table is in `docs/otlp.md`).
//!
//! A span becomes a segment when it is the entry of a service (SERVER or
//! CONSUMER) or a local root (no parent, or a remote one), else a
//! subsegment. The subsegments whose parent is in the same export are
//! embedded in it, so a request's tree usually becomes one document, as an
//! X-Ray SDK would send it; the others are standalone subsegments that
//! trace assembly merges under their parent when it arrives.

use std::collections::{HashMap, HashSet};

use baton_model::{
    AnnotationValue, MAX_DOCUMENT_BYTES, MAX_SEGMENT_NAME, MAX_SUBSEGMENT_NAME, SegmentId, TraceId, annotation_problem,
};
use serde_json::{Map, Value as Json, json};

use crate::proto::{AnyValue, Event, KeyValue, Link, ResourceSpans, Span, SpanKind, Value, status_code};

/// How deep subsegments are embedded; deeper ones become standalone
/// documents (trace assembly stops at 64 levels).
const MAX_EMBEDDED_DEPTH: usize = 32;
/// The most stack frames kept from an exception's stack trace.
const MAX_STACK_FRAMES: usize = 50;
/// `Span.flags`: the parent's remoteness is known (bit 8) and it is remote
/// (bit 9).
const PARENT_IS_REMOTE: u32 = 0x300;

/// Turns export requests into segment documents.
#[derive(Debug, Clone, Default)]
pub struct Translator {
    /// Span attribute keys recorded as annotations, besides the keys a span
    /// lists in its `aws.xray.annotations` attribute.
    annotation_keys: HashSet<String>,
}

/// What an export request became.
#[derive(Debug, Default)]
pub struct Translation {
    /// The documents, in the order of their first span.
    pub documents: Vec<Translated>,
    /// The spans that could not become documents.
    pub rejected: Vec<Rejected>,
}

/// One segment document and the number of spans in it.
#[derive(Debug)]
pub struct Translated {
    /// The document's JSON text.
    pub text: String,
    /// How many spans it holds (itself and its embedded subsegments).
    pub spans: u64,
}

/// A span that could not become a document, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The span's id in hex, as received.
    pub span_id: String,
    /// Why.
    pub reason: String,
}

impl Translator {
    /// A translator that also records the span attributes named in
    /// `annotation_keys` as annotations.
    pub fn new(annotation_keys: impl IntoIterator<Item = String>) -> Translator {
        Translator { annotation_keys: annotation_keys.into_iter().collect() }
    }

    /// Translates every span of `request`.
    pub fn translate(&self, request: &crate::proto::ExportTraceServiceRequest) -> Translation {
        let mut translation = Translation::default();
        for resource_spans in &request.resource_spans {
            self.translate_resource(resource_spans, &mut translation);
        }
        translation
    }

    fn translate_resource(&self, resource_spans: &ResourceSpans, translation: &mut Translation) {
        let resource = ResourceFacts::new(resource_spans.resource.as_ref().map_or(&[][..], |r| &r.attributes));
        let mut entities = Vec::new();
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans.scope.as_ref().filter(|scope| !scope.name.is_empty()).map(|scope| {
                let mut fields = Map::new();
                fields.insert("name".into(), scope.name.clone().into());
                if !scope.version.is_empty() {
                    fields.insert("version".into(), scope.version.clone().into());
                }
                Json::Object(fields)
            });
            for span in &scope_spans.spans {
                match self.entity(span, &resource, scope.as_ref()) {
                    Ok(entity) => entities.push(entity),
                    Err(reason) => translation.rejected.push(Rejected { span_id: hex(&span.span_id), reason }),
                }
            }
        }
        Forest::new(entities).write(translation);
    }

    /// One span as a segment or subsegment, without its children.
    fn entity(&self, span: &Span, resource: &ResourceFacts, scope: Option<&Json>) -> Result<Entity, String> {
        let trace = trace_id(&span.trace_id)?;
        let id = span_id(&span.span_id)
            .ok_or_else(|| format!("span id must be 8 bytes, not all zero, got {:?}", hex(&span.span_id)))?;
        let parent = match span.parent_span_id.as_slice() {
            [] => None,
            bytes => {
                Some(span_id(bytes).ok_or_else(|| format!("parent span id must be 8 bytes, got {:?}", hex(bytes)))?)
            }
        };
        if span.end_time_unix_nano == 0 {
            return Err("span has no end time".to_owned());
        }
        let kind = SpanKind::from_number(span.kind);
        let is_segment = matches!(kind, SpanKind::Server | SpanKind::Consumer)
            || parent.is_none()
            || span.flags & PARENT_IS_REMOTE == PARENT_IS_REMOTE;
        let mut attributes = Attributes::new(&span.attributes);

        let mut fields = Map::new();
        fields.insert("id".into(), id.to_string().into());
        // A subsegment names its trace and parent only when standalone
        // (`Forest` adds them); embedded, its place says both.
        if is_segment {
            fields.insert("trace_id".into(), trace.to_string().into());
            if let Some(parent) = parent {
                fields.insert("parent_id".into(), parent.to_string().into());
            }
        }
        fields.insert("start_time".into(), seconds(span.start_time_unix_nano));
        fields.insert("end_time".into(), seconds(span.end_time_unix_nano));

        let aws_call = if is_segment { None } else { aws_call(kind, &mut attributes) };
        let sql = (!is_segment && kind == SpanKind::Client).then(|| sql(&mut attributes)).flatten();
        let name = if is_segment {
            truncate(resource.service_name, MAX_SEGMENT_NAME)
        } else {
            let name = match (&aws_call, &sql) {
                (Some((service, _)), _) => service.clone(),
                (None, Some((name, _))) => name.clone(),
                (None, None) => subsegment_name(kind, span, &attributes),
            };
            truncate(&name, MAX_SUBSEGMENT_NAME)
        };
        fields.insert("name".into(), name.into());
        if is_segment {
            if let Some(origin) = resource.origin {
                fields.insert("origin".into(), origin.into());
            }
            if let Some(arn) = &resource.resource_arn {
                fields.insert("resource_arn".into(), arn.clone().into());
            }
        } else {
            let namespace = match kind {
                _ if aws_call.is_some() => "aws",
                SpanKind::Client | SpanKind::Producer => "remote",
                _ => "local",
            };
            fields.insert("namespace".into(), namespace.into());
        }

        let http = http(kind, &mut attributes);
        let status = http.as_ref().and_then(|http| http.pointer("/response/status")).and_then(Json::as_i64);
        if let Some(http) = http {
            fields.insert("http".into(), http);
        }
        match (aws_call, is_segment) {
            (Some((_, aws)), _) if !aws.is_empty() => {
                fields.insert("aws".into(), Json::Object(aws));
            }
            (None, true) if !resource.aws.is_empty() => {
                fields.insert("aws".into(), Json::Object(resource.aws.clone()));
            }
            _ => {}
        }
        if let Some((_, sql)) = sql {
            fields.insert("sql".into(), Json::Object(sql));
        }
        let flags = Flags::of(span.status.as_ref().map_or(status_code::UNSET, |status| status.code), status);
        flags.write(&mut fields);
        if let Some(cause) = cause(span, &mut attributes, flags) {
            fields.insert("cause".into(), cause);
        }
        if is_segment {
            if let Some(user) = attributes.take_str("enduser.id") {
                fields.insert("user".into(), user.into());
            }
            if let Some(version) = resource.service_version {
                fields.insert("service".into(), json!({ "version": version }));
            }
        }
        let annotations = self.annotations(&mut attributes);
        if !annotations.is_empty() {
            fields.insert("annotations".into(), Json::Object(annotations));
        }
        let metadata = metadata(span, kind, is_segment, &fields, attributes, resource, scope);
        fields.insert("metadata".into(), Json::Object(metadata));

        Ok(Entity { trace, id, parent, is_segment, fields })
    }

    /// The attributes named by the configured keys or by the span's
    /// `aws.xray.annotations` list, with a scalar value, as annotations (a
    /// key's characters other than letters, digits and `_` become `_`, as
    /// X-Ray requires).
    fn annotations(&self, attributes: &mut Attributes<'_>) -> Map<String, Json> {
        let listed: Vec<String> = match attributes.take("aws.xray.annotations") {
            Some(Value::Array(array)) => array
                .values
                .iter()
                .filter_map(|value| match &value.value {
                    Some(Value::String(key)) => Some(key.clone()),
                    _ => None,
                })
                .collect(),
            Some(Value::String(key)) => vec![key.clone()],
            _ => Vec::new(),
        };
        let mut annotations = Map::new();
        for index in 0..attributes.entries.len() {
            let (key, value) = attributes.entries[index];
            if attributes.used[index]
                || !(self.annotation_keys.contains(key) || listed.iter().any(|listed| listed == key))
            {
                continue;
            }
            let (checked, value) = match value {
                Some(Value::String(text)) => (AnnotationValue::String(text.clone()), Json::from(text.as_str())),
                Some(Value::Bool(flag)) => (AnnotationValue::Bool(*flag), Json::from(*flag)),
                Some(Value::Int(number)) => (AnnotationValue::Number(*number as f64), Json::from(*number)),
                Some(Value::Double(number)) => (AnnotationValue::Number(*number), Json::from(*number)),
                _ => continue,
            };
            // What X-Ray would refuse stays in metadata rather than fail
            // the document.
            let key = annotation_key(key);
            if annotation_problem(&key, &checked).is_some() {
                continue;
            }
            attributes.used[index] = true;
            annotations.insert(key, value);
        }
        annotations
    }
}

/// The facts of a resource that every span of it shares.
struct ResourceFacts<'a> {
    service_name: &'a str,
    service_version: Option<&'a str>,
    origin: Option<&'static str>,
    resource_arn: Option<String>,
    aws: Map<String, Json>,
    /// The attributes not used above, kept as metadata of segments.
    rest: Map<String, Json>,
}

impl<'a> ResourceFacts<'a> {
    fn new(attributes: &'a [KeyValue]) -> ResourceFacts<'a> {
        let mut attributes = Attributes::new(attributes);
        let service_name =
            attributes.take_str("service.name").filter(|name| !name.is_empty()).unwrap_or("unknown_service");
        let service_version = attributes.take_str("service.version");
        let platform = attributes.take_str("cloud.platform");
        let origin = match platform {
            Some("aws_lambda") => Some("AWS::Lambda::Function"),
            Some("aws_ec2") => Some("AWS::EC2::Instance"),
            Some("aws_ecs") => Some("AWS::ECS::Container"),
            Some("aws_eks") => Some("AWS::EKS::Container"),
            Some("aws_elastic_beanstalk") => Some("AWS::ElasticBeanstalk::Environment"),
            _ => None,
        };
        let mut aws = Map::new();
        let account = attributes.take_str("cloud.account.id");
        if let Some(account) = account {
            aws.insert("account_id".into(), account.into());
        }
        let region = attributes.str("cloud.region");
        let mut put = |block: &str, field: &str, value: Option<&str>| {
            if let Some(value) = value {
                let block = aws.entry(block).or_insert_with(|| Json::Object(Map::new()));
                block.as_object_mut().expect("aws blocks are objects").insert(field.into(), value.into());
            }
        };
        if let Some((_, block, fields)) = PLATFORM_BLOCKS.iter().find(|(known, ..)| platform == Some(*known)) {
            for (field, key) in *fields {
                put(block, field, attributes.take_str(key));
            }
        }
        let language = attributes.take_str("telemetry.sdk.language");
        let sdk_version = attributes.take_str("telemetry.sdk.version");
        if let Some(language) = language {
            put("xray", "sdk", Some(&format!("opentelemetry for {language}")));
            put("xray", "sdk_version", sdk_version);
        }
        // A function's ARN: given, or made from its name, region and account.
        let function_name = attributes.str("faas.name");
        let resource_arn =
            attributes.take_str("cloud.resource_id").or(attributes.take_str("faas.id")).map(str::to_owned).or_else(
                || match (platform, function_name, region, account) {
                    (Some("aws_lambda"), Some(name), Some(region), Some(account)) => {
                        Some(format!("arn:aws:lambda:{region}:{account}:function:{name}"))
                    }
                    _ => None,
                },
            );
        let rest = attributes.rest();
        ResourceFacts { service_name, service_version, origin, resource_arn, aws, rest }
    }
}

/// An aws block's field and the resource attribute it comes from.
type Field = (&'static str, &'static str);

/// Per `cloud.platform`, the aws block that describes the host and the
/// resource attributes its fields come from.
const PLATFORM_BLOCKS: &[(&str, &str, &[Field])] = &[
    (
        "aws_ec2",
        "ec2",
        &[
            ("instance_id", "host.id"),
            ("availability_zone", "cloud.availability_zone"),
            ("instance_size", "host.type"),
            ("ami_id", "host.image.id"),
        ],
    ),
    (
        "aws_ecs",
        "ecs",
        &[
            ("container", "container.name"),
            ("container_id", "container.id"),
            ("task_arn", "aws.ecs.task.arn"),
            ("cluster_arn", "aws.ecs.cluster.arn"),
            ("availability_zone", "cloud.availability_zone"),
        ],
    ),
    (
        "aws_eks",
        "eks",
        &[("cluster_name", "k8s.cluster.name"), ("pod", "k8s.pod.name"), ("container_id", "container.id")],
    ),
    (
        "aws_elastic_beanstalk",
        "elastic_beanstalk",
        &[("environment_name", "service.namespace"), ("deployment_id", "service.instance.id")],
    ),
];

/// A span's attributes, each taken at most once: what a block or an
/// annotation takes does not go to metadata.
struct Attributes<'a> {
    entries: Vec<(&'a str, Option<&'a Value>)>,
    used: Vec<bool>,
}

impl<'a> Attributes<'a> {
    fn new(attributes: &'a [KeyValue]) -> Attributes<'a> {
        let entries: Vec<_> =
            attributes.iter().map(|kv| (kv.key.as_str(), kv.value.as_ref().and_then(|v| v.value.as_ref()))).collect();
        let used = vec![false; entries.len()];
        Attributes { entries, used }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(name, _)| *name == key)
    }

    /// The value of `key`, left for metadata.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.position(key).and_then(|index| self.entries[index].1)
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        match self.get(key) {
            Some(Value::String(text)) => Some(text),
            _ => None,
        }
    }

    /// The value of `key`, taken out of metadata.
    fn take(&mut self, key: &str) -> Option<&'a Value> {
        let index = self.position(key)?;
        self.used[index] = true;
        self.entries[index].1
    }

    fn take_str(&mut self, key: &str) -> Option<&'a str> {
        let index = self.position(key)?;
        match self.entries[index].1 {
            Some(Value::String(text)) => {
                self.used[index] = true;
                Some(text)
            }
            _ => None,
        }
    }

    /// The first of `keys` with a string value, taken.
    fn take_first_str(&mut self, keys: &[&str]) -> Option<&'a str> {
        keys.iter().find_map(|key| self.take_str(key))
    }

    /// The first of `keys` with an integer value (or a string of one), taken.
    fn take_first_int(&mut self, keys: &[&str]) -> Option<i64> {
        keys.iter().find_map(|key| {
            let index = self.position(key)?;
            let number = match self.entries[index].1 {
                Some(Value::Int(number)) => Some(*number),
                Some(Value::String(text)) => text.parse().ok(),
                Some(Value::Double(number)) if number.fract() == 0.0 => Some(*number as i64),
                _ => None,
            };
            self.used[index] |= number.is_some();
            number
        })
    }

    /// The attributes nobody took, as JSON.
    fn rest(&self) -> Map<String, Json> {
        let unused = self.entries.iter().zip(&self.used).filter(|(_, used)| !**used);
        unused.map(|((key, value), _)| ((*key).to_owned(), value.map_or(Json::Null, json_value))).collect()
    }
}

/// The http block: request method, URL, client and user agent; response
/// status and length. Old and new semantic-convention names are both read.
fn http(kind: SpanKind, attributes: &mut Attributes<'_>) -> Option<Json> {
    let mut request = Map::new();
    if let Some(method) = attributes.take_first_str(&["http.request.method", "http.method"]) {
        request.insert("method".into(), method.into());
    }
    let url = attributes.take_first_str(&["url.full", "http.url"]).map(str::to_owned).or_else(|| {
        // A server span has the parts; without the host, the path alone.
        let path = attributes.str("url.path").or(attributes.str("http.target"))?;
        let host = attributes.str("server.address").or(attributes.str("http.host")).or(attributes.str("net.host.name"));
        let scheme = attributes.str("url.scheme").or(attributes.str("http.scheme")).unwrap_or("http");
        let port = host.and(attributes.take_first_int(&["server.port", "net.host.port"]));
        for key in
            ["url.path", "http.target", "url.scheme", "http.scheme", "server.address", "http.host", "net.host.name"]
        {
            attributes.take(key);
        }
        Some(match (host, port) {
            (None, _) => path.to_owned(),
            (Some(host), Some(port)) if !matches!((scheme, port), ("http", 80) | ("https", 443)) => {
                format!("{scheme}://{host}:{port}{path}")
            }
            (Some(host), _) => format!("{scheme}://{host}{path}"),
        })
    });
    if let Some(url) = url {
        request.insert("url".into(), url.into());
    }
    let client = match kind {
        SpanKind::Server => attributes.take_first_str(&["client.address", "http.client_ip", "net.sock.peer.addr"]),
        _ => None,
    };
    if let Some(client) = client {
        request.insert("client_ip".into(), client.into());
    }
    if let Some(agent) = attributes.take_first_str(&["user_agent.original", "http.user_agent"]) {
        request.insert("user_agent".into(), agent.into());
    }
    let mut response = Map::new();
    if let Some(status) = attributes.take_first_int(&["http.response.status_code", "http.status_code"]) {
        response.insert("status".into(), status.into());
    }
    let length = attributes.take_first_int(&["http.response.body.size", "http.response_content_length"]);
    if let Some(length) = length {
        response.insert("content_length".into(), length.into());
    }
    if request.is_empty() && response.is_empty() {
        return None;
    }
    let mut http = Map::new();
    if !request.is_empty() {
        http.insert("request".into(), Json::Object(request));
    }
    if !response.is_empty() {
        http.insert("response".into(), Json::Object(response));
    }
    Some(Json::Object(http))
}

/// A call to an AWS service: its name (`DynamoDB`) and the aws block
/// (operation, region, request id, table, queue), for a CLIENT span of the
/// AWS SDK instrumentations (`rpc.system = aws-api`) or a PRODUCER to SQS or
/// SNS.
fn aws_call(kind: SpanKind, attributes: &mut Attributes<'_>) -> Option<(String, Map<String, Json>)> {
    let service = match kind {
        SpanKind::Client if attributes.str("rpc.system") == Some("aws-api") => {
            attributes.take("rpc.system");
            attributes.take_str("rpc.service").unwrap_or("AWS").to_owned()
        }
        SpanKind::Client | SpanKind::Producer => match attributes.str("messaging.system") {
            Some("aws_sqs") => "SQS".to_owned(),
            Some("aws_sns") => "SNS".to_owned(),
            _ => return None,
        },
        _ => return None,
    };
    let mut aws = Map::new();
    if let Some(operation) = attributes.take_str("rpc.method") {
        aws.insert("operation".into(), operation.into());
    }
    if let Some(region) = attributes.take_first_str(&["aws.region", "cloud.region"]) {
        aws.insert("region".into(), region.into());
    }
    if let Some(request_id) = attributes.take_first_str(&["aws.request_id", "aws.requestId"]) {
        aws.insert("request_id".into(), request_id.into());
    }
    let table = match attributes.get("aws.dynamodb.table_names") {
        Some(Value::Array(array)) if array.values.len() == 1 => match &array.values[0].value {
            Some(Value::String(table)) => Some(table.as_str()),
            _ => None,
        },
        _ => attributes.str("aws.table_name"),
    };
    if let Some(table) = table {
        aws.insert("table_name".into(), table.into());
    }
    if let Some(queue) = attributes.take_first_str(&["aws.sqs.queue_url", "aws.queue_url", "messaging.url"]) {
        aws.insert("queue_url".into(), queue.into());
    }
    Some((service, aws))
}

/// A database call: its name (`database@host`, as the X-Ray SDKs name SQL
/// subsegments) and the sql block.
fn sql(attributes: &mut Attributes<'_>) -> Option<(String, Map<String, Json>)> {
    let system = attributes.take_str("db.system").or(attributes.take_str("db.system.name"))?;
    let database = attributes.str("db.namespace").or(attributes.str("db.name"));
    let host = attributes.str("server.address").or(attributes.str("net.peer.name"));
    let name = match (database, host) {
        (Some(database), Some(host)) => format!("{database}@{host}"),
        (Some(database), None) => database.to_owned(),
        (None, _) => system.to_owned(),
    };
    let mut sql = Map::new();
    sql.insert("database_type".into(), system.into());
    if let Some(query) = attributes.take_first_str(&["db.query.text", "db.statement"]) {
        sql.insert("sanitized_query".into(), query.into());
    }
    if let Some(url) = attributes.take_first_str(&["db.connection_string"]).map(str::to_owned).or_else(|| {
        host.map(|host| match database {
            Some(database) => format!("{host}/{database}"),
            None => host.to_owned(),
        })
    }) {
        sql.insert("url".into(), url.into());
    }
    if let Some(user) = attributes.take_str("db.user") {
        sql.insert("user".into(), user.into());
    }
    Some((name, sql))
}

/// A subsegment's name: the remote service a CLIENT or PRODUCER span calls
/// (`peer.service`, the server's address, the URL's host), else the span's
/// name.
fn subsegment_name(kind: SpanKind, span: &Span, attributes: &Attributes<'_>) -> String {
    if matches!(kind, SpanKind::Client | SpanKind::Producer) {
        let remote = ["peer.service", "server.address", "net.peer.name", "http.host"]
            .iter()
            .find_map(|key| attributes.str(key))
            .map(str::to_owned)
            .or_else(|| attributes.str("url.full").or(attributes.str("http.url")).and_then(url_host))
            .or_else(|| attributes.str("messaging.system").map(str::to_owned));
        if let Some(remote) = remote {
            return remote;
        }
    }
    if span.name.is_empty() { "span".to_owned() } else { span.name.clone() }
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// error, fault and throttle, as AWS's exporter sets them: an ERROR status
/// is a fault, or an error (and a throttle for 429) when the HTTP status is
/// a 4xx; an unset status takes them from the HTTP status alone.
#[derive(Clone, Copy, Default)]
struct Flags {
    error: bool,
    fault: bool,
    throttle: bool,
}

impl Flags {
    fn of(code: i32, http_status: Option<i64>) -> Flags {
        let client = |status: i64| Flags { error: true, throttle: status == 429, fault: false };
        match (code, http_status) {
            (status_code::ERROR, Some(status @ 400..=499)) => client(status),
            (status_code::ERROR, _) => Flags { fault: true, ..Flags::default() },
            (status_code::UNSET, Some(status @ 400..=499)) => client(status),
            (status_code::UNSET, Some(500..=599)) => Flags { fault: true, ..Flags::default() },
            _ => Flags::default(),
        }
    }

    fn any(self) -> bool {
        self.error || self.fault || self.throttle
    }

    fn write(self, fields: &mut Map<String, Json>) {
        for (name, set) in [("error", self.error), ("fault", self.fault), ("throttle", self.throttle)] {
            if set {
                fields.insert(name.into(), true.into());
            }
        }
    }
}

/// The cause: one exception per `exception` event (type, message, and the
/// stack parsed from the stack trace), or, for a failed span with none, the
/// status message.
fn cause(span: &Span, attributes: &mut Attributes<'_>, flags: Flags) -> Option<Json> {
    let span_bits = u64::from_be_bytes(span.span_id.as_slice().try_into().unwrap_or_default());
    let mut exceptions = Vec::new();
    for (index, event) in span.events.iter().enumerate().filter(|(_, event)| event.name == "exception") {
        let event_attributes = Attributes::new(&event.attributes);
        let mut exception = Map::new();
        exception.insert("id".into(), exception_id(span_bits, index).into());
        if let Some(kind) = event_attributes.str("exception.type") {
            exception.insert("type".into(), kind.into());
        }
        if let Some(message) = event_attributes.str("exception.message") {
            exception.insert("message".into(), message.into());
        }
        if let Some(stack) = event_attributes.str("exception.stacktrace").map(parse_stack).filter(|s| !s.is_empty()) {
            exception.insert("stack".into(), Json::Array(stack));
        }
        exceptions.push(Json::Object(exception));
    }
    if exceptions.is_empty() {
        // Older instrumentations put the exception on the span itself.
        let kind = attributes.take_str("exception.type");
        let message = attributes.take_str("exception.message");
        let status_message = span.status.as_ref().map(|status| status.message.as_str()).filter(|m| !m.is_empty());
        let message = message.or(status_message.filter(|_| flags.any()));
        if kind.is_none() && message.is_none() {
            return None;
        }
        let mut exception = Map::new();
        exception.insert("id".into(), exception_id(span_bits, 0).into());
        if let Some(kind) = kind {
            exception.insert("type".into(), kind.into());
        }
        if let Some(message) = message {
            exception.insert("message".into(), message.into());
        }
        exceptions.push(Json::Object(exception));
    }
    Some(json!({ "exceptions": exceptions }))
}

/// A stable exception id, so that a span exported twice gives the same
/// document.
fn exception_id(span_bits: u64, index: usize) -> String {
    let mixed = span_bits.rotate_left(17) ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    SegmentId::from_u64(mixed.max(1)).to_string()
}

/// The frames of a Python, Java or JavaScript stack trace, innermost first
/// (X-Ray's order); an unknown format gives none.
fn parse_stack(trace: &str) -> Vec<Json> {
    let frame = |path: &str, line: Option<u64>, label: &str| {
        let mut frame = Map::new();
        frame.insert("path".into(), path.into());
        if let Some(line) = line {
            frame.insert("line".into(), line.into());
        }
        if !label.is_empty() {
            frame.insert("label".into(), label.into());
        }
        Json::Object(frame)
    };
    let mut frames = Vec::new();
    let mut python = false;
    for line in trace.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("File \"") {
            // File "app.py", line 66, in handler
            python = true;
            let Some((path, rest)) = rest.split_once('"') else { continue };
            let mut number = None;
            let mut label = "";
            for part in rest.split(", ") {
                if let Some(digits) = part.trim_start_matches(',').trim().strip_prefix("line ") {
                    number = digits.parse().ok();
                } else if let Some(name) = part.strip_prefix("in ") {
                    label = name;
                }
            }
            frames.push(frame(path, number, label));
        } else if let Some(rest) = line.strip_prefix("at ") {
            // Java: at com.example.Orders.place(Orders.java:42)
            // JavaScript: at place (/srv/app.js:42:7), or at /srv/app.js:42:7
            let (label, location) =
                match rest.strip_suffix(')').and_then(|r| r.rsplit_once(" (").or_else(|| r.split_once('('))) {
                    Some((label, location)) => (label, location),
                    None => ("", rest),
                };
            let mut parts = location.rsplitn(3, ':').collect::<Vec<_>>();
            parts.reverse();
            let (path, number) = match parts.as_slice() {
                [path, line, column] if column.bytes().all(|b| b.is_ascii_digit()) => (*path, line.parse().ok()),
                [path, line] => (*path, line.parse().ok()),
                [first, second, _] => (&location[..first.len() + 1 + second.len()], None),
                _ => (location, None),
            };
            frames.push(frame(path, number, label));
        }
    }
    if python {
        // Python writes the outermost call first.
        frames.reverse();
    }
    frames.truncate(MAX_STACK_FRAMES);
    frames
}

/// Metadata: the span's other attributes in `default`, and in `otel` what
/// has no X-Ray field (the span's kind and name, its scope, links and other
/// events, and on segments the resource's other attributes).
fn metadata(
    span: &Span,
    kind: SpanKind,
    is_segment: bool,
    fields: &Map<String, Json>,
    attributes: Attributes<'_>,
    resource: &ResourceFacts<'_>,
    scope: Option<&Json>,
) -> Map<String, Json> {
    let mut otel = Map::new();
    otel.insert("span.kind".into(), format!("{kind:?}").to_uppercase().into());
    if fields.get("name").and_then(Json::as_str) != Some(span.name.as_str()) {
        otel.insert("span.name".into(), span.name.clone().into());
    }
    if let Some(scope) = scope {
        otel.insert("scope".into(), scope.clone());
    }
    if !span.links.is_empty() {
        otel.insert("links".into(), span.links.iter().map(link).collect());
    }
    let events: Vec<Json> = span.events.iter().filter(|event| event.name != "exception").map(event).collect();
    if !events.is_empty() {
        otel.insert("events".into(), events.into());
    }
    if is_segment && !resource.rest.is_empty() {
        otel.insert("resource".into(), Json::Object(resource.rest.clone()));
    }
    let mut metadata = Map::new();
    let rest = attributes.rest();
    if !rest.is_empty() {
        metadata.insert("default".into(), Json::Object(rest));
    }
    metadata.insert("otel".into(), Json::Object(otel));
    metadata
}

fn link(link: &Link) -> Json {
    let mut fields = Map::new();
    if let Ok(trace) = trace_id(&link.trace_id) {
        fields.insert("trace_id".into(), trace.to_string().into());
    }
    fields.insert("id".into(), hex(&link.span_id).into());
    if !link.attributes.is_empty() {
        fields.insert("attributes".into(), Json::Object(Attributes::new(&link.attributes).rest()));
    }
    Json::Object(fields)
}

fn event(event: &Event) -> Json {
    let mut fields = Map::new();
    fields.insert("name".into(), event.name.clone().into());
    fields.insert("time".into(), seconds(event.time_unix_nano));
    if !event.attributes.is_empty() {
        fields.insert("attributes".into(), Json::Object(Attributes::new(&event.attributes).rest()));
    }
    Json::Object(fields)
}

/// An attribute value as JSON: arrays and key-value lists nest, bytes are
/// base64, non-finite doubles are strings.
fn json_value(value: &Value) -> Json {
    match value {
        Value::String(text) => text.as_str().into(),
        Value::Bool(flag) => (*flag).into(),
        Value::Int(number) => (*number).into(),
        Value::Double(number) if number.is_finite() => (*number).into(),
        Value::Double(number) => number.to_string().into(),
        Value::Array(array) => array.values.iter().map(any_json).collect(),
        Value::KeyValueList(list) => Json::Object(Attributes::new(&list.values).rest()),
        Value::Bytes(bytes) => base64(bytes).into(),
    }
}

fn any_json(value: &AnyValue) -> Json {
    value.value.as_ref().map_or(Json::Null, json_value)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |bits, (i, byte)| bits | u32::from(*byte) << (16 - 8 * i));
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(ALPHABET[(bits >> (18 - 6 * index) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn annotation_key(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn trace_id(bytes: &[u8]) -> Result<TraceId, String> {
    match <[u8; 16]>::try_from(bytes) {
        Ok(bytes) if bytes != [0; 16] => Ok(TraceId::from_bytes(bytes)),
        _ => Err(format!("trace id must be 16 bytes, not all zero, got {:?}", hex(bytes))),
    }
}

fn span_id(bytes: &[u8]) -> Option<SegmentId> {
    let bits = u64::from_be_bytes(bytes.try_into().ok()?);
    (bits != 0).then(|| SegmentId::from_u64(bits))
}

/// The bytes in hex; past 32 bytes (a reason quoting an id of any length)
/// the rest is elided.
fn hex(bytes: &[u8]) -> String {
    let mut text: String = bytes.iter().take(32).map(|byte| format!("{byte:02x}")).collect();
    if bytes.len() > 32 {
        text.push('…');
    }
    text
}

fn seconds(nanos: u64) -> Json {
    // Microseconds, as the X-Ray SDKs write times.
    Json::from((nanos / 1_000) as f64 / 1e6)
}

fn truncate(name: &str, max: usize) -> String {
    name.chars().take(max).collect()
}

/// One span, translated, before nesting.
struct Entity {
    trace: TraceId,
    id: SegmentId,
    parent: Option<SegmentId>,
    is_segment: bool,
    fields: Map<String, Json>,
}

/// The spans of one resource in an export, nested: a subsegment goes under
/// its parent when the parent is among them.
struct Forest {
    /// Each entity's JSON text without its closing brace.
    bodies: Vec<String>,
    /// For a subsegment, the members it adds when it is a standalone
    /// document: `type`, `parent_id`, `trace_id`.
    standalone: Vec<Option<String>>,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
}

impl Forest {
    fn new(entities: Vec<Entity>) -> Forest {
        let index: HashMap<(TraceId, SegmentId), usize> =
            entities.iter().enumerate().map(|(position, entity)| ((entity.trace, entity.id), position)).collect();
        let mut children = vec![Vec::new(); entities.len()];
        let mut roots = Vec::new();
        for (position, entity) in entities.iter().enumerate() {
            let parent =
                entity.parent.filter(|_| !entity.is_segment).and_then(|parent| index.get(&(entity.trace, parent)));
            match parent {
                Some(&parent) if parent != position => children[parent].push(position),
                _ => roots.push(position),
            }
        }
        let standalone = entities
            .iter()
            .map(|entity| match (entity.is_segment, entity.parent) {
                (false, Some(parent)) => {
                    Some(format!(r#","type":"subsegment","parent_id":"{parent}","trace_id":"{}""#, entity.trace))
                }
                _ => None,
            })
            .collect();
        let bodies = entities
            .into_iter()
            .map(|entity| {
                let mut text = Json::Object(entity.fields).to_string();
                text.pop();
                text
            })
            .collect();
        Forest { bodies, standalone, children, roots }
    }

    /// Writes every entity once: the roots' trees as documents, a tree too
    /// large for one document split into its root and its children's trees.
    /// Spans in a parent cycle, reached from no root, start trees of their
    /// own.
    fn write(&self, translation: &mut Translation) {
        let mut written = vec![false; self.bodies.len()];
        let mut pending: Vec<usize> = self.roots.iter().rev().copied().collect();
        let mut next_unwritten = 0;
        loop {
            let root = match pending.pop() {
                Some(root) => root,
                None => match (next_unwritten..self.bodies.len()).find(|&position| !written[position]) {
                    Some(position) => {
                        next_unwritten = position;
                        position
                    }
                    None => break,
                },
            };
            if written[root] {
                continue;
            }
            let mut text = String::new();
            let mut deeper = Vec::new();
            let spans = self.write_tree(root, 0, &mut text, &mut written, &mut deeper);
            if text.len() > MAX_DOCUMENT_BYTES && !self.children[root].is_empty() {
                // Unmark the tree and write the root alone; its children
                // become roots.
                self.unmark(root, &mut written);
                written[root] = true;
                let mut alone = self.bodies[root].clone();
                alone.push_str(self.standalone[root].as_deref().unwrap_or_default());
                alone.push('}');
                translation.documents.push(Translated { text: alone, spans: 1 });
                pending.extend(self.children[root].iter().rev());
                continue;
            }
            translation.documents.push(Translated { text, spans });
            pending.extend(deeper.into_iter().rev());
        }
    }

    fn write_tree(
        &self,
        position: usize,
        depth: usize,
        text: &mut String,
        written: &mut [bool],
        deeper: &mut Vec<usize>,
    ) -> u64 {
        written[position] = true;
        text.push_str(&self.bodies[position]);
        if depth == 0 {
            text.push_str(self.standalone[position].as_deref().unwrap_or_default());
        }
        let mut spans = 1;
        let children: Vec<usize> = self.children[position].iter().copied().filter(|child| !written[*child]).collect();
        if depth + 1 >= MAX_EMBEDDED_DEPTH {
            deeper.extend(children);
        } else if !children.is_empty() {
            text.push_str(",\"subsegments\":[");
            for (n, child) in children.into_iter().enumerate() {
                if n > 0 {
                    text.push(',');
                }
                spans += self.write_tree(child, depth + 1, text, written, deeper);
            }
            text.push(']');
        }
        text.push('}');
        spans
    }

    fn unmark(&self, position: usize, written: &mut [bool]) {
        let mut stack = vec![position];
        while let Some(position) = stack.pop() {
            if std::mem::take(&mut written[position]) {
                stack.extend(&self.children[position]);
            }
        }
    }
}

#[cfg(test)]
mod tests;
