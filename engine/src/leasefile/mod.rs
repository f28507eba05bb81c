//! Lease files of other servers: import ISC dhcpd `dhcpd.leases` and Kea memfile CSV (`lease4`),
//! export Kea CSV.
//!
//! WHY it looks like this:
//!
//! - **Streaming.** A migrating ISP brings files with millions of leases. Both readers pull one
//!   entry at a time from any [`BufRead`] and keep only that entry (tokens and lines are capped at
//!   [`MAX_TOKEN`] / [`MAX_LINE`] bytes, so even a file without a single newline cannot grow the
//!   buffer); [`import`] hands records to the [`LeaseStore`] in fixed-size batches. Memory is
//!   the same for a thousand leases and for ten million.
//! - **Both formats are journals.** dhcpd appends a new `lease` block whenever a lease changes and
//!   Kea appends a CSV row; the newest entry for an address wins. xdhcp's own persistence seam has
//!   the same rule (a later [`LeaseRecord`] for an address replaces an earlier one), so entries
//!   are emitted in file order and nothing needs to be held back or sorted. It also means a
//!   later entry that says "this address is free and forgotten" must not be dropped, or the
//!   earlier binding would survive: such entries become a *free record* (see [`free_record`]).
//! - **Skips are data, not log lines.** Every entry that cannot be imported becomes a
//!   [`Skipped`] with the line number and a [`SkipReason`]; [`ImportReport`] counts them by
//!   kind and keeps the first few examples of each, which is what an operator needs to fix a
//!   file (and it stays small however broken the file is).
//! - **Client identity is xdhcp's** ([`ClientKey`]): option 61 (dhcpd `uid`, Kea `client_id`,
//!   type byte included) when present, else hardware type + address, so an imported client
//!   finds its lease again when it next talks to xdhcp (RFC 2131 §4.2, RFC 2132 §9.14).
//! - **Expired stays expired.** A lease whose end has passed is imported as `Expired` (free, but
//!   remembered for its client, who gets it back first); it is never resurrected as bound.
//!
//! Kea keeps rotated files (`leases4.csv.2`, `.1`, then `leases4.csv`); import them oldest
//! first, or concatenate them, so that the newest row wins.

mod isc;
mod kea;
#[cfg(test)]
mod tests;

pub use isc::IscReader;
pub use kea::{ExportReport, ExportSkip, KEA_HEADER, KeaReader, export_kea};

use crate::config::SubnetId;
use crate::lease::{ClientKey, LeaseRecord, LeaseState, LeaseStore, LeaseTables, Secs};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead};
use std::net::Ipv4Addr;

/// Longest token (ISC word or string) or field kept; longer ones are consumed but reported.
pub const MAX_TOKEN: usize = 1024;
/// Longest CSV line kept; longer ones are consumed and skipped.
pub const MAX_LINE: usize = 64 * 1024;
/// Examples kept per skip reason in an [`ImportReport`].
pub const EXAMPLES: usize = 5;
/// Lease time that never ends (RFC 2131 §3.3: 0xffffffff is infinity), as the tables store it.
pub const NEVER: Secs = u32::MAX as Secs;

/// Records handed to the store per [`LeaseStore::append`] call.
const BATCH: usize = 1024;
/// Report progress at least every this many bytes.
const PROGRESS_EVERY: u64 = 256 * 1024;

/// Which file format to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// ISC dhcpd `dhcpd.leases`.
    Isc,
    /// Kea memfile `kea-leases4.csv` (lease4 schema, any version with a header line).
    Kea,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "isc" | "dhcpd" | "isc-dhcpd" => Ok(Format::Isc),
            "kea" | "kea-csv" | "csv" => Ok(Format::Kea),
            _ => Err(format!(
                "unknown lease file format {s:?}: expected \"isc\" (dhcpd.leases) or \"kea\" (memfile CSV)"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Isc => "ISC dhcpd.leases",
            Format::Kea => "Kea memfile CSV",
        })
    }
}

