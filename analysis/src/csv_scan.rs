//! A byte-level reader of the CSV files of `pilotgate analyze`: it reads only
//! the columns the analysis needs, parses only the rows of the metric's
//! events (found with a substring search, not row by row), splits the files
//! across the cores at line boundaries, and aggregates per subject directly
//! ([`crate::tally`]) instead of building frames.
//!
//! It is conservative: whatever it cannot judge byte by byte — a quote or a
//! byte-order mark anywhere, a value that is not in the plain form pilotgate
//! writes (`2026-01-08T20:50:59Z`, `12.5`), an empty or damaged row, a row
//! with a different number of fields than the header — makes it give up, and
//! the Polars pipeline reads the files instead. So it never reports an
//! error: the Polars pipeline names the file, row and column of bad input,
//! and results on files both can read are the same
//! (`tests/reader_equivalence.rs`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use memchr::memmem;

use crate::pipeline::{Aggregates, Outcome, PipelineSpec};
use crate::tally::{self, AssignmentTable, Attribution, CovariateTally, EventTally};

/// How much of a file one task reads: small enough to share the events
/// file out evenly across the cores, large enough to be read at full speed.
const CHUNK: u64 = 4 << 20;

/// The longest header line read.
const MAX_HEADER: usize = 1 << 20;

/// The analysis of `spec` when every file is CSV that this reader can judge
/// (see the module documentation); `None` sends the files to the Polars
/// pipeline instead.
pub fn aggregate_csv(spec: &PipelineSpec<'_>) -> Option<Aggregates> {
    aggregate_csv_in_chunks(spec, CHUNK)
}

/// [`aggregate_csv`] with tasks of `chunk` bytes (tests use tiny ones).
pub fn aggregate_csv_in_chunks(spec: &PipelineSpec<'_>, chunk: u64) -> Option<Aggregates> {
    let metric = spec.metric.as_bytes();
    if metric.is_empty() || metric.iter().any(|b| b"\",\r\n".contains(b)) {
        return None;
    }
    let assignments = Layout::of(spec.assignments, &["subject", "variant", "assigned_at"])?;
    let events = Layout::of(spec.events, &["subject", "event", "value", "occurred_at"])?;
    let covariate = match spec.covariate {
        Some(path) => Some(Layout::of(path, &["subject", "value"])?),
        None => None,
    };
    let job = Job {
        assignments: ChunkedFile::new(spec.assignments, &assignments, chunk),
        events: ChunkedFile::new(spec.events, &events, chunk),
        covariate: covariate
            .as_ref()
            .zip(spec.covariate)
            .map(|(layout, path)| (ChunkedFile::new(path, layout, chunk), layout)),
        assignments_layout: &assignments,
        events_layout: &events,
        metric: memmem::Finder::new(metric),
        rule: Attribution::new(spec.window_hours),
        outcome: spec.outcome,
        next_events_chunk: AtomicUsize::new(0),
        table: OnceLock::new(),
        gave_up: AtomicBool::new(false),
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(16));
    let (table_part, other_parts) = std::thread::scope(|scope| {
        let others: Vec<_> = (1..workers)
            .map(|_| scope.spawn(|| job.count_events()))
            .collect();
        let first = job.build_table_then_count_events();
        let others: Vec<_> = others
            .into_iter()
            .map(|worker| worker.join().expect("a CSV worker panicked"))
            .collect();
        (first, others)
    });
    if job.gave_up.load(Ordering::Relaxed) {
        return None;
    }
    let (covariate, mut events) = table_part?;
    let table = job.table.get()?;
    for part in other_parts {
        events.absorb(table, job.rule, job.outcome, part?);
    }
    Some(tally::aggregates(
        table,
        &events.tally(table, job.rule, job.outcome),
        covariate.as_ref(),
    ))
}

