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
use std::borrow::Cow;

use serde_json::{Map, Value as Json, json};

use crate::object::{Object, write};
use crate::proto::{Event, KeyValue, Link, ResourceSpans, Span, SpanKind, Value, status_code};

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
                let mut text = Vec::new();
                let mut object = Object::open(&mut text);
                object.value("name", &scope.name);
                object.some("version", Some(&scope.version).filter(|version| !version.is_empty()));
                object.close();
                String::from_utf8(text).expect("serde_json writes UTF-8")
            });
            for span in &scope_spans.spans {
                match self.entity(span, &resource, scope.as_deref()) {
                    Ok(entity) => entities.push(entity),
                    Err(reason) => translation.rejected.push(Rejected { span_id: hex(&span.span_id), reason }),
                }
            }
        }
        Forest::new(entities).write(translation);
    }

    /// One span as a segment or subsegment, without its children.
    fn entity(&self, span: &Span, resource: &ResourceFacts, scope: Option<&str>) -> Result<Entity, String> {
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

        let mut body = Vec::with_capacity(1024);
        let mut document = Object::open(&mut body);
        document.value("id", &id.to_string());
        // A subsegment names its trace and parent only when standalone
        // (`Forest` adds them); embedded, its place says both.
        if is_segment {
            document.value("trace_id", &trace.to_string());
            document.some("parent_id", parent.map(|parent| parent.to_string()).as_ref());
        }
        document.value("start_time", &seconds(span.start_time_unix_nano));
        document.value("end_time", &seconds(span.end_time_unix_nano));

        let aws_call = if is_segment { None } else { aws_call(kind, &mut attributes) };
        let sql = (!is_segment && kind == SpanKind::Client).then(|| sql(&mut attributes)).flatten();
        let name = if is_segment {
            truncate(Cow::Borrowed(resource.service_name), MAX_SEGMENT_NAME)
        } else {
            let name = match (&aws_call, &sql) {
                (Some(call), _) => Cow::Borrowed(call.service),
                (None, Some(sql)) => Cow::Borrowed(sql.name.as_str()),
                (None, None) => subsegment_name(kind, span, &attributes),
            };
            truncate(name, MAX_SUBSEGMENT_NAME)
        };
        document.value("name", name.as_ref());
        if is_segment {
            document.some("origin", resource.origin);
            document.some("resource_arn", resource.resource_arn.as_deref());
        } else {
            let namespace = match kind {
                _ if aws_call.is_some() => "aws",
                SpanKind::Client | SpanKind::Producer => "remote",
                _ => "local",
            };
            document.value("namespace", namespace);
        }

        let http = Http::read(kind, &mut attributes);
        http.write(&mut document);
        match (&aws_call, is_segment) {
            (Some(call), _) => strings(&mut document, "aws", &call.fields),
            (None, true) => {
                if let Some(aws) = &resource.aws {
                    document.raw("aws", aws);
                }
            }
            _ => {}
        }
        if let Some(sql) = &sql {
            strings(&mut document, "sql", &sql.fields);
        }
        let flags = Flags::of(span.status.as_ref().map_or(status_code::UNSET, |status| status.code), http.status);
        flags.write(&mut document);
        if let Some(cause) = cause(span, &mut attributes, flags) {
            document.value("cause", &cause);
        }
        if is_segment {
            document.some("user", attributes.take_str("enduser.id"));
            if let Some(version) = resource.service_version {
                let mut service = document.object("service");
                service.value("version", version);
                service.close();
            }
        }
        self.annotations(&mut attributes, &mut document);
        metadata(span, kind, is_segment, &name, &attributes, resource, scope, &mut document);
        let body = String::from_utf8(body).expect("serde_json writes UTF-8");
        Ok(Entity { trace, id, parent, is_segment, body })
    }

    /// The attributes named by the configured keys or by the span's
    /// `aws.xray.annotations` list, with a scalar value, as annotations (a
    /// key's characters other than letters, digits and `_` become `_`, as
    /// X-Ray requires).
    fn annotations(&self, attributes: &mut Attributes<'_>, document: &mut Object<'_>) {
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
        let mut annotations = Vec::new();
        for index in 0..attributes.entries.len() {
            let (key, value) = attributes.entries[index];
            if attributes.used[index]
                || !(self.annotation_keys.contains(key) || listed.iter().any(|listed| listed == key))
            {
                continue;
            }
            let checked = match value {
                Some(Value::String(text)) => AnnotationValue::String(text.clone()),
                Some(Value::Bool(flag)) => AnnotationValue::Bool(*flag),
                Some(Value::Int(number)) => AnnotationValue::Number(*number as f64),
                Some(Value::Double(number)) => AnnotationValue::Number(*number),
                _ => continue,
            };
            // What X-Ray would refuse stays in metadata rather than fail
            // the document.
            let key = annotation_key(key);
            if annotation_problem(&key, &checked).is_some() {
                continue;
            }
            attributes.used[index] = true;
            annotations.push((key, value));
        }
        if !annotations.is_empty() {
            let mut object = document.object("annotations");
            for (key, value) in annotations {
                write_value(object.member(&key), value);
            }
            object.close();
        }
    }
}

