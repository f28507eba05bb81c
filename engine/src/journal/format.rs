//! On-disk format of journal segments and snapshots.
//!
//! Both are a 40-byte header followed by records:
//!
//! ```text
//! header:  magic[8] ("XDHCPJNL" segment | "XDHCPSNP" snapshot) | format u16 | 0u16 | 0u32
//!          | seq u64 | created u64 (Unix s) | 0u32 | crc32 u32 (of the 36 bytes before)
//! record:  len u16 | kind u8 | 0u8 | crc32 u32 (of len, kind, 0 and the payload) | payload[len]
//! LEASE:   addr u32 BE | version u32 | expires u64 | state u8 | key kind u8 | key len u8 | key
//! END:     count u64   (snapshots only: the file is complete and holds `count` leases)
//! NOP:     empty       (written by the committer to test the disk after a fault)
//! ```
//!
//! Integers are little-endian except the address. Every record is checksummed on its own, so a
//! reader can tell a torn tail (a crash cut the last write short: nothing valid follows) from a
//! damaged middle (valid records follow a bad one), see [`Scan`].

use crate::lease::{ClientKey, LeaseInfo, LeaseState};
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 40;
pub const RECORD_HEADER: usize = 8;
pub const FORMAT: u16 = 1;
const LEASE: u8 = 1;
const END: u8 = 2;
const NOP: u8 = 3;
/// Largest payload a reader accepts (a lease record is at most 19 + 30 bytes).
pub const MAX_PAYLOAD: usize = 64;
/// Largest encoded lease record.
pub const MAX_RECORD: usize = RECORD_HEADER + 19 + 30;

/// Which file a header belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Segment,
    Snapshot,
}

impl FileKind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            FileKind::Segment => b"XDHCPJNL",
            FileKind::Snapshot => b"XDHCPSNP",
        }
    }
}

/// A decoded file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: FileKind,
    pub seq: u64,
    pub created: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(self.kind.magic());
        h[8..10].copy_from_slice(&FORMAT.to_le_bytes());
        h[16..24].copy_from_slice(&self.seq.to_le_bytes());
        h[24..32].copy_from_slice(&self.created.to_le_bytes());
        let crc = crc32fast::hash(&h[..36]);
        h[36..40].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decode and check a header.
    ///
    /// # Errors
    /// A human reason: wrong magic (not our file / wrong kind), unknown format, bad checksum.
    pub fn decode(b: &[u8], kind: FileKind) -> Result<Header, String> {
        if b.len() < HEADER_LEN {
            return Err(format!(
                "header is {} bytes, expected {HEADER_LEN}",
                b.len()
            ));
        }
        if &b[..8] != kind.magic() {
            return Err(format!(
                "not an xdhcp {} (magic {:?})",
                match kind {
                    FileKind::Segment => "journal segment",
                    FileKind::Snapshot => "snapshot",
                },
                String::from_utf8_lossy(&b[..8])
            ));
        }
        let crc = u32::from_le_bytes([b[36], b[37], b[38], b[39]]);
        if crc != crc32fast::hash(&b[..36]) {
            return Err("header checksum mismatch".into());
        }
        let format = u16::from_le_bytes([b[8], b[9]]);
        if format != FORMAT {
            return Err(format!(
                "format version {format}; this xdhcp reads version {FORMAT} (upgrade xdhcp)"
            ));
        }
        Ok(Header {
            kind,
            seq: u64_at(b, 16),
            created: u64_at(b, 24),
        })
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn state_code(s: LeaseState) -> u8 {
    match s {
        LeaseState::Offered => 1,
        LeaseState::Bound => 2,
        LeaseState::Expired => 3,
        LeaseState::Released => 4,
        LeaseState::Declined => 5,
    }
}

fn state_from(c: u8) -> Option<LeaseState> {
    Some(match c {
        1 => LeaseState::Offered,
        2 => LeaseState::Bound,
        3 => LeaseState::Expired,
        4 => LeaseState::Released,
        5 => LeaseState::Declined,
        _ => return None,
    })
}

fn frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let mut head = [0u8; RECORD_HEADER];
    head[..2].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    head[2] = kind;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[..4]);
    crc.update(payload);
    head[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
}

/// Append one lease record to `out`.
pub fn encode_lease(out: &mut Vec<u8>, r: &LeaseInfo) {
    let key = r.client.as_bytes();
    let mut p = [0u8; MAX_PAYLOAD];
    p[..4].copy_from_slice(&u32::from(r.addr).to_be_bytes());
    p[4..8].copy_from_slice(&r.version.to_le_bytes());
    p[8..16].copy_from_slice(&r.expires.to_le_bytes());
    p[16] = state_code(r.state);
    p[17] = r.client.kind();
    p[18] = key.len() as u8;
    p[19..19 + key.len()].copy_from_slice(key);
    frame(out, LEASE, &p[..19 + key.len()]);
}

