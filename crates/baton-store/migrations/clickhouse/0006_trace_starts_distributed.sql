CREATE TABLE IF NOT EXISTS {db}.trace_starts{on_cluster} AS {db}.trace_starts{local}
ENGINE = Distributed({cluster}, {db}, trace_starts{local}, cityHash64(trace))