/// Where the needed columns are in a file, from its header line.
#[derive(Debug)]
struct Layout {
    /// How many fields every row has.
    fields: usize,
    /// The position of each needed column, in the order asked for.
    positions: Vec<usize>,
    /// Where the first data row begins.
    data_start: u64,
    /// The file's length.
    len: u64,
}

impl Layout {
    /// The layout of the CSV file at `path` with the columns `needed`, when
    /// its header is plain (no quote, no byte-order mark, each needed name
    /// once).
    fn of(path: &Path, needed: &[&str]) -> Option<Layout> {
        let mut file = File::open(path).ok()?;
        let len = file.metadata().ok()?.len();
        let mut head = Vec::new();
        (&mut file)
            .take(MAX_HEADER as u64)
            .read_to_end(&mut head)
            .ok()?;
        let (line, data_start) = match memchr::memchr(b'\n', &head) {
            Some(end) => (&head[..end], end as u64 + 1),
            None if head.len() as u64 == len => (&head[..], len),
            None => return None,
        };
        let line = trim_cr(line);
        if line.is_empty() || line.starts_with(&[0xEF, 0xBB, 0xBF]) || !is_plain(line) {
            return None;
        }
        let names: Vec<&[u8]> = line.split(|b| *b == b',').collect();
        let positions = needed
            .iter()
            .map(|name| {
                let mut at = names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n == name.as_bytes());
                match (at.next(), at.next()) {
                    (Some((position, _)), None) => Some(position),
                    _ => None,
                }
            })
            .collect::<Option<Vec<usize>>>()?;
        Some(Layout {
            fields: names.len(),
            positions,
            data_start,
            len,
        })
    }

    /// The needed fields of `line` (in the order asked for), when it has
    /// exactly the header's number of fields.
    fn pick<'a, const N: usize>(&self, line: &'a [u8]) -> Option<[&'a [u8]; N]> {
        let mut picked: [&[u8]; N] = [&[]; N];
        let mut start = 0;
        let mut field = 0;
        let mut ends = memchr::memchr_iter(b',', line).chain(std::iter::once(line.len()));
        for end in &mut ends {
            if let Some(slot) = self.positions.iter().position(|p| *p == field) {
                picked[slot] = &line[start..end];
            }
            field += 1;
            start = end + 1;
        }
        (field == self.fields).then_some(picked)
    }
}

/// A line without quotes, stray carriage returns or bytes that are not UTF-8.
fn is_plain(line: &[u8]) -> bool {
    memchr::memchr2(b'"', b'\r', line).is_none()
        && (line.is_ascii() || std::str::from_utf8(line).is_ok())
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The data rows of a file, cut into tasks of about `chunk` bytes at line
/// boundaries: task `k` owns the lines that begin in its byte range.
#[derive(Debug, Clone)]
struct ChunkedFile<'a> {
    path: &'a Path,
    data_start: u64,
    len: u64,
    chunk: u64,
}

