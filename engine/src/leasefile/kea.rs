//! Kea memfile lease4 CSV: read any schema version by its header, write Kea 2.2's.
//!
//! Kea (2.2, Debian's) writes `kea-leases4.csv` as
//!
//! ```text
//! address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
//! 10.213.1.1,02:13:93:b6:f8:02,01:02:13:93:b6:f8:02,30,1795438529,1,0,0,hb-udhcpc,0,
//! ```
//!
//! (`pool_id` is appended by Kea 2.6; 1.x files stop at `hostname` or `state`.) The rules that
//! matter, from Kea's `CSVLeaseFile4` and `LeaseFileLoader`:
//!
//! - The file is a journal: a row replaces any earlier row for the same address, and a row
//!   with `valid_lifetime` 0 deletes the address's lease (Kea writes one on release and on
//!   `lease4-del`). A deletion is imported as free (`state: None`).
//! - `expire` = client last transmission time + `valid_lifetime`; 0xffffffff is an infinite
//!   lifetime (RFC 2131 §3.3).
//! - `state`: 0 default (bound), 1 declined, 2 expired-reclaimed.
//! - `hwaddr` is hex octets without a type (Ethernet); it may be blank only in a declined row.
//!   `client_id` is the option 61 payload, type byte included, blank if the client sent none.
//! - There is no quoting: a `,` inside `hostname` or `user_context` is written `&#x2c`
//!   (`CSVRow::escapeCharacters`); any `&#xNN` is unescaped on read.

use super::{
    Counted, EXAMPLES, Entry, HwAddr, Imported, Line, MAX_LINE, NEVER, SkipReason, Skipped,
    parse_hex, parse_ipv4, parse_u64, quote, read_line,
};
use crate::lease::{ClientKey, LeaseRecord, LeaseState, Secs};
use std::fmt::Write as _;
use std::io::{self, BufRead, Write};
use std::net::Ipv4Addr;

/// The header Kea 2.2 writes and expects (schema 2.1).
pub const KEA_HEADER: &str = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context";

/// Column positions, found by name in the header.
#[derive(Clone, Copy, Debug, Default)]
struct Columns {
    count: usize,
    address: usize,
    hwaddr: usize,
    client_id: usize,
    valid: usize,
    expire: usize,
    hostname: Option<usize>,
    state: Option<usize>,
}

