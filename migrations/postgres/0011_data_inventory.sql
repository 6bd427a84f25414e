-- The data inventory (issue 22): the categories of personal data a pilot may
-- name, each with a sensitivity class (low, moderate, high, special) and the
-- measures it requires. Pilots may not use a prohibited category (special
-- categories under Art. 9, children's data). `orders` and `page_views` are
-- kinds of `purchase` and `behavioural` that pilots named before.
CREATE TABLE data_categories (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    sensitivity TEXT NOT NULL CHECK (sensitivity IN ('low', 'moderate', 'high', 'special')),
    prohibited BIGINT NOT NULL CHECK (prohibited IN (0, 1)),
    pseudonymised BIGINT NOT NULL CHECK (pseudonymised IN (0, 1)),
    encrypted_at_rest BIGINT NOT NULL CHECK (encrypted_at_rest IN (0, 1)),
    retention_ceiling_days BIGINT,
    dpo_sign_off BIGINT NOT NULL CHECK (dpo_sign_off IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

INSERT INTO data_categories (key, name, description, sensitivity, prohibited, pseudonymised,
    encrypted_at_rest, retention_ceiling_days, dpo_sign_off, created_at, updated_at) VALUES
    ('identifier', 'Identifiers', 'Customer numbers, account ids, cookie ids: what ties records to one person (stored only as pseudonyms).', 'moderate', 0, 1, 1, 365, 0, 0, 0),
    ('contact', 'Contact details', 'E-mail addresses, phone numbers, postal addresses.', 'high', 0, 1, 1, 180, 1, 0, 0),
    ('device', 'Device and browser', 'Device type, browser, operating system, screen size, language.', 'low', 0, 1, 0, 365, 0, 0, 0),
    ('behavioural', 'Behavioural data', 'What a person does in the shop: page views, clicks, searches, time on page.', 'moderate', 0, 1, 1, 180, 0, 0, 0),
    ('page_views', 'Page views', 'Pages a person viewed in the shop (a kind of behavioural data).', 'moderate', 0, 1, 1, 180, 0, 0, 0),
    ('purchase', 'Purchases', 'What a person bought: orders, baskets, amounts, returns.', 'moderate', 0, 1, 1, 365, 0, 0, 0),
    ('orders', 'Orders', 'Orders a person placed and their amounts (a kind of purchase data).', 'moderate', 0, 1, 1, 365, 0, 0, 0),
    ('location', 'Location', 'Where a person is: from the IP address, a delivery address or the device.', 'high', 0, 1, 1, 90, 1, 0, 0),
    ('inferred_interests', 'Inferred interests', 'Segments and interests derived from behaviour (profiling).', 'high', 0, 1, 1, 90, 1, 0, 0),
    ('special_category', 'Special-category data (Art. 9)', 'Health, religion, ethnic origin, political opinions, sexual orientation, biometric or genetic data.', 'special', 1, 1, 1, NULL, 1, 0, 0),
    ('children', 'Children''s data', 'Data about people under the age of digital consent (Art. 8).', 'high', 1, 1, 1, NULL, 1, 0, 0);
