//! BOOTP / DHCP message view (RFC 951, RFC 2131, RFC 2132, RFC 3396, RFC 3046).
//!
//! # Design
//!
//! The options are walked exactly once, in the order RFC 3396 §6 fixes for concatenation:
//! the `options` field, then `file`, then `sname` when option overload (52) says they carry
//! options. Every length byte is checked against the end of its area before it is trusted.
//! Instead of copying values out (which would need a heap or a large per-packet buffer), the
//! pass records, per option code, where its *first* instance lies, how many instances there are
//! and their total length. That is all the decision ever needs:
//!
//! * the common case, one instance, is a plain `&'a [u8]` ([`OptRef::contiguous`]);
//! * a split option (RFC 3396) is read by walking forward from its first instance to the
//!   following ones ([`OptRef::fragments`], [`OptRef::copy_into`]); since the pass already
//!   validated every length on the way, that walk cannot fail.
//!
//! Codes the decision reads on every packet (53, 50, 54, 61, 55, 57, 82, ...) have fixed slots
//! found by a 256-entry lookup, so their accessors cost an index, not a search. Other codes go
//! into a small table; if a (hostile) message carries more distinct codes than fit, lookups of
//! the codes that did not fit fall back to a linear walk of the options: answers stay exact and
//! parsing never allocates or fails for that reason. The table is O(options) to build and the
//! whole [`DhcpOptions`] is `Copy`.
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

/// Where an option's instances are: the first one, and totals over all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    /// Offset of the first instance's value in the message.
    first: u16,
    /// Sum of all instances' lengths (the concatenated length, RFC 3396).
    total: u16,
    /// Number of instances; 0 = option absent.
    frags: u16,
    /// Length of the first instance's value.
    first_len: u8,
    /// Area of the first instance.
    area: u8,
}

impl Slot {
    fn add(&mut self, value: usize, len: u8, area: u8) {
        if self.frags == 0 {
            // Offsets fit: DhcpOptions::parse refuses messages longer than u16::MAX.
            self.first = u16::try_from(value).unwrap_or(u16::MAX);
            self.first_len = len;
            self.area = area;
        }
        self.total = self.total.saturating_add(u16::from(len));
        self.frags = self.frags.saturating_add(1);
    }
}

/// Codes with a fixed slot (read by the decision on most packets).
const KNOWN: [u8; 14] = [
    opt::HOSTNAME,
    opt::REQUESTED_IP,
    opt::LEASE_TIME,
    opt::OVERLOAD,
    opt::MESSAGE_TYPE,
    opt::SERVER_ID,
    opt::PARAMETER_REQUEST_LIST,
    opt::MAX_MESSAGE_SIZE,
    opt::VENDOR_CLASS,
    opt::CLIENT_ID,
    opt::RAPID_COMMIT,
    opt::CLIENT_FQDN,
    opt::RELAY_AGENT_INFO,
    opt::SUBNET_SELECTION,
];

/// `KNOWN_INDEX[code]` = slot + 1 for codes in [`KNOWN`], 0 otherwise.
const KNOWN_INDEX: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < KNOWN.len() {
        t[KNOWN[i] as usize] = i as u8 + 1;
        i += 1;
    }
    t
};

const fn known_slot(code: u8) -> Option<usize> {
    match KNOWN_INDEX[code as usize] {
        0 => None,
        n => Some(n as usize - 1),
    }
}

/// Slot index of a code in [`KNOWN`]. Only used to define the `K_*` constants below, so a
/// code missing from `KNOWN` is a compile error, never a run-time panic.
const fn ks(code: u8) -> usize {
    match known_slot(code) {
        Some(i) => i,
        None => panic!("code not in KNOWN"),
    }
}

const K_HOSTNAME: usize = ks(opt::HOSTNAME);
const K_REQUESTED_IP: usize = ks(opt::REQUESTED_IP);
const K_LEASE_TIME: usize = ks(opt::LEASE_TIME);
const K_OVERLOAD: usize = ks(opt::OVERLOAD);
const K_MESSAGE_TYPE: usize = ks(opt::MESSAGE_TYPE);
const K_SERVER_ID: usize = ks(opt::SERVER_ID);
const K_PRL: usize = ks(opt::PARAMETER_REQUEST_LIST);
const K_MAX_MESSAGE_SIZE: usize = ks(opt::MAX_MESSAGE_SIZE);
const K_VENDOR_CLASS: usize = ks(opt::VENDOR_CLASS);
const K_CLIENT_ID: usize = ks(opt::CLIENT_ID);
const K_RELAY_AGENT_INFO: usize = ks(opt::RELAY_AGENT_INFO);
const K_SUBNET_SELECTION: usize = ks(opt::SUBNET_SELECTION);

/// How many distinct other codes are summarised; further ones are found by walking.
const OTHER_CAP: usize = 8;

