//! Byte layouts of the store's own files: segment headers, page headers,
//! event records, the identity file and the catalog. Each layout is drawn once, in its
//! module, with every offset a named constant built from the one before;
//! `docs/storage-format.md` describes them.

pub(crate) mod catalog;
mod identity;
mod page;
mod record;
mod segment;

pub(crate) use identity::{
    IDENTITY_LEN, PUBLIC_OFFSET as IDENTITY_PUBLIC_OFFSET, decode_identity, encode_identity,
};
pub(crate) use page::{
    COUNT_OFFSET, FIRST_SEQ_OFFSET, FLAG_SEALED, LOG_OFFSET, PAGE_HEADER_LEN, PAGE_ROOT_OFFSET,
    PAGE_VERSION, PageHeader, SEAL_CRC_OFFSET, USED_OFFSET, record_stride,
};
pub(crate) use record::{RECORD_HEADER_LEN, read_record, write_record_header};
pub(crate) use segment::{
    SEGMENT_HEADER_LEN, SEGMENT_NUMBER_OFFSET, SEGMENT_PAGE_SIZE_OFFSET, SegmentHeader,
    check_segment_header,
};

/// CRC-32C of the parts of a buffer, in order.
fn crc_of(parts: &[&[u8]]) -> u32 {
    parts.iter().fold(0, |c, p| crc32c::crc32c_append(c, p))
}