impl<'a> ChunkedFile<'a> {
    fn new(path: &'a Path, layout: &Layout, chunk: u64) -> ChunkedFile<'a> {
        ChunkedFile {
            path,
            data_start: layout.data_start,
            len: layout.len,
            chunk: chunk.max(1),
        }
    }

    fn tasks(&self) -> usize {
        (self.data_len() as u64).div_ceil(self.chunk) as usize
    }

    /// How many bytes the data rows take.
    fn data_len(&self) -> usize {
        (self.len - self.data_start) as usize
    }

    /// Reads task `task` into `buffer`; returns the range of `buffer` that
    /// holds the lines it owns (with their line ends).
    fn read(&self, file: &mut File, task: usize, buffer: &mut Vec<u8>) -> io::Result<Range<usize>> {
        let start = self.data_start + task as u64 * self.chunk;
        let end = (start + self.chunk).min(self.len);
        // From the byte before the range (the header's line end for the
        // first task), to know whether a line begins at its first byte.
        let from = start - 1;
        buffer.clear();
        file.seek(SeekFrom::Start(from))?;
        (&mut *file).take(end - from).read_to_end(buffer)?;
        let first = memchr::memchr(b'\n', buffer).map_or(buffer.len(), |at| at + 1);
        let owned_end = (end - from) as usize;
        if first >= owned_end {
            // No line begins in this range.
            return Ok(buffer.len()..buffer.len());
        }
        // The last line goes on to its end, beyond the range.
        while buffer.last() != Some(&b'\n') {
            let before = buffer.len();
            (&mut *file).take(64 << 10).read_to_end(buffer)?;
            if buffer.len() == before {
                break;
            }
            if let Some(at) = memchr::memchr(b'\n', &buffer[before..]) {
                buffer.truncate(before + at + 1);
                break;
            }
        }
        Ok(first..buffer.len())
    }
}

/// The work shared by the threads.
struct Job<'a> {
    assignments: ChunkedFile<'a>,
    events: ChunkedFile<'a>,
    covariate: Option<(ChunkedFile<'a>, &'a Layout)>,
    assignments_layout: &'a Layout,
    events_layout: &'a Layout,
    metric: memmem::Finder<'a>,
    rule: Attribution,
    outcome: Outcome,
    next_events_chunk: AtomicUsize,
    /// The assignments, once read; events found before are kept aside.
    table: OnceLock<AssignmentTable>,
    /// Set by the first thread that meets something it cannot judge.
    gave_up: AtomicBool,
}

impl Job<'_> {
    /// Reads the assignments (and the covariate), then helps with the events.
    fn build_table_then_count_events(&self) -> Option<(Option<CovariateTally>, EventPart)> {
        let table = self.read_assignments();
        let Some(table) = table else {
            self.gave_up.store(true, Ordering::Relaxed);
            return None;
        };
        let table = self.table.get_or_init(|| table);
        let covariate = match &self.covariate {
            Some((file, layout)) => match read_covariate(file, layout, table) {
                Some(covariate) => Some(covariate),
                None => {
                    self.gave_up.store(true, Ordering::Relaxed);
                    return None;
                }
            },
            None => None,
        };
        Some((covariate, self.count_events()?))
    }

    fn read_assignments(&self) -> Option<AssignmentTable> {
        let layout = self.assignments_layout;
        let mut table = AssignmentTable::default();
        let mut file = File::open(self.assignments.path).ok()?;
        let mut buffer = Vec::new();
        for task in 0..self.assignments.tasks() {
            if self.gave_up.load(Ordering::Relaxed) {
                return None;
            }
            let owned = self.assignments.read(&mut file, task, &mut buffer).ok()?;
            if task == 0 {
                // Room for the whole file's subjects, judged by the first
                // task's rows, so that the table is not grown and copied.
                let rows = memchr::memchr_iter(b'\n', &buffer[owned.clone()]).count() + 1;
                let per_row = owned.len() / rows + 1;
                let expected = self.assignments.data_len() / per_row + 1;
                table = AssignmentTable::with_capacity(expected, expected * per_row / 2);
            }
            let mut rows = Vec::new();
            for line in lines(&buffer[owned]) {
                let [subject, variant, assigned_at] = plain_row(layout, line)?;
                if subject.is_empty() || variant.is_empty() {
                    return None;
                }
                let variant = std::str::from_utf8(variant).ok()?;
                rows.push((subject, variant, parse_time(assigned_at)?));
            }
            table.add_all(&rows);
        }
        Some(table)
    }

    /// Takes tasks of the events file until there are none left.
    fn count_events(&self) -> Option<EventPart> {
        let mut part = EventPart::default();
        let mut file = File::open(self.events.path).ok()?;
        let mut buffer = Vec::new();
        loop {
            let task = self.next_events_chunk.fetch_add(1, Ordering::Relaxed);
            if task >= self.events.tasks() || self.gave_up.load(Ordering::Relaxed) {
                return Some(part);
            }
            let found = self
                .events
                .read(&mut file, task, &mut buffer)
                .ok()
                .and_then(|owned| self.metric_events(&buffer[owned]));
            let Some(found) = found else {
                self.gave_up.store(true, Ordering::Relaxed);
                return None;
            };
            match self.table.get() {
                Some(table) => {
                    found.count_into(part.tally_mut(table, self.outcome), table, self.rule)
                }
                None => part.pending.push(found),
            }
        }
    }

    /// The metric's events among `lines`, or `None` when one cannot be judged.
    /// Rows of other events are not parsed (as [`crate::prefilter`] skips them).
    fn metric_events(&self, lines: &[u8]) -> Option<Found> {
        if memchr::memchr(b'"', lines).is_some() {
            return None;
        }
        let layout = self.events_layout;
        let event = layout.positions[1];
        let metric = self.metric.needle();
        let mut found = Found::default();
        let mut from = 0;
        while let Some(at) = self.metric.find(&lines[from..]) {
            let at = from + at;
            let start = memchr::memrchr(b'\n', &lines[from..at]).map_or(from, |p| from + p + 1);
            let end = memchr::memchr(b'\n', &lines[at..]).map_or(lines.len(), |p| at + p);
            let line = trim_cr(&lines[start..end]);
            if field(line, event) == Some(metric) {
                let [subject, _, value, occurred_at] = plain_row(layout, line)?;
                if subject.is_empty() {
                    return None;
                }
                let value = if value.is_empty() {
                    0.0
                } else {
                    parse_number(value)?
                };
                found.push(subject, value, parse_time(occurred_at)?);
            }
            from = end + 1;
            if from >= lines.len() {
                break;
            }
        }
        Some(found)
    }
}

