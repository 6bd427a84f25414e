-- Attrition (issue 24): why an assignment was marked withdrawn (the
-- status of the record that did it: withdrawn, denied or objected; older
-- rows have none and count as withdrawn), and per pilot, variant and UTC
-- day of the erasure, how many assigned subjects were erased (their
-- assignment rows are deleted, so only this count says which variants
-- they left). Counts only: nothing about the erased person is kept here.
ALTER TABLE assignments ADD COLUMN withdrawn_as TEXT;
CREATE TABLE erasure_counters (
    experiment_key TEXT NOT NULL,
    variant TEXT NOT NULL,
    day TEXT NOT NULL,
    erased BIGINT NOT NULL,
    PRIMARY KEY (experiment_key, variant, day)
);
-- Refused assignment calls per pilot, UTC day and the variant the subject
-- would have been bucketed into (from the pseudonym's hash, as an eligible
-- call is): eligibility is decided before bucketing, so these follow the
-- split unless a rule looks at the variant. Counts only.
CREATE TABLE refusal_buckets (
    experiment_key TEXT NOT NULL,
    variant TEXT NOT NULL,
    day TEXT NOT NULL,
    refused BIGINT NOT NULL,
    PRIMARY KEY (experiment_key, variant, day)
);
