//! The X-Ray REST API's JSON shapes (botocore's `xray` model), kept apart
//! from the domain types and converted by hand. Only this module knows them.

use std::collections::BTreeMap;
use std::fmt;

use baton_model::{AnnotationValue, HttpFacts, time};
use baton_query::{RootCauseEntity, RootCauseService, ServiceId, TraceRootCause, TraceSummary};
use baton_store::Group;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A botocore `Timestamp`: epoch seconds as a number (what boto3 sends) or
/// an ISO 8601 string (what other SDKs may send).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timestamp(pub(crate) f64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch seconds or an ISO 8601 timestamp")
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Timestamp, E> {
                Ok(Timestamp(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(value as f64))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(value as f64))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Timestamp, E> {
                value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .or_else(|| time::parse_iso(value.trim()))
                    .map(Timestamp)
                    .ok_or_else(|| E::custom(format!("{value:?} is neither epoch seconds nor an ISO 8601 timestamp")))
            }
        }
        deserializer.deserialize_any(TimestampVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutTraceSegmentsRequest {
    pub(crate) trace_segment_documents: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutTraceSegmentsResult {
    pub(crate) unprocessed_trace_segments: Vec<UnprocessedTraceSegment>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UnprocessedTraceSegment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    pub(crate) error_code: String,
    pub(crate) message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchGetTracesRequest {
    pub(crate) trace_ids: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchGetTracesResult {
    pub(crate) traces: Vec<Trace>,
    pub(crate) unprocessed_trace_ids: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Trace {
    pub(crate) id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) duration: Option<f64>,
    pub(crate) limit_exceeded: bool,
    pub(crate) segments: Vec<Segment>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Segment {
    pub(crate) id: String,
    pub(crate) document: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetTraceSummariesRequest {
    pub(crate) start_time: Timestamp,
    pub(crate) end_time: Timestamp,
    pub(crate) time_range_type: Option<String>,
    pub(crate) sampling: Option<bool>,
    pub(crate) sampling_strategy: Option<SamplingStrategy>,
    pub(crate) filter_expression: Option<String>,
    pub(crate) next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SamplingStrategy {
    pub(crate) name: Option<String>,
    pub(crate) value: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetTraceSummariesResult {
    pub(crate) trace_summaries: Vec<WireTraceSummary>,
    pub(crate) approximate_time: f64,
    pub(crate) traces_processed_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireTraceSummary {
    id: String,
    start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_time: Option<f64>,
    has_fault: bool,
    has_error: bool,
    has_throttle: bool,
    is_partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<WireHttp>,
    annotations: BTreeMap<String, Vec<ValueWithServiceIds>>,
    users: Vec<TraceUser>,
    service_ids: Vec<WireServiceId>,
    #[serde(rename = "ResourceARNs")]
    resource_arns: Vec<ResourceArnDetail>,
    instance_ids: Vec<InstanceIdDetail>,
    availability_zones: Vec<AvailabilityZoneDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_point: Option<WireServiceId>,
    fault_root_causes: Vec<WireRootCause>,
    error_root_causes: Vec<WireRootCause>,
    response_time_root_causes: Vec<WireRootCause>,
    revision: u32,
    matched_event_time: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireHttp {
    #[serde(rename = "HttpURL", skip_serializing_if = "Option::is_none")]
    http_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ValueWithServiceIds {
    annotation_value: WireAnnotationValue,
    service_ids: Vec<WireServiceId>,
}

/// botocore's `AnnotationValue` union: the member names are the wire's.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
#[allow(clippy::enum_variant_names)]
enum WireAnnotationValue {
    StringValue(String),
    NumberValue(f64),
    BooleanValue(bool),
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TraceUser {
    user_name: String,
    service_ids: Vec<WireServiceId>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireServiceId {
    name: String,
    names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
}

/// botocore's `FaultRootCause`, `ErrorRootCause` and `ResponseTimeRootCause`:
/// one shape, whose entities have `Exceptions` (fault, error) or `Coverage`
/// (response time).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireRootCause {
    services: Vec<WireRootCauseService>,
    client_impacting: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireRootCauseService {
    name: String,
    names: Vec<String>,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    entity_path: Vec<WireRootCauseEntity>,
    inferred: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireRootCauseEntity {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exceptions: Option<Vec<RootCauseException>>,
    remote: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RootCauseException {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[derive(Serialize)]
struct ResourceArnDetail {
    #[serde(rename = "ARN")]
    arn: String,
}

#[derive(Serialize)]
struct InstanceIdDetail {
    #[serde(rename = "Id")]
    id: String,
}

#[derive(Serialize)]
struct AvailabilityZoneDetail {
    #[serde(rename = "Name")]
    name: String,
}

fn service_id(service: &ServiceId) -> WireServiceId {
    WireServiceId {
        name: service.name.clone(),
        names: vec![service.name.clone()],
        account_id: service.account_id.clone(),
        kind: service.kind.clone(),
    }
}

/// The wire form of root causes; `with_exceptions` for fault and error ones,
/// whose entities always list their exceptions.
fn root_causes(causes: &[TraceRootCause], with_exceptions: bool) -> Vec<WireRootCause> {
    let entity = |entity: &RootCauseEntity| WireRootCauseEntity {
        name: entity.name.clone(),
        coverage: entity.coverage,
        exceptions: with_exceptions.then(|| {
            entity
                .exceptions
                .iter()
                .map(|exception| RootCauseException {
                    name: exception.name.clone(),
                    message: exception.message.clone(),
                })
                .collect()
        }),
        remote: entity.remote,
    };
    let service = |service: &RootCauseService| WireRootCauseService {
        name: service.service.name.clone(),
        names: vec![service.service.name.clone()],
        kind: service.service.kind.clone(),
        account_id: service.service.account_id.clone(),
        entity_path: service.entity_path.iter().map(entity).collect(),
        inferred: service.inferred,
    };
    causes
        .iter()
        .map(|cause| WireRootCause {
            services: cause.services.iter().map(service).collect(),
            client_impacting: cause.client_impacting,
        })
        .collect()
}

fn http(http: &HttpFacts) -> WireHttp {
    WireHttp {
        http_url: http.url.clone(),
        http_status: http.status,
        http_method: http.method.clone(),
        user_agent: http.user_agent.clone(),
        client_ip: http.client_ip.clone(),
    }
}

impl From<&TraceSummary> for WireTraceSummary {
    fn from(summary: &TraceSummary) -> Self {
        WireTraceSummary {
            id: summary.id.to_string(),
            start_time: summary.start_time,
            duration: summary.duration,
            response_time: summary.response_time,
            has_fault: summary.has_fault,
            has_error: summary.has_error,
            has_throttle: summary.has_throttle,
            is_partial: summary.is_partial,
            http: summary.http.as_ref().map(http),
            annotations: summary
                .annotations
                .iter()
                .map(|annotation| {
                    let values = annotation
                        .values
                        .iter()
                        .map(|value| ValueWithServiceIds {
                            annotation_value: match &value.value {
                                AnnotationValue::String(text) => WireAnnotationValue::StringValue(text.clone()),
                                AnnotationValue::Number(number) => WireAnnotationValue::NumberValue(*number),
                                AnnotationValue::Bool(flag) => WireAnnotationValue::BooleanValue(*flag),
                            },
                            service_ids: value.service_ids.iter().map(service_id).collect(),
                        })
                        .collect();
                    (annotation.key.clone(), values)
                })
                .collect(),
            users: summary
                .users
                .iter()
                .map(|user| TraceUser {
                    user_name: user.name.clone(),
                    service_ids: user.service_ids.iter().map(service_id).collect(),
                })
                .collect(),
            service_ids: summary.service_ids.iter().map(service_id).collect(),
            resource_arns: summary.resource_arns.iter().map(|arn| ResourceArnDetail { arn: arn.clone() }).collect(),
            instance_ids: summary.instance_ids.iter().map(|id| InstanceIdDetail { id: id.clone() }).collect(),
            availability_zones: summary
                .availability_zones
                .iter()
                .map(|name| AvailabilityZoneDetail { name: name.clone() })
                .collect(),
            entry_point: summary.entry_point.as_ref().map(service_id),
            fault_root_causes: root_causes(&summary.fault_root_causes, true),
            error_root_causes: root_causes(&summary.error_root_causes, true),
            response_time_root_causes: root_causes(&summary.response_time_root_causes, false),
            revision: summary.revision,
            matched_event_time: summary.start_time,
        }
    }
}

/// botocore's `InsightsConfiguration`: both members are nullable, so that an
/// update can leave either out.
#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InsightsConfiguration {
    pub(crate) insights_enabled: Option<bool>,
    pub(crate) notifications_enabled: Option<bool>,
}

// `Tags` is taken by X-Ray but not kept by Baton, which has no tagging
// operations; serde skips it with the other unknown members.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateGroupRequest {
    pub(crate) group_name: String,
    pub(crate) filter_expression: Option<String>,
    pub(crate) insights_configuration: Option<InsightsConfiguration>,
}

/// The request of `GetGroup` and `DeleteGroup`: either key names the group.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GroupKey {
    pub(crate) group_name: Option<String>,
    #[serde(rename = "GroupARN")]
    pub(crate) group_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateGroupRequest {
    #[serde(flatten)]
    pub(crate) key: GroupKey,
    pub(crate) filter_expression: Option<String>,
    pub(crate) insights_configuration: Option<InsightsConfiguration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetGroupsRequest {
    pub(crate) next_token: Option<String>,
}

/// The answer of `CreateGroup`, `GetGroup` and `UpdateGroup`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GroupResult {
    pub(crate) group: WireGroup,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetGroupsResult {
    pub(crate) groups: Vec<WireGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_token: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct DeleteGroupResult {}

/// botocore's `Group`, and its `GroupSummary`, which has the same members.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireGroup {
    group_name: String,
    #[serde(rename = "GroupARN")]
    group_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_expression: Option<String>,
    insights_configuration: InsightsConfiguration,
}

impl From<&Group> for WireGroup {
    fn from(group: &Group) -> Self {
        WireGroup {
            group_name: group.name.clone(),
            group_arn: group.arn.clone(),
            filter_expression: group.filter_expression.clone(),
            insights_configuration: InsightsConfiguration {
                insights_enabled: Some(group.insights_enabled),
                notifications_enabled: Some(group.notifications_enabled),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use baton_model::Document;
    use baton_query::{Matcher, filter, summarize};
    use serde_json::{Value, json};

    use super::*;

    /// A trace whose DynamoDB call faulted: fault and response time root causes.
    fn faulted_trace() -> TraceSummary {
        let document = json!({"trace_id": "1-6744a1b2-0123456789abcdef01234567", "id": "0000000000000001",
            "name": "orders", "origin": "AWS::Lambda::Function", "start_time": 1.0, "end_time": 2.0, "fault": true,
            "aws": {"account_id": "111122223333"},
            "subsegments": [{"id": "0000000000000002", "name": "DynamoDB", "namespace": "aws", "start_time": 1.0,
                "end_time": 1.25, "fault": true, "cause": {"exceptions": [{"type": "InternalServerError"}]}}]});
        summarize(&[Document::parse(document.to_string().as_bytes()).unwrap().info])
    }

    #[test]
    fn root_causes_take_botocores_shapes() {
        let wire = serde_json::to_value(WireTraceSummary::from(&faulted_trace())).unwrap();
        let orders = |coverage: Option<f64>, exceptions: Option<Value>| {
            let mut entities =
                [json!({"Name": "orders", "Remote": false}), json!({"Name": "DynamoDB", "Remote": true})];
            for (entity, share) in entities.iter_mut().zip([1.0, 0.25]) {
                if coverage.is_some() {
                    entity["Coverage"] = json!(share);
                }
                if exceptions.is_some() {
                    entity["Exceptions"] = json!([]);
                }
            }
            json!({"Name": "orders", "Names": ["orders"], "Type": "AWS::Lambda::Function", "AccountId": "111122223333",
                "EntityPath": entities, "Inferred": false})
        };
        let dynamodb = |last: Value| {
            json!({"Name": "DynamoDB", "Names": ["DynamoDB"], "Type": "AWS::DynamoDB::Table", "EntityPath": [last],
                "Inferred": true})
        };
        let fault_entity = json!({"Name": "DynamoDB", "Exceptions": [{"Name": "InternalServerError"}], "Remote": true});
        assert_eq!(
            wire["FaultRootCauses"],
            json!([{"Services": [orders(None, Some(json!([]))), dynamodb(fault_entity)], "ClientImpacting": true}])
        );
        assert_eq!(wire["ErrorRootCauses"], json!([]));
        let slow_entity = json!({"Name": "DynamoDB", "Coverage": 0.25, "Remote": true});
        assert_eq!(
            wire["ResponseTimeRootCauses"],
            json!([{"Services": [orders(Some(1.0), None), dynamodb(slow_entity)], "ClientImpacting": true}])
        );
    }

    #[test]
    fn each_root_cause_as_returned_is_a_rootcause_json_filter_that_finds_its_trace() {
        let summary = faulted_trace();
        let wire = serde_json::to_value(WireTraceSummary::from(&summary)).unwrap();
        for kind in ["FaultRootCauses", "ResponseTimeRootCauses"] {
            let expression = format!("rootcause.json = #{}", wire[kind]);
            let matcher = Matcher::new(filter::parse(&expression).unwrap()).unwrap();
            assert!(matcher.matches(&summary), "{expression}");
        }
    }

    #[test]
    fn timestamps_are_numbers_or_iso_strings() {
        let parse = |json: &str| serde_json::from_str::<Timestamp>(json).map(|timestamp| timestamp.0);
        assert_eq!(parse("1732534200").unwrap(), 1_732_534_200.0);
        assert_eq!(parse("1732534200.5").unwrap(), 1_732_534_200.5);
        assert_eq!(parse("\"1732534200\"").unwrap(), 1_732_534_200.0);
        assert_eq!(parse("\"2024-11-25T11:30:00Z\"").unwrap(), 1_732_534_200.0);
        assert!(
            parse("\"last tuesday\"")
                .unwrap_err()
                .to_string()
                .contains("neither epoch seconds nor an ISO 8601 timestamp")
        );
    }
}