/// The fields of a data row when it is plain and has the header's number of fields.
fn plain_row<'a, const N: usize>(layout: &Layout, line: &'a [u8]) -> Option<[&'a [u8]; N]> {
    if !is_plain(line) {
        return None;
    }
    layout.pick(line)
}

/// Field `index` of a line without quotes.
fn field(line: &[u8], index: usize) -> Option<&[u8]> {
    let mut start = 0;
    for _ in 0..index {
        start += memchr::memchr(b',', &line[start..])? + 1;
    }
    let end = memchr::memchr(b',', &line[start..]).map_or(line.len(), |at| start + at);
    Some(&line[start..end])
}

/// The lines of `text` (whole lines, each ended by a line end but perhaps
/// the last) without their line ends.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (text, any) = match text.strip_suffix(b"\n") {
        Some(ended) => (ended, true),
        None => (text, !text.is_empty()),
    };
    text.split(|b| *b == b'\n')
        .map(trim_cr)
        .take(if any { usize::MAX } else { 0 })
}

fn read_covariate(
    file: &ChunkedFile<'_>,
    layout: &Layout,
    table: &AssignmentTable,
) -> Option<CovariateTally> {
    let mut covariate = CovariateTally::new(table);
    let mut handle = File::open(file.path).ok()?;
    let mut buffer = Vec::new();
    for task in 0..file.tasks() {
        let owned = file.read(&mut handle, task, &mut buffer).ok()?;
        for line in lines(&buffer[owned]) {
            let [subject, value] = plain_row(layout, line)?;
            if subject.is_empty() {
                return None;
            }
            let value = if value.is_empty() {
                0.0
            } else {
                parse_number(value)?
            };
            covariate.add(table, subject, value);
        }
    }
    Some(covariate)
}

/// Events of the metric found in one task: subject, value, time.
#[derive(Debug, Default)]
struct Found {
    subjects: Vec<u8>,
    ends: Vec<usize>,
    values: Vec<f64>,
    times: Vec<i64>,
}

impl Found {
    fn push(&mut self, subject: &[u8], value: f64, time: i64) {
        self.subjects.extend_from_slice(subject);
        self.ends.push(self.subjects.len());
        self.values.push(value);
        self.times.push(time);
    }