impl Columns {
    fn from_header(line: &[u8]) -> Result<Columns, String> {
        let names: Vec<&[u8]> = line.split(|&c| c == b',').map(trim).collect();
        let find = |n: &str| names.iter().position(|c| *c == n.as_bytes());
        if find("duid").is_some() || find("prefix_len").is_some() {
            return Err(
                "this is a Kea lease6 file (it has `duid`); xdhcp imports lease4 files".into(),
            );
        }
        let need = |n: &str| {
            find(n).ok_or_else(|| {
                format!(
                    "the header has no `{n}` column; a Kea lease4 file starts with `{KEA_HEADER}` (found `{}`)",
                    quote(line)
                )
            })
        };
        Ok(Columns {
            count: names.len(),
            address: need("address")?,
            hwaddr: need("hwaddr")?,
            client_id: need("client_id")?,
            valid: need("valid_lifetime")?,
            expire: need("expire")?,
            hostname: find("hostname"),
            state: find("state"),
        })
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &b[s..e]
}

/// Streaming reader of a Kea lease4 CSV: an iterator of [`Entry`], in file order.
pub struct KeaReader<R> {
    r: Counted<R>,
    line: u64,
    pub(super) buf: Vec<u8>,
    cols: Option<Columns>,
    spans: Vec<(usize, usize)>,
    done: bool,
}

impl<R: BufRead> KeaReader<R> {
    /// Reads up to and including the header line. An empty file is fine (no entries).
    ///
    /// # Errors
    /// A read error, or `InvalidData` when the first non-blank line is not a lease4 header.
    pub fn new(reader: R) -> io::Result<Self> {
        let mut k = KeaReader {
            r: Counted {
                inner: reader,
                bytes: 0,
            },
            line: 0,
            buf: Vec::with_capacity(256),
            cols: None,
            spans: Vec::with_capacity(16),
            done: false,
        };
        loop {
            match read_line(&mut k.r, &mut k.buf, MAX_LINE)? {
                Line::Eof => {
                    k.done = true;
                    return Ok(k);
                }
                Line::Got { long, .. } => {
                    k.line += 1;
                    let l = trim(&k.buf);
                    if l.is_empty() {
                        continue;
                    }
                    let cols = if long {
                        Err(format!("the header is longer than {MAX_LINE} bytes"))
                    } else {
                        Columns::from_header(l)
                    };
                    match cols {
                        Ok(c) => {
                            k.cols = Some(c);
                            return Ok(k);
                        }
                        Err(e) => {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("line {}: not a Kea lease4 CSV: {e}", k.line),
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.r.bytes
    }

    /// Lines seen so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    fn row(&mut self, cols: &Columns) -> Result<Imported, (Option<Ipv4Addr>, SkipReason)> {
        let line = trim_cr(&self.buf);
        self.spans.clear();
        let mut start = 0;
        for (i, &c) in line.iter().enumerate() {
            if c == b',' {
                self.spans.push((start, i));
                start = i + 1;
            }
        }
        self.spans.push((start, line.len()));
        if self.spans.len() != cols.count {
            let addr = self
                .spans
                .get(cols.address)
                .and_then(|&(s, e)| parse_ipv4(&line[s..e]));
            return Err((
                addr,
                SkipReason::Columns {
                    expected: cols.count,
                    found: self.spans.len(),
                },
            ));
        }
        let field = |i: usize| {
            let (s, e) = self.spans[i];
            &line[s..e]
        };
        let text = field(cols.address);
        let addr =
            parse_ipv4(text).ok_or_else(|| (None, SkipReason::BadAddress { text: quote(text) }))?;
        let bad = |r: SkipReason| (Some(addr), r);
        let number = |i: usize, name: &str| {
            parse_u64(field(i)).ok_or_else(|| {
                bad(SkipReason::BadNumber {
                    column: name.into(),
                    text: quote(field(i)),
                })
            })
        };
        let cid_text = field(cols.client_id);
        let client_id = if cid_text.is_empty() {
            None
        } else {
            Some(
                parse_hex(cid_text, 255)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        bad(SkipReason::BadClientId {
                            text: quote(cid_text),
                        })
                    })?,
            )
        };
        // Kea takes up to 20 bytes (InfiniBand); xdhcp keeps 16 (chaddr). A longer one is
        // harmless when the client id identifies the client, as it must for InfiniBand.
        let hw_text = field(cols.hwaddr);
        let hwaddr = match parse_hex(hw_text, 20) {
            _ if hw_text.is_empty() => None,
            Some(b) if b.len() > 16 && client_id.is_some() => None,
            Some(b) => Some(HwAddr::new(1, &b).ok_or_else(|| {
                bad(SkipReason::BadHwAddr {
                    text: quote(hw_text),
                })
            })?),
            None => {
                return Err(bad(SkipReason::BadHwAddr {
                    text: quote(hw_text),
                }));
            }
        };
        let valid = number(cols.valid, "valid_lifetime")?;
        if valid > u64::from(u32::MAX) {
            return Err(bad(SkipReason::BadNumber {
                column: "valid_lifetime".into(),
                text: quote(field(cols.valid)),
            }));
        }
        let expire = number(cols.expire, "expire")?;
        let state = match cols.state {
            Some(i) if !field(i).is_empty() => number(i, "state")?,
            _ => 0,
        };
        let hostname = cols
            .hostname
            .map(|i| unescape(field(i)))
            .filter(|h| !h.is_empty());
        let client = client_id
            .as_deref()
            .map(ClientKey::from_client_id)
            .or(hwaddr.map(|h| h.key()));
        let expires = if valid == u64::from(u32::MAX) {
            NEVER
        } else {
            expire.min(NEVER)
        };
        let state = match state {
            // Kea's deletion row: the address is free and its client forgotten.
            _ if valid == 0 => None,
            0 if client.is_none() => return Err(bad(SkipReason::NoClient)),
            0 => Some(LeaseState::Bound),
            1 => Some(LeaseState::Declined),
            2 if client.is_some() => Some(LeaseState::Expired),
            2 => None,
            n => {
                return Err(bad(SkipReason::UnknownState {
                    text: n.to_string(),
                }));
            }
        };
        Ok(Imported {
            line: self.line,
            addr,
            client,
            hwaddr,
            expires,
            state,
            hostname,
        })
    }

    fn step(&mut self) -> io::Result<Option<Entry>> {
        loop {
            let (long, newline) = match read_line(&mut self.r, &mut self.buf, MAX_LINE)? {
                Line::Eof => return Ok(None),
                Line::Got { long, newline } => (long, newline),
            };
            self.line += 1;
            let skip = |line, addr, reason| Ok(Some(Entry::Skip(Skipped { line, addr, reason })));
            if long {
                return skip(self.line, None, SkipReason::LineTooLong);
            }
            if trim(&self.buf).is_empty() {
                continue;
            }
            // Concatenated files (`leases4.csv.2 .1 csv`) repeat the header, maybe of an
            // older schema: adopt it.
            if self.buf.starts_with(b"address,") {
                match Columns::from_header(trim(&self.buf)) {
                    Ok(c) => {
                        self.cols = Some(c);
                        return Ok(Some(Entry::Ignored {
                            line: self.line,
                            keyword: "header".into(),
                        }));
                    }
                    Err(e) => {
                        return skip(self.line, None, SkipReason::Syntax { detail: e });
                    }
                }
            }
            let Some(cols) = self.cols else {
                return Ok(None);
            };
            return match self.row(&cols) {
                Ok(e) => Ok(Some(Entry::Lease(e))),
                // A last line without its newline that does not parse was cut off mid-write.
                Err((addr, _)) if !newline => skip(self.line, addr, SkipReason::Truncated),
                Err((addr, reason)) => skip(self.line, addr, reason),
            };
        }
    }
}

impl<R: BufRead> Iterator for KeaReader<R> {
    type Item = io::Result<Entry>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = self.step();
        super::fuse(&mut self.done, step)
    }
}

fn trim_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Kea's `&#xNN` escapes (any two hex digits); anything else is kept as written.
fn unescape(field: &[u8]) -> String {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i..].starts_with(b"&#x") && i + 5 <= field.len() {
            let hex = &field[i + 3..i + 5];
            if let Some(v) = parse_hex(hex, 1).filter(|v| v.len() == 1) {
                out.push(v[0]);
                i += 5;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a record was not exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum ExportSkip {
    #[error("an offer, not a lease (Kea has no such state)")]
    Offered,
    #[error("no hardware address known for this client-id client (Kea needs one)")]
    NoHwAddr,
    #[error("client id longer than xdhcp keeps verbatim (stored hashed), cannot be written back")]
    HashedClientId,
}

/// What an export did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Lease rows written (bound, expired-reclaimed, declined).
    pub written: u64,
    /// Free records written as Kea deletion rows (`valid_lifetime` 0).
    pub deleted: u64,
    pub skipped: u64,
    /// The first [`EXAMPLES`] records not written, and why.
    pub examples: Vec<(Ipv4Addr, ExportSkip)>,
}

/// Write `records` as a Kea 2.2 lease4 CSV, header first, in the order given.
///
/// Kea replays the rows like xdhcp replays records (a later row for an address wins), so both a
/// snapshot and a journal in order export faithfully; free records become Kea deletion rows.
/// State at `now`: bound leases get `valid_lifetime` = the time left (their `expire` is kept),
/// expired and released ones become expired-reclaimed (state 2) and keep remembering their
/// client, probations become declined rows (state 1). Offers are not leases and are left out.
/// `subnet_id` is the xdhcp subnet's index + 1 (the order of the `[[subnet]]` tables), the
/// numbering to give the subnets in the Kea configuration.
///
/// Kea needs a hardware address for every non-declined lease. For hardware-keyed clients it
/// is the key; for option-61 clients `hwaddr_of` is asked (xdhcp does not persist chaddr), and
/// a type-1 client id (RFC 2132 §9.14: Ethernet type + MAC, what most clients send) provides it
/// otherwise. Records that still have none are skipped and counted.
///
/// # Errors
/// Write errors.
pub fn export_kea<W: Write>(
    records: impl IntoIterator<Item = LeaseRecord>,
    now: Secs,
    hwaddr_of: &mut dyn FnMut(&LeaseRecord) -> Option<HwAddr>,
    out: W,
) -> io::Result<ExportReport> {
    let mut out = io::BufWriter::new(out);
    writeln!(out, "{KEA_HEADER}")?;
    let mut report = ExportReport::default();
    let mut row = String::with_capacity(160);
    for r in records {
        row.clear();
        match kea_row(&r, now, hwaddr_of, &mut row) {
            Ok(deleted) => {
                out.write_all(row.as_bytes())?;
                if deleted {
                    report.deleted += 1;
                } else {
                    report.written += 1;
                }
            }
            Err(why) => {
                report.skipped += 1;
                if report.examples.len() < EXAMPLES {
                    report.examples.push((r.addr, why));
                }
            }
        }
    }
    out.flush()?;
    Ok(report)
}

/// One CSV row (with its newline) into `row`; `Ok(true)` for a deletion row.
fn kea_row(
    r: &LeaseRecord,
    now: Secs,
    hwaddr_of: &mut dyn FnMut(&LeaseRecord) -> Option<HwAddr>,
    row: &mut String,
) -> Result<bool, ExportSkip> {
    let subnet_id = u64::from(r.subnet.0) + 1;
    let Some(state) = r.state_at(now) else {
        // Free and forgotten: Kea's deletion row. Declined rows may leave hwaddr blank.
        let _ = writeln!(row, "{},,,0,0,{subnet_id},0,0,,1,", r.addr);
        return Ok(true);
    };
    let kea_state = match state {
        LeaseState::Offered => return Err(ExportSkip::Offered),
        LeaseState::Bound => 0,
        LeaseState::Declined => 1,
        LeaseState::Expired | LeaseState::Released => 2,
    };
    let key = &r.client;
    let anonymous = *key == super::anonymous_key();
    let bytes = key.as_bytes();
    let (hw, cid): (Option<HwAddr>, Option<&[u8]>) = if anonymous {
        (None, None)
    } else if !key.is_client_id() {
        (
            bytes.split_first().and_then(|(t, a)| HwAddr::new(*t, a)),
            None,
        )
    } else {
        // A hashed long id reads back as a different, 30-byte verbatim id: not the client.
        if ClientKey::from_client_id(bytes) != *key {
            return Err(ExportSkip::HashedClientId);
        }
        let hw = hwaddr_of(r).or_else(|| match bytes {
            [1, mac @ ..] if mac.len() == 6 => HwAddr::new(1, mac),
            _ => None,
        });
        (hw, Some(bytes))
    };
    if hw.is_none() && kea_state != 1 {
        return Err(ExportSkip::NoHwAddr);
    }
    let (valid, expire) = match state {
        _ if r.expires >= NEVER => (u64::from(u32::MAX), now + u64::from(u32::MAX)),
        LeaseState::Bound | LeaseState::Declined => (
            (r.expires.saturating_sub(now)).clamp(1, u64::from(u32::MAX) - 1),
            r.expires,
        ),
        // Free but remembered: any positive lifetime (0 would be a deletion) whose start
        // (`expire - valid`) is not before 1970.
        _ => {
            let expire = r.expires.max(1);
            (expire.min(3600), expire)
        }
    };
    let _ = write!(row, "{},", r.addr);
    if let Some(h) = hw {
        let _ = write!(row, "{h}");
    }
    row.push(',');
    if let Some(c) = cid {
        for (i, b) in c.iter().enumerate() {
            if i > 0 {
                row.push(':');
            }
            let _ = write!(row, "{b:02x}");
        }
    }
    let _ = writeln!(row, ",{valid},{expire},{subnet_id},0,0,,{kea_state},");
    Ok(false)
}
