//! The trace summary: X-Ray's `TraceSummary`, computed from the documents of
//! one trace.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use baton_model::{AnnotationValue, Call, CallNamespace, DocumentKind, HttpFacts, SegmentId, SegmentInfo, TraceId};
use serde::{Deserialize, Serialize};

use crate::rootcause::{TraceRootCause, root_causes};

/// How far a subsegment's parent chain is followed to find its service.
const MAX_PARENT_HOPS: usize = 64;

/// A trace summary, as `GetTraceSummaries` returns it and search reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// The trace.
    pub id: TraceId,
    /// The earliest start of any document, epoch seconds.
    pub start_time: f64,
    /// From the earliest start to the latest end.
    pub duration: Option<f64>,
    /// Start to end of the entry document.
    pub response_time: Option<f64>,
    /// The entry document has `fault` (a 5xx).
    pub has_fault: bool,
    /// The entry document has `error` (a 4xx).
    pub has_error: bool,
    /// The entry document has `throttle` (a 429).
    pub has_throttle: bool,
    /// Some document, or embedded subsegment with no complete copy sent on
    /// its own, is still in progress.
    pub is_partial: bool,
    /// The entry document's `http` block.
    pub http: Option<HttpFacts>,
    /// Annotations by key, each value with the services that set it.
    pub annotations: Vec<AnnotationSummary>,
    /// Users, with the services that recorded them.
    pub users: Vec<UserSummary>,
    /// Every service in the trace: those that sent segments, and those
    /// only called (inferred from `aws` and `remote` subsegments).
    pub service_ids: Vec<ServiceId>,
    /// Each segment, and each call to an inferred service, in start order.
    pub visits: Vec<Visit>,
    /// `resource_arn` of every document.
    pub resource_arns: Vec<String>,
    /// `aws.ec2.instance_id` of every document.
    pub instance_ids: Vec<String>,
    /// `aws.ec2.availability_zone` of every document.
    pub availability_zones: Vec<String>,
    /// The service of the entry document, if it is a segment.
    pub entry_point: Option<ServiceId>,
    /// Where the faults started (see [`TraceRootCause`]).
    pub fault_root_causes: Vec<TraceRootCause>,
    /// Where the errors started.
    pub error_root_causes: Vec<TraceRootCause>,
    /// Where the response time went: none, or one.
    pub response_time_root_causes: Vec<TraceRootCause>,
    /// How many documents the trace holds; grows with every update.
    pub revision: u32,
}

/// A service as X-Ray names it: name and type (the segment's `origin`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceId {
    /// The segment name.
    pub name: String,
    /// `aws.account_id`.
    pub account_id: Option<String>,
    /// The segment's `origin`.
    pub kind: Option<String>,
}

/// One appearance of a service in a trace, as `service()` and `edge()`
/// filters see it: a segment, or a call to a service that sent none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    /// The service visited: an index into [`TraceSummary::service_ids`].
    pub service: u32,
    /// The service that called it, when the trace holds the call: an index
    /// into [`TraceSummary::service_ids`].
    pub caller: Option<u32>,
    /// The visited service sent no segment; the caller's subsegment is all
    /// that is known of it.
    pub inferred: bool,
    /// The visit is the trace's entry document.
    pub root: bool,
    /// A 4xx.
    pub error: bool,
    /// A 5xx.
    pub fault: bool,
    /// A 429.
    pub throttle: bool,
    /// Still in progress.
    pub partial: bool,
    /// Start to end, seconds.
    pub response_time: Option<f64>,
    /// The `http` block.
    pub http: Option<HttpFacts>,
    /// The caller's view of the visit, when the caller recorded the call as
    /// an `aws` or `remote` subsegment (the visit's parent): the service
    /// graph's edges are timed and classed by it.
    pub call: Option<CallOutcome>,
}

/// How a call went, seen from the caller's subsegment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CallOutcome {
    /// A 4xx.
    pub error: bool,
    /// A 5xx.
    pub fault: bool,
    /// A 429.
    pub throttle: bool,
    /// Start to end of the subsegment, seconds; `None` while in progress.
    pub response_time: Option<f64>,
}

