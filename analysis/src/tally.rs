//! Per-subject aggregation without data frames, for readers that go through
//! a file once: assignments into a table of subjects (each one's variant,
//! earliest assignment, and whether it was seen in two variants), then the
//! metric's events counted and summed per subject, then per-variant sums.
//! The rules are those of [`crate::pipeline::aggregate_frames`] (ANALYZE.md);
//! `tests/reader_equivalence.rs` checks that both agree.

use crate::pipeline::{Aggregates, Outcome, VariantSums};

/// A set of byte strings, numbered 0, 1, … in the order they were first
/// added: an open-addressing table over one buffer of keys, so that ten
/// million subjects cost about 30 bytes each beside their names.
#[derive(Debug, Default)]
pub struct SubjectIndex {
    /// Per slot, `id + 1` of the key hashed to it (or probed on to it) in the
    /// low half and the high half of the key's hash in the high half, so
    /// that most other keys are passed over without reading them; 0 is empty.
    slots: Vec<u64>,
    /// The keys, one after the other.
    bytes: Vec<u8>,
    /// Where key `id` ends in `bytes` (it starts where key `id - 1` ends).
    ends: Vec<usize>,
}

impl SubjectIndex {
    /// An empty set with room for about `keys` keys of `key_bytes` bytes in all.
    pub fn with_capacity(keys: usize, key_bytes: usize) -> SubjectIndex {
        let mut index = SubjectIndex {
            slots: Vec::new(),
            bytes: Vec::with_capacity(key_bytes),
            ends: Vec::with_capacity(keys),
        };
        index.resize((keys * 4 / 3 + 1).next_power_of_two());
        index
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The key numbered `id`.
    pub fn key(&self, id: u32) -> &[u8] {
        let id = id as usize;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.bytes[start..self.ends[id]]
    }

    /// The number of `key`, if it was added.
    pub fn find(&self, key: &[u8]) -> Option<u32> {
        self.find_hashed(key, hash_of(key))
    }

    /// [`SubjectIndex::find`] of a key whose [`hash_of`] is `hash`.
    pub fn find_hashed(&self, key: &[u8], hash: u64) -> Option<u32> {
        self.probe(key, hash).1
    }

    /// The number of `key`, adding it when it is new (the flag is then `true`).
    pub fn insert(&mut self, key: &[u8]) -> (u32, bool) {
        self.insert_hashed(key, hash_of(key))
    }

    /// [`SubjectIndex::insert`] of a key whose [`hash_of`] is `hash`.
    pub fn insert_hashed(&mut self, key: &[u8], hash: u64) -> (u32, bool) {
        // At most three slots in four are taken, so that probes stay short.
        if (self.len() + 1) * 4 > self.slots.len() * 3 {
            self.resize((self.slots.len() * 2).max(1024));
        }
        match self.probe(key, hash) {
            (_, Some(id)) => (id, false),
            (at, None) => {
                let id = u32::try_from(self.len()).expect("fewer than 4 billion subjects");
                self.bytes.extend_from_slice(key);
                self.ends.push(self.bytes.len());
                self.slots[at] = slot_of(hash, id);
                (id, true)
            }
        }
    }

    /// Reads the first slot of each of `hashes`, all at once: the table is
    /// far larger than the caches, and the memory of independent reads is
    /// fetched in parallel, where the probes that follow would wait for
    /// each slot in turn.
    pub fn warm(&self, hashes: &[u64]) {
        if self.slots.is_empty() {
            return;
        }
        let mask = self.slots.len() - 1;
        let seen = hashes
            .iter()
            .fold(0, |seen, hash| seen | self.slots[*hash as usize & mask]);
        std::hint::black_box(seen);
    }

    /// The slot where `key` (whose hash is `hash`) is, or the empty slot
    /// where it would go.
    fn probe(&self, key: &[u8], hash: u64) -> (usize, Option<u32>) {
        if self.slots.is_empty() {
            return (0, None);
        }
        let tag = hash >> 32;
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return (at, None);
            }
            let id = (slot as u32).wrapping_sub(1);
            if slot >> 32 == tag && self.key(id) == key {
                return (at, Some(id));
            }
            at = (at + 1) & mask;
        }
    }

    /// Places every key again in `size` slots (a power of two).
    fn resize(&mut self, size: usize) {
        let mut slots = vec![0u64; size];
        let mask = size - 1;
        for id in 0..self.len() as u32 {
            let hash = hash_of(self.key(id));
            let mut at = hash as usize & mask;
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = slot_of(hash, id);
        }
        self.slots = slots;
    }
}

