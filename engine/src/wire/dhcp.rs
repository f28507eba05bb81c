//! BOOTP / DHCP message view (RFC 951, RFC 2131, RFC 2132, RFC 3396, RFC 3046).
//!
//! # Design
//!
//! The options are walked exactly once, in the order RFC 3396 §6 fixes for concatenation:
//! the `options` field, then `file`, then `sname` when option overload (52) says they carry
//! options. No length byte is trusted before it is checked against the end of its area.
//! Instead of copying values out (which would need a heap or a large per-packet buffer), the
//! walk records, per option code, how many instances there are and where one of them lies
//! (its offset and length). That is all the decision ever needs:
//!
//! * the common case, one instance, is a plain `&'a [u8]` ([`OptRef::contiguous`]), and a
//!   fixed-size value is one bounds-checked read;
//! * a split option (RFC 3396) is summarised again by walking the options (its first
//!   instance, the total length), then read by walking forward from its first instance to the
//!   following ones ([`OptRef::fragments`], [`OptRef::copy_into`]); since the parse already
//!   validated every length on the way, those walks cannot fail.
//!
//! Codes the decision reads (53, 50, 54, 61, 55, 57, 82, ...) have fixed slots found by a
//! 256-entry lookup, so recording an instance is one table load and three stores with no
//! branch (a count, an offset, a length), and their accessors cost an index, not a search.
//! Every other code lands in one shared slot that is never read (so the walk has no branch for
//! them), and [`DhcpOptions::get`] finds such a code by walking the options: answers stay
//! exact, nothing on the per-packet path asks for one, and no message can overflow a table.
//! The length rules below are checked after the walk, on the recorded lengths: with no
//! option that has a rule seen twice, the six fixed lengths are one masked 64-bit comparison
//! (absent options hold a length their rule accepts); a split one is checked on its joined
//! length. The walk is O(options) and the whole [`DhcpOptions`] (about 100 bytes) is `Copy`.
//!
//! The request is written in place ([`parse_into`]): the table is indexed by code at run
//! time, so it lives in memory, and built in a local it was copied whole on every move of the
//! request (into the result, out of it, into the caller's record).
//!
//! # Option validation policy
//!
//! | option | rule | on violation |
//! |---|---|---|
//! | 53 message type | required, length 1 | [`DropReason::NoMessageType`] / [`DropReason::BadOptionLength`] |
//! | 50, 54, 118 addresses | length 4 (RFC 2132 §9.1, §9.7; RFC 3011 §3) | `BadOptionLength` |
//! | 51 lease time | length 4 (RFC 2132 §9.2) | `BadOptionLength` |
//! | 57 max message size | length 2 (RFC 2132 §9.10) | `BadOptionLength` |
//! | 57 value | >= 576 (RFC 2132 §9.10 minimum) | ignored: [`DhcpOptions::max_message_size`] is `None` and the default 576 applies, as ISC dhcpd and Kea do |
//! | 61 client identifier | length >= 2 (RFC 2132 §9.14) | `BadOptionLength` |
//! | 12 host name | length >= 1 (RFC 2132 §3.14) | ignored: [`DhcpOptions::hostname`] is `None` |
//! | 82 relay agent info | one instance whose sub-options exactly fill it (RFC 3046 §2.0) | `BadOptionLength` |
//! | 82 sub-option 5 | length 4 (RFC 3527 §3) | ignored: [`RelayAgentInfo::link_selection`] is `None` |
//! | 52 overload | in `options` only, length 1, value 1..=3 (RFC 2132 §9.3) | [`DropReason::BadOverload`] |
//! | END | required in every area when overload is used (RFC 2131 §4.1) | [`DropReason::OptionsUnterminated`] |
//!
//! Without overload a missing END is tolerated (the options simply run to the end of the
//! message, whose every byte was accounted for), as ISC dhcpd and Kea tolerate it. Bytes after
//! END are padding and are not looked at. Lengths are checked on the concatenated value, so
//! `53 1 x 53 1 y` is a two-byte message type and is refused.
//!
//! Option 82 is read as a single instance: relay agents insert it as one option (RFC 3046
//! predates RFC 3396, and its sub-options must be handed back unchanged, RFC 3046 §2.2); a split
//! 82 is refused rather than half understood.

use super::{DropReason, L2Header, Request, ipv4, udp};
use core::fmt;
use std::net::Ipv4Addr;

/// Field offsets of the BOOTP fixed header (RFC 2131 §2, figure 1).
pub(crate) mod field {
    use core::ops::Range;
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const COOKIE: Range<usize> = 236..240;
    /// Start of the options field.
    pub const OPTIONS: usize = 240;
}

/// The DHCP magic cookie 99.130.83.99 (RFC 2131 §3).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// BOOTREQUEST (RFC 951).
pub const BOOTREQUEST: u8 = 1;
/// BOOTREPLY (RFC 951).
pub const BOOTREPLY: u8 = 2;
/// Hardware type Ethernet (RFC 1700 / IANA ARP hardware types).
pub const HTYPE_ETHERNET: u8 = 1;

/// DHCP option codes (RFC 2132 and later) used by xdhcp.
pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const TIME_OFFSET: u8 = 2;
    pub const ROUTER: u8 = 3;
    pub const DOMAIN_NAME_SERVER: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const INTERFACE_MTU: u8 = 26;
    pub const BROADCAST_ADDRESS: u8 = 28;
    pub const NTP_SERVERS: u8 = 42;
    pub const VENDOR_SPECIFIC: u8 = 43;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const VENDOR_CLASS: u8 = 60;
    pub const CLIENT_ID: u8 = 61;
    pub const TFTP_SERVER_NAME: u8 = 66;
    pub const BOOTFILE_NAME: u8 = 67;
    pub const RAPID_COMMIT: u8 = 80;
    pub const CLIENT_FQDN: u8 = 81;
    pub const RELAY_AGENT_INFO: u8 = 82;
    pub const SUBNET_SELECTION: u8 = 118;
    pub const DOMAIN_SEARCH: u8 = 119;
    pub const CLASSLESS_STATIC_ROUTE: u8 = 121;
    pub const END: u8 = 255;

    /// Sub-option codes of the relay agent information option 82.
    pub mod relay {
        /// RFC 3046 §3.1.
        pub const CIRCUIT_ID: u8 = 1;
        /// RFC 3046 §3.2.
        pub const REMOTE_ID: u8 = 2;
        /// RFC 3527.
        pub const LINK_SELECTION: u8 = 5;
        /// RFC 3993.
        pub const SUBSCRIBER_ID: u8 = 6;
        /// RFC 5107.
        pub const SERVER_ID_OVERRIDE: u8 = 11;
    }
}

/// The smallest value option 57 may carry (RFC 2132 §9.10).
pub const MIN_MAX_MESSAGE_SIZE: u16 = 576;

