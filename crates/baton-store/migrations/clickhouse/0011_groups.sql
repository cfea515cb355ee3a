-- Groups, outside retention: the highest version of a name is the group,
-- or its removal (`deleted`).
CREATE TABLE IF NOT EXISTS {db}.groups{local}{on_cluster} (
    name String,
    version UInt64,
    deleted UInt8,
    arn String,
    filter_expression Nullable(String),
    insights_enabled UInt8,
    notifications_enabled UInt8
) ENGINE = ReplacingMergeTree(version)
ORDER BY name