    /// Counts these events into `tally`.
    fn count_into(&self, tally: &mut EventTally, table: &AssignmentTable, rule: Attribution) {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        let subjects = starts
            .zip(&self.ends)
            .map(|(start, end)| &self.subjects[start..*end]);
        let events = subjects.zip(&self.values).zip(&self.times);
        tally.add_all(
            table,
            rule,
            events.map(|((subject, value), time)| (subject, *value, *time)),
        );
    }
}

/// What one thread counted: a tally once the assignments were known, and
/// the events it found before.
#[derive(Debug, Default)]
struct EventPart {
    tally: Option<EventTally>,
    pending: Vec<Found>,
}

impl EventPart {
    fn tally_mut(&mut self, table: &AssignmentTable, outcome: Outcome) -> &mut EventTally {
        self.tally
            .get_or_insert_with(|| EventTally::new(table, outcome))
    }

    /// Takes in another thread's counts.
    fn absorb(
        &mut self,
        table: &AssignmentTable,
        rule: Attribution,
        outcome: Outcome,
        other: EventPart,
    ) {
        if let Some(theirs) = &other.tally {
            self.tally_mut(table, outcome).merge(theirs);
        }
        for found in &other.pending {
            found.count_into(self.tally_mut(table, outcome), table, rule);
        }
    }

    /// The whole tally, with the events kept aside counted.
    fn tally(mut self, table: &AssignmentTable, rule: Attribution, outcome: Outcome) -> EventTally {
        let mut tally = self
            .tally
            .take()
            .unwrap_or_else(|| EventTally::new(table, outcome));
        for found in &self.pending {
            found.count_into(&mut tally, table, rule);
        }
        tally
    }
}

