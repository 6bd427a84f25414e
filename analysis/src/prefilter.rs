//! A fast first pass over a large CSV file that keeps only the rows whose
//! column `column` holds exactly `value` — the metric's events among all
//! events, typically a few percent — each prefixed with its row number, so
//! that Polars parses a small file instead of a large one and errors still
//! name the row of the original file.
//!
//! It is conservative: a file it cannot judge byte by byte (a quote anywhere,
//! a byte-order mark, no such column, a column already named like the row
//! column) is left to the full parser, which gives the same answer slower.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::input::ROW;

/// How much of the file is read at a time.
const CHUNK: usize = 16 << 20;

/// From how many bytes a chunk is scanned by two threads.
const PARALLEL_FROM: usize = 1 << 20;

/// The rows of `path` whose column `column` is exactly `value`, as CSV text:
/// a header `__row,<the file's header>`, then each kept line prefixed with
/// its 0-based data row number. `None` when the file must go to the full
/// parser instead (see the module documentation).
pub fn rows_where(path: &Path, column: &str, value: &str) -> io::Result<Option<Vec<u8>>> {
    rows_where_in_chunks(path, column, value, CHUNK)
}

fn rows_where_in_chunks(
    path: &Path,
    column: &str,
    value: &str,
    chunk: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut file = File::open(path)?;
    let mut buffer: Vec<u8> = Vec::with_capacity(chunk + 4096);
    let mut out: Vec<u8> = Vec::new();
    let mut field: Option<usize> = None;
    let mut next_row: u64 = 0;
    let mut at_end = false;
    while !at_end {
        let filled = buffer.len();
        buffer.resize(filled + chunk, 0);
        let read = read_fully(&mut file, &mut buffer[filled..])?;
        buffer.truncate(filled + read);
        at_end = read == 0;
        // The complete lines in the buffer; the rest waits for the next read.
        let complete = if at_end {
            buffer.len()
        } else {
            match memchr::memrchr(b'\n', &buffer) {
                Some(last) => last + 1,
                None => continue,
            }
        };
        if memchr::memchr(b'"', &buffer[..complete]).is_some() {
            return Ok(None);
        }
        let mut start = 0;
        let index = match field {
            Some(index) => index,
            None => {
                let end = memchr::memchr(b'\n', &buffer[..complete]).unwrap_or(complete);
                let header = trim_cr(&buffer[..end]);
                let Some(index) = header_index(header, column) else {
                    return Ok(None);
                };
                out.extend_from_slice(ROW.as_bytes());
                out.push(b',');
                out.extend_from_slice(header);
                out.push(b'\n');
                field = Some(index);
                start = (end + 1).min(complete);
                index
            }
        };
        next_row = keep_matching(
            &buffer[start..complete],
            index,
            value.as_bytes(),
            next_row,
            &mut out,
        );
        buffer.drain(..complete);
    }
    Ok(field.map(|_| out))
}

