//! A set in a few bits a value, for telling what is surely new from what
//! may have been seen (a Bloom filter with one hash): memory stays a few
//! bytes a value however long the values are. A value inserted is always
//! reported as maybe seen; an unseen one is, only as often as the bits
//! its hash lands on are set, which the sizing keeps rare.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

pub struct HashFilter {
    bits: Vec<u64>,
}

impl HashFilter {
    /// Room for `count` values at `bits_each` bits a value (so at most 1
    /// bit in `bits_each` is ever set), rounded up to a power of two, at
    /// least 64 Ki bits.
    pub fn with_room_for(count: u64, bits_each: u64) -> HashFilter {
        let bits = count
            .saturating_mul(bits_each)
            .clamp(1 << 16, 1 << 40)
            .next_power_of_two();
        HashFilter {
            bits: vec![0; (bits / 64) as usize],
        }
    }

    /// The word and the bit of `value`'s hash. The hasher's fixed keys
    /// make one process agree with itself, which is all this needs.
    fn bit_of<T: Hash + ?Sized>(&self, value: &T) -> (usize, u64) {
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        let bit = hasher.finish() & (self.bits.len() as u64 * 64 - 1);
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    /// Whether `value` may have been inserted: false means it never was.
    pub fn may_contain<T: Hash + ?Sized>(&self, value: &T) -> bool {
        let (word, bit) = self.bit_of(value);
        self.bits[word] & bit != 0
    }

    /// Inserts `value`; true if it was surely not in the set before.
    pub fn insert<T: Hash + ?Sized>(&mut self, value: &T) -> bool {
        let (word, bit) = self.bit_of(value);
        let new = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        new
    }

    /// Bytes the bits take.
    pub fn bytes(&self) -> usize {
        self.bits.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::HashFilter;

    #[test]
    fn an_inserted_value_is_never_reported_new_and_few_others_look_seen() {
        let values: Vec<String> = (0..100_000u32).map(|i| format!("{i:040x}")).collect();
        let mut seen = HashFilter::with_room_for(values.len() as u64, 16);
        for v in &values {
            seen.insert(v.as_str());
        }
        assert!(values.iter().all(|v| seen.may_contain(v.as_str())));
        assert!(values.iter().all(|v| !seen.insert(v.as_str())));
        let look_seen = (100_000..200_000u32)
            .filter(|i| seen.may_contain(format!("{i:040x}").as_str()))
            .count();
        assert!(look_seen < 100_000 / 8, "{look_seen} of 100000 look seen");
    }

    #[test]
    fn a_million_values_take_a_few_megabytes() {
        let seen = HashFilter::with_room_for(1_000_000, 16);
        assert!(seen.bytes() <= 4 * 1024 * 1024, "{}", seen.bytes());
    }
}
