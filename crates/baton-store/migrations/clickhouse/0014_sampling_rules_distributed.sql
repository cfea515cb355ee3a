CREATE TABLE IF NOT EXISTS {db}.sampling_rules{on_cluster} AS {db}.sampling_rules{local}
ENGINE = Distributed({cluster}, {db}, sampling_rules{local}, cityHash64(name))