impl CallOutcome {
    fn of(call: &Call) -> CallOutcome {
        CallOutcome {
            error: call.error,
            fault: call.fault,
            throttle: call.throttle,
            response_time: call.end_time.map(|end| (end - call.start_time).max(0.0)),
        }
    }
}

/// One annotation key and its values in a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotationSummary {
    /// The key.
    pub key: String,
    /// Each distinct value, in first-seen order of a sorted trace.
    pub values: Vec<AnnotationValueSummary>,
}

/// One value of an annotation and who set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotationValueSummary {
    /// The value.
    #[serde(with = "tagged_value")]
    pub value: AnnotationValue,
    /// The services whose documents carry it.
    pub service_ids: Vec<ServiceId>,
}

/// One user of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    /// `user`.
    pub name: String,
    /// The services whose documents carry it.
    pub service_ids: Vec<ServiceId>,
}

/// Summarises the documents of one trace, one [`SegmentInfo`] per document id.
///
/// The entry document is the root segment (a segment without `parent_id`);
/// failing that, the earliest segment whose parent is not in the trace;
/// failing that (a Lambda function whose facade segment is never sent), the
/// earliest document whose parent is not in the trace. The result depends
/// only on the set of documents, not on their order. Root causes are
/// computed as the `rootcause` module describes.
///
/// # Panics
/// Never; an empty slice gives an empty summary with a zero trace id.
pub fn summarize(documents: &[SegmentInfo]) -> TraceSummary {
    let mut sorted: Vec<&SegmentInfo> = documents.iter().collect();
    sorted.sort_by(|left, right| left.start_time.total_cmp(&right.start_time).then(left.id.cmp(&right.id)));

    let by_id: HashMap<SegmentId, &SegmentInfo> = sorted.iter().map(|info| (info.id, *info)).collect();
    let mut embedded_owner: HashMap<SegmentId, SegmentId> = HashMap::new();
    for info in &sorted {
        for sub in &info.facts.subsegment_ids {
            embedded_owner.entry(*sub).or_insert(info.id);
        }
    }
    let is_known = |id: &SegmentId| by_id.contains_key(id) || embedded_owner.contains_key(id);
    let owning_segment = |info: &'_ SegmentInfo| -> Option<SegmentId> {
        let mut current = info;
        for _ in 0..MAX_PARENT_HOPS {
            if current.kind == DocumentKind::Segment {
                return Some(current.id);
            }
            let parent = current.parent_id?;
            let holder = embedded_owner.get(&parent).copied().unwrap_or(parent);
            current = by_id.get(&holder)?;
        }
        None
    };

    let entry = sorted
        .iter()
        .find(|info| info.kind == DocumentKind::Segment && info.parent_id.is_none())
        .or_else(|| {
            sorted
                .iter()
                .find(|info| info.kind == DocumentKind::Segment && !info.parent_id.is_some_and(|p| is_known(&p)))
        })
        .or_else(|| sorted.iter().find(|info| !info.parent_id.is_some_and(|p| is_known(&p))))
        .or_else(|| sorted.first())
        .copied();

    let start_time = sorted.first().map_or(0.0, |info| info.start_time);
    let last_end = sorted.iter().filter_map(|info| info.end_time).reduce(f64::max);

    // Calls, each once: a complete copy sent on its own replaces an
    // embedded in-progress one.
    let mut calls: Vec<(&Call, &SegmentInfo)> = Vec::new();
    let mut call_index: HashMap<SegmentId, usize> = HashMap::new();
    for info in &sorted {
        for call in &info.facts.calls {
            match call_index.get(&call.id) {
                Some(&index) if calls[index].0.end_time.is_none() && call.end_time.is_some() => {
                    calls[index] = (call, info);
                }
                Some(_) => {}
                None => {
                    call_index.insert(call.id, calls.len());
                    calls.push((call, info));
                }
            }
        }
    }
    let answered: HashSet<SegmentId> = sorted
        .iter()
        .filter(|info| info.kind == DocumentKind::Segment)
        .filter_map(|info| info.parent_id)
        .filter(|parent| call_index.contains_key(parent))
        .collect();
    let inferred: Vec<(&Call, &SegmentInfo)> =
        calls.iter().filter(|(call, _)| !answered.contains(&call.id)).copied().collect();

    let mut services = BTreeSet::new();
    services.extend(inferred.iter().map(|(call, _)| inferred_service(call.namespace, &call.name)));
    let mut annotations: BTreeMap<&str, Vec<(&AnnotationValue, BTreeSet<ServiceId>)>> = BTreeMap::new();
    let mut users: BTreeMap<&str, BTreeSet<ServiceId>> = BTreeMap::new();
    let (mut resource_arns, mut instance_ids, mut zones) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for info in &sorted {
        let service = owning_segment(info).and_then(|id| by_id.get(&id)).map(|owner| service_of(owner));
        if info.kind == DocumentKind::Segment {
            services.extend(service.clone());
        }
        for (key, value) in &info.facts.annotations {
            let values = annotations.entry(key).or_default();
            let slot = match values.iter().position(|(known, _)| *known == value) {
                Some(index) => &mut values[index].1,
                None => {
                    values.push((value, BTreeSet::new()));
                    &mut values.last_mut().expect("just pushed").1
                }
            };
            slot.extend(service.clone());
        }
        if let Some(user) = &info.facts.user {
            users.entry(user).or_default().extend(service.clone());
        }
        resource_arns.extend(info.facts.resource_arn.clone());
        instance_ids.extend(info.facts.instance_id.clone());
        zones.extend(info.facts.availability_zone.clone());
    }

    let service_ids: Vec<ServiceId> = services.into_iter().collect();
    let index_of = |service: &ServiceId| {
        service_ids.binary_search(service).ok().map(|index| u32::try_from(index).unwrap_or(u32::MAX))
    };
    let service_of_document =
        |info: &SegmentInfo| owning_segment(info).and_then(|id| by_id.get(&id)).map(|owner| service_of(owner));
    // The service whose (sub)segment has this id: who made a call.
    let caller_of = |parent: SegmentId| {
        let holder = embedded_owner.get(&parent).copied().unwrap_or(parent);
        by_id.get(&holder).and_then(|info| service_of_document(info)).and_then(|service| index_of(&service))
    };
    let mut visits: Vec<Visit> = sorted
        .iter()
        .filter(|info| info.kind == DocumentKind::Segment)
        .map(|info| Visit {
            service: index_of(&service_of(info)).unwrap_or(u32::MAX),
            caller: info.parent_id.and_then(caller_of),
            inferred: false,
            root: entry.is_some_and(|entry| entry.id == info.id),
            error: info.facts.error,
            fault: info.facts.fault,
            throttle: info.facts.throttle,
            partial: info.in_progress,
            response_time: info.end_time.map(|end| (end - info.start_time).max(0.0)),
            http: info.facts.http.clone(),
            call: info
                .parent_id
                .and_then(|parent| call_index.get(&parent))
                .map(|&index| CallOutcome::of(calls[index].0)),
        })
        .collect();
    visits.extend(inferred.iter().map(|(call, info)| Visit {
        service: index_of(&inferred_service(call.namespace, &call.name)).unwrap_or(u32::MAX),
        caller: service_of_document(info).and_then(|service| index_of(&service)),
        inferred: true,
        root: false,
        error: call.error,
        fault: call.fault,
        throttle: call.throttle,
        partial: call.end_time.is_none(),
        response_time: call.end_time.map(|end| (end - call.start_time).max(0.0)),
        http: call.http.clone(),
        call: Some(CallOutcome::of(call)),
    }));

    let causes = root_causes(&sorted, entry);
    TraceSummary {
        id: entry.map_or(TraceId::from_bytes([0; 16]), |info| info.trace_id),
        start_time,
        duration: last_end.map(|end| (end - start_time).max(0.0)),
        response_time: entry.and_then(|info| info.end_time.map(|end| (end - info.start_time).max(0.0))),
        has_fault: entry.is_some_and(|info| info.facts.fault),
        has_error: entry.is_some_and(|info| info.facts.error),
        has_throttle: entry.is_some_and(|info| info.facts.throttle),
        is_partial: sorted.iter().any(|info| {
            info.in_progress
                || info.facts.in_progress_subsegments.iter().any(|id| by_id.get(id).is_none_or(|copy| copy.in_progress))
        }),
        http: entry.and_then(|info| info.facts.http.clone()),
        annotations: annotations
            .into_iter()
            .map(|(key, values)| AnnotationSummary {
                key: key.to_owned(),
                values: values
                    .into_iter()
                    .map(|(value, services)| AnnotationValueSummary {
                        value: value.clone(),
                        service_ids: services.into_iter().collect(),
                    })
                    .collect(),
            })
            .collect(),
        users: users
            .into_iter()
            .map(|(name, services)| UserSummary { name: name.to_owned(), service_ids: services.into_iter().collect() })
            .collect(),
        service_ids,
        visits,
        resource_arns: resource_arns.into_iter().collect(),
        instance_ids: instance_ids.into_iter().collect(),
        availability_zones: zones.into_iter().collect(),
        entry_point: entry.filter(|info| info.kind == DocumentKind::Segment).map(service_of),
        fault_root_causes: causes.fault,
        error_root_causes: causes.error,
        response_time_root_causes: causes.response_time,
        revision: u32::try_from(sorted.len()).unwrap_or(u32::MAX),
    }
}

