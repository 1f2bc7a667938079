//! Verification of segment contents at open, as pure functions over a whole file's bytes: which
//! records are valid, where the records end, and whether what follows is a torn tail (cut) or
//! damage in the middle (refuse).
//!
//! Invariants:
//! - A sealed segment (every segment but the last) is valid from its header to its last byte;
//!   anything else is corruption.
//! - In the last segment, bytes after the first invalid frame are a torn tail only if no valid
//!   frame with a plausible index starts anywhere after it. A valid frame there means records the
//!   log once acknowledged follow the damage, so cutting would lose them: that is corruption.
//! - Nothing here modifies a file; the caller repairs only what [`LastSegmentScan`] says is torn.

use crate::format::{
    check_frame, frame_crc, read_u32, read_u64, FrameCheck, FRAME_HEADER_BYTES, HEADER_BYTES,
    RECORD_BYTES_MAX,
};
use crate::log::RecordHandler;

/// Why a segment's records were refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The file is damaged at `offset`.
    Corrupt { offset: u64, reason: String },
    /// The caller's record handler refused record `index`.
    RecordRejected { index: u64, reason: String },
}

/// Reads the valid frames from the header's end on, calling `on_record` for each. Returns the
/// offset where they stop, the next expected index and why they stopped (`None` = clean end).
fn read_frames(
    bytes: &[u8],
    first_index: u64,
    on_record: &mut RecordHandler<'_>,
) -> Result<(usize, u64, Option<String>), ScanError> {
    let mut offset = HEADER_BYTES as usize;
    let mut expected_index = first_index;
    loop {
        match check_frame(bytes, offset, expected_index) {
            FrameCheck::Valid {
                payload_start,
                next_offset,
            } => {
                on_record(expected_index, &bytes[payload_start..next_offset]).map_err(
                    |reason| ScanError::RecordRejected {
                        index: expected_index,
                        reason,
                    },
                )?;
                expected_index += 1;
                offset = next_offset;
            }
            FrameCheck::End => return Ok((offset, expected_index, None)),
            FrameCheck::Invalid { reason } => return Ok((offset, expected_index, Some(reason))),
        }
    }
}

/// Verifies a sealed segment; returns the index after its last record.
pub(crate) fn scan_sealed_segment(
    bytes: &[u8],
    first_index: u64,
    on_record: &mut RecordHandler<'_>,
) -> Result<u64, ScanError> {
    let (records_end, next_index, stop_reason) = read_frames(bytes, first_index, on_record)?;
    if records_end == bytes.len() {
        return Ok(next_index);
    }
    let reason = stop_reason.unwrap_or_else(|| "zero bytes where a frame should be: a sealed segment ends exactly after its last record".to_string());
    Err(ScanError::Corrupt {
        offset: records_end as u64,
        reason: format!("{reason} (sealed segment, {} bytes)", bytes.len()),
    })
}

/// What verification found in the last segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LastSegmentScan {
    /// Where the valid records end: appends continue here.
    pub records_end: u64,
    /// The index the next record will get.
    pub next_index: u64,
    /// How many valid records the segment holds.
    pub record_count: u64,
    /// Bytes of torn tail to zero: from `records_end` to the last non-zero byte (0 = clean).
    pub torn_tail_bytes: u64,
}

/// Verifies the last segment, telling a torn tail from damage in the middle.
pub(crate) fn scan_last_segment(
    bytes: &[u8],
    first_index: u64,
    on_record: &mut RecordHandler<'_>,
) -> Result<LastSegmentScan, ScanError> {
    let (records_end, next_index, stop_reason) = read_frames(bytes, first_index, on_record)?;
    let written_end = bytes
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |position| position + 1)
        .max(records_end);
    if let Some((found_offset, found_index)) =
        find_valid_frame_after(bytes, records_end, written_end, next_index)
    {
        let stop_reason =
            stop_reason.unwrap_or_else(|| "zero bytes where a frame should be".to_string());
        return Err(ScanError::Corrupt {
            offset: records_end as u64,
            reason: format!(
                "{stop_reason}, yet a valid frame with index {found_index} follows at byte offset {found_offset}: this is damage in the middle of the log, not a torn tail"
            ),
        });
    }
    Ok(LastSegmentScan {
        records_end: records_end as u64,
        next_index,
        record_count: next_index - first_index,
        torn_tail_bytes: (written_end - records_end) as u64,
    })
}