/// A hardware address as the files carry it (ISC: type + address; Kea: address, Ethernet).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HwAddr {
    /// ARP hardware type (RFC 1700): 1 = Ethernet.
    pub htype: u8,
    len: u8,
    bytes: [u8; 16],
}

impl HwAddr {
    /// At most 16 bytes (the size of `chaddr`); `None` when longer or empty.
    pub fn new(htype: u8, addr: &[u8]) -> Option<HwAddr> {
        if addr.is_empty() || addr.len() > 16 {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..addr.len()].copy_from_slice(addr);
        Some(HwAddr {
            htype,
            len: addr.len() as u8,
            bytes,
        })
    }

    /// The address bytes (without the type).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The client key xdhcp derives from this address when there is no option 61.
    pub fn key(&self) -> ClientKey {
        ClientKey::from_hw(self.htype, self.as_bytes())
    }
}

impl fmt::Debug for HwAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.htype)?;
        write_hex(f, self.as_bytes())
    }
}

impl fmt::Display for HwAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.as_bytes())
    }
}

fn write_hex(f: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_char(':')?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// One lease entry read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// Line where the entry starts (1-based).
    pub line: u64,
    pub addr: Ipv4Addr,
    /// Who the address belongs to or last belonged to; `None` when the file names nobody
    /// (a free pool address, a decline of an unknown user, a Kea deletion row).
    pub client: Option<ClientKey>,
    pub hwaddr: Option<HwAddr>,
    /// End of the lease, probation or (for free entries) the moment it became free;
    /// [`NEVER`] for an infinite lease.
    pub expires: Secs,
    /// The state the file gives, as xdhcp names it; `None` = free and forgotten (the same
    /// convention as [`crate::lease::LeaseInfo::state_at`]). Time has not been applied: a
    /// `Bound` entry may have expired already; [`import`] turns it into `Expired`.
    pub state: Option<LeaseState>,
    /// dhcpd `client-hostname`, Kea `hostname` (unescaped); informational.
    pub hostname: Option<String>,
}

/// An entry that was not imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Line of the offending statement or row (1-based).
    pub line: u64,
    /// The entry's address, when it could be read.
    pub addr: Option<Ipv4Addr>,
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(a) = self.addr {
            write!(f, " ({a})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why an entry was skipped. Texts quoted from the file are cut to 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("malformed entry: {detail}")]
    Syntax { detail: String },
    #[error("not an IPv4 address: {text:?}")]
    BadAddress { text: String },
    #[error(
        "bad date in `{statement}`: {text:?} (expected `W YYYY/MM/DD HH:MM:SS`, `epoch N` or `never`)"
    )]
    BadDate { statement: String, text: String },
    #[error("bad hardware address: {text:?}")]
    BadHwAddr { text: String },
    #[error("bad client identifier: {text:?}")]
    BadClientId { text: String },
    #[error("bad number in column {column}: {text:?}")]
    BadNumber { column: String, text: String },
    #[error("unknown lease state {text:?}")]
    UnknownState { text: String },
    #[error("a bound lease names no client (neither client id nor hardware address)")]
    NoClient,
    #[error(
        "entry cut off before its end (a torn write): the file ends, or the next entry starts, first"
    )]
    Truncated,
    #[error("line longer than {max} bytes", max = MAX_LINE)]
    LineTooLong,
    #[error("{found} columns where the header has {expected}")]
    Columns { expected: usize, found: usize },
    #[error("address is in no range or reservation of the current configuration")]
    NotInConfig,
}

/// The kind of a [`SkipReason`], for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipKind {
    Syntax,
    BadAddress,
    BadDate,
    BadHwAddr,
    BadClientId,
    BadNumber,
    UnknownState,
    NoClient,
    Truncated,
    LineTooLong,
    Columns,
    NotInConfig,
}

