-- The documents' text, one row per version of a (trace, id); the highest
-- version is the document (a complete one's version has the top bit set,
-- so an in-progress one never replaces it). `day` is the UTC day the trace
-- was first received: all of a trace's rows go to that partition.
CREATE TABLE IF NOT EXISTS {db}.segments{local}{on_cluster} (
    day Date,
    trace FixedString(16),
    id UInt64,
    version UInt64,
    json String
) ENGINE = ReplacingMergeTree(version)
PARTITION BY day
ORDER BY (trace, id)
