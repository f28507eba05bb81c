//! Client identity (RFC 2132 §9.14, RFC 2131 §4.2): option 61 if present, else htype + chaddr.

/// Bytes kept inline. Ids up to this length are stored verbatim; longer ones (rare: DUID-based
/// ids are 10..=130 bytes) keep their first `INLINE - 16` bytes plus a 128-bit hash of the whole.
const INLINE: usize = 30;

/// A client identifier, fixed-size and `Copy` so lease slots never allocate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
// The fields lie in the order `words` reads them, so the four words of the index hash are four
// loads rather than a reassembly of the bytes (about ten instructions per hash).
#[repr(C)]
pub struct ClientKey {
    /// 0 = from chaddr (htype prefixed), 1 = from option 61, 2 = option 61 hashed (long).
    kind: u8,
    len: u8,
    data: [u8; INLINE],
}

impl ClientKey {
    /// Placeholder stored in slots that have never had a client (and in records not filled
    /// yet, such as a worker's batch of prepared frames). No constructor yields it (a
    /// hardware key has at least the htype byte, option 61 ids are non-empty in practice and an
    /// empty id is still kind 1), so it never equals a real client's key.
    pub(crate) const NONE: ClientKey = ClientKey::none();

    /// [`Self::NONE`], as a function: a record's placeholder built in place stores its bytes
    /// directly, where the `const` is copied from its image (see `Facts::none`).
    #[inline(always)]
    pub(crate) const fn none() -> ClientKey {
        ClientKey {
            kind: 0xff,
            len: 0,
            data: [0; INLINE],
        }
    }

    /// From option 61's payload (type byte included), byte for byte.
    pub fn from_client_id(id: &[u8]) -> Self {
        let mut k = ClientKey::NONE;
        k.set_client_id(id);
        k
    }

    /// From the hardware type and chaddr truncated to hlen (at most 16 bytes).
    pub fn from_hw(htype: u8, hwaddr: &[u8]) -> Self {
        let mut k = ClientKey::NONE;
        k.set_hw(htype, hwaddr);
        k
    }

    /// [`Self::from_client_id`] into `self`, every byte overwritten. WHY in place: a record
    /// that holds the key (a worker's prepared frame) gets it without a 32-byte copy.
    pub(crate) fn set_client_id(&mut self, id: &[u8]) {
        self.data = [0; INLINE];
        if id.len() <= INLINE {
            self.kind = 1;
            self.len = id.len() as u8;
            crate::cpu::copy_short(&mut self.data[..id.len()], id);
        } else {
            let keep = INLINE - 16;
            self.kind = 2;
            self.len = INLINE as u8;
            self.data[..keep].copy_from_slice(&id[..keep]);
            self.data[keep..].copy_from_slice(&hash128(id).to_be_bytes());
        }
    }

    /// [`Self::from_hw`] into `self`, every byte overwritten (see [`Self::set_client_id`]).
    pub(crate) fn set_hw(&mut self, htype: u8, hwaddr: &[u8]) {
        let hw = &hwaddr[..hwaddr.len().min(16)];
        self.data = [0; INLINE];
        self.data[0] = htype;
        self.data[1..=hw.len()].copy_from_slice(hw);
        self.kind = 0;
        self.len = (hw.len() + 1) as u8;
    }

    /// The identifying bytes (for logs, hashing and persistence).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    /// The whole key as four little-endian words (kind, len, data), for fixed-cost hashing.
    pub(super) fn words(&self) -> [u64; 4] {
        let mut raw = [0u8; 32];
        raw[0] = self.kind;
        raw[1] = self.len;
        raw[2..].copy_from_slice(&self.data);
        let w = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        [w(0), w(1), w(2), w(3)]
    }

    /// The key's kind tag (0 = hardware, 1 = option 61, 2 = long option 61 hashed), for
    /// persistence together with [`Self::as_bytes`].
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// Rebuild a key from a persisted [`Self::kind`] and [`Self::as_bytes`]; `None` when the pair
    /// cannot have come from a real key (unknown kind, bad length).
    pub fn from_parts(kind: u8, bytes: &[u8]) -> Option<Self> {
        let ok = match kind {
            0 => (1..=17).contains(&bytes.len()),
            1 => bytes.len() <= INLINE,
            2 => bytes.len() == INLINE,
            _ => false,
        };
        if !ok {
            return None;
        }
        let mut data = [0u8; INLINE];
        data[..bytes.len()].copy_from_slice(bytes);
        Some(ClientKey {
            kind,
            len: bytes.len() as u8,
            data,
        })
    }

    /// Whether the key came from option 61.
    pub fn is_client_id(&self) -> bool {
        self.kind != 0
    }

    /// 64-bit hash for shard selection; stable across runs (FNV-1a).
    pub fn hash64(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(self.kind);
        for &b in self.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }
}

impl core::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let tag = match self.kind {
            0 => "hw",
            1 => "id",
            _ => "id#",
        };
        write!(f, "{tag}:")?;
        for (i, b) in self.as_bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Two independent FNV-1a 64 lanes: not cryptographic, but collisions between two real client
/// ids that also share their first 14 bytes are not a practical concern.
fn hash128(data: &[u8]) -> u128 {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for &x in data {
        a = (a ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(x.rotate_left(3)))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(7);
    }
    (u128::from(a) << 64) | u128::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hw_and_id_keys_differ_even_with_same_bytes() {
        let hw = ClientKey::from_hw(1, &[1, 2, 3, 4, 5, 6]);
        let id = ClientKey::from_client_id(&[1, 1, 2, 3, 4, 5, 6]);
        assert_eq!(hw.as_bytes(), id.as_bytes());
        assert_ne!(hw, id);
    }

    #[test]
    fn long_ids_are_distinguished_by_their_tail() {
        let mut a = [7u8; 100];
        let k1 = ClientKey::from_client_id(&a);
        a[99] = 8;
        let k2 = ClientKey::from_client_id(&a);
        assert_ne!(k1, k2);
        assert_eq!(k1.as_bytes().len(), INLINE);
    }

    #[test]
    fn parts_round_trip_and_reject_impossible_keys() {
        for k in [
            ClientKey::from_hw(1, &[1, 2, 3, 4, 5, 6]),
            ClientKey::from_client_id(&[1, 9, 9]),
            ClientKey::from_client_id(&[5u8; 90]),
        ] {
            assert_eq!(ClientKey::from_parts(k.kind(), k.as_bytes()), Some(k));
        }
        assert_eq!(ClientKey::from_parts(0, &[]), None);
        assert_eq!(ClientKey::from_parts(2, &[1, 2]), None);
        assert_eq!(ClientKey::from_parts(7, &[1]), None);
        assert_eq!(ClientKey::from_parts(1, &[0u8; 31]), None);
    }

    #[test]
    fn oversized_hw_is_truncated_not_panicking() {
        let k = ClientKey::from_hw(1, &[9u8; 40]);
        assert_eq!(k.as_bytes().len(), 17);
    }
}