impl SkipReason {
    pub fn kind(&self) -> SkipKind {
        match self {
            SkipReason::Syntax { .. } => SkipKind::Syntax,
            SkipReason::BadAddress { .. } => SkipKind::BadAddress,
            SkipReason::BadDate { .. } => SkipKind::BadDate,
            SkipReason::BadHwAddr { .. } => SkipKind::BadHwAddr,
            SkipReason::BadClientId { .. } => SkipKind::BadClientId,
            SkipReason::BadNumber { .. } => SkipKind::BadNumber,
            SkipReason::UnknownState { .. } => SkipKind::UnknownState,
            SkipReason::NoClient => SkipKind::NoClient,
            SkipReason::Truncated => SkipKind::Truncated,
            SkipReason::LineTooLong => SkipKind::LineTooLong,
            SkipReason::Columns { .. } => SkipKind::Columns,
            SkipReason::NotInConfig => SkipKind::NotInConfig,
        }
    }
}

impl fmt::Display for SkipKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipKind::Syntax => "malformed",
            SkipKind::BadAddress => "bad address",
            SkipKind::BadDate => "bad date",
            SkipKind::BadHwAddr => "bad hardware address",
            SkipKind::BadClientId => "bad client id",
            SkipKind::BadNumber => "bad number",
            SkipKind::UnknownState => "unknown state",
            SkipKind::NoClient => "no client",
            SkipKind::Truncated => "truncated",
            SkipKind::LineTooLong => "line too long",
            SkipKind::Columns => "wrong column count",
            SkipKind::NotInConfig => "not in configuration",
        })
    }
}

/// What a reader yields, one per entry or top-level statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Lease(Imported),
    Skip(Skipped),
    /// A top-level statement that is not a lease (dhcpd `server-duid`, `failover peer`,
    /// `host`, `authoring-byte-order`, ...): nothing to import, not an error.
    Ignored {
        line: u64,
        keyword: String,
    },
}

/// A streaming lease file reader: [`IscReader`] or [`KeaReader`] behind one type.
pub enum Reader<R: BufRead> {
    Isc(IscReader<R>),
    Kea(KeaReader<R>),
}

impl<R: BufRead> Reader<R> {
    /// # Errors
    /// Kea: reading the header failed or it lacks a required column
    /// (`io::ErrorKind::InvalidData`).
    pub fn new(format: Format, reader: R) -> io::Result<Self> {
        Ok(match format {
            Format::Isc => Reader::Isc(IscReader::new(reader)),
            Format::Kea => Reader::Kea(KeaReader::new(reader)?),
        })
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        match self {
            Reader::Isc(r) => r.bytes_read(),
            Reader::Kea(r) => r.bytes_read(),
        }
    }

    /// Lines seen so far.
    pub fn lines(&self) -> u64 {
        match self {
            Reader::Isc(r) => r.lines(),
            Reader::Kea(r) => r.lines(),
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = io::Result<Entry>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Reader::Isc(r) => r.next(),
            Reader::Kea(r) => r.next(),
        }
    }
}

/// Iterator glue of both readers: the entry a step read, and the end after the last entry or
/// the first I/O error (`done`).
fn fuse(done: &mut bool, step: io::Result<Option<Entry>>) -> Option<io::Result<Entry>> {
    match step {
        Ok(Some(e)) => Some(Ok(e)),
        Ok(None) => {
            *done = true;
            None
        }
        Err(e) => {
            *done = true;
            Some(Err(e))
        }
    }
}

/// The key of free records and of declines by nobody in particular: an empty option 61. No
/// request can carry it (RFC 2132 §9.14: the option is at least two bytes, and the wire parser
/// refuses shorter ones), and the readers never build it (they drop empty ids), so it never
/// matches a real client, yet it persists like any other key.
pub fn anonymous_key() -> ClientKey {
    ClientKey::from_client_id(&[])
}