/// DHCP message type (option 53; RFC 2132 §9.6, RFC 3203, RFC 4388, RFC 6926, RFC 7724).
/// `Unknown` carries any value outside 1..=18, so every byte round-trips through `u8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
    ForceRenew,
    LeaseQuery,
    LeaseUnassigned,
    LeaseUnknown,
    LeaseActive,
    BulkLeaseQuery,
    LeaseQueryDone,
    ActiveLeaseQuery,
    LeaseQueryStatus,
    Tls,
    /// Any other value (0, 19..=255).
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        use MessageType::*;
        match v {
            1 => Discover,
            2 => Offer,
            3 => Request,
            4 => Decline,
            5 => Ack,
            6 => Nak,
            7 => Release,
            8 => Inform,
            9 => ForceRenew,
            10 => LeaseQuery,
            11 => LeaseUnassigned,
            12 => LeaseUnknown,
            13 => LeaseActive,
            14 => BulkLeaseQuery,
            15 => LeaseQueryDone,
            16 => ActiveLeaseQuery,
            17 => LeaseQueryStatus,
            18 => Tls,
            n => Unknown(n),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        use MessageType::*;
        match t {
            Discover => 1,
            Offer => 2,
            Request => 3,
            Decline => 4,
            Ack => 5,
            Nak => 6,
            Release => 7,
            Inform => 8,
            ForceRenew => 9,
            LeaseQuery => 10,
            LeaseUnassigned => 11,
            LeaseUnknown => 12,
            LeaseActive => 13,
            BulkLeaseQuery => 14,
            LeaseQueryDone => 15,
            ActiveLeaseQuery => 16,
            LeaseQueryStatus => 17,
            Tls => 18,
            Unknown(n) => n,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Areas: where options may live.

/// The `options` field.
const AREA_OPTIONS: u8 = 0;
/// The `file` field, when overload bit 1 is set.
const AREA_FILE: u8 = 1;
/// The `sname` field, when overload bit 2 is set.
const AREA_SNAME: u8 = 2;
/// Overload value bit: `file` holds options (RFC 2132 §9.3).
const OVERLOAD_FILE: u8 = 1;
/// Overload value bit: `sname` holds options.
const OVERLOAD_SNAME: u8 = 2;

/// Byte range of `area` in a message of `msg_len` bytes, if that area holds options.
fn area_bounds(msg_len: usize, overload: u8, area: u8) -> Option<(usize, usize)> {
    match area {
        AREA_OPTIONS => Some((field::OPTIONS, msg_len)),
        AREA_FILE if overload & OVERLOAD_FILE != 0 => Some((field::FILE.start, field::FILE.end)),
        AREA_SNAME if overload & OVERLOAD_SNAME != 0 => {
            Some((field::SNAME.start, field::SNAME.end))
        }
        _ => None,
    }
}

/// Iterator over the option instances of an already validated message, in RFC 3396 order
/// (`options`, `file`, `sname`), yielding `(code, value offset, value length)`.
/// It stops quietly on anything malformed; after [`DhcpOptions::parse`] succeeded there is none.
#[derive(Clone, Debug)]
struct Instances<'a> {
    msg: &'a [u8],
    overload: u8,
    area: u8,
    pos: usize,
    end: usize,
}

impl<'a> Instances<'a> {
    /// Resume at `pos` inside `area`.
    fn at(msg: &'a [u8], overload: u8, area: u8, pos: usize) -> Self {
        let end = area_bounds(msg.len(), overload, area).map_or(0, |(_, e)| e);
        Instances {
            msg,
            overload,
            area,
            pos,
            end,
        }
    }

    /// All instances from the start of the options field.
    fn all(msg: &'a [u8], overload: u8) -> Self {
        Self::at(msg, overload, AREA_OPTIONS, field::OPTIONS)
    }

    fn next_area(&mut self) -> bool {
        while self.area < AREA_SNAME {
            self.area += 1;
            if let Some((s, e)) = area_bounds(self.msg.len(), self.overload, self.area) {
                self.pos = s;
                self.end = e;
                return true;
            }
        }
        self.area = AREA_SNAME + 1;
        false
    }
}

impl Iterator for Instances<'_> {
    type Item = (u8, usize, u8);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.pos >= self.end {
                if !self.next_area() {
                    return None;
                }
                continue;
            }
            let code = *self.msg.get(self.pos)?;
            match code {
                opt::PAD => self.pos += 1,
                opt::END => self.pos = self.end,
                _ => {
                    let Some(&len) = self
                        .msg
                        .get(self.pos + 1)
                        .filter(|_| self.pos + 1 < self.end)
                    else {
                        self.pos = self.end;
                        continue;
                    };
                    let value = self.pos + 2;
                    let next = value + usize::from(len);
                    if next > self.end {
                        self.pos = self.end;
                        continue;
                    }
                    self.pos = next;
                    return Some((code, value, len));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Per-code summary recorded by the single pass.

/// The area an option is in, from the offset of its code byte. (The value offset alone would
/// be ambiguous: an empty option closing `sname` has its value offset at `file`'s start.)
fn area_of(code_pos: usize) -> u8 {
    if code_pos >= field::OPTIONS {
        AREA_OPTIONS
    } else if code_pos >= field::FILE.start {
        AREA_FILE
    } else {
        AREA_SNAME
    }
}

/// Where an option's instances are: the first one, and totals over all of them. This is what
/// an [`OptRef`] carries; [`DhcpOptions`] itself stores less per code (see there) and builds
/// a `Slot` when asked.
///
/// The first instance's length and area are not stored: its length byte sits just before its
/// value, and its code byte's offset tells the area ([`area_of`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    /// Offset of the first instance's value in the message (at least 2 when present).
    first: u16,
    /// Sum of all instances' lengths (the concatenated length, RFC 3396).
    total: u16,
    /// Number of instances; 0 = option absent.
    frags: u16,
}

impl Slot {
    #[inline(always)]
    fn add(&mut self, value: usize, len: u8) {
        // Exact, no truncation or wrap: `DhcpOptions::read` refuses messages longer than
        // u16::MAX bytes, so offsets, the sum of the lengths and the instance count (each
        // instance takes at least two bytes) are all below 2^16.
        if self.frags == 0 {
            self.first = value as u16;
        }
        self.total = self.total.wrapping_add(u16::from(len));
        self.frags = self.frags.wrapping_add(1);
    }

    /// Offset and length of the value when it is a single instance.
    fn single(&self) -> Option<(usize, usize)> {
        (self.frags == 1).then_some((usize::from(self.first), usize::from(self.total)))
    }
}

/// Codes with a fixed slot (read by the decision on most packets); slot `i` is `KNOWN[i]`.
/// The order matters: slots 0 to 5 are the options with a fixed length, whose lengths are
/// checked together as one word ([`FIXED_LEN`]), and slot 6 is the client identifier with
/// its minimum length.
const KNOWN: [u8; 14] = [
    opt::MESSAGE_TYPE,
    opt::REQUESTED_IP,
    opt::SERVER_ID,
    opt::SUBNET_SELECTION,
    opt::LEASE_TIME,
    opt::MAX_MESSAGE_SIZE,
    opt::CLIENT_ID,
    opt::OVERLOAD,
    opt::HOSTNAME,
    opt::PARAMETER_REQUEST_LIST,
    opt::VENDOR_CLASS,
    opt::RAPID_COMMIT,
    opt::CLIENT_FQDN,
    opt::RELAY_AGENT_INFO,
];

/// Slots in [`DhcpOptions`]: the last one, [`OTHER`], takes every code not in [`KNOWN`] (and
/// is never read), so recording an option needs no branch; a power of two, so a masked index
/// needs no bounds check.
const SLOTS: usize = 16;
/// The slot of the codes not in [`KNOWN`]. The last, so that the first eight slots, whose
/// counts and lengths are checked as whole words, are all known codes.
const OTHER: u8 = SLOTS as u8 - 1;
const _: () = assert!(KNOWN.len() <= OTHER as usize && SLOTS.is_power_of_two());

/// [`KNOWN_INDEX`] entry of PAD and END, which are not options.
const PAD_OR_END: u8 = 0x80;

/// `KNOWN_INDEX[code]` = slot for codes in [`KNOWN`], [`PAD_OR_END`] for PAD and END,
/// [`OTHER`] otherwise: the code's slot in [`DhcpOptions`].
const KNOWN_INDEX: [u8; 256] = {
    let mut t = [OTHER; 256];
    t[opt::PAD as usize] = PAD_OR_END;
    t[opt::END as usize] = PAD_OR_END;
    let mut i = 0;
    while i < KNOWN.len() {
        t[KNOWN[i] as usize] = i as u8;
        i += 1;
    }
    t
};

const fn known_slot(code: u8) -> Option<usize> {
    match KNOWN_INDEX[code as usize] {
        OTHER | PAD_OR_END => None,
        n => Some(n as usize),
    }
}

/// Index in [`DhcpOptions`]' slots of a code in [`KNOWN`]. Only used to define the `K_*`
/// constants below, so a code missing from `KNOWN` is a compile error, never a run-time panic.
const fn ks(code: u8) -> usize {
    match known_slot(code) {
        Some(i) => i,
        None => panic!("code not in KNOWN"),
    }
}

const K_MESSAGE_TYPE: usize = ks(opt::MESSAGE_TYPE);
const K_REQUESTED_IP: usize = ks(opt::REQUESTED_IP);
const K_SERVER_ID: usize = ks(opt::SERVER_ID);
const K_SUBNET_SELECTION: usize = ks(opt::SUBNET_SELECTION);
const K_LEASE_TIME: usize = ks(opt::LEASE_TIME);
const K_MAX_MESSAGE_SIZE: usize = ks(opt::MAX_MESSAGE_SIZE);
const K_CLIENT_ID: usize = ks(opt::CLIENT_ID);
const K_OVERLOAD: usize = ks(opt::OVERLOAD);
const K_HOSTNAME: usize = ks(opt::HOSTNAME);
const K_PRL: usize = ks(opt::PARAMETER_REQUEST_LIST);
const K_VENDOR_CLASS: usize = ks(opt::VENDOR_CLASS);
const K_RELAY_AGENT_INFO: usize = ks(opt::RELAY_AGENT_INFO);

/// The length each slot's (joined) value must have, 0 where none is fixed: 53 is one byte
/// (RFC 2132 §9.6), 50, 54, 118 and 51 four (RFC 2132 §9.1, §9.7, §9.2; RFC 3011 §3), 57 two
/// (RFC 2132 §9.10). All in slots 0 to 6, so one 64-bit word of [`DhcpOptions`]' lengths holds
/// them (and [`FIXED_MASK`] selects them).
const FIXED_LEN: [u8; 8] = {
    let mut t = [0u8; 8];
    t[K_MESSAGE_TYPE] = 1;
    t[K_REQUESTED_IP] = 4;
    t[K_SERVER_ID] = 4;
    t[K_SUBNET_SELECTION] = 4;
    t[K_LEASE_TIME] = 4;
    t[K_MAX_MESSAGE_SIZE] = 2;
    t
};

/// The bytes of [`FIXED_LEN`] that are rules (0xff) rather than "any length" (0).
const FIXED_MASK: u64 = {
    let mut m = 0u64;
    let mut k = 0;
    while k < FIXED_LEN.len() {
        if FIXED_LEN[k] != 0 {
            m |= 0xff << (8 * k);
        }
        k += 1;
    }
    m
};

/// The client identifier's minimum length (RFC 2132 §9.14: "minimum length is 2").
const MIN_CLIENT_ID_LEN: u8 = 2;

/// The length an *absent* option leaves in [`DhcpOptions`]' length table: one its rule
/// accepts, so that the check after the walk needs no presence test. Lengths are only ever
/// read for a present option otherwise.
const ABSENT_LEN: [u8; SLOTS] = {
    let mut t = [0u8; SLOTS];
    let mut k = 0;
    while k < FIXED_LEN.len() {
        t[k] = FIXED_LEN[k];
        k += 1;
    }
    t[K_CLIENT_ID] = MIN_CLIENT_ID_LEN;
    t
};
const _: () = assert!(K_CLIENT_ID < FIXED_LEN.len() && FIXED_LEN[K_CLIENT_ID] == 0);

/// The options of a validated DHCP message, borrowing it. `Copy`, no heap.
///
/// Per known code it holds what one walk can record with three stores and no branch: how many
/// instances there are, where one of them is, and its length. For the usual single instance
/// that is the whole answer; for an option split over several instances (RFC 3396) the
/// accessors walk the options again.
#[derive(Clone, Copy)]
pub struct DhcpOptions<'a> {
    /// The whole BOOTP message (fixed header + options).
    msg: &'a [u8],
    /// Per slot ([`KNOWN_INDEX`]; slot [`OTHER`] collects all other codes and is never read): the
    /// number of instances, 0 when absent.
    count: [u16; SLOTS],
    /// Per slot: the value offset in `msg` of its last instance (its only one when
    /// `count` is 1, the only case it is read).
    at: [u16; SLOTS],
    /// Per slot: the length of that instance; [`ABSENT_LEN`] when the option is absent.
    len: [u8; SLOTS],
    /// Option overload value (0 if none).
    overload: u8,
}

impl<'a> DhcpOptions<'a> {
    /// No options yet; [`Self::read`] fills them in.
    #[inline(always)]
    fn empty(msg: &'a [u8]) -> Self {
        DhcpOptions {
            msg,
            count: [0; SLOTS],
            at: [0; SLOTS],
            len: ABSENT_LEN,
            overload: 0,
        }
    }

    /// The exact summary of slot `k`: read off the table for zero or one instance, by a walk
    /// over the options for a split one (RFC 3396; rare, so kept out of line).
    #[inline(always)]
    fn slot(&self, k: usize) -> Slot {
        let k = k & (SLOTS - 1);
        match self.count[k] {
            0 => Slot::default(),
            1 => Slot {
                first: self.at[k],
                total: u16::from(self.len[k]),
                frags: 1,
            },
            _ => self.split_slot(k),
        }
    }

    /// [`Self::slot`] of a split option: every instance, found by walking.
    #[cold]
    #[inline(never)]
    fn split_slot(&self, k: usize) -> Slot {
        KNOWN
            .get(k)
            .map_or_else(Slot::default, |&code| self.walk_slot(code))
    }

    /// The summary of `code` by a walk over all its instances.
    fn walk_slot(&self, code: u8) -> Slot {
        let mut slot = Slot::default();
        for (c, value, len) in Instances::all(self.msg, self.overload) {
            if c == code {
                slot.add(value, len);
            }
        }
        slot
    }

    /// Walk one area, recording every instance. `upto` is the message cut at the area's end,
    /// and `start` the area's offset: positions are the message's, so an instance's offset is
    /// its position, and the reads need no other bounds than `upto`'s. `IN_OPTIONS` is true
    /// for the `options` field, the only area that may carry option overload (52). Returns
    /// whether END was seen.
    ///
    /// WHY this shape (it runs for every option of every packet, ~16 instructions each):
    /// * the loop runs while a code *and* a length byte remain, one comparison for both;
    /// * one table load gives the option's slot, or marks PAD and END;
    /// * recording an instance is three stores and no branch (a count, an offset, a length;
    ///   see [`DhcpOptions`]), where keeping the first instance and a running total needed a
    ///   load, a branch and two read-modify-writes; the length rules are checked once
    ///   afterwards ([`Self::validate`]);
    /// * an option running past the area is recorded like the others and, its end being
    ///   beyond the loop's bound, ends the loop; it is caught once, after the loop. (An error
    ///   discards the whole table, so the record does no harm.)
    #[inline(always)]
    fn scan_area<const IN_OPTIONS: bool>(
        &mut self,
        upto: &[u8],
        start: usize,
    ) -> Result<bool, DropReason> {
        let n = upto.len();
        let Some(last) = n.checked_sub(1) else {
            // Unreachable: every area is at least 64 bytes long.
            return Ok(false);
        };
        let mut pos = start;
        while pos < last {
            let (code, len) = (upto[pos], upto[pos + 1]);
            let slot = KNOWN_INDEX[usize::from(code)];
            if slot == PAD_OR_END {
                if code == opt::END {
                    return Ok(true);
                }
                pos += 1;
                continue;
            }
            let k = usize::from(slot) & (SLOTS - 1);
            // Below 2^15: an instance takes at least two of the < 2^16 bytes.
            self.count[k] = self.count[k].wrapping_add(1);
            // Exact: `read` refuses messages longer than u16::MAX bytes.
            self.at[k] = (pos + 2) as u16;
            self.len[k] = len;
            pos += 2 + usize::from(len);
            // RFC 2131 §4.1: overload lives in `options`; in `file`/`sname` it would loop. An
            // overrun is reported first, as for any option.
            if !IN_OPTIONS && code == opt::OVERLOAD {
                return Err(if pos > n {
                    DropReason::OptionTruncated
                } else {
                    DropReason::BadOverload
                });
            }
        }
        // The value must lie inside this area.
        if pos > n {
            return Err(DropReason::OptionTruncated);
        }
        // At most one byte is left: PAD, END, or an option code without its length byte.
        match upto.get(pos) {
            None | Some(&opt::PAD) => Ok(false),
            Some(&opt::END) => Ok(true),
            Some(_) => Err(DropReason::OptionTruncated),
        }
    }

    /// Parse the options of `msg` (a BOOTP message whose fixed header and cookie were checked).
    /// The tests' entry point; [`parse_into`] walks a request's options in place.
    #[cfg(test)]
    pub(crate) fn parse(msg: &'a [u8]) -> Result<Self, DropReason> {
        let mut o = Self::empty(msg);
        o.read()?;
        Ok(o)
    }

    /// Walk and validate the options of `self.msg` into `self` (built by [`Self::empty`]).
    #[inline(always)]
    fn read(&mut self) -> Result<(), DropReason> {
        let msg = self.msg;
        if msg.len() > usize::from(u16::MAX) {
            // Unreachable through `wire::parse` (bounded by the IPv4 total length); keeps the
            // u16 offsets exact.
            return Err(DropReason::UdpBadLength);
        }
        if msg.len() < field::OPTIONS {
            // Unreachable through `wire::parse`, which checks the fixed header first.
            return Err(DropReason::BootpTruncated);
        }
        let end_in_options = self.scan_area::<true>(msg, field::OPTIONS)?;
        if self.count[K_OVERLOAD] != 0 {
            self.read_overloaded(end_in_options)?;
        }
        self.validate()
    }

    /// Option overload (52) is present: check it and walk the areas it names. Out of line:
    /// hardly any client uses it.
    #[cold]
    #[inline(never)]
    fn read_overloaded(&mut self, end_in_options: bool) -> Result<(), DropReason> {
        let msg = self.msg;
        // Each area as the message cut at its end (see `scan_area`).
        let (Some(file), Some(sname)) = (msg.get(..field::FILE.end), msg.get(..field::SNAME.end))
        else {
            // Unreachable through `wire::parse`, which checks the fixed header first.
            return Err(DropReason::BootpTruncated);
        };
        // RFC 2132 §9.3: length 1, value 1 (file), 2 (sname) or 3 (both). Read while
        // `self.overload` is still 0, so a split 52 is joined from `options` alone.
        self.overload = match self.known_fixed::<1>(K_OVERLOAD) {
            Some([v @ 1..=3]) => v,
            _ => return Err(DropReason::BadOverload),
        };
        // RFC 2131 §4.1: with overload, `options` MUST end with END, and so must `file` and
        // `sname` when they carry options.
        if !end_in_options {
            return Err(DropReason::OptionsUnterminated);
        }
        // RFC 3396 §6 / RFC 2131 §4.1: `file` is read before `sname`.
        if self.overload & OVERLOAD_FILE != 0
            && !self.scan_area::<false>(file, field::FILE.start)?
        {
            return Err(DropReason::OptionsUnterminated);
        }
        if self.overload & OVERLOAD_SNAME != 0
            && !self.scan_area::<false>(sname, field::SNAME.start)?
        {
            return Err(DropReason::OptionsUnterminated);
        }
        Ok(())
    }

    /// Fixed-size and structural checks; see the policy table in the module docs.
    ///
    /// With every option that has a length rule present at most once, each one's length is
    /// its only instance's, and absent ones hold a length their rule accepts ([`ABSENT_LEN`]): the
    /// six fixed lengths are one masked 64-bit comparison, the client identifier's minimum
    /// one more. A split option (RFC 3396) is checked on its joined length instead, by
    /// [`Self::validate_split`].
    #[inline(always)]
    fn validate(&self) -> Result<(), DropReason> {
        if self.count[K_MESSAGE_TYPE] == 0 {
            return Err(DropReason::NoMessageType);
        }
        // Any of slots 0 to 7 (the options with a length rule, and 52) seen more than once.
        // (Option 82 is checked below, where a split one fails as not being one instance.)
        let c = &self.count;
        let word = |i: usize| {
            u64::from(c[i])
                | u64::from(c[i + 1]) << 16
                | u64::from(c[i + 2]) << 32
                | u64::from(c[i + 3]) << 48
        };
        if (word(0) | word(4)) & 0xfffe_fffe_fffe_fffe != 0 {
            return self.validate_split();
        }
        let [l0, l1, l2, l3, l4, l5, l6, l7, ..] = self.len;
        let fixed = u64::from_le_bytes([l0, l1, l2, l3, l4, l5, l6, l7]);
        if (fixed ^ u64::from_le_bytes(FIXED_LEN)) & FIXED_MASK != 0
            || self.len[K_CLIENT_ID] < MIN_CLIENT_ID_LEN
        {
            return Err(DropReason::BadOptionLength);
        }
        if self.count[K_RELAY_AGENT_INFO] != 0 {
            return self.validate_relay();
        }
        Ok(())
    }

    /// [`Self::validate`] when an option with a length rule is split: the same rules on the
    /// joined lengths ([`Self::slot`] walks for each split option).
    #[cold]
    #[inline(never)]
    fn validate_split(&self) -> Result<(), DropReason> {
        let total = |k: usize| self.slot(k).total;
        let present = |k: usize| self.count[k & (SLOTS - 1)] != 0;
        let mut k = 0;
        while k < FIXED_LEN.len() {
            if FIXED_LEN[k] != 0 && present(k) && total(k) != u16::from(FIXED_LEN[k]) {
                return Err(DropReason::BadOptionLength);
            }
            k += 1;
        }
        if present(K_CLIENT_ID) && total(K_CLIENT_ID) < u16::from(MIN_CLIENT_ID_LEN) {
            return Err(DropReason::BadOptionLength);
        }
        if present(K_RELAY_AGENT_INFO) {
            return self.validate_relay();
        }
        Ok(())
    }

    /// Option 82 is present: one instance whose sub-options exactly fill it (RFC 3046 §2.0).
    #[inline(never)]
    fn validate_relay(&self) -> Result<(), DropReason> {
        match self.relay_raw() {
            Some(raw) if sub_options_well_formed(raw) => Ok(()),
            _ => Err(DropReason::BadOptionLength),
        }
    }

    /// Option 82's value when it is present as one instance.
    fn relay_raw(&self) -> Option<&'a [u8]> {
        let (start, len) = self.slot(K_RELAY_AGENT_INFO).single()?;
        self.msg.get(start..start + len)
    }

    /// The value of the known option in slot `k` as exactly `N` bytes, or `None` if absent or
    /// of another length. The usual single instance is one bounds-checked read.
    #[inline(always)]
    fn known_fixed<const N: usize>(&self, k: usize) -> Option<[u8; N]> {
        const { assert!(N > 0) };
        let k = k & (SLOTS - 1);
        match self.count[k] {
            0 => None,
            1 => {
                if usize::from(self.len[k]) != N {
                    return None;
                }
                let start = usize::from(self.at[k]);
                self.msg.get(start..start + N)?.try_into().ok()
            }
            _ => self.split_fixed(k),
        }
    }

    /// [`Self::known_fixed`] of an option split over several instances (RFC 3396): joined.
    #[cold]
    #[inline(never)]
    fn split_fixed<const N: usize>(&self, k: usize) -> Option<[u8; N]> {
        self.known_ref(k)?.fixed::<N>()
    }

    #[inline(always)]
    fn known_ref(&self, k: usize) -> Option<OptRef<'a>> {
        let code = *KNOWN.get(k)?;
        self.make_ref(code, self.slot(k))
    }

    #[inline(always)]
    fn make_ref(&self, code: u8, slot: Slot) -> Option<OptRef<'a>> {
        (slot.frags > 0).then_some(OptRef {
            msg: self.msg,
            code,
            overload: self.overload,
            slot,
        })
    }

    /// The option `code`, all its instances joined (RFC 3396); `None` if absent.
    /// PAD (0) and END (255) are not options and always give `None`.
    pub fn get(&self, code: u8) -> Option<OptRef<'a>> {
        match KNOWN_INDEX[usize::from(code)] {
            PAD_OR_END => None,
            // Not summarised by the parse (the decision never asks for it): walk.
            OTHER => self.make_ref(code, self.walk_slot(code)),
            k => self.make_ref(code, self.slot(usize::from(k))),
        }
    }

    /// Message type (option 53). Always present after a successful parse.
    pub fn message_type(&self) -> MessageType {
        self.known_fixed::<1>(K_MESSAGE_TYPE)
            .map_or(MessageType::Unknown(0), |[t]| MessageType::from(t))
    }

    fn ipv4(&self, slot: usize) -> Option<Ipv4Addr> {
        self.known_fixed::<4>(slot).map(Ipv4Addr::from)
    }

    /// Requested IP address (option 50, RFC 2132 §9.1).
    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        self.ipv4(K_REQUESTED_IP)
    }

    /// Server identifier (option 54, RFC 2132 §9.7).
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.ipv4(K_SERVER_ID)
    }

    /// Subnet selection (option 118, RFC 3011).
    pub fn subnet_selection(&self) -> Option<Ipv4Addr> {
        self.ipv4(K_SUBNET_SELECTION)
    }

    /// Requested lease time in seconds (option 51, RFC 2132 §9.2).
    pub fn lease_time(&self) -> Option<u32> {
        self.known_fixed::<4>(K_LEASE_TIME).map(u32::from_be_bytes)
    }

    /// Maximum DHCP message size (option 57, RFC 2132 §9.10); `None` if absent or below the
    /// legal minimum of 576, in which case 576 applies.
    pub fn max_message_size(&self) -> Option<u16> {
        self.known_fixed::<2>(K_MAX_MESSAGE_SIZE)
            .map(u16::from_be_bytes)
            .filter(|&v| v >= MIN_MAX_MESSAGE_SIZE)
    }

    /// Client identifier (option 61, RFC 2132 §9.14); at least 2 bytes.
    pub fn client_id(&self) -> Option<OptRef<'a>> {
        self.known_ref(K_CLIENT_ID)
    }

    /// Parameter request list (option 55, RFC 2132 §9.8): one option code per byte.
    pub fn parameter_request_list(&self) -> Option<OptRef<'a>> {
        self.known_ref(K_PRL)
    }

    /// Host name (option 12, RFC 2132 §3.14); `None` if absent or empty.
    pub fn hostname(&self) -> Option<OptRef<'a>> {
        self.known_ref(K_HOSTNAME).filter(|r| !r.is_empty())
    }

    /// Vendor class identifier (option 60, RFC 2132 §9.13).
    pub fn vendor_class(&self) -> Option<OptRef<'a>> {
        self.known_ref(K_VENDOR_CLASS)
    }

    /// Relay agent information (option 82, RFC 3046), validated by `parse`.
    pub fn relay_agent(&self) -> Option<RelayAgentInfo<'a>> {
        self.relay_raw().map(|raw| RelayAgentInfo { raw })
    }

    /// Option overload value (option 52): 0 none, 1 `file`, 2 `sname`, 3 both carry options.
    /// When set, those fields are not a file / server name.
    pub fn overload(&self) -> u8 {
        self.overload
    }
}