/// The facts of a resource that every span of it shares.
struct ResourceFacts<'a> {
    service_name: &'a str,
    service_version: Option<&'a str>,
    origin: Option<&'static str>,
    resource_arn: Option<String>,
    /// The aws block of its segments, as JSON text.
    aws: Option<String>,
    /// The attributes not used above, kept as metadata of segments (JSON
    /// text).
    rest: Option<String>,
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
        let aws = (!aws.is_empty()).then(|| Json::Object(aws).to_string());
        let rest = attributes.has_rest().then(|| {
            let mut text = Vec::new();
            attributes.write_rest(&mut text);
            String::from_utf8(text).expect("serde_json writes UTF-8")
        });
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

    /// Whether some attribute was not taken.
    fn has_rest(&self) -> bool {
        self.used.iter().any(|used| !used)
    }

    /// Writes the attributes nobody took as a JSON object.
    fn write_rest(&self, out: &mut Vec<u8>) {
        let mut object = Object::open(out);
        for ((key, value), used) in self.entries.iter().zip(&self.used) {
            if !used {
                write_value(object.member(key), *value);
            }
        }
        object.close();
    }
}

/// The http block: request method, URL, client and user agent; response
/// status and length. Old and new semantic-convention names are both read.
#[derive(Default)]
struct Http<'a> {
    method: Option<&'a str>,
    url: Option<Cow<'a, str>>,
    client_ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    status: Option<i64>,
    content_length: Option<i64>,
}

impl<'a> Http<'a> {
    fn read(kind: SpanKind, attributes: &mut Attributes<'a>) -> Http<'a> {
        let method = attributes.take_first_str(&["http.request.method", "http.method"]);
        let url = attributes.take_first_str(&["url.full", "http.url"]).map(Cow::Borrowed).or_else(|| {
            // A server span has the parts; without the host, the path alone.
            let path = attributes.str("url.path").or(attributes.str("http.target"))?;
            let host =
                attributes.str("server.address").or(attributes.str("http.host")).or(attributes.str("net.host.name"));
            let scheme = attributes.str("url.scheme").or(attributes.str("http.scheme")).unwrap_or("http");
            let port = host.and(attributes.take_first_int(&["server.port", "net.host.port"]));
            for key in
                ["url.path", "http.target", "url.scheme", "http.scheme", "server.address", "http.host", "net.host.name"]
            {
                attributes.take(key);
            }
            Some(match (host, port) {
                (None, _) => Cow::Borrowed(path),
                (Some(host), Some(port)) if !matches!((scheme, port), ("http", 80) | ("https", 443)) => {
                    Cow::Owned(format!("{scheme}://{host}:{port}{path}"))
                }
                (Some(host), _) => Cow::Owned(format!("{scheme}://{host}{path}")),
            })
        });
        let client_ip = match kind {
            SpanKind::Server => attributes.take_first_str(&["client.address", "http.client_ip", "net.sock.peer.addr"]),
            _ => None,
        };
        Http {
            method,
            url,
            client_ip,
            user_agent: attributes.take_first_str(&["user_agent.original", "http.user_agent"]),
            status: attributes.take_first_int(&["http.response.status_code", "http.status_code"]),
            content_length: attributes.take_first_int(&["http.response.body.size", "http.response_content_length"]),
        }
    }

    fn write(&self, document: &mut Object<'_>) {
        let request =
            self.method.is_some() || self.url.is_some() || self.client_ip.is_some() || self.user_agent.is_some();
        let response = self.status.is_some() || self.content_length.is_some();
        if !request && !response {
            return;
        }
        let mut http = document.object("http");
        if request {
            let mut block = http.object("request");
            block.some("method", self.method);
            block.some("url", self.url.as_deref());
            block.some("client_ip", self.client_ip);
            block.some("user_agent", self.user_agent);
            block.close();
        }
        if response {
            let mut block = http.object("response");
            block.some("status", self.status.as_ref());
            block.some("content_length", self.content_length.as_ref());
            block.close();
        }
        http.close();
    }
}

/// A block of string members (`aws`, `sql`), written only when not empty.
fn strings(document: &mut Object<'_>, key: &str, fields: &[(&str, Cow<'_, str>)]) {
    if fields.is_empty() {
        return;
    }
    let mut block = document.object(key);
    for (name, value) in fields {
        block.value(name, value.as_ref());
    }
    block.close();
}