/// A number in the plain form `-12.5` (digits, an optional fraction and an
/// optional exponent), as Polars reads it; `None` for any other form.
pub fn parse_number(text: &[u8]) -> Option<f64> {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut at = usize::from(text.first() == Some(&b'-'));
    let whole = digits(&text[at..]);
    if whole == 0 {
        return None;
    }
    at += whole;
    if text.get(at) == Some(&b'.') {
        let fraction = digits(&text[at + 1..]);
        if fraction == 0 {
            return None;
        }
        at += 1 + fraction;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'-' | b'+')) {
            at += 1;
        }
        let exponent = digits(&text[at..]);
        if exponent == 0 {
            return None;
        }
        at += exponent;
    }
    if at != text.len() {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// UTC microseconds of an RFC 3339 time in the form
/// `2026-01-08T20:50:59[.fraction](Z|+hh:mm|-hh:mm)`, rounded down to the
/// microsecond as Polars stores it; `None` for any other form (Polars' parser
/// accepts more, and is left to judge those) and for impossible dates.
pub fn parse_time(text: &[u8]) -> Option<i64> {
    if text.len() < 20 {
        return None;
    }
    let number = |range: Range<usize>| -> Option<i64> {
        text[range].iter().try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|(at, byte)| text[*at] != *byte) {
        return None;
    }
    let year = number(0..4)?;
    let month = number(5..7)?;
    let day = number(8..10)?;
    let hour = number(11..13)?;
    let minute = number(14..16)?;
    let second = number(17..19)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut at = 19;
    let mut micros = 0;
    if text[at] == b'.' {
        let digits = text[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        let fraction = &text[at + 1..at + 1 + digits];
        micros = fraction
            .iter()
            .take(6)
            .fold(0i64, |n, b| n * 10 + i64::from(b - b'0'))
            * 10i64.pow(6u32.saturating_sub(digits as u32));
        at += 1 + digits;
    }
    let offset_seconds = match &text[at..] {
        b"Z" => 0,
        zone if zone.len() == 6 && matches!(zone[0], b'+' | b'-') && zone[3] == b':' => {
            let hours = number(at + 1..at + 3)?;
            let minutes = number(at + 4..at + 6)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if zone[0] == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    Some(seconds * 1_000_000 + micros)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_plain_form_are_read_to_the_microsecond() {
        let cases: [(&str, i64); 8] = [
            ("1970-01-01T00:00:00Z", 0),
            ("2026-01-08T20:50:59Z", 1_767_905_459_000_000),
            ("2026-01-02T10:00:00+02:00", 1_767_340_800_000_000),
            ("1969-12-31T23:59:59.5Z", -500_000),
            ("2024-02-29T00:00:00.123456789-01:30", 1_709_170_200_123_456),
            ("2000-03-01T00:00:00.1Z", 951_868_800_100_000),
            ("0000-01-01T00:00:00Z", -62_167_219_200_000_000),
            ("9999-12-31T23:59:59Z", 253_402_300_799_000_000),
        ];
        for (text, micros) in cases {
            assert_eq!(parse_time(text.as_bytes()), Some(micros), "{text}");
        }
    }

    #[test]
    fn times_in_other_forms_are_left_to_polars() {
        for text in [
            "2026-01-08 20:50:59Z",
            "2026-01-08T20:50:59z",
            "2026-01-08T20:50:59",
            "2026-01-08T20:50:59+0200",
            "2026-01-08T20:50:59+25:00",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-01-08T24:00:00Z",
            "2026-01-08T23:59:60Z",
            "2026-01-08T20:50:59.Z",
            "2026-01-08T20:50:59.1234567891Z",
            " 2026-01-08T20:50:59Z",
            "2026-1-08T20:50:59Z",
        ] {
            assert_eq!(parse_time(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn numbers_in_the_plain_form_are_read_and_others_left_to_polars() {
        for (text, value) in [
            ("0", 0.0),
            ("-12.5", -12.5),
            ("1e3", 1000.0),
            ("2.5E-1", 0.25),
        ] {
            assert_eq!(parse_number(text.as_bytes()), Some(value), "{text}");
        }
        for text in [
            "", "-", "1.", ".5", "+1", "1e", "NaN", "inf", " 1", "1,5", "0x10",
        ] {
            assert_eq!(parse_number(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn a_header_names_each_needed_column_once() {
        let dir = tempfile::tempdir().unwrap();
        let layout = |text: &str| {
            let path = dir.path().join("f.csv");
            std::fs::write(&path, text).unwrap();
            Layout::of(&path, &["subject", "value"]).map(|l| (l.fields, l.positions, l.data_start))
        };
        assert_eq!(
            layout("x,value,subject\r\n1,2,a\n"),
            Some((3, vec![2, 1], 17))
        );
        assert_eq!(layout("subject,value"), Some((2, vec![0, 1], 13)));
        assert_eq!(layout("subject,value,value\n"), None);
        assert_eq!(layout("subject,\"value\"\n"), None);
        assert_eq!(layout("\u{feff}subject,value\n"), None);
        assert_eq!(layout("subject\n"), None);
        assert_eq!(layout(""), None);
    }

    #[test]
    fn tasks_own_every_line_once_whatever_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        let text = "h\nline-one\n\nl3\nline-number-four\n5";
        std::fs::write(&path, text).unwrap();
        let layout = Layout::of(&path, &["h"]).unwrap();
        for chunk in 1..=40 {
            let file = ChunkedFile::new(&path, &layout, chunk);
            let mut handle = File::open(&path).unwrap();
            let mut buffer = Vec::new();
            let mut seen = Vec::new();
            for task in 0..file.tasks() {
                let owned = file.read(&mut handle, task, &mut buffer).unwrap();
                seen.extend(lines(&buffer[owned]).map(|l| String::from_utf8(l.to_vec()).unwrap()));
            }
            assert_eq!(
                seen,
                ["line-one", "", "l3", "line-number-four", "5"],
                "chunk {chunk}"
            );
        }
    }
}