impl fmt::Debug for DhcpOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        let mut seen = [false; 256];
        for (code, _, _) in Instances::all(self.msg, self.overload) {
            if !core::mem::replace(&mut seen[usize::from(code)], true)
                && let Some(r) = self.get(code)
            {
                l.entry(&r);
            }
        }
        l.finish()
    }
}

// ---------------------------------------------------------------------------------------------

/// One option's value, possibly split over several instances (RFC 3396), borrowing the frame.
/// No heap: read it with [`contiguous`](Self::contiguous) (one instance, the usual case),
/// [`fragments`](Self::fragments), [`bytes`](Self::bytes) or [`copy_into`](Self::copy_into).
#[derive(Clone, Copy)]
pub struct OptRef<'a> {
    msg: &'a [u8],
    code: u8,
    overload: u8,
    slot: Slot,
}

impl<'a> OptRef<'a> {
    /// The option code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// Length of the joined value.
    pub fn len(&self) -> usize {
        usize::from(self.slot.total)
    }

    /// True if the joined value is empty.
    pub fn is_empty(&self) -> bool {
        self.slot.total == 0
    }

    /// Number of instances the value is split into (>= 1).
    pub fn fragment_count(&self) -> usize {
        usize::from(self.slot.frags)
    }

    /// The value as one slice when it is a single instance.
    pub fn contiguous(&self) -> Option<&'a [u8]> {
        let (start, len) = self.slot.single()?;
        self.msg.get(start..start + len)
    }

    /// The instances' values, in RFC 3396 order.
    pub fn fragments(&self) -> Fragments<'a> {
        let first = usize::from(self.slot.first);
        // The first instance's length byte precedes its value, its code byte that (`Slot`).
        let first_len = first
            .checked_sub(1)
            .and_then(|at| self.msg.get(at))
            .map_or(0, |&l| usize::from(l));
        let area = area_of(first.saturating_sub(2));
        Fragments {
            first: self.msg.get(first..first + first_len),
            rest: Instances::at(self.msg, self.overload, area, first + first_len),
            code: self.code,
            remaining: self.slot.frags,
        }
    }

    /// The joined value, byte by byte.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + 'a {
        self.fragments().flatten().copied()
    }

    /// Copy the joined value into `out`, truncated to `out.len()`; returns the copied part.
    pub fn copy_into<'o>(&self, out: &'o mut [u8]) -> &'o [u8] {
        let mut n = 0;
        for frag in self.fragments() {
            let Some(dst) = out.get_mut(n..) else { break };
            let k = frag.len().min(dst.len());
            dst[..k].copy_from_slice(&frag[..k]);
            n += k;
            if n == out.len() {
                break;
            }
        }
        &out[..n]
    }

    /// True if the joined value equals `other` (no copy).
    pub fn eq_slice(&self, other: &[u8]) -> bool {
        if other.len() != self.len() {
            return false;
        }
        let mut rest = other;
        for frag in self.fragments() {
            let Some((head, tail)) = rest.split_at_checked(frag.len()) else {
                return false;
            };
            if head != frag {
                return false;
            }
            rest = tail;
        }
        rest.is_empty()
    }

    /// The value as exactly `N` bytes, or `None` if its length differs.
    pub fn fixed<const N: usize>(&self) -> Option<[u8; N]> {
        if self.len() != N {
            return None;
        }
        // The usual single instance: a direct read, no walk over the fragments.
        if let Some(v) = self.contiguous() {
            return v.try_into().ok();
        }
        let mut out = [0u8; N];
        (self.copy_into(&mut out).len() == N).then_some(out)
    }
}