/// A call to an AWS service: its name (`DynamoDB`) and the aws block
/// (operation, region, request id, table, queue), for a CLIENT span of the
/// AWS SDK instrumentations (`rpc.system = aws-api`) or a PRODUCER to SQS or
/// SNS.
struct AwsCall<'a> {
    service: &'a str,
    fields: Vec<(&'static str, Cow<'a, str>)>,
}

fn aws_call<'a>(kind: SpanKind, attributes: &mut Attributes<'a>) -> Option<AwsCall<'a>> {
    let service = match kind {
        SpanKind::Client if attributes.str("rpc.system") == Some("aws-api") => {
            attributes.take("rpc.system");
            attributes.take_str("rpc.service").unwrap_or("AWS")
        }
        SpanKind::Client | SpanKind::Producer => match attributes.str("messaging.system") {
            Some("aws_sqs") => "SQS",
            Some("aws_sns") => "SNS",
            _ => return None,
        },
        _ => return None,
    };
    let mut fields = Vec::new();
    let mut put = |name, value: Option<&'a str>| fields.extend(value.map(|value| (name, Cow::Borrowed(value))));
    put("operation", attributes.take_str("rpc.method"));
    put("region", attributes.take_first_str(&["aws.region", "cloud.region"]));
    put("request_id", attributes.take_first_str(&["aws.request_id", "aws.requestId"]));
    put(
        "table_name",
        match attributes.get("aws.dynamodb.table_names") {
            Some(Value::Array(array)) if array.values.len() == 1 => match &array.values[0].value {
                Some(Value::String(table)) => Some(table.as_str()),
                _ => None,
            },
            _ => attributes.str("aws.table_name"),
        },
    );
    put("queue_url", attributes.take_first_str(&["aws.sqs.queue_url", "aws.queue_url", "messaging.url"]));
    Some(AwsCall { service, fields })
}

/// A database call: its name (`database@host`, as the X-Ray SDKs name SQL
/// subsegments) and the sql block.
struct Sql<'a> {
    name: String,
    fields: Vec<(&'static str, Cow<'a, str>)>,
}

fn sql<'a>(attributes: &mut Attributes<'a>) -> Option<Sql<'a>> {
    let system = attributes.take_str("db.system").or(attributes.take_str("db.system.name"))?;
    let database = attributes.str("db.namespace").or(attributes.str("db.name"));
    let host = attributes.str("server.address").or(attributes.str("net.peer.name"));
    let name = match (database, host) {
        (Some(database), Some(host)) => format!("{database}@{host}"),
        (Some(database), None) => database.to_owned(),
        (None, _) => system.to_owned(),
    };
    let mut fields = vec![("database_type", Cow::Borrowed(system))];
    if let Some(query) = attributes.take_first_str(&["db.query.text", "db.statement"]) {
        fields.push(("sanitized_query", Cow::Borrowed(query)));
    }
    let url = attributes.take_str("db.connection_string").map(Cow::Borrowed).or_else(|| {
        host.map(|host| match database {
            Some(database) => Cow::Owned(format!("{host}/{database}")),
            None => Cow::Borrowed(host),
        })
    });
    fields.extend(url.map(|url| ("url", url)));
    fields.extend(attributes.take_str("db.user").map(|user| ("user", Cow::Borrowed(user))));
    Some(Sql { name, fields })
}

