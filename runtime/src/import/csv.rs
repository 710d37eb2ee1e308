//! A streaming RFC 4180 record reader: fields separated by commas, records by CRLF or LF;
//! a field starting with `"` is quoted and may hold commas, line breaks and doubled quotes
//! (`""`). A UTF-8 byte order mark before the first record is skipped. Every record comes
//! with the (1-based) line it starts on, so problems are reported where an editor shows them.
//!
//! Lenient where real exports are sloppy and nothing is ambiguous: a `"` inside an unquoted
//! field is an ordinary character, blank lines are skipped. Strict where guessing would
//! silently corrupt data: text after a closing quote, an unterminated quoted field, and
//! bytes that are not UTF-8 are errors of that record.

use std::io::BufRead;

/// One record: its fields and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line of the record's first character (1-based).
    pub line: u64,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

/// A record that could not be read; reading goes on with the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The line the record starts on.
    pub line: u64,
    /// What is wrong, for people.
    pub message: String,
}

/// Reads records one at a time from a buffered reader.
pub struct Records<R> {
    input: R,
    /// Lines consumed so far.
    lines: u64,
    /// Bytes consumed so far (for progress).
    bytes: u64,
    first: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> Records<R> {
    /// A reader of `input`.
    pub fn new(input: R) -> Records<R> {
        Records {
            input,
            lines: 0,
            bytes: 0,
            first: true,
            buf: Vec::new(),
        }
    }

    /// The bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Reads one physical line (with its terminator) into `self.buf`, appended; false at
    /// the end of the input.
    fn read_line(&mut self) -> std::io::Result<bool> {
        let n = self.input.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(false);
        }
        self.bytes += n as u64;
        self.lines += 1;
        Ok(true)
    }

    /// The next record, a record error, or `None` at the end. An I/O error ends reading.
    pub fn next_record(&mut self) -> std::io::Result<Option<Result<Record, RecordError>>> {
        loop {
            self.buf.clear();
            if !self.read_line()? {
                return Ok(None);
            }
            if self.first {
                self.first = false;
                if self.buf.starts_with(b"\xEF\xBB\xBF") {
                    self.buf.drain(..3);
                }
            }
            let line = self.lines;
            if matches!(self.buf.as_slice(), b"\n" | b"\r\n" | b"\r") {
                continue; // a blank line
            }
            // Read more lines while a quoted field is open.
            while open_quote(&self.buf) {
                if !self.read_line()? {
                    return Ok(Some(Err(RecordError {
                        line,
                        message: "a quoted field is never closed (a `\"` is missing)".into(),
                    })));
                }
            }
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t,
                Err(e) => {
                    return Ok(Some(Err(RecordError {
                        line,
                        message: format!(
                            "the record is not valid UTF-8 (byte {} of the record)",
                            e.valid_up_to() + 1
                        ),
                    })))
                }
            };
            return Ok(Some(
                split_record(text)
                    .map(|fields| Record { line, fields })
                    .map_err(|message| RecordError { line, message }),
            ));
        }
    }
}

/// Whether `bytes` end inside a quoted field (so the record continues on the next line):
/// the state machine of [`split_record`], answering only that.
fn open_quote(bytes: &[u8]) -> bool {
    #[derive(PartialEq)]
    enum S {
        Start,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut s = S::Start;
    for &b in bytes {
        s = match (s, b) {
            (S::Start | S::QuoteInQuoted, b'"') => S::Quoted,
            (S::Start | S::Unquoted | S::QuoteInQuoted, b',') => S::Start,
            (S::Quoted, b'"') => S::QuoteInQuoted,
            (S::Quoted, _) => S::Quoted,
            // After a closing quote anything else is an error `split_record` reports.
            (S::Start | S::Unquoted | S::QuoteInQuoted, _) => S::Unquoted,
        };
    }
    s == S::Quoted
}

/// Splits one whole record (terminator included) into its fields.
fn split_record(text: &str) -> Result<Vec<String>, String> {
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .or_else(|| text.strip_suffix('\r'))
        .unwrap_or(text);
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is never closed (a `\"` is missing)".into()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => {
                    return Err(format!(
                        "field {} has `{c}` after its closing quote (a quote inside a quoted field is written `\"\"`)",
                        fields.len() + 1
                    ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Vec<Result<Record, RecordError>> {
        let mut r = Records::new(text);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec);
        }
        out
    }

    fn ok(line: u64, fields: &[&str]) -> Result<Record, RecordError> {
        Ok(Record {
            line,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        })
    }

    #[test]
    fn quoting_line_breaks_and_bom() {
        let text = "\u{feff}key,name\r\n1,\"Doe, Jane\"\r\n\r\n2,\"two\nlines\"\n3,\"say \"\"hi\"\"\"\n4,\n5,Zoë";
        assert_eq!(
            read(text.as_bytes()),
            vec![
                ok(1, &["key", "name"]),
                ok(2, &["1", "Doe, Jane"]),
                ok(4, &["2", "two\nlines"]),
                ok(6, &["3", "say \"hi\""]),
                ok(7, &["4", ""]),
                ok(8, &["5", "Zoë"]),
            ]
        );
    }

    #[test]
    fn errors_name_their_line_and_reading_goes_on() {
        let text = b"a,b\n1,\"x\"y\n2,\xff\n3,ok\n4,\"never closed\n";
        let got = read(text);
        assert_eq!(got[0], ok(1, &["a", "b"]));
        assert_eq!(got[1].as_ref().unwrap_err().line, 2);
        assert_eq!(got[2].as_ref().unwrap_err().line, 3);
        assert_eq!(got[3], ok(4, &["3", "ok"]));
        assert_eq!(got[4].as_ref().unwrap_err().line, 5);
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn unquoted_quotes_are_literal() {
        assert_eq!(read(b"a 5\" tall,b\n"), vec![ok(1, &["a 5\" tall", "b"])]);
    }
}