impl fmt::Debug for OptRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.code)?;
        for b in self.bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Iterator over the instances of one option ([`OptRef::fragments`]).
#[derive(Clone, Debug)]
pub struct Fragments<'a> {
    first: Option<&'a [u8]>,
    rest: Instances<'a>,
    code: u8,
    remaining: u16,
}

impl<'a> Iterator for Fragments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        if let Some(f) = self.first.take() {
            return Some(f);
        }
        let code = self.code;
        let (_, value, len) = self.rest.by_ref().find(|(c, _, _)| *c == code)?;
        self.rest.msg.get(value..value + usize::from(len))
    }
}

// ---------------------------------------------------------------------------------------------

fn sub_options_well_formed(raw: &[u8]) -> bool {
    let mut rest = raw;
    while let [_, len, tail @ ..] = rest {
        match tail.split_at_checked(usize::from(*len)) {
            Some((_, next)) => rest = next,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Relay agent information (option 82, RFC 3046): sub-options added by the relay.
/// RFC 3046 §2.2: the server copies the whole option into its reply; use [`raw`](Self::raw).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayAgentInfo<'a> {
    raw: &'a [u8],
}

impl<'a> RelayAgentInfo<'a> {
    /// The option's value exactly as received, to echo in the reply.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Sub-options as `(code, value)`, in wire order.
    pub fn sub_options(&self) -> SubOptions<'a> {
        SubOptions { rest: self.raw }
    }

    /// First sub-option with `code`.
    pub fn sub_option(&self, code: u8) -> Option<&'a [u8]> {
        self.sub_options().find(|(c, _)| *c == code).map(|(_, v)| v)
    }

    /// Agent circuit ID (sub-option 1, RFC 3046 §3.1).
    pub fn circuit_id(&self) -> Option<&'a [u8]> {
        self.sub_option(opt::relay::CIRCUIT_ID)
    }

    /// Agent remote ID (sub-option 2, RFC 3046 §3.2).
    pub fn remote_id(&self) -> Option<&'a [u8]> {
        self.sub_option(opt::relay::REMOTE_ID)
    }

    /// Link selection (sub-option 5, RFC 3527); `None` unless exactly 4 bytes.
    pub fn link_selection(&self) -> Option<Ipv4Addr> {
        let v: [u8; 4] = self
            .sub_option(opt::relay::LINK_SELECTION)?
            .try_into()
            .ok()?;
        Some(Ipv4Addr::from(v))
    }

    /// Subscriber ID (sub-option 6, RFC 3993).
    pub fn subscriber_id(&self) -> Option<&'a [u8]> {
        self.sub_option(opt::relay::SUBSCRIBER_ID)
    }

    /// Server identifier override (sub-option 11, RFC 5107); `None` unless exactly 4 bytes.
    pub fn server_id_override(&self) -> Option<Ipv4Addr> {
        let v: [u8; 4] = self
            .sub_option(opt::relay::SERVER_ID_OVERRIDE)?
            .try_into()
            .ok()?;
        Some(Ipv4Addr::from(v))
    }
}