/// The one persistence record meaning "this address is free and remembers nobody": a
/// probation that has long passed. [`LeaseTables::restore`] turns it into a free address and
/// forgets whichever client an earlier record gave it; [`crate::lease::LeaseInfo::state_at`]
/// says `None` for it.
pub fn free_record(addr: Ipv4Addr, subnet: SubnetId) -> LeaseRecord {
    record(addr, subnet, anonymous_key(), LeaseState::Declined, 0)
}

/// The only place that builds a [`LeaseRecord`] field by field.
fn record(
    addr: Ipv4Addr,
    subnet: SubnetId,
    client: ClientKey,
    state: LeaseState,
    expires: Secs,
) -> LeaseRecord {
    LeaseRecord {
        addr,
        subnet,
        client,
        state,
        expires,
        // Imported records are unversioned: replay applies them in file order.
        version: 0,
    }
}

/// How one entry becomes a record, or why it does not.
///
/// `Bound` with a passed end becomes `Expired` (remembered, never resurrected); anything that
/// is free at `now` and names no client becomes a [`free_record`]; a lapsed probation too.
///
/// # Errors
/// [`SkipReason::NotInConfig`] when the tables have no slot for the address,
/// [`SkipReason::NoClient`] for a bound lease without a client.
pub fn to_record(
    e: &Imported,
    tables: &LeaseTables,
    now: Secs,
) -> Result<(LeaseRecord, bool), SkipReason> {
    let subnet = tables.subnet_of(e.addr).ok_or(SkipReason::NotInConfig)?;
    let expires = e.expires.min(NEVER);
    let passed = expires != NEVER && expires <= now;
    let (state, client, expired_on_arrival) = match (e.state, e.client) {
        (None, _) => return Ok((free_record(e.addr, subnet), false)),
        (Some(LeaseState::Bound | LeaseState::Offered), None) => return Err(SkipReason::NoClient),
        (Some(LeaseState::Bound | LeaseState::Offered), Some(c)) if passed => {
            (LeaseState::Expired, c, true)
        }
        (Some(s @ (LeaseState::Bound | LeaseState::Offered)), Some(c)) => (s, c, false),
        // A probation that has passed: free, nobody remembered.
        (Some(LeaseState::Declined), _) if passed => {
            return Ok((free_record(e.addr, subnet), true));
        }
        (Some(LeaseState::Declined), c) => {
            (LeaseState::Declined, c.unwrap_or_else(anonymous_key), false)
        }
        (Some(s @ (LeaseState::Expired | LeaseState::Released)), Some(c)) => (s, c, false),
        (Some(LeaseState::Expired | LeaseState::Released), None) => {
            return Ok((free_record(e.addr, subnet), false));
        }
    };
    Ok((
        record(e.addr, subnet, client, state, expires),
        expired_on_arrival,
    ))
}

/// Skips of one kind: how many, and the first [`EXAMPLES`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkipGroup {
    pub count: u64,
    pub examples: Vec<Skipped>,
}

/// What an import did. `Display` renders it for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    pub format: Format,
    pub bytes: u64,
    pub lines: u64,
    /// Lease entries read (imported + skipped).
    pub entries: u64,
    /// Records handed to the store.
    pub imported: u64,
    /// Imported records by state (`free` = free records, see [`free_record`]).
    pub bound: u64,
    pub expired: u64,
    pub released: u64,
    pub declined: u64,
    pub free: u64,
    /// Bound leases (or probations) whose end had already passed: imported as expired (free).
    pub expired_on_arrival: u64,
    pub skipped: u64,
    pub skips: BTreeMap<SkipKind, SkipGroup>,
    /// Top-level statements that are not leases, by keyword (at most 32 distinct keywords;
    /// the rest are counted under `"..."`).
    pub ignored: BTreeMap<String, u64>,
}

impl ImportReport {
    fn new(format: Format) -> Self {
        ImportReport {
            format,
            bytes: 0,
            lines: 0,
            entries: 0,
            imported: 0,
            bound: 0,
            expired: 0,
            released: 0,
            declined: 0,
            free: 0,
            expired_on_arrival: 0,
            skipped: 0,
            skips: BTreeMap::new(),
            ignored: BTreeMap::new(),
        }
    }

