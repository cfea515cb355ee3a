-- Trace summaries by start (nanoseconds), one row per version; the columns
-- before `summary` are what a filter is pushed down to (index terms), the
-- summary itself is postcard bytes. A trace's current row is the one whose
-- start and version `trace_starts` holds.
CREATE TABLE IF NOT EXISTS {db}.summaries{local}{on_cluster} (
    day Date,
    start UInt64,
    trace FixedString(16),
    version UInt64,
    response_time_bucket UInt8,
    has_fault UInt8,
    has_error UInt8,
    has_throttle UInt8,
    services Array(String),
    fault_services Array(String),
    error_services Array(String),
    throttle_services Array(String),
    users Array(String),
    annotation_keys Array(String),
    annotation_values Array(String),
    summary String
) ENGINE = ReplacingMergeTree(version)
PARTITION BY day
ORDER BY (start, trace)
