//! Structural facts about an Arrow IPC **file**, read from its flatbuffers directly (protocol.md
//! §3.1): magic at both ends, footer version, dictionary batches, dictionary-encoded fields,
//! record batches and their body compression.

use arrow_ipc::MetadataVersion;

/// What the container looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcFacts {
    /// Starts with `ARROW1` followed by two padding bytes.
    pub leading_magic: bool,
    /// Ends with `ARROW1`.
    pub trailing_magic: bool,
    /// Offset of the first message: the magic plus zero padding (Go: 8; arrow-rs pads to its
    /// 64-byte alignment). Readers go by the footer's block offsets, so this is layout only.
    pub header_len: usize,
    /// The footer's metadata version.
    pub version: MetadataVersion,
    /// The first message after the leading magic is the schema.
    pub schema_first: bool,
    /// Dictionary batches listed in the footer.
    pub dictionary_batches: usize,
    /// Schema fields that are dictionary-encoded.
    pub dictionary_fields: usize,
    /// Record batches listed in the footer.
    pub record_batches: usize,
    /// Record batches whose message declares body compression.
    pub compressed_batches: usize,
    /// Footer blocks that arrow-go's `FileReader` refuses: offset, metadata length or body
    /// length not a multiple of 8, metadata length < 4, or the block runs past the footer.
    pub bad_blocks: usize,
}

/// Reads a little-endian i32 at `at`.
fn le_i32(bytes: &[u8], at: usize) -> i32 {
    let four: [u8; 4] = bytes[at..at + 4].try_into().expect("4 bytes");
    i32::from_le_bytes(four)
}

/// The flatbuffer of the encapsulated message starting at `at` (continuation marker
/// `0xFFFFFFFF` + length, or the pre-0.15 bare length).
fn message_at(bytes: &[u8], at: usize) -> arrow_ipc::Message<'_> {
    let (len_at, fb_at) = if bytes[at..at + 4] == [0xff; 4] {
        (at + 4, at + 8)
    } else {
        (at, at + 4)
    };
    let len = usize::try_from(le_i32(bytes, len_at)).expect("message length ≥ 0");
    arrow_ipc::root_as_message(&bytes[fb_at..fb_at + len])
        .unwrap_or_else(|e| panic!("message flatbuffer at {at}: {e}"))
}

/// Inspects an Arrow IPC file. Panics when it is not one.
pub fn facts(bytes: &[u8]) -> IpcFacts {
    let n = bytes.len();
    assert!(n >= 8 + 10, "too short for an Arrow IPC file ({n} bytes)");
    let footer_len = usize::try_from(le_i32(bytes, n - 10)).expect("footer length ≥ 0");
    let footer = arrow_ipc::root_as_footer(&bytes[n - 10 - footer_len..n - 10])
        .unwrap_or_else(|e| panic!("footer flatbuffer: {e}"));
    let schema = footer.schema().expect("footer has a schema");
    let dictionary_fields = schema.fields().map_or(0, |fs| {
        fs.iter().filter(|f| f.dictionary().is_some()).count()
    });
    let blocks: Vec<_> = footer
        .recordBatches()
        .map(|b| b.iter().copied().collect())
        .unwrap_or_default();
    let footer_start = n - 10 - footer_len;
    let bad = |b: &arrow_ipc::Block| {
        let (off, meta, body) = (b.offset(), i64::from(b.metaDataLength()), b.bodyLength());
        off < 0
            || off % 8 != 0
            || meta < 4
            || meta % 8 != 0
            || body < 0
            || body % 8 != 0
            || off + meta + body > i64::try_from(footer_start).expect("size")
    };
    let bad_blocks = blocks.iter().filter(|b| bad(b)).count()
        + footer
            .dictionaries()
            .map_or(0, |d| d.iter().filter(|b| bad(b)).count());
    let mut compressed_batches = 0;
    for block in &blocks {
        let at = usize::try_from(block.offset()).expect("block offset ≥ 0");
        let msg = message_at(bytes, at);
        let batch = msg
            .header_as_record_batch()
            .unwrap_or_else(|| panic!("block at {at} is not a record batch"));
        if batch.compression().is_some() {
            compressed_batches += 1;
        }
    }
    // The magic is followed by zero padding up to the first message's continuation marker.
    let mut header_len = 8;
    while header_len + 4 <= n && bytes[header_len..header_len + 4] == [0; 4] {
        header_len += 8;
    }
    IpcFacts {
        header_len,
        leading_magic: bytes.starts_with(b"ARROW1\0\0"),
        trailing_magic: bytes.ends_with(b"ARROW1"),
        version: footer.version(),
        schema_first: message_at(bytes, header_len).header_as_schema().is_some(),
        dictionary_batches: footer.dictionaries().map_or(0, |d| d.len()),
        dictionary_fields,
        record_batches: blocks.len(),
        compressed_batches,
        bad_blocks,
    }
}

/// What protocol.md §3.1 requires of every frame we send (and what Go writes): an IPC file with
/// magic at both ends, metadata V5, schema first, one record batch, no dictionaries, no
/// compression. Returns the facts (for the header length).
pub fn assert_grafana_container(what: &str, bytes: &[u8]) -> IpcFacts {
    let f = facts(bytes);
    assert!(
        f.header_len >= 8 && f.header_len.is_multiple_of(8),
        "{what}: header {}",
        f.header_len
    );
    assert_eq!(
        f,
        IpcFacts {
            header_len: f.header_len,
            leading_magic: true,
            trailing_magic: true,
            version: MetadataVersion::V5,
            schema_first: true,
            dictionary_batches: 0,
            dictionary_fields: 0,
            record_batches: 1,
            compressed_batches: 0,
            bad_blocks: 0,
        },
        "{what}: container facts"
    );
    f
}
