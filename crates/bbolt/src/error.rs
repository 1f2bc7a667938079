//! The one error of this crate: where in the file the problem is, and what it is.
//!
//! Invariant: a reason says what was found, what was expected, and (where there is one) what to do;
//! keys and bucket names in it are rendered printable and cut to a bounded length, so an error
//! about hostile bytes stays small.

use std::fmt;

/// Why a file was refused: the byte offset in the file where the problem is, and what it is.
/// Display: "offset {offset}: {reason}". For [`crate::write()`]'s refusals of its input the offset is
/// 0 and the reason names the bucket and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoltError {
    pub offset: u64,
    pub reason: String,
}

impl BoltError {
    pub(crate) fn at(offset: u64, reason: impl Into<String>) -> BoltError {
        BoltError { offset, reason: reason.into() }
    }
}

impl fmt::Display for BoltError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "offset {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for BoltError {}

/// The most bytes of a key or bucket name an error message shows.
const SHOWN_BYTES_MAX: usize = 64;

/// `bytes` as a quoted, escaped string (printable ASCII as is, anything else as `\xNN`), cut after
/// [`SHOWN_BYTES_MAX`] bytes with the full length noted: for naming keys and buckets in errors.
pub fn show(bytes: &[u8]) -> String {
    let mut shown = String::from("\"");
    for &byte in bytes.iter().take(SHOWN_BYTES_MAX) {
        match byte {
            b'"' | b'\\' => {
                shown.push('\\');
                shown.push(char::from(byte));
            }
            0x20..=0x7E => shown.push(char::from(byte)),
            _ => shown.push_str(&format!("\\x{byte:02x}")),
        }
    }
    shown.push('"');
    if bytes.len() > SHOWN_BYTES_MAX {
        shown.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_the_offset_first() {
        assert_eq!(BoltError::at(4096, "bad page").to_string(), "offset 4096: bad page");
    }

    #[test]
    fn keys_are_shown_printable_and_bounded() {
        assert_eq!(show(b"key"), "\"key\"");
        assert_eq!(show(b"a\"b\\c\x00\xff"), "\"a\\\"b\\\\c\\x00\\xff\"");
        let long = vec![b'x'; 1000];
        let shown = show(&long);
        assert!(shown.ends_with("… (1000 bytes)"), "{shown}");
        assert!(shown.len() < 100, "{shown}");
    }
}