/// Reads until `into` is full or the file ends; returns how much was read.
fn read_fully(file: &mut File, into: &mut [u8]) -> io::Result<usize> {
    let mut total = 0;
    while total < into.len() {
        match file.read(&mut into[total..]) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The position of `column` in a header without quotes or byte-order mark,
/// and without a column named like the row column.
fn header_index(header: &[u8], column: &str) -> Option<usize> {
    if header.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return None;
    }
    let names: Vec<&[u8]> = header.split(|b| *b == b',').collect();
    if names.iter().any(|name| *name == ROW.as_bytes()) {
        return None;
    }
    names.iter().position(|name| *name == column.as_bytes())
}

/// Appends to `out` every non-empty line of `lines` whose field `index` is
/// `value`, prefixed with its row number (counting from `first_row`); the
/// lines are split over two threads. Returns the row number after the last.
fn keep_matching(
    lines: &[u8],
    index: usize,
    value: &[u8],
    first_row: u64,
    out: &mut Vec<u8>,
) -> u64 {
    let middle = lines.len() / 2;
    let split = memchr::memchr(b'\n', &lines[middle..]).map_or(lines.len(), |at| middle + at + 1);
    let (first, second) = lines.split_at(split);
    let (a, b) = if lines.len() < PARALLEL_FROM {
        (scan(first, index, value), scan(second, index, value))
    } else {
        std::thread::scope(|scope| {
            let second_half = scope.spawn(|| scan(second, index, value));
            let first_half = scan(first, index, value);
            (first_half, second_half.join().expect("the scan thread"))
        })
    };
    let mut row = first_row;
    for (part, half) in [(a, first), (b, second)] {
        for (relative, range) in part.kept {
            let line = &half[range.0..range.1];
            out.extend_from_slice((row + relative).to_string().as_bytes());
            out.push(b',');
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        row += part.rows;
    }
    row
}

/// What one scan found: the kept lines (row within the part, byte range) and
/// how many rows the part holds.
struct Part {
    kept: Vec<(u64, (usize, usize))>,
    rows: u64,
}

fn scan(lines: &[u8], index: usize, value: &[u8]) -> Part {
    let mut kept = Vec::new();
    let mut rows = 0u64;
    let mut start = 0;
    while start < lines.len() {
        let end = memchr::memchr(b'\n', &lines[start..]).map_or(lines.len(), |at| start + at);
        let line = trim_cr(&lines[start..end]);
        if !line.is_empty() {
            if field_of(line, index) == Some(value) {
                kept.push((rows, (start, start + line.len())));
            }
            rows += 1;
        }
        start = end + 1;
    }
    Part { kept, rows }
}

/// Field `index` of a line without quotes.
fn field_of(line: &[u8], index: usize) -> Option<&[u8]> {
    let mut start = 0;
    for _ in 0..index {
        start += memchr::memchr(b',', &line[start..])? + 1;
    }
    let end = memchr::memchr(b',', &line[start..]).map_or(line.len(), |at| start + at);
    Some(&line[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered_in_chunks(text: &str, chunk: usize) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        std::fs::write(&path, text).unwrap();
        rows_where_in_chunks(&path, "event", "purchase", chunk)
            .unwrap()
            .map(|bytes| String::from_utf8(bytes).unwrap())
    }

    fn filtered(text: &str) -> Option<String> {
        filtered_in_chunks(text, CHUNK)
    }

    #[test]
    fn keeps_the_matching_rows_with_their_row_numbers() {
        let text = "subject,event,value,occurred_at\r\n\
                    u1,page_view,0,2026-01-01T00:00:00Z\r\n\
                    u2,purchase,3.5,2026-01-01T00:00:01Z\r\n\
                    u3,purchases,1,2026-01-01T00:00:02Z\r\n\
                    u4,purchase,,2026-01-01T00:00:03Z";
        assert_eq!(
            filtered(text).unwrap(),
            "__row,subject,event,value,occurred_at\n\
             1,u2,purchase,3.5,2026-01-01T00:00:01Z\n\
             3,u4,purchase,,2026-01-01T00:00:03Z\n"
        );
    }

    #[test]
    fn the_event_may_be_the_last_column_and_short_rows_are_kept_out() {
        let text = "subject,occurred_at,event\nu1,t,purchase\nu2\nu3,t,page_view\n";
        assert_eq!(
            filtered(text).unwrap(),
            "__row,subject,occurred_at,event\n0,u1,t,purchase\n"
        );
    }

    #[test]
    fn files_it_cannot_judge_go_to_the_full_parser() {
        assert_eq!(filtered("subject,event\nu1,\"purchase\"\n"), None);
        assert_eq!(filtered("subject,name\nu1,purchase\n"), None);
        assert_eq!(filtered("\u{feff}subject,event\nu1,purchase\n"), None);
        assert_eq!(filtered("__row,subject,event\n1,u1,purchase\n"), None);
    }

    #[test]
    fn rows_are_counted_across_chunks_and_threads() {
        let mut text = String::from("subject,event\n");
        for i in 0..200_000 {
            let event = if i % 1000 == 7 {
                "purchase"
            } else {
                "page_view"
            };
            text.push_str(&format!("user-with-a-long-name-{i},{event}\n"));
        }
        let whole = filtered(&text).unwrap();
        let rows: Vec<&str> = whole.lines().skip(1).collect();
        assert_eq!(rows.len(), 200);
        assert_eq!(rows[0], "7,user-with-a-long-name-7,purchase");
        assert_eq!(rows[199], "199007,user-with-a-long-name-199007,purchase");
        // Chunks far smaller than a line, and of odd sizes, give the same.
        for chunk in [64, 4096, 65_537] {
            assert_eq!(
                filtered_in_chunks(&text, chunk).unwrap(),
                whole,
                "chunk {chunk}"
            );
        }
    }
}