    fn skip(&mut self, s: Skipped) {
        self.entries += 1;
        self.skipped += 1;
        let g = self.skips.entry(s.reason.kind()).or_default();
        g.count += 1;
        if g.examples.len() < EXAMPLES {
            g.examples.push(s);
        }
    }

    fn ignore(&mut self, keyword: String) {
        if let Some(n) = self.ignored.get_mut(&keyword) {
            *n += 1;
        } else if self.ignored.len() < 32 {
            self.ignored.insert(keyword, 1);
        } else {
            *self.ignored.entry("...".to_owned()).or_default() += 1;
        }
    }

    fn count(&mut self, r: &LeaseRecord, now: Secs) {
        self.entries += 1;
        self.imported += 1;
        match r.state_at(now) {
            None => self.free += 1,
            Some(LeaseState::Bound | LeaseState::Offered) => self.bound += 1,
            Some(LeaseState::Expired) => self.expired += 1,
            Some(LeaseState::Released) => self.released += 1,
            Some(LeaseState::Declined) => self.declined += 1,
        }
    }

    /// Number of skips of one kind.
    pub fn skipped_for(&self, kind: SkipKind) -> u64 {
        self.skips.get(&kind).map_or(0, |g| g.count)
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} bytes, {} lines, {} lease entries",
            self.format, self.bytes, self.lines, self.entries
        )?;
        writeln!(
            f,
            "imported {}: {} bound, {} expired, {} released, {} declined, {} free",
            self.imported, self.bound, self.expired, self.released, self.declined, self.free
        )?;
        if self.expired_on_arrival > 0 {
            writeln!(
                f,
                "{} had already ended: imported as expired (free, remembered for their client)",
                self.expired_on_arrival
            )?;
        }
        writeln!(f, "skipped {}", self.skipped)?;
        for (kind, g) in &self.skips {
            writeln!(f, "  {kind}: {}", g.count)?;
            for s in &g.examples {
                writeln!(f, "    {s}")?;
            }
            if g.count > g.examples.len() as u64 {
                writeln!(f, "    ...")?;
            }
        }
        if !self.ignored.is_empty() {
            write!(f, "ignored statements:")?;
            for (k, n) in &self.ignored {
                write!(f, " {k} x{n}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Import a lease file into `sink`, in file order, in batches; `sync` once at the end.
///
/// Addresses come from the file, subnets from the current configuration
/// ([`LeaseTables::subnet_of`]): entries for addresses it does not have are skipped.
/// `progress` is called with the bytes consumed so far, every 256 KiB and at the end
/// ([`progress_bar`] draws them).
///
/// # Errors
/// A read error, a Kea file without a usable header (`InvalidData`), or a store error. Records
/// appended before the error stay appended (the store's own durability rules apply).
pub fn import<R: BufRead>(
    format: Format,
    reader: R,
    tables: &LeaseTables,
    now: Secs,
    sink: &mut dyn LeaseStore,
    progress: &mut dyn FnMut(u64),
) -> io::Result<ImportReport> {
    let mut rd = Reader::new(format, reader)?;
    let mut report = ImportReport::new(format);
    let mut batch: Vec<LeaseRecord> = Vec::with_capacity(BATCH);
    let mut reported = 0u64;
    while let Some(entry) = rd.next() {
        match entry? {
            Entry::Lease(e) => match to_record(&e, tables, now) {
                Ok((rec, late)) => {
                    report.expired_on_arrival += u64::from(late);
                    report.count(&rec, now);
                    batch.push(rec);
                    if batch.len() == BATCH {
                        sink.append(&batch)?;
                        batch.clear();
                    }
                }
                Err(reason) => report.skip(Skipped {
                    line: e.line,
                    addr: Some(e.addr),
                    reason,
                }),
            },
            Entry::Skip(s) => report.skip(s),
            Entry::Ignored { keyword, .. } => report.ignore(keyword),
        }
        let b = rd.bytes_read();
        if b >= reported + PROGRESS_EVERY {
            reported = b;
            progress(b);
        }
    }
    if !batch.is_empty() {
        sink.append(&batch)?;
    }
    sink.sync()?;
    report.bytes = rd.bytes_read();
    report.lines = rd.lines();
    progress(report.bytes);
    Ok(report)
}

/// A progress callback for [`import`] that draws a bar on stderr: bytes read of `total_bytes`,
/// rate and time left (a spinner with the byte count when the size is unknown, `0`, as for a
/// pipe). indicatif hides it when stderr is not a terminal and limits redraws to a few per
/// second, so calling it often costs little.
pub fn progress_bar(total_bytes: u64) -> impl FnMut(u64) {
    use indicatif::{ProgressBar, ProgressStyle};
    let (bar, template) = if total_bytes > 0 {
        (
            ProgressBar::new(total_bytes),
            "{bar:40} {bytes}/{total_bytes} {percent}% ({bytes_per_sec}, {eta} left)",
        )
    } else {
        (
            ProgressBar::new_spinner(),
            "{spinner} {bytes} read ({bytes_per_sec})",
        )
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    move |bytes| {
        bar.set_position(bytes);
        if total_bytes > 0 && bytes >= total_bytes {
            bar.finish();
        }
    }
}

// ------------------------------------------------------------------------ shared helpers

/// A [`BufRead`] that counts what its user consumed (for progress reports).
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: BufRead> io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.bytes += amt as u64;
        self.inner.consume(amt);
    }
}

/// Result of [`read_line`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    Eof,
    /// A line is in the buffer (without its newline); `long` when it was cut at the cap;
    /// `newline` false when the file ended without one.
    Got {
        long: bool,
        newline: bool,
    },
}

/// Read one line into `buf` (cleared first), keeping at most `max` bytes and consuming the
/// rest, so a line without end cannot grow memory. Retries `Interrupted`.
fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let mut long = false;
    let mut any = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if any {
                Line::Got {
                    long,
                    newline: false,
                }
            } else {
                Line::Eof
            });
        }
        any = true;
        let (chunk, used, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        if chunk.len() > room {
            long = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        r.consume(used);
        if done {
            return Ok(Line::Got {
                long,
                newline: true,
            });
        }
    }
}