/// Append a record that carries nothing (the committer's write probe after a disk fault).
pub fn encode_nop(out: &mut Vec<u8>) {
    frame(out, NOP, &[]);
}

/// Append the snapshot's end record.
pub fn encode_end(out: &mut Vec<u8>, count: u64) {
    frame(out, END, &count.to_le_bytes());
}

/// One decoded record. Leases come back with subnet 0: the subnet is not stored (it is
/// derived from the address under the configuration in force when the record is replayed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Lease(LeaseInfo),
    End { count: u64 },
    Nop,
}

/// Decode the record at the start of `b`: `Ok(Some((record, bytes used)))`, `Ok(None)` when `b`
/// holds only part of a record (read more, or it is a torn tail), `Err` when the bytes are not a
/// valid record.
pub fn decode(b: &[u8]) -> Result<Option<(Record, usize)>, &'static str> {
    if b.len() < RECORD_HEADER {
        return Ok(None);
    }
    let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
    if len > MAX_PAYLOAD {
        return Err("record length out of range");
    }
    if b[3] != 0 {
        return Err("reserved byte set");
    }
    if b.len() < RECORD_HEADER + len {
        return Ok(None);
    }
    let payload = &b[RECORD_HEADER..RECORD_HEADER + len];
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b[..4]);
    crc.update(payload);
    if crc.finalize() != u32::from_le_bytes([b[4], b[5], b[6], b[7]]) {
        return Err("checksum mismatch");
    }
    let rec = match b[2] {
        LEASE => {
            if len < 19 || len != 19 + usize::from(payload[18]) {
                return Err("lease record length mismatch");
            }
            let addr = Ipv4Addr::new(payload[0], payload[1], payload[2], payload[3]);
            let version = u32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]);
            let expires = u64_at(payload, 8);
            let state = state_from(payload[16]).ok_or("unknown lease state")?;
            let client =
                ClientKey::from_parts(payload[17], &payload[19..]).ok_or("invalid client key")?;
            Record::Lease(LeaseInfo {
                addr,
                subnet: crate::config::SubnetId(0),
                client,
                state,
                expires,
                version,
            })
        }
        END if len == 8 => Record::End {
            count: u64_at(payload, 0),
        },
        NOP if len == 0 => Record::Nop,
        _ => return Err("unknown record kind"),
    };
    Ok(Some((rec, RECORD_HEADER + len)))
}

/// The result of reading the records of one file body (everything after the header).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Bytes (after the header) that decoded as whole, valid records.
    pub good: usize,
    /// Bytes after `good` that are not valid records, when nothing valid follows them: the
    /// torn tail a crash leaves (safe to cut off).
    pub torn: usize,
    /// Set when a bad record is followed by valid ones: damage in the middle, which recovery
    /// must not silently cut (valid, acknowledged leases would be lost). Offset and reason.
    pub corrupt: Option<(usize, &'static str)>,
}

/// Decode the records of `body`, calling `each` for every valid one up to the first bad or
/// incomplete record, and classify what follows (see [`Scan`]). Zeros after the last record
/// are the segment's preallocated space, not damage.
pub fn scan(body: &[u8], mut each: impl FnMut(Record)) -> Scan {
    let mut at = 0;
    loop {
        match decode(&body[at..]) {
            Ok(Some((rec, used))) => {
                each(rec);
                at += used;
            }
            _ if body[at..].iter().all(|&b| b == 0) => {
                return Scan {
                    good: at,
                    ..Scan::default()
                };
            }
            Ok(None) => return classify(body, at, "record cut short"),
            Err(why) => return classify(body, at, why),
        }
    }
}

/// After a bad record at `at`: is any valid record further on?
fn classify(body: &[u8], at: usize, why: &'static str) -> Scan {
    let resumes = (at + 1..body.len()).any(|i| matches!(decode(&body[i..]), Ok(Some(_))));
    if resumes {
        Scan {
            good: at,
            torn: 0,
            corrupt: Some((at, why)),
        }
    } else {
        // The preallocated zeros after a torn record are not part of it.
        let end = body.iter().rposition(|&b| b != 0).map_or(at, |i| i + 1);
        Scan {
            good: at,
            torn: end.max(at) - at,
            corrupt: None,
        }
    }
}

/// Every valid record of a damaged body, resynchronising after each bad stretch (salvage).
/// Returns the records and the number of bytes skipped.
pub fn salvage(body: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    let mut skipped = 0;
    while at < body.len() {
        match decode(&body[at..]) {
            Ok(Some((rec, used))) => {
                out.push(rec);
                at += used;
            }
            _ => {
                at += 1;
                skipped += 1;
            }
        }
    }
    (out, skipped)
}