/// A subsegment's name: the remote service a CLIENT or PRODUCER span calls
/// (`peer.service`, the server's address, the URL's host), else the span's
/// name.
fn subsegment_name<'a>(kind: SpanKind, span: &'a Span, attributes: &Attributes<'a>) -> Cow<'a, str> {
    if matches!(kind, SpanKind::Client | SpanKind::Producer) {
        let remote = ["peer.service", "server.address", "net.peer.name", "http.host"]
            .iter()
            .find_map(|key| attributes.str(key))
            .or_else(|| attributes.str("url.full").or(attributes.str("http.url")).and_then(url_host))
            .or_else(|| attributes.str("messaging.system"));
        if let Some(remote) = remote {
            return Cow::Borrowed(remote);
        }
    }
    Cow::Borrowed(if span.name.is_empty() { "span" } else { &span.name })
}

fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    (!host.is_empty()).then_some(host)
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

    fn write(self, document: &mut Object<'_>) {
        for (name, set) in [("error", self.error), ("fault", self.fault), ("throttle", self.throttle)] {
            if set {
                document.value(name, &true);
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
#[allow(clippy::too_many_arguments)]
fn metadata(
    span: &Span,
    kind: SpanKind,
    is_segment: bool,
    name: &str,
    attributes: &Attributes<'_>,
    resource: &ResourceFacts<'_>,
    scope: Option<&str>,
    document: &mut Object<'_>,
) {
    let mut metadata = document.object("metadata");
    if attributes.has_rest() {
        attributes.write_rest(metadata.member("default"));
    }
    let mut otel = metadata.object("otel");
    otel.value("span.kind", kind.name());
    if name != span.name {
        otel.value("span.name", &span.name);
    }
    if let Some(scope) = scope {
        otel.raw("scope", scope);
    }
    if !span.links.is_empty() {
        let links: Vec<Json> = span.links.iter().map(link).collect();
        otel.value("links", &links);
    }
    let events: Vec<Json> = span.events.iter().filter(|event| event.name != "exception").map(event).collect();
    if !events.is_empty() {
        otel.value("events", &events);
    }
    if let (true, Some(rest)) = (is_segment, &resource.rest) {
        otel.raw("resource", rest);
    }
    otel.close();
    metadata.close();
}

fn link(link: &Link) -> Json {
    let mut fields = Map::new();
    if let Ok(trace) = trace_id(&link.trace_id) {
        fields.insert("trace_id".into(), trace.to_string().into());
    }
    fields.insert("id".into(), hex(&link.span_id).into());
    if !link.attributes.is_empty() {
        fields.insert("attributes".into(), attributes_json(&link.attributes));
    }
    Json::Object(fields)
}

fn event(event: &Event) -> Json {
    let mut fields = Map::new();
    fields.insert("name".into(), event.name.clone().into());
    fields.insert("time".into(), seconds(event.time_unix_nano).into());
    if !event.attributes.is_empty() {
        fields.insert("attributes".into(), attributes_json(&event.attributes));
    }
    Json::Object(fields)
}

fn attributes_json(attributes: &[KeyValue]) -> Json {
    let mut text = Vec::new();
    Attributes::new(attributes).write_rest(&mut text);
    serde_json::from_slice(&text).expect("the attributes were written as JSON")
}

/// Writes an attribute value as JSON: arrays and key-value lists nest,
/// bytes are base64, non-finite doubles are strings, an absent value null.
fn write_value(out: &mut Vec<u8>, value: Option<&Value>) {
    match value {
        None => out.extend_from_slice(b"null"),
        Some(Value::String(text)) => write(out, text),
        Some(Value::Bool(flag)) => write(out, flag),
        Some(Value::Int(number)) => write(out, number),
        Some(Value::Double(number)) if number.is_finite() => write(out, number),
        Some(Value::Double(number)) => write(out, &number.to_string()),
        Some(Value::Array(array)) => {
            out.push(b'[');
            for (index, item) in array.values.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item.value.as_ref());
            }
            out.push(b']');
        }
        Some(Value::KeyValueList(list)) => Attributes::new(&list.values).write_rest(out),
        Some(Value::Bytes(bytes)) => write(out, &base64(bytes)),
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
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

/// Epoch seconds with microseconds, as the X-Ray SDKs write times.
fn seconds(nanos: u64) -> f64 {
    (nanos / 1_000) as f64 / 1e6
}

fn truncate(name: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    match name.char_indices().nth(max) {
        Some((end, _)) => Cow::Owned(name[..end].to_owned()),
        None => name,
    }
}

/// One span, translated, before nesting.
struct Entity {
    trace: TraceId,
    id: SegmentId,
    parent: Option<SegmentId>,
    is_segment: bool,
    /// The JSON text without its closing brace.
    body: String,
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
        let bodies = entities.into_iter().map(|entity| entity.body).collect();
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