/// Summarises stored documents' text; a text that no longer parses (stored
/// by an older Baton with looser rules) is left out.
pub fn summarize_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> TraceSummary {
    let infos: Vec<SegmentInfo> = texts
        .into_iter()
        .filter_map(|text| baton_model::Document::parse(text.as_bytes()).ok())
        .map(|document| document.info)
        .collect();
    summarize(&infos)
}

/// The service a call (a subsegment in `namespace`, named `name`) went to
/// when it sent no segment: X-Ray's inferred node, typed `AWS::<service>`
/// (with the resource kind X-Ray gives the best known ones) or `remote`.
pub(crate) fn inferred_service(namespace: CallNamespace, name: &str) -> ServiceId {
    let kind = match (namespace, name) {
        (CallNamespace::Remote, _) => "remote".to_owned(),
        (CallNamespace::Aws, "DynamoDB") => "AWS::DynamoDB::Table".to_owned(),
        (CallNamespace::Aws, "S3") => "AWS::S3::Bucket".to_owned(),
        (CallNamespace::Aws, "SQS") => "AWS::SQS::Queue".to_owned(),
        (CallNamespace::Aws, "SNS") => "AWS::SNS::Topic".to_owned(),
        (CallNamespace::Aws, name) => format!("AWS::{name}"),
    };
    ServiceId { name: name.to_owned(), account_id: None, kind: Some(kind) }
}

/// The service a segment document is the work of.
pub(crate) fn service_of(info: &SegmentInfo) -> ServiceId {
    ServiceId { name: info.name.clone(), account_id: info.facts.account_id.clone(), kind: info.facts.origin.clone() }
}

/// Annotation values tagged with their type, for formats that do not
/// describe themselves (the store's binary encoding).
mod tagged_value {
    use baton_model::AnnotationValue;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    enum Tagged {
        String(String),
        Number(f64),
        Bool(bool),
    }

    pub(super) fn serialize<S: Serializer>(value: &AnnotationValue, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            AnnotationValue::String(text) => Tagged::String(text.clone()),
            AnnotationValue::Number(number) => Tagged::Number(*number),
            AnnotationValue::Bool(flag) => Tagged::Bool(*flag),
        }
        .serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<AnnotationValue, D::Error> {
        Ok(match Tagged::deserialize(deserializer)? {
            Tagged::String(text) => AnnotationValue::String(text),
            Tagged::Number(number) => AnnotationValue::Number(number),
            Tagged::Bool(flag) => AnnotationValue::Bool(flag),
        })
    }
}

#[cfg(test)]
mod tests;
