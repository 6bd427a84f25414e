-- As on SQLite, where assignments became one B-tree keyed by (pilot, subject):
-- every reader knows the pilot or tries each pilot's key with the subject, so
-- the index by subject alone only cost every first-time assignment a write.
DROP INDEX assignments_by_subject;