/// The options of a validated DHCP message, borrowing it. `Copy`, no heap.
#[derive(Clone, Copy)]
pub struct DhcpOptions<'a> {
    /// The whole BOOTP message (fixed header + options).
    msg: &'a [u8],
    known: [Slot; KNOWN.len()],
    other_codes: [u8; OTHER_CAP],
    other: [Slot; OTHER_CAP],
    other_len: u8,
    /// Some code did not fit in `other`: unknown codes must be looked up by walking.
    overflow: bool,
    /// Option overload value (0 if none).
    overload: u8,
}

impl<'a> DhcpOptions<'a> {
    fn empty(msg: &'a [u8]) -> Self {
        DhcpOptions {
            msg,
            known: [Slot::default(); KNOWN.len()],
            other_codes: [0; OTHER_CAP],
            other: [Slot::default(); OTHER_CAP],
            other_len: 0,
            overflow: false,
            overload: 0,
        }
    }

    fn record(&mut self, code: u8, value: usize, len: u8, area: u8) {
        if let Some(i) = known_slot(code) {
            if let Some(s) = self.known.get_mut(i) {
                s.add(value, len, area);
            }
            return;
        }
        let n = usize::from(self.other_len).min(OTHER_CAP);
        if let Some(i) = self.other_codes[..n].iter().position(|&c| c == code) {
            self.other[i].add(value, len, area);
        } else if n < OTHER_CAP {
            self.other_codes[n] = code;
            self.other[n].add(value, len, area);
            self.other_len += 1;
        } else {
            self.overflow = true;
        }
    }

    /// Walk one area, recording every instance. Returns whether END was seen.
    fn scan_area(&mut self, area: u8) -> Result<bool, DropReason> {
        let msg = self.msg;
        let Some((mut pos, end)) = area_bounds(msg.len(), self.overload, area) else {
            return Ok(true);
        };
        while pos < end {
            let Some(&code) = msg.get(pos) else {
                return Err(DropReason::OptionTruncated);
            };
            match code {
                opt::PAD => pos += 1,
                opt::END => return Ok(true),
                _ => {
                    // The length byte and the whole value must lie inside this area.
                    let len = match msg.get(pos + 1) {
                        Some(&l) if pos + 1 < end => l,
                        _ => return Err(DropReason::OptionTruncated),
                    };
                    let value = pos + 2;
                    let next = value + usize::from(len);
                    if next > end {
                        return Err(DropReason::OptionTruncated);
                    }
                    // RFC 2131 §4.1: overload lives in `options`; in `file`/`sname` it would loop.
                    if code == opt::OVERLOAD && area != AREA_OPTIONS {
                        return Err(DropReason::BadOverload);
                    }
                    self.record(code, value, len, area);
                    pos = next;
                }
            }
        }
        Ok(false)
    }

    /// Parse the options of `msg` (a BOOTP message whose fixed header and cookie were checked).
    pub(crate) fn parse(msg: &'a [u8]) -> Result<Self, DropReason> {
        if msg.len() > usize::from(u16::MAX) {
            // Unreachable through `wire::parse` (bounded by the IPv4 total length); keeps the
            // u16 offsets in `Slot` exact.
            return Err(DropReason::UdpBadLength);
        }
        let mut o = Self::empty(msg);
        let end_in_options = o.scan_area(AREA_OPTIONS)?;
        if let Some(r) = o.known_ref(K_OVERLOAD) {
            // RFC 2132 §9.3: length 1, value 1 (file), 2 (sname) or 3 (both).
            o.overload = match r.fixed::<1>() {
                Some([v @ 1..=3]) => v,
                _ => return Err(DropReason::BadOverload),
            };
            // RFC 2131 §4.1: with overload, `options` MUST end with END, and so must
            // `file` and `sname` when they carry options.
            if !end_in_options {
                return Err(DropReason::OptionsUnterminated);
            }
            // RFC 3396 §6 / RFC 2131 §4.1: `file` is read before `sname`.
            for area in [AREA_FILE, AREA_SNAME] {
                if !o.scan_area(area)? {
                    return Err(DropReason::OptionsUnterminated);
                }
            }
        }
        o.validate()?;
        Ok(o)
    }

    /// Fixed-size and structural checks; see the policy table in the module docs.
    fn validate(&self) -> Result<(), DropReason> {
        let len = |slot: usize| {
            self.known
                .get(slot)
                .map(|s| (s.frags, usize::from(s.total)))
        };
        match len(K_MESSAGE_TYPE) {
            Some((0, _)) | None => return Err(DropReason::NoMessageType),
            Some((_, 1)) => {}
            Some(_) => return Err(DropReason::BadOptionLength),
        }
        for (slot, ok) in [
            (K_REQUESTED_IP, 4..=4),
            (K_SERVER_ID, 4..=4),
            (K_SUBNET_SELECTION, 4..=4),
            (K_LEASE_TIME, 4..=4),
            (K_MAX_MESSAGE_SIZE, 2..=2),
            (K_CLIENT_ID, 2..=usize::MAX),
        ] {
            if let Some((frags, total)) = len(slot)
                && frags > 0
                && !ok.contains(&total)
            {
                return Err(DropReason::BadOptionLength);
            }
        }
        if let Some(r) = self.known_ref(K_RELAY_AGENT_INFO) {
            let raw = r.contiguous().ok_or(DropReason::BadOptionLength)?;
            if !sub_options_well_formed(raw) {
                return Err(DropReason::BadOptionLength);
            }
        }
        Ok(())
    }