/// Looks at every byte offset after `records_end` for a valid frame, cheap checks first: its index
/// field must be non-zero (so it lies before `written_end`), at least `next_index` and at most one
/// more per 16 bytes of distance (every frame takes at least 16 bytes), its length must fit the
/// file; only then is the CRC computed. Returns the offset and index of the first one found.
fn find_valid_frame_after(
    bytes: &[u8],
    records_end: usize,
    written_end: usize,
    next_index: u64,
) -> Option<(usize, u64)> {
    let frame_header_bytes = FRAME_HEADER_BYTES as usize;
    // A frame's index is non-zero, so its index field (bytes 8..16) ends past a non-zero byte.
    let last_candidate = written_end
        .checked_sub(9)?
        .min(bytes.len().checked_sub(frame_header_bytes)?);
    for candidate in records_end + 1..=last_candidate {
        let index = read_u64(bytes, candidate + 8);
        let index_bound =
            next_index.saturating_add(((candidate - records_end) / frame_header_bytes) as u64);
        if index < next_index || index > index_bound {
            continue;
        }
        let length = u64::from(read_u32(bytes, candidate));
        if length > RECORD_BYTES_MAX
            || (candidate + frame_header_bytes) as u64 + length > bytes.len() as u64
        {
            continue;
        }
        let payload_start = candidate + frame_header_bytes;
        let payload = &bytes[payload_start..payload_start + length as usize];
        if frame_crc(index, payload) == read_u32(bytes, candidate + 4) {
            return Some((candidate, index));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_frame, SegmentHeader};

    /// A segment with records `first_index..first_index+count`, then `zero_bytes` of zeros.
    fn segment(first_index: u64, payloads: &[&[u8]], zero_bytes: usize) -> Vec<u8> {
        let header = SegmentHeader {
            format_version: 1,
            writer_version: 0,
            node_id: 0,
            first_index,
            first_revision: 0,
            term: 0,
            cluster_id: 0,
        };
        let mut bytes = header.encode().to_vec();
        for (position, payload) in payloads.iter().enumerate() {
            encode_frame(first_index + position as u64, payload, &mut bytes);
        }
        bytes.resize(bytes.len() + zero_bytes, 0);
        bytes
    }

    type Replayed = Vec<(u64, Vec<u8>)>;

    fn collect(
        scan: impl FnOnce(&mut RecordHandler<'_>) -> Result<LastSegmentScan, ScanError>,
    ) -> (Result<LastSegmentScan, ScanError>, Replayed) {
        let mut records = Vec::new();
        let result = scan(&mut |index, payload| {
            records.push((index, payload.to_vec()));
            Ok(())
        });
        (result, records)
    }

    #[test]
    fn clean_last_segment_has_no_torn_tail() {
        let bytes = segment(10, &[b"a", b"bb", b""], 100);
        let (result, records) = collect(|handler| scan_last_segment(&bytes, 10, handler));
        let scan = result.unwrap();
        assert_eq!(scan.record_count, 3);
        assert_eq!(scan.next_index, 13);
        assert_eq!(scan.torn_tail_bytes, 0);
        assert_eq!(scan.records_end, 64 + 17 + 18 + 16);
        assert_eq!(
            records,
            vec![(10, b"a".to_vec()), (11, b"bb".to_vec()), (12, Vec::new())]
        );
    }

    #[test]
    fn partial_last_frame_is_a_torn_tail() {
        let full = segment(1, &[b"first", b"second record"], 0);
        let cut = full.len() - 5;
        let mut bytes = full[..cut].to_vec();
        bytes.resize(200, 0);
        let (result, records) = collect(|handler| scan_last_segment(&bytes, 1, handler));
        let scan = result.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(scan.records_end, 64 + 21);
        assert_eq!(scan.torn_tail_bytes, cut as u64 - (64 + 21));
    }

    #[test]
    fn damage_followed_by_a_valid_frame_is_corruption() {
        let mut bytes = segment(1, &[b"first", b"second", b"third"], 50);
        let second_frame = 64 + 21;
        bytes[second_frame + 17] ^= 0xFF;
        let (result, _) = collect(|handler| scan_last_segment(&bytes, 1, handler));
        match result.unwrap_err() {
            ScanError::Corrupt { offset, reason } => {
                assert_eq!(offset, second_frame as u64);
                assert!(reason.contains("index 3"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn zeroed_frame_followed_by_a_valid_frame_is_corruption() {
        let mut bytes = segment(1, &[b"first", b"second", b"third"], 0);
        bytes[64..64 + 21].fill(0);
        let (result, records) = collect(|handler| scan_last_segment(&bytes, 1, handler));
        assert!(matches!(result, Err(ScanError::Corrupt { offset: 64, .. })));
        assert!(records.is_empty());
    }

    #[test]
    fn sealed_segment_must_end_exactly_after_its_last_record() {
        let bytes = segment(1, &[b"a", b"b"], 0);
        assert_eq!(scan_sealed_segment(&bytes, 1, &mut |_, _| Ok(())), Ok(3));
        let padded = segment(1, &[b"a", b"b"], 16);
        assert!(matches!(
            scan_sealed_segment(&padded, 1, &mut |_, _| Ok(())),
            Err(ScanError::Corrupt { offset: 98, .. })
        ));
    }

    #[test]
    fn a_refusing_record_handler_stops_the_scan() {
        let bytes = segment(1, &[b"a", b"b"], 0);
        let result = scan_sealed_segment(&bytes, 1, &mut |index, _| {
            if index == 2 {
                Err("no".to_string())
            } else {
                Ok(())
            }
        });
        assert_eq!(
            result,
            Err(ScanError::RecordRejected {
                index: 2,
                reason: "no".to_string()
            })
        );
    }
}