/// The slot of key `id` with hash `hash`: never 0.
fn slot_of(hash: u64, id: u32) -> u64 {
    (hash >> 32 << 32) | u64::from(id + 1)
}

/// A fast hash of a short byte string (a multiply-and-mix over 8-byte
/// words, finished so that every bit of the key reaches the low bits).
pub fn hash_of(key: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash = key.len() as u64;
    let mut words = key.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        hash = (hash.rotate_left(23) ^ word).wrapping_mul(K);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        hash = (hash.rotate_left(23) ^ u64::from_le_bytes(last)).wrapping_mul(K);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// How many keys are hashed and their slots read together.
const BATCH: usize = 32;

/// Every assigned subject: its variant, its earliest assignment (UTC
/// microseconds) and whether it was assigned to two different variants.
#[derive(Debug, Default)]
pub struct AssignmentTable {
    subjects: SubjectIndex,
    variants: Vec<String>,
    variant_of: Vec<u32>,
    several: Vec<bool>,
    assigned_at: Vec<i64>,
}

impl AssignmentTable {
    /// An empty table with room for about `subjects` subjects whose names
    /// take `subject_bytes` bytes in all.
    pub fn with_capacity(subjects: usize, subject_bytes: usize) -> AssignmentTable {
        AssignmentTable {
            subjects: SubjectIndex::with_capacity(subjects, subject_bytes),
            variants: Vec::new(),
            variant_of: Vec::with_capacity(subjects),
            several: Vec::with_capacity(subjects),
            assigned_at: Vec::with_capacity(subjects),
        }
    }

    /// Adds assignment rows `(subject, variant, assigned_at)`.
    pub fn add_all(&mut self, rows: &[(&[u8], &str, i64)]) {
        for batch in rows.chunks(BATCH) {
            let mut hashes = [0u64; BATCH];
            for (hash, (subject, _, _)) in hashes.iter_mut().zip(batch) {
                *hash = hash_of(subject);
            }
            self.subjects.warm(&hashes[..batch.len()]);
            for (hash, (subject, variant, assigned_at)) in hashes.iter().zip(batch) {
                self.add_hashed(subject, *hash, variant, *assigned_at);
            }
        }
    }

    /// Adds one assignment row.
    pub fn add(&mut self, subject: &[u8], variant: &str, assigned_at: i64) {
        self.add_hashed(subject, hash_of(subject), variant, assigned_at);
    }

    fn add_hashed(&mut self, subject: &[u8], hash: u64, variant: &str, assigned_at: i64) {
        let variant = self.variant_number(variant);
        let (id, new) = self.subjects.insert_hashed(subject, hash);
        if new {
            self.variant_of.push(variant);
            self.several.push(false);
            self.assigned_at.push(assigned_at);
            return;
        }
        let id = id as usize;
        if self.variant_of[id] != variant {
            self.several[id] = true;
        }
        self.assigned_at[id] = self.assigned_at[id].min(assigned_at);
    }

    fn variant_number(&mut self, variant: &str) -> u32 {
        match self.variants.iter().position(|v| v == variant) {
            Some(at) => at as u32,
            None => {
                self.variants.push(variant.to_owned());
                (self.variants.len() - 1) as u32
            }
        }
    }

    /// How many distinct subjects were assigned.
    pub fn subjects(&self) -> usize {
        self.subjects.len()
    }

    /// The number of an assigned subject.
    pub fn find(&self, subject: &[u8]) -> Option<u32> {
        self.subjects.find(subject)
    }
}

/// When an event counts: at or after the assignment and, with a window,
/// before its end.
#[derive(Debug, Clone, Copy)]
pub struct Attribution {
    /// The window's length in microseconds, as the Polars pipeline rounds it.
    window_micros: Option<i64>,
}

impl Attribution {
    /// The rule for an attribution window of `window_hours` (none: no end).
    pub fn new(window_hours: Option<f64>) -> Attribution {
        Attribution {
            window_micros: window_hours.map(|hours| (hours * 3_600_000_000.0).round() as i64),
        }
    }

    fn counts(&self, assigned_at: i64, occurred_at: i64) -> bool {
        occurred_at >= assigned_at
            && self
                .window_micros
                .is_none_or(|window| occurred_at < assigned_at.wrapping_add(window))
    }
}

/// The metric's outcome per assigned subject, from the events that count
/// (whether it has one, or the sum of their values); and how many events
/// belong to no assigned subject.
#[derive(Debug, Clone)]
pub struct EventTally {
    outcome: Outcome,
    /// One bit per subject: whether an event counts (the binary outcome).
    counted: Vec<u64>,
    /// The sum of the values of the events that count (the sum outcome).
    totals: Vec<f64>,
    unknown_subject_events: u64,
}

impl EventTally {
    /// An empty tally of `outcome` for the subjects of `table`. It keeps only
    /// what the outcome needs: one bit per subject for a binary outcome,
    /// small enough to stay in the caches.
    pub fn new(table: &AssignmentTable, outcome: Outcome) -> EventTally {
        let subjects = table.subjects();
        let (bits, totals) = match outcome {
            Outcome::Binary => (subjects.div_ceil(64), 0),
            Outcome::Sum => (0, subjects),
        };
        EventTally {
            outcome,
            counted: vec![0; bits],
            totals: vec![0.0; totals],
            unknown_subject_events: 0,
        }
    }

    /// The outcome of subject `id`.
    fn outcome_of(&self, id: usize) -> f64 {
        match self.outcome {
            Outcome::Binary => f64::from(u8::from(self.counted[id / 64] >> (id % 64) & 1 == 1)),
            Outcome::Sum => self.totals[id],
        }
    }

    /// Counts events of the metric `(subject, value, occurred_at)` (`value`
    /// 0 when it had none).
    pub fn add_all(
        &mut self,
        table: &AssignmentTable,
        rule: Attribution,
        events: impl Iterator<Item = (impl AsRef<[u8]>, f64, i64)>,
    ) {
        let mut events = events.peekable();
        while events.peek().is_some() {
            let batch: Vec<_> = events.by_ref().take(BATCH).collect();
            let mut hashes = [0u64; BATCH];
            for (hash, (subject, _, _)) in hashes.iter_mut().zip(&batch) {
                *hash = hash_of(subject.as_ref());
            }
            table.subjects.warm(&hashes[..batch.len()]);
            for (hash, (subject, value, occurred_at)) in hashes.iter().zip(&batch) {
                self.add_hashed(table, rule, subject.as_ref(), *hash, *value, *occurred_at);
            }
        }
    }

    /// Counts one event of the metric (`value` 0 when it had none).
    pub fn add(
        &mut self,
        table: &AssignmentTable,
        rule: Attribution,
        subject: &[u8],
        value: f64,
        occurred_at: i64,
    ) {
        self.add_hashed(table, rule, subject, hash_of(subject), value, occurred_at);
    }

    fn add_hashed(
        &mut self,
        table: &AssignmentTable,
        rule: Attribution,
        subject: &[u8],
        hash: u64,
        value: f64,
        occurred_at: i64,
    ) {
        let Some(id) = table.subjects.find_hashed(subject, hash) else {
            self.unknown_subject_events += 1;
            return;
        };
        let id = id as usize;
        if !table.several[id] && rule.counts(table.assigned_at[id], occurred_at) {
            match self.outcome {
                Outcome::Binary => self.counted[id / 64] |= 1 << (id % 64),
                Outcome::Sum => self.totals[id] += value,
            }
        }
    }

    /// Adds the counts of another tally of the same table and outcome.
    pub fn merge(&mut self, other: &EventTally) {
        for (mine, theirs) in self.counted.iter_mut().zip(&other.counted) {
            *mine |= theirs;
        }
        for (mine, theirs) in self.totals.iter_mut().zip(&other.totals) {
            *mine += theirs;
        }
        self.unknown_subject_events += other.unknown_subject_events;
    }
}

/// The pre-period covariate per assigned subject (0 for those without one).
#[derive(Debug, Clone)]
pub struct CovariateTally {
    values: Vec<f64>,
}

impl CovariateTally {
    /// An empty covariate for the subjects of `table`.
    pub fn new(table: &AssignmentTable) -> CovariateTally {
        CovariateTally {
            values: vec![0.0; table.subjects()],
        }
    }

    /// Adds one covariate row (`value` 0 when it had none); subjects that were
    /// not assigned are ignored.
    pub fn add(&mut self, table: &AssignmentTable, subject: &[u8], value: f64) {
        if let Some(id) = table.find(subject) {
            self.values[id as usize] += value;
        }
    }
}

/// The per-variant sums of `table`'s subjects assigned to one variant, their
/// outcomes from `events`, and the covariate when there is one; variants in
/// name order, as the Polars pipeline sorts them.
pub fn aggregates(
    table: &AssignmentTable,
    events: &EventTally,
    covariate: Option<&CovariateTally>,
) -> Aggregates {
    let mut sums: Vec<VariantSums> = table
        .variants
        .iter()
        .map(|v| VariantSums::empty(v))
        .collect();
    let mut multiple_variant_subjects = 0;
    for id in 0..table.subjects() {
        if table.several[id] {
            multiple_variant_subjects += 1;
            continue;
        }
        let y = events.outcome_of(id);
        let x = covariate.map_or(0.0, |c| c.values[id]);
        let s = &mut sums[table.variant_of[id] as usize];
        s.users += 1;
        s.sum += y;
        s.sum_squares += y * y;
        s.x_sum += x;
        s.x_sum_squares += x * x;
        s.xy_sum += x * y;
    }
    // A variant whose only subjects were in two variants has no row.
    sums.retain(|s| s.users > 0);
    sums.sort_by(|a, b| a.variant.cmp(&b.variant));
    Aggregates {
        variants: sums,
        unknown_subject_events: events.unknown_subject_events,
        multiple_variant_subjects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_numbers_as_the_table_grows() {
        let mut index = SubjectIndex::default();
        for i in 0..100_000u32 {
            assert_eq!(index.insert(format!("u{i}").as_bytes()), (i, true));
        }
        assert_eq!(index.insert(b"u77"), (77, false));
        assert_eq!(index.insert(b""), (100_000, true));
        for i in (0..100_000u32).step_by(997) {
            assert_eq!(index.find(format!("u{i}").as_bytes()), Some(i));
            assert_eq!(index.key(i), format!("u{i}").as_bytes());
        }
        assert_eq!(index.find(b"u100000"), None);
        assert_eq!(index.find(b""), Some(100_000));
    }

    #[test]
    fn a_subject_in_two_variants_is_counted_and_its_events_are_not() {
        let mut table = AssignmentTable::default();
        table.add(b"s1", "control", 10);
        table.add(b"s2", "control", 10);
        table.add(b"s2", "v1", 20);
        table.add(b"s3", "v1", 30);
        table.add(b"s3", "v1", 5);
        let rule = Attribution::new(None);
        let mut events = EventTally::new(&table, Outcome::Sum);
        events.add(&table, rule, b"s2", 1.0, 50);
        events.add(&table, rule, b"s3", 2.5, 6);
        events.add(&table, rule, b"s3", 1.0, 4);
        events.add(&table, rule, b"s9", 1.0, 50);
        let got = aggregates(&table, &events, None);
        assert_eq!(got.multiple_variant_subjects, 1);
        assert_eq!(got.unknown_subject_events, 1);
        assert_eq!(
            got.variants,
            [
                VariantSums::plain("control", 1, 0.0, 0.0),
                VariantSums::plain("v1", 1, 2.5, 6.25)
            ]
        );
    }

    #[test]
    fn the_window_ends_before_its_last_microsecond() {
        let rule = Attribution::new(Some(1.0));
        assert!(rule.counts(0, 0));
        assert!(rule.counts(0, 3_599_999_999));
        assert!(!rule.counts(0, 3_600_000_000));
        assert!(!rule.counts(0, -1));
    }
}
