//! The segment file format, versions 1 and 2, as pure encode/decode functions (no IO). The
//! byte-by-byte description with its crash cases and the version history live in
//! `docs/formats/segment.md`; keep the two in step. The versions themselves are listed in
//! `strata_types::formats`.
//!
//! Invariants:
//! - Bytes 0..12 of a header (magic and format version) keep their meaning in every version, so
//!   any release can tell a foreign file and a newer-format file apart before trusting the rest.
//! - A frame is `[length u32][crc32c u32][index u64][payload]`, little-endian; the CRC covers the
//!   index bytes and the payload. Index 0 is never written, so 16 zero bytes where a frame header
//!   would be mean "no more records" (the preallocated tail), and no real frame looks like that.

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"STRATSEG";
/// The newest segment format version this code writes and reads (every older one is read too).
pub const FORMAT_VERSION_CURRENT: u32 = strata_types::formats::newest_version(strata_types::formats::FileKind::Segment);
/// The size of a segment header.
pub const HEADER_BYTES: u64 = 64;
/// The size of a frame header: length, CRC, index.
pub const FRAME_HEADER_BYTES: u64 = 16;
/// The largest payload a record may carry.
pub const RECORD_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Where a version 2 header's cluster id sits.
const HEADER_CLUSTER_ID_OFFSET: usize = 48;

/// Where the header CRC sits in a header of `format_version`; it covers every byte before it.
/// The zero padding follows it to the header's end.
pub(crate) const fn header_crc_offset(format_version: u32) -> usize {
    if format_version == 1 {
        48
    } else {
        56
    }
}
/// Where a header's first index sits, for error offsets.
pub(crate) const HEADER_FIRST_INDEX_OFFSET: u64 = 24;
/// Where a header's format version sits, for error offsets.
pub(crate) const HEADER_FORMAT_VERSION_OFFSET: u64 = 8;

/// The fields of a segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub format_version: u32,
    pub writer_version: u32,
    pub node_id: u64,
    pub first_index: u64,
    pub first_revision: i64,
    /// Reserved for Raft; always 0 in versions 1 and 2.
    pub term: u64,
    /// The cluster the segment belongs to (version 2 on; 0 in a version 1 header).
    pub cluster_id: u64,
}

/// Why a header was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    BadMagic,
    UnsupportedFormat { found_version: u32 },
    Corrupt { offset: u64, reason: String },
}

impl SegmentHeader {
    /// Encodes the header in its `format_version` (1 or 2: a version 1 header has no cluster id;
    /// `cluster_id` must then be 0).
    pub fn encode(&self) -> [u8; HEADER_BYTES as usize] {
        assert!(
            (1..=FORMAT_VERSION_CURRENT).contains(&self.format_version),
            "segment format version {} is not one this code writes",
            self.format_version
        );
        assert!(self.format_version >= 2 || self.cluster_id == 0, "a version 1 segment header has no cluster id");
        let mut bytes = [0u8; HEADER_BYTES as usize];
        bytes[0..8].copy_from_slice(&SEGMENT_MAGIC);
        bytes[8..12].copy_from_slice(&self.format_version.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.writer_version.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.node_id.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.first_index.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.first_revision.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.term.to_le_bytes());
        if self.format_version >= 2 {
            bytes[HEADER_CLUSTER_ID_OFFSET..HEADER_CLUSTER_ID_OFFSET + 8].copy_from_slice(&self.cluster_id.to_le_bytes());
        }
        let crc_offset = header_crc_offset(self.format_version);
        let crc = crc32c::crc32c(&bytes[..crc_offset]);
        bytes[crc_offset..crc_offset + 4].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes a header from the first bytes of a file (`bytes` may be the whole file or only its
    /// beginning). Checks, in this order: magic, format version, length, CRC, padding, first index.
    pub(crate) fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
        if bytes.len() < 8 || bytes[0..8] != SEGMENT_MAGIC {
            return Err(HeaderProblem::BadMagic);
        }
        if bytes.len() < 12 {
            return Err(HeaderProblem::Corrupt {
                offset: 0,
                reason: format!(
                    "the file is {} bytes, shorter than its {HEADER_BYTES}-byte header",
                    bytes.len()
                ),
            });
        }
        let format_version = read_u32(bytes, 8);
        if format_version > FORMAT_VERSION_CURRENT {
            return Err(HeaderProblem::UnsupportedFormat {
                found_version: format_version,
            });
        }
        if format_version == 0 {
            return Err(HeaderProblem::Corrupt {
                offset: HEADER_FORMAT_VERSION_OFFSET,
                reason: "format version 0 was never written".to_string(),
            });
        }
        if (bytes.len() as u64) < HEADER_BYTES {
            return Err(HeaderProblem::Corrupt {
                offset: 0,
                reason: format!(
                    "the file is {} bytes, shorter than its {HEADER_BYTES}-byte header",
                    bytes.len()
                ),
            });
        }
        let crc_offset = header_crc_offset(format_version);
        let stored_crc = read_u32(bytes, crc_offset);
        let computed_crc = crc32c::crc32c(&bytes[..crc_offset]);
        if stored_crc != computed_crc {
            return Err(HeaderProblem::Corrupt {
                offset: crc_offset as u64,
                reason: format!("header CRC32C mismatch (stored {stored_crc:#010x}, computed {computed_crc:#010x})"),
            });
        }
        let padding_offset = crc_offset + 4;
        if let Some(position) = bytes[padding_offset..HEADER_BYTES as usize]
            .iter()
            .position(|byte| *byte != 0)
        {
            return Err(HeaderProblem::Corrupt {
                offset: (padding_offset + position) as u64,
                reason: "header padding is not zero".to_string(),
            });
        }
        let header = SegmentHeader {
            format_version,
            writer_version: read_u32(bytes, 12),
            node_id: read_u64(bytes, 16),
            first_index: read_u64(bytes, 24),
            first_revision: read_u64(bytes, 32) as i64,
            term: read_u64(bytes, 40),
            cluster_id: if format_version >= 2 { read_u64(bytes, HEADER_CLUSTER_ID_OFFSET) } else { 0 },
        };
        if header.first_index == 0 {
            return Err(HeaderProblem::Corrupt {
                offset: HEADER_FIRST_INDEX_OFFSET,
                reason: "first index is 0; indexes start at 1".to_string(),
            });
        }
        Ok(header)
    }
}

pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("four bytes"))
}

pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("eight bytes"))
}

/// The CRC32C a frame carries: over the index bytes, then the payload.
pub(crate) fn frame_crc(index: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&index.to_le_bytes()), payload)
}

/// Appends one frame to `output`.
pub(crate) fn encode_frame(index: u64, payload: &[u8], output: &mut Vec<u8>) {
    assert!(index > 0, "record indexes start at 1");
    let length =
        u32::try_from(payload.len()).expect("payload length checked against RECORD_BYTES_MAX");
    output.extend_from_slice(&length.to_le_bytes());
    output.extend_from_slice(&frame_crc(index, payload).to_le_bytes());
    output.extend_from_slice(&index.to_le_bytes());
    output.extend_from_slice(payload);
}

/// What sits at an offset where a frame is expected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameCheck {
    /// A valid frame with the expected index; its payload is `bytes[payload_start..next_offset]`.
    Valid {
        payload_start: usize,
        next_offset: usize,
    },
    /// The end of the records: end of file, or 16 zero bytes (zeros to the end of file when fewer
    /// than 16 bytes remain).
    End,
    /// Anything else.
    Invalid { reason: String },
}

/// Checks the frame at `offset` of a whole segment file `bytes`, expecting index `expected_index`.
pub(crate) fn check_frame(bytes: &[u8], offset: usize, expected_index: u64) -> FrameCheck {
    let remaining = &bytes[offset.min(bytes.len())..];
    if remaining.len() < FRAME_HEADER_BYTES as usize {
        return if remaining.iter().all(|byte| *byte == 0) {
            FrameCheck::End
        } else {
            FrameCheck::Invalid {
                reason: format!(
                    "a frame header is cut short by the end of the file ({} bytes left)",
                    remaining.len()
                ),
            }
        };
    }
    if remaining[..FRAME_HEADER_BYTES as usize]
        .iter()
        .all(|byte| *byte == 0)
    {
        return FrameCheck::End;
    }
    let length = u64::from(read_u32(remaining, 0));
    let stored_crc = read_u32(remaining, 4);
    let index = read_u64(remaining, 8);
    if length > RECORD_BYTES_MAX {
        return FrameCheck::Invalid {
            reason: format!(
                "frame length {length} exceeds the record limit of {RECORD_BYTES_MAX} bytes"
            ),
        };
    }
    let frame_bytes = FRAME_HEADER_BYTES + length;
    if frame_bytes > remaining.len() as u64 {
        return FrameCheck::Invalid {
            reason: format!("frame length {length} runs past the end of the file ({} bytes left after the frame header)", remaining.len() as u64 - FRAME_HEADER_BYTES),
        };
    }
    if index != expected_index {
        return FrameCheck::Invalid {
            reason: format!("frame index {index} where index {expected_index} was expected"),
        };
    }
    let payload_start = offset + FRAME_HEADER_BYTES as usize;
    let next_offset = offset + frame_bytes as usize;
    let computed_crc = frame_crc(index, &bytes[payload_start..next_offset]);
    if stored_crc != computed_crc {
        return FrameCheck::Invalid {
            reason: format!(
                "frame CRC32C mismatch (stored {stored_crc:#010x}, computed {computed_crc:#010x})"
            ),
        };
    }
    FrameCheck::Valid {
        payload_start,
        next_offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SegmentHeader {
        SegmentHeader {
            format_version: 1,
            writer_version: 1000,
            node_id: 7,
            first_index: 42,
            first_revision: 99,
            term: 0,
            cluster_id: 0,
        }
    }

    fn header_v2() -> SegmentHeader {
        SegmentHeader { format_version: 2, cluster_id: 0x1122_3344_5566_7788, ..header() }
    }

    #[test]
    fn version_2_header_round_trips_with_its_cluster_id() {
        let bytes = header_v2().encode();
        assert_eq!(&bytes[48..56], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header_v2()));
        let mut damaged = bytes;
        damaged[50] ^= 1;
        assert!(matches!(SegmentHeader::decode(&damaged), Err(HeaderProblem::Corrupt { offset: 56, .. })));
        let mut padded = header_v2().encode();
        padded[61] = 1;
        assert!(matches!(SegmentHeader::decode(&padded), Err(HeaderProblem::Corrupt { offset: 61, .. })));
    }

    #[test]
    fn header_round_trips() {
        let bytes = header().encode();
        assert_eq!(&bytes[0..8], b"STRATSEG");
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header()));
    }

    #[test]
    fn header_checks_name_the_damaged_field() {
        let mut bytes = header().encode();
        bytes[0] = b'X';
        assert_eq!(SegmentHeader::decode(&bytes), Err(HeaderProblem::BadMagic));

        let mut bytes = header().encode();
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION_CURRENT + 1).to_le_bytes());
        assert_eq!(
            SegmentHeader::decode(&bytes),
            Err(HeaderProblem::UnsupportedFormat { found_version: FORMAT_VERSION_CURRENT + 1 })
        );

        let mut bytes = header().encode();
        bytes[17] ^= 1;
        assert!(matches!(
            SegmentHeader::decode(&bytes),
            Err(HeaderProblem::Corrupt { offset: 48, .. })
        ));

        let mut bytes = header().encode();
        bytes[60] = 1;
        assert!(matches!(
            SegmentHeader::decode(&bytes),
            Err(HeaderProblem::Corrupt { offset: 60, .. })
        ));

        assert!(matches!(
            SegmentHeader::decode(&header().encode()[..40]),
            Err(HeaderProblem::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn frames_check_length_index_and_crc() {
        let mut bytes = Vec::new();
        encode_frame(5, b"hello", &mut bytes);
        encode_frame(6, b"", &mut bytes);
        assert_eq!(
            check_frame(&bytes, 0, 5),
            FrameCheck::Valid {
                payload_start: 16,
                next_offset: 21
            }
        );
        assert_eq!(
            check_frame(&bytes, 21, 6),
            FrameCheck::Valid {
                payload_start: 37,
                next_offset: 37
            }
        );
        assert_eq!(check_frame(&bytes, 37, 7), FrameCheck::End);
        assert!(matches!(
            check_frame(&bytes, 0, 4),
            FrameCheck::Invalid { .. }
        ));
        assert!(matches!(
            check_frame(&bytes[..20], 0, 5),
            FrameCheck::Invalid { .. }
        ));
        let mut flipped = bytes.clone();
        flipped[18] ^= 0xFF;
        assert!(matches!(
            check_frame(&flipped, 0, 5),
            FrameCheck::Invalid { .. }
        ));
        let mut zeros = bytes.clone();
        zeros.extend_from_slice(&[0; 40]);
        assert_eq!(check_frame(&zeros, 37, 7), FrameCheck::End);
        assert_eq!(check_frame(&zeros, 70, 7), FrameCheck::End);
    }
}
