-- Results read aggregates, never the raw rows (issue 25): what the results
-- of a pilot need, maintained in the transaction that writes its
-- assignments, events, withdrawals, erasures or purge, so that a results
-- read takes the same time at 10 thousand or 10 million events. Counts and
-- sums only, except subject_outcomes, which holds each assigned subject's
-- outcome per metric by pseudonym, as the events do (erased with them).
-- A metric is named `kind:event` (`binary:purchase`, `sum:purchase`);
-- a day is a UTC day counted from the epoch; notice_version 0 is none and
-- segments '' is none.
--
-- Per assignment cell: the subjects assigned (erased ones leave) and those
-- of them withdrawn.
CREATE TABLE assignment_cells (
    experiment_key TEXT NOT NULL,
    variant TEXT NOT NULL,
    day BIGINT NOT NULL,
    basis TEXT NOT NULL,
    notice_version BIGINT NOT NULL,
    segments TEXT NOT NULL,
    assigned BIGINT NOT NULL,
    withdrawn BIGINT NOT NULL,
    PRIMARY KEY (experiment_key, variant, day, basis, notice_version, segments)
);
-- Withdrawals per variant and the UTC day they took effect: objections
-- apart from withdrawals and denials (attrition).
CREATE TABLE withdrawal_cells (
    experiment_key TEXT NOT NULL,
    variant TEXT NOT NULL,
    day BIGINT NOT NULL,
    withdrawn BIGINT NOT NULL,
    objected BIGINT NOT NULL,
    PRIMARY KEY (experiment_key, variant, day)
);
-- Per metric and assignment cell: the sum and the sum of squares of the
-- per-subject outcomes of the subjects not withdrawn.
CREATE TABLE outcome_cells (
    experiment_key TEXT NOT NULL,
    metric TEXT NOT NULL,
    variant TEXT NOT NULL,
    day BIGINT NOT NULL,
    basis TEXT NOT NULL,
    segments TEXT NOT NULL,
    total DOUBLE PRECISION NOT NULL,
    total_squares DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (experiment_key, metric, variant, day, basis, segments)
);
-- Each assigned subject's outcome so far per metric (events attributed to
-- its assignment: at or after it, and inside the attribution window); the
-- Lee bounds of a sum metric count them when attrition differs.
CREATE TABLE subject_outcomes (
    experiment_key TEXT NOT NULL,
    subject TEXT NOT NULL,
    metric TEXT NOT NULL,
    y DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (experiment_key, subject, metric)
);
-- Outcome changes of committed events not folded into subject_outcomes
-- and outcome_cells yet, per pilot, subject and metric (d: the sum of the
-- new values; unused for a binary metric). Appended in commit order, as
-- cheap as the events; folded in batches (aggregates/fold.rs), so that one
-- write of a subject's outcome serves all its events since the last fold.
CREATE TABLE outcome_queue (
    seq BIGSERIAL PRIMARY KEY,
    experiment_key TEXT NOT NULL,
    subject TEXT NOT NULL,
    metric TEXT NOT NULL,
    d DOUBLE PRECISION NOT NULL
);
-- 1 until the aggregates of the rows stored before this migration are
-- built (at the first start after it, in one write transaction).
CREATE TABLE aggregates_state (
    id BIGINT PRIMARY KEY,
    rebuild_pending BIGINT NOT NULL
);
INSERT INTO aggregates_state (id, rebuild_pending) VALUES (1, 1);
