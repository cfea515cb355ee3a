-- Function invocation logs by trace; `time` in nanoseconds, `seq` keeps
-- the order of logs of one time.
CREATE TABLE IF NOT EXISTS {db}.logs{local}{on_cluster} (
    day Date,
    trace FixedString(16),
    time UInt64,
    seq UInt64,
    request_id String,
    function String,
    lines Array(String)
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (trace, time, seq)