/// Iterator over the sub-options of option 82.
#[derive(Clone, Debug)]
pub struct SubOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SubOptions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let [code, len, tail @ ..] = self.rest else {
            self.rest = &[];
            return None;
        };
        let Some((value, next)) = tail.split_at_checked(usize::from(*len)) else {
            self.rest = &[];
            return None;
        };
        self.rest = next;
        Some((*code, value))
    }
}

// ---------------------------------------------------------------------------------------------

/// Validate the BOOTP message `msg` (the UDP payload) and write the [`Request`] into `out`.
/// On an error `out` is unchanged or holds a partly filled request, over which
/// [`super::parse_into`] stores the error.
///
/// WHY in place: the request is 184 bytes. Built in a local and returned by value it
/// was copied into the result and again into the caller's record (two `memcpy` calls per
/// packet), and the option table, written at run-time indices, cannot live in registers. So
/// the request is stored into `out` once the fixed header passed its checks, and the options
/// are walked straight into its table.
#[inline(always)]
pub(crate) fn parse_into<'a>(
    l2: L2Header,
    ip: &ipv4::Header,
    udp: &udp::Header,
    msg: &'a [u8],
    out: &mut Result<Request<'a>, DropReason>,
) -> Result<(), DropReason> {
    // One length check; the fixed fields below are constant-index reads of this array.
    let Some(fixed) = msg.first_chunk::<{ field::OPTIONS }>() else {
        return Err(DropReason::BootpTruncated);
    };
    if fixed[field::OP] != BOOTREQUEST {
        return Err(DropReason::NotBootRequest);
    }
    let htype = fixed[field::HTYPE];
    let hlen = fixed[field::HLEN];
    // chaddr has 16 bytes; anything longer would make `hwaddr()` read past it. An Ethernet
    // client (htype 1) has a 6-byte address: another hlen would give it a wrong identity
    // (RFC 2132 §9.14 keys clients on htype + chaddr) and a wrong L2 reply address.
    if hlen > 16 || (htype == HTYPE_ETHERNET && hlen != 6) {
        return Err(DropReason::BadHlen);
    }
    if fixed[field::COOKIE] != MAGIC_COOKIE {
        return Err(DropReason::BadCookie);
    }
    let be16 = |at: usize| u16::from_be_bytes([fixed[at], fixed[at + 1]]);
    let be32 =
        |at: usize| u32::from_be_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]]);
    let addr = |at: usize| Ipv4Addr::from(be32(at));
    let mut chaddr = [0u8; 16];
    chaddr.copy_from_slice(&fixed[field::CHADDR]);
    *out = Ok(Request {
        l2,
        ip_src: ip.src(),
        ip_dst: ip.dst(),
        udp_src: udp.src_port,
        udp_dst: udp.dst_port,
        htype,
        hlen,
        hops: fixed[field::HOPS],
        xid: be32(field::XID.start),
        secs: be16(field::SECS.start),
        flags: be16(field::FLAGS.start),
        ciaddr: addr(field::CIADDR.start),
        yiaddr: addr(field::YIADDR.start),
        siaddr: addr(field::SIADDR.start),
        giaddr: addr(field::GIADDR.start),
        chaddr,
        options: DhcpOptions::empty(msg),
    });
    match out {
        Ok(req) => req.options.read(),
        // Not reached: `Ok` was just stored.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::bootp;
    use super::*;

    fn opts(msg: &[u8]) -> Result<DhcpOptions<'_>, DropReason> {
        DhcpOptions::parse(msg)
    }

    /// A 64-byte `sname` or 128-byte `file` area from option bytes (zero padded).
    fn area(bytes: &[u8], len: usize) -> Vec<u8> {
        let mut v = bytes.to_vec();
        v.resize(len, 0);
        v
    }

    const DISCOVER: [u8; 3] = [53, 1, 1];

    #[test]
    fn single_instances() {
        let m = bootp(
            &[],
            &[],
            &[
                53, 1, 3, 50, 4, 10, 0, 0, 7, 0, 0, 61, 3, 1, 0xaa, 0xbb, 255,
            ],
        );
        let o = opts(&m).unwrap();
        assert_eq!(o.message_type(), MessageType::Request);
        assert_eq!(o.requested_ip(), Some(Ipv4Addr::new(10, 0, 0, 7)));
        let cid = o.client_id().unwrap();
        assert_eq!(cid.contiguous(), Some(&[1, 0xaa, 0xbb][..]));
        assert_eq!(cid.fragment_count(), 1);
        assert_eq!(cid.code(), opt::CLIENT_ID);
        assert!(o.server_id().is_none());
        assert!(o.lease_time().is_none());
        assert!(o.get(opt::PAD).is_none());
        assert!(o.get(opt::END).is_none());
        assert_eq!(o.overload(), 0);
    }

    #[test]
    fn concatenation_in_options_field() {
        // RFC 3396: 61 appears twice, with another option in between.
        let m = bootp(
            &[],
            &[],
            &[61, 3, 1, 0xaa, 0xbb, 53, 1, 1, 0, 0, 61, 2, 0xcc, 0xdd, 255],
        );
        let o = opts(&m).unwrap();
        let cid = o.client_id().unwrap();
        assert_eq!(cid.len(), 5);
        assert_eq!(cid.fragment_count(), 2);
        assert_eq!(cid.contiguous(), None);
        let frags: Vec<&[u8]> = cid.fragments().collect();
        assert_eq!(frags, [&[1, 0xaa, 0xbb][..], &[0xcc, 0xdd][..]]);
        let mut out = [0u8; 16];
        assert_eq!(cid.copy_into(&mut out), &[1, 0xaa, 0xbb, 0xcc, 0xdd]);
        let mut short = [0u8; 4];
        assert_eq!(cid.copy_into(&mut short), &[1, 0xaa, 0xbb, 0xcc]);
        let mut shorter = [0u8; 2];
        assert_eq!(cid.copy_into(&mut shorter), &[1, 0xaa]);
        assert_eq!(cid.copy_into(&mut []), &[] as &[u8]);
        assert!(cid.eq_slice(&[1, 0xaa, 0xbb, 0xcc, 0xdd]));
        assert!(!cid.eq_slice(&[1, 0xaa, 0xbb, 0xcc, 0xde]));
        assert!(!cid.eq_slice(&[1, 0xaa, 0xbb, 0xcc]));
        assert_eq!(cid.bytes().collect::<Vec<_>>(), [1, 0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(format!("{cid:?}"), "61:01aabbccdd");
    }

    #[test]
    fn concatenation_across_areas_in_rfc3396_order() {
        // options, then file, then sname, although sname comes first in memory.
        let sname = area(&[61, 1, 0x33, 255], 64);
        let file = area(&[61, 1, 0x22, 12, 2, b'h', b'i', 255], 128);
        let m = bootp(&sname, &file, &[53, 1, 1, 52, 1, 3, 61, 2, 1, 0x11, 255]);
        let o = opts(&m).unwrap();
        assert_eq!(o.overload(), 3);
        let cid = o.client_id().unwrap();
        assert_eq!(cid.bytes().collect::<Vec<_>>(), [1, 0x11, 0x22, 0x33]);
        assert_eq!(cid.fragment_count(), 3);
        assert_eq!(o.hostname().unwrap().contiguous(), Some(&b"hi"[..]));
        // an option whose first instance is in `file` continues in `sname`
        let sname = area(&[60, 2, b'c', b'd', 255], 64);
        let file = area(&[60, 2, b'a', b'b', 255], 128);
        let m = bootp(&sname, &file, &[52, 1, 3, 53, 1, 1, 255]);
        let o = opts(&m).unwrap();
        assert_eq!(
            o.vendor_class().unwrap().bytes().collect::<Vec<_>>(),
            b"abcd"
        );
    }

    #[test]
    fn split_option_whose_first_instance_is_empty_and_ends_file() {
        // The first instance of 60 is empty and the last option of `file`; the rest follows
        // in `sname`, which ends with an empty 12. A slot stores neither the length nor the
        // area of the first instance (they are read back from the message), so this checks
        // that derivation where it is most fragile: zero lengths next to an area's end.
        let mut file = vec![0u8; 128];
        file[124..127].copy_from_slice(&[60, 0, 255]);
        let mut sname = vec![0u8; 64];
        sname[..4].copy_from_slice(&[60, 2, b'a', b'b']);
        sname[60..63].copy_from_slice(&[12, 0, 255]);
        let m = bootp(&sname, &file, &[53, 1, 1, 52, 1, 3, 255]);
        let o = opts(&m).unwrap();
        let r = o.vendor_class().unwrap();
        assert_eq!(r.fragment_count(), 2);
        assert_eq!(r.len(), 2);
        assert_eq!(r.contiguous(), None);
        assert_eq!(r.fragments().collect::<Vec<_>>(), [&[][..], &b"ab"[..]]);
        assert_eq!(r.bytes().collect::<Vec<_>>(), b"ab");
        assert!(r.eq_slice(b"ab"));
        let h = o.get(opt::HOSTNAME).unwrap();
        assert_eq!((h.len(), h.fragment_count()), (0, 1));
        assert_eq!(h.contiguous(), Some(&[][..]));
        assert_eq!(h.fragments().collect::<Vec<_>>(), [&[][..]]);
        assert!(o.hostname().is_none(), "an empty host name is ignored");
    }

    #[test]
    fn overload_selects_areas() {
        let sname = area(&[12, 2, b's', b'n', 255], 64);
        let file = area(&[60, 2, b'f', b'i', 255], 128);
        // 1: only file carries options; sname is a name and must not be parsed.
        let m = bootp(&sname, &file, &[52, 1, 1, 53, 1, 1, 255]);
        let o = opts(&m).unwrap();
        assert!(o.hostname().is_none());
        assert_eq!(o.vendor_class().unwrap().contiguous(), Some(&b"fi"[..]));
        // 2: only sname.
        let m = bootp(&sname, &file, &[52, 1, 2, 53, 1, 1, 255]);
        let o = opts(&m).unwrap();
        assert_eq!(o.hostname().unwrap().contiguous(), Some(&b"sn"[..]));
        assert!(o.vendor_class().is_none());
        // without overload neither is parsed
        let m = bootp(&sname, &file, &[53, 1, 1, 255]);
        let o = opts(&m).unwrap();
        assert!(o.hostname().is_none() && o.vendor_class().is_none());
        // the message type itself may live in file
        let file = area(&[53, 1, 8, 255], 128);
        let m = bootp(&[], &file, &[52, 1, 1, 255]);
        assert_eq!(opts(&m).unwrap().message_type(), MessageType::Inform);
    }

    #[test]
    fn overload_errors() {
        let end_file = area(&[255], 128);
        let end_sname = area(&[255], 64);
        for (sname, file, options) in [
            // 52 inside file / sname would loop
            (
                &end_sname,
                &area(&[52, 1, 1, 255], 128),
                &[53, 1, 1, 52, 1, 3, 255][..],
            ),
            (
                &area(&[52, 1, 2, 255], 64),
                &end_file,
                &[53, 1, 1, 52, 1, 3, 255][..],
            ),
            // bad values and lengths
            (&end_sname, &end_file, &[53, 1, 1, 52, 1, 0, 255][..]),
            (&end_sname, &end_file, &[53, 1, 1, 52, 1, 4, 255][..]),
            (&end_sname, &end_file, &[53, 1, 1, 52, 2, 1, 1, 255][..]),
            (&end_sname, &end_file, &[53, 1, 1, 52, 0, 255][..]),
            // repeated: concatenated to two bytes
            (
                &end_sname,
                &end_file,
                &[53, 1, 1, 52, 1, 1, 52, 1, 1, 255][..],
            ),
        ] {
            let m = bootp(sname, file, options);
            assert_eq!(
                opts(&m).unwrap_err(),
                DropReason::BadOverload,
                "{options:?}"
            );
        }
    }

    #[test]
    fn end_required_with_overload() {
        let end_file = area(&[255], 128);
        let end_sname = area(&[255], 64);
        // options field without END
        let m = bootp(&end_sname, &end_file, &[53, 1, 1, 52, 1, 3]);
        assert_eq!(opts(&m).unwrap_err(), DropReason::OptionsUnterminated);
        // file without END (all PAD)
        let m = bootp(&end_sname, &[0; 128], &[53, 1, 1, 52, 1, 1, 255]);
        assert_eq!(opts(&m).unwrap_err(), DropReason::OptionsUnterminated);
        // sname without END
        let m = bootp(
            &area(&[12, 1, b'x'], 64),
            &end_file,
            &[53, 1, 1, 52, 1, 2, 255],
        );
        assert_eq!(opts(&m).unwrap_err(), DropReason::OptionsUnterminated);
        // both terminated: fine
        let m = bootp(&end_sname, &end_file, &[53, 1, 1, 52, 1, 3, 255]);
        assert!(opts(&m).is_ok());
    }

    #[test]
    fn end_optional_without_overload_and_trailer_ignored() {
        let m = bootp(&[], &[], &DISCOVER);
        assert_eq!(opts(&m).unwrap().message_type(), MessageType::Discover);
        // after END: garbage that would be a truncated option is not looked at
        let m = bootp(&[], &[], &[53, 1, 1, 255, 61, 200, 1]);
        let o = opts(&m).unwrap();
        assert!(o.client_id().is_none());
        // PAD anywhere
        let m = bootp(&[], &[], &[0, 0, 53, 1, 1, 0, 12, 1, b'h', 0, 255, 0, 0]);
        assert_eq!(
            opts(&m).unwrap().hostname().unwrap().contiguous(),
            Some(&b"h"[..])
        );
    }

    #[test]
    fn truncated_options() {
        for options in [
            &[53, 1, 1, 61, 10, 1][..], // value runs past the end
            &[53, 1, 1, 61][..],        // length byte missing
            &[53, 1][..],
            &[53][..],
        ] {
            let m = bootp(&[], &[], options);
            assert_eq!(
                opts(&m).unwrap_err(),
                DropReason::OptionTruncated,
                "{options:?}"
            );
        }
        // an option in `file` may not run into the cookie
        let mut file = vec![0u8; 128];
        file[124..].copy_from_slice(&[12, 5, b'a', b'b']);
        let m = bootp(&[], &file, &[53, 1, 1, 52, 1, 1, 255]);
        assert_eq!(opts(&m).unwrap_err(), DropReason::OptionTruncated);
        // nor one in `sname` into `file`
        let mut sname = vec![0u8; 64];
        sname[63] = 12;
        let m = bootp(&sname, &area(&[255], 128), &[53, 1, 1, 52, 1, 2, 255]);
        assert_eq!(opts(&m).unwrap_err(), DropReason::OptionTruncated);
    }

    #[test]
    fn message_type_rules() {
        let m = bootp(&[], &[], &[12, 1, b'x', 255]);
        assert_eq!(opts(&m).unwrap_err(), DropReason::NoMessageType);
        let m = bootp(&[], &[], &[53, 2, 1, 1, 255]);
        assert_eq!(opts(&m).unwrap_err(), DropReason::BadOptionLength);
        let m = bootp(&[], &[], &[53, 0, 255]);
        assert_eq!(opts(&m).unwrap_err(), DropReason::BadOptionLength);
        // split 1 + 1 is a two-byte value
        let m = bootp(&[], &[], &[53, 1, 1, 53, 1, 1, 255]);
        assert_eq!(opts(&m).unwrap_err(), DropReason::BadOptionLength);
        // split 0 + 1 joins to one byte: valid
        let m = bootp(&[], &[], &[53, 0, 53, 1, 7, 255]);
        assert_eq!(opts(&m).unwrap().message_type(), MessageType::Release);
        assert_eq!(
            opts(&bootp(&[], &[], &[53, 1, 200, 255]))
                .unwrap()
                .message_type(),
            MessageType::Unknown(200)
        );
    }

    #[test]
    fn fixed_lengths() {
        for bad in [
            &[50, 3, 1, 2, 3][..],
            &[50, 5, 1, 2, 3, 4, 5][..],
            &[54, 0][..],
            &[118, 2, 1, 2][..],
            &[51, 3, 0, 0, 1][..],
            &[57, 1, 2][..],
            &[57, 3, 2, 64, 0][..],
            &[61, 1, 1][..],
            &[61, 0][..],
        ] {
            let mut o = DISCOVER.to_vec();
            o.extend_from_slice(bad);
            o.push(255);
            let m = bootp(&[], &[], &o);
            assert_eq!(
                opts(&m).unwrap_err(),
                DropReason::BadOptionLength,
                "{bad:?}"
            );
        }
        // split into valid total lengths: fine
        let m = bootp(
            &[],
            &[],
            &[
                53, 1, 1, 54, 2, 10, 0, 54, 2, 0, 1, 51, 4, 0, 0, 14, 16, 255,
            ],
        );
        let o = opts(&m).unwrap();
        assert_eq!(o.server_id(), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(o.lease_time(), Some(3600));
    }

    #[test]
    fn ignored_values() {
        // 57 below 576 is ignored (RFC 2132 §9.10 minimum), 12 empty is ignored
        let m = bootp(&[], &[], &[53, 1, 1, 57, 2, 1, 0x2c, 12, 0, 255]);
        let o = opts(&m).unwrap();
        assert_eq!(o.max_message_size(), None);
        assert!(o.hostname().is_none());
        assert!(o.get(opt::HOSTNAME).is_some_and(|r| r.is_empty()));
        let m = bootp(
            &[],
            &[],
            &[53, 1, 1, 57, 2, 2, 0x40, 118, 4, 192, 0, 2, 0, 255],
        );
        let o = opts(&m).unwrap();
        assert_eq!(o.max_message_size(), Some(576));
        assert_eq!(o.subnet_selection(), Some(Ipv4Addr::new(192, 0, 2, 0)));
    }

    #[test]
    fn relay_agent_info() {
        let sub = [
            1, 3, b'a', b'b', b'c', // circuit id
            2, 2, 0xde, 0xad, // remote id
            5, 4, 10, 9, 8, 0, // link selection
            6, 1, b's', // subscriber id
            11, 4, 192, 0, 2, 1, // server id override
            1, 1, b'z', // a second circuit id: the first one wins
        ];
        let mut o = DISCOVER.to_vec();
        o.extend_from_slice(&[82, sub.len() as u8]);
        o.extend_from_slice(&sub);
        o.push(255);
        let m = bootp(&[], &[], &o);
        let opts = opts(&m).unwrap();
        let r = opts.relay_agent().unwrap();
        assert_eq!(r.raw(), &sub);
        assert_eq!(r.circuit_id(), Some(&b"abc"[..]));
        assert_eq!(r.remote_id(), Some(&[0xde, 0xad][..]));
        assert_eq!(r.link_selection(), Some(Ipv4Addr::new(10, 9, 8, 0)));
        assert_eq!(r.subscriber_id(), Some(&b"s"[..]));
        assert_eq!(r.server_id_override(), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(r.sub_options().count(), 6);
        // link selection of the wrong length is ignored
        let m = bootp(&[], &[], &[53, 1, 1, 82, 5, 5, 3, 1, 2, 3, 255]);
        assert_eq!(
            super::DhcpOptions::parse(&m)
                .unwrap()
                .relay_agent()
                .unwrap()
                .link_selection(),
            None
        );
        // empty 82: present, no sub-options
        let m = bootp(&[], &[], &[53, 1, 1, 82, 0, 255]);
        let o = super::DhcpOptions::parse(&m).unwrap();
        assert_eq!(o.relay_agent().unwrap().sub_options().count(), 0);
        assert!(o.relay_agent().unwrap().circuit_id().is_none());
    }

    #[test]
    fn relay_agent_info_malformed() {
        for o in [
            &[53, 1, 1, 82, 3, 1, 5, b'a', 255][..], // sub-option overruns
            &[53, 1, 1, 82, 4, 1, 1, b'a', 2, 255][..], // trailing byte after a sub-option
            &[53, 1, 1, 82, 1, 1, 255][..],          // lone sub-option code
            &[53, 1, 1, 82, 2, 1, 0, 82, 2, 2, 0, 255][..], // split 82
        ] {
            let m = bootp(&[], &[], o);
            assert_eq!(opts(&m).unwrap_err(), DropReason::BadOptionLength, "{o:?}");
        }
    }

    #[test]
    fn many_distinct_codes_overflow_table() {
        // 40 distinct unknown codes (none has a slot: found by walking), two repeated late.
        let mut o = Vec::new();
        for code in 160u8..200 {
            o.extend_from_slice(&[code, 2, code, !code]);
        }
        o.extend_from_slice(&[199, 1, 0x99, 161, 0, 53, 1, 3, 255]);
        let m = bootp(&[], &[], &o);
        let opts = opts(&m).unwrap();
        assert_eq!(opts.message_type(), MessageType::Request);
        for code in 160u8..200 {
            let r = opts.get(code).unwrap_or_else(|| panic!("code {code}"));
            let mut want = vec![code, !code];
            if code == 199 {
                want.push(0x99);
            }
            assert_eq!(r.bytes().collect::<Vec<_>>(), want, "code {code}");
            assert_eq!(
                r.fragment_count(),
                if code == 199 || code == 161 { 2 } else { 1 }
            );
        }
        assert!(opts.get(200).is_none());
        assert!(opts.get(159).is_none());
    }

    #[test]
    fn many_fragments() {
        // 300 instances of option 60 (lengths 0 and 1) spread over options, file and sname.
        let mut o = vec![53, 1, 1, 52, 1, 3];
        for i in 0..150u16 {
            if i % 2 == 0 {
                o.extend_from_slice(&[60, 0]);
            } else {
                o.extend_from_slice(&[60, 1, b'x']);
            }
        }
        o.push(255);
        let file = area(&[60, 1, b'f', 60, 0, 255], 128);
        let sname = area(&[60, 1, b's', 255], 64);
        let m = bootp(&sname, &file, &o);
        let opts = opts(&m).unwrap();
        let r = opts.vendor_class().unwrap();
        assert_eq!(r.fragment_count(), 153);
        assert_eq!(r.len(), 75 + 2);
        let v: Vec<u8> = r.bytes().collect();
        assert_eq!(v.len(), 77);
        assert_eq!(&v[75..], b"fs");
        assert_eq!(r.fragments().count(), 153);
    }

    #[test]
    fn message_type_round_trips() {
        for v in 0..=255u8 {
            let t = MessageType::from(v);
            assert_eq!(u8::from(t), v);
            assert_eq!(matches!(t, MessageType::Unknown(_)), v == 0 || v > 18);
        }
        assert_eq!(MessageType::from(4), MessageType::Decline);
        assert_eq!(MessageType::from(7), MessageType::Release);
        assert_eq!(MessageType::from(8), MessageType::Inform);
        assert_eq!(MessageType::from(18), MessageType::Tls);
    }

    #[test]
    fn known_table_is_consistent() {
        for (i, &code) in KNOWN.iter().enumerate() {
            assert_eq!(known_slot(code), Some(i));
        }
        assert_eq!(
            (0..=255u8).filter(|&c| known_slot(c).is_some()).count(),
            KNOWN.len()
        );
    }
}
