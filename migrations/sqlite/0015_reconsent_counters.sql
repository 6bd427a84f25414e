-- Re-consent remediation (issue 23): per purpose and UTC day, how many
-- eligibility checks answered "ask again" and how many privacy links they
-- issued. Counts only: who was asked is never kept (asking is processing).
CREATE TABLE reconsent_counters (
    purpose TEXT NOT NULL,
    day TEXT NOT NULL,
    asked INTEGER NOT NULL,
    links_issued INTEGER NOT NULL,
    PRIMARY KEY (purpose, day)
);
