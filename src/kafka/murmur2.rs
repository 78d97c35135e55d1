//! Kafka's key → partition function, bit for bit as the Java client computes it
//! (`org.apache.kafka.common.utils.Utils.murmur2` and `BuiltInPartitioner.partitionForKey`).
//!
//! kuzet sets the partition of every hit it produces itself, with this function, instead of
//! leaving it to librdkafka: librdkafka's default partitioner (`consistent_random`, CRC32)
//! puts the same key elsewhere than a Java producer (Kafka Streams, Kafka Connect) would, and
//! stage 2 of the scale-out relies on every producer of a key agreeing on its partition
//! (docs/scale-out.md, "keyed input"). Pure functions, no dependency on the `kafka` feature.

/// MurmurHash2 (32-bit) with Kafka's seed `0x9747b28c`, as Java's `Utils.murmur2`, which
/// returns a signed `int`: the same bits here as `u32`.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java computes `seed ^ length` on ints: the length's low 32 bits.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // Java's switch falls through: 3 → 2 → 1, then one multiply.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition the Java client gives a non-null `key` among `partitions`
/// (`toPositive(murmur2(key)) % numPartitions`; `toPositive` clears the sign bit, it is not
/// `abs`). `partitions` must be at least 1.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    debug_assert!(partitions > 0);
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache Kafka's `UtilsTest.testMurmur2` vectors (as Java's signed ints), plus the empty
    /// key and one key per remainder length from other clients' golden tables.
    #[test]
    fn murmur2_matches_the_java_clients_vectors() {
        let cases: [(&[u8], i32); 11] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
            (b"", 275_646_681),
            (b"string-f-24-chars-length", 124_730_809),
            (b"string-fo-25-chars-length", 1_269_511_650),
            (b"string-foo-26-chars-length", 119_165_628),
            (b"string-last-27-chars-length", 1_089_971_754),
        ];
        for (key, want) in cases {
            assert_eq!(
                murmur2(key) as i32,
                want,
                "murmur2({:?})",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn partition_clears_the_sign_bit_instead_of_taking_abs() {
        // -790332482 & 0x7fffffff = 1357151166; % 50 = 16 (Java gives 16 too).
        assert_eq!(partition_for_key(b"foobar", 50), 16);
        // A negative hash: abs() would give another partition.
        let h = murmur2(b"21") as i32;
        assert!(h < 0);
        assert_eq!(partition_for_key(b"21", 7), ((h & 0x7fff_ffff) as u32) % 7);
        assert_ne!(partition_for_key(b"21", 7), h.unsigned_abs() % 7);
        for p in 1..64 {
            assert!(partition_for_key(b"any key", p) < p);
        }
    }
}
