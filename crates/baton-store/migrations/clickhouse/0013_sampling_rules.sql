-- Sampling rules, outside retention, versioned as groups are; times in
-- nanoseconds, attributes as a JSON object.
CREATE TABLE IF NOT EXISTS {db}.sampling_rules{local}{on_cluster} (
    name String,
    version UInt64,
    deleted UInt8,
    arn String,
    priority UInt32,
    fixed_rate Float64,
    reservoir_size UInt32,
    service_name String,
    service_type String,
    host String,
    http_method String,
    url_path String,
    resource_arn String,
    rule_version UInt32,
    attributes String,
    created_at UInt64,
    modified_at UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY name
