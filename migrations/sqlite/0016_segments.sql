-- Pre-registered segments (issue 24): a pilot names the segment dimensions
-- of the inventory's vocabulary its results may be broken down by, and how
-- their p-values are adjusted; an assignment keeps the segment attributes
-- the shop sent with it (`name=value` pairs of the declared segments only,
-- separated by `;`), NULL when none were sent.
ALTER TABLE experiments ADD COLUMN segments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE experiments ADD COLUMN segment_correction TEXT NOT NULL DEFAULT 'holm';
ALTER TABLE assignments ADD COLUMN segments TEXT;