/// Text from the file for a message: lossy UTF-8, at most 64 characters.
fn quote(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// Hex octets separated by `:` (one or two digits each, as dhcpd and Kea print them), or a
/// plain even-length hex string (Kea also accepts that). At most `max` bytes.
fn parse_hex(text: &[u8], max: usize) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    if text.contains(&b':') {
        for part in text.split(|&c| c == b':') {
            let v = match part {
                [a] => digit(*a)?,
                [a, b] => digit(*a)? << 4 | digit(*b)?,
                _ => return None,
            };
            out.push(v);
            if out.len() > max {
                return None;
            }
        }
    } else {
        if text.is_empty() || !text.len().is_multiple_of(2) || text.len() / 2 > max {
            return None;
        }
        for pair in text.chunks(2) {
            out.push(digit(pair[0])? << 4 | digit(pair[1])?);
        }
    }
    Some(out)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of a UTC calendar time; `None` if any field is out of range.
fn unix_time(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<Secs> {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let dim = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&y) || d == 0 || d > dim || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    u64::try_from(days * 86_400 + i64::from(h * 3600 + mi * 60 + s)).ok()
}

/// Calendar fields of Unix seconds (for tests and messages).
#[cfg(test)]
fn civil(t: Secs) -> (u32, u32, u32, u32, u32, u32) {
    let days = (t / 86_400) as i64;
    let rem = (t % 86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as u32;
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// A decimal number with nothing else around it.
fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}
