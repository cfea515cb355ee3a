-- Each trace's current summary: its start and version (the highest version
-- wins), by trace id.
CREATE TABLE IF NOT EXISTS {db}.trace_starts{local}{on_cluster} (
    day Date,
    trace FixedString(16),
    start UInt64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY day
ORDER BY trace
