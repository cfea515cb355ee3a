CREATE TABLE IF NOT EXISTS {db}.segments{on_cluster} AS {db}.segments{local}
ENGINE = Distributed({cluster}, {db}, segments{local}, cityHash64(trace))