    fn known_ref(&self, slot: usize) -> Option<OptRef<'a>> {
        let s = *self.known.get(slot)?;
        let code = *KNOWN.get(slot)?;
        self.make_ref(code, s)
    }

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
        if code == opt::PAD || code == opt::END {
            return None;
        }
        if let Some(i) = known_slot(code) {
            return self.known_ref(i);
        }
        let n = usize::from(self.other_len).min(OTHER_CAP);
        if let Some(i) = self.other_codes[..n].iter().position(|&c| c == code) {
            return self.make_ref(code, self.other[i]);
        }
        if !self.overflow {
            return None;
        }
        // Hostile message with more distinct codes than the table holds: walk.
        let mut slot = Slot::default();
        let mut it = Instances::all(self.msg, self.overload);
        while let Some((c, value, len)) = it.next() {
            if c == code {
                slot.add(value, len, it.area);
            }
        }
        self.make_ref(code, slot)
    }

    /// Message type (option 53). Always present after a successful parse.
    pub fn message_type(&self) -> MessageType {
        self.known_ref(K_MESSAGE_TYPE)
            .and_then(|r| r.fixed::<1>())
            .map_or(MessageType::Unknown(0), |[t]| MessageType::from(t))
    }

    fn ipv4(&self, slot: usize) -> Option<Ipv4Addr> {
        self.known_ref(slot)?.fixed::<4>().map(Ipv4Addr::from)
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
        self.known_ref(K_LEASE_TIME)?
            .fixed::<4>()
            .map(u32::from_be_bytes)
    }

    /// Maximum DHCP message size (option 57, RFC 2132 §9.10); `None` if absent or below the
    /// legal minimum of 576, in which case 576 applies.
    pub fn max_message_size(&self) -> Option<u16> {
        self.known_ref(K_MAX_MESSAGE_SIZE)?
            .fixed::<2>()
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
        let raw = self.known_ref(K_RELAY_AGENT_INFO)?.contiguous()?;
        Some(RelayAgentInfo { raw })
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
        if self.slot.frags != 1 {
            return None;
        }
        let start = usize::from(self.slot.first);
        self.msg
            .get(start..start + usize::from(self.slot.first_len))
    }

    /// The instances' values, in RFC 3396 order.
    pub fn fragments(&self) -> Fragments<'a> {
        let first = usize::from(self.slot.first);
        let first_len = usize::from(self.slot.first_len);
        Fragments {
            first: self.msg.get(first..first + first_len),
            rest: Instances::at(self.msg, self.overload, self.slot.area, first + first_len),
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

fn addr(b: &[u8]) -> Ipv4Addr {
    match b {
        [a, b, c, d, ..] => Ipv4Addr::new(*a, *b, *c, *d),
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

fn be32(b: &[u8]) -> u32 {
    match b {
        [a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

fn be16(b: &[u8]) -> u16 {
    match b {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// Validate the BOOTP message `msg` (the UDP payload) and build the [`Request`].
pub(crate) fn parse<'a>(
    l2: L2Header,
    ip: &ipv4::Header,
    udp: &udp::Header,
    msg: &'a [u8],
) -> Result<Request<'a>, DropReason> {
    let Some(fixed) = msg.get(..field::OPTIONS) else {
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
    let options = DhcpOptions::parse(msg)?;
    let mut chaddr = [0u8; 16];
    chaddr.copy_from_slice(&fixed[field::CHADDR]);
    Ok(Request {
        l2,
        ip_src: ip.src,
        ip_dst: ip.dst,
        udp_src: udp.src_port,
        udp_dst: udp.dst_port,
        htype,
        hlen,
        hops: fixed[field::HOPS],
        xid: be32(&fixed[field::XID]),
        secs: be16(&fixed[field::SECS]),
        flags: be16(&fixed[field::FLAGS]),
        ciaddr: addr(&fixed[field::CIADDR]),
        yiaddr: addr(&fixed[field::YIADDR]),
        siaddr: addr(&fixed[field::SIADDR]),
        giaddr: addr(&fixed[field::GIADDR]),
        chaddr,
        options,
    })
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
        // 40 distinct unknown codes (more than OTHER_CAP), two of them repeated late.
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
