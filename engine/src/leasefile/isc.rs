//! ISC dhcpd `dhcpd.leases` (dhcpd.leases(5)), read as a stream of tokens.
//!
//! The file is a journal of statements: `lease A.B.C.D { ... }` blocks, appended whenever a lease
//! changes, plus a few top-level statements (`authoring-byte-order`, `server-duid`,
//! `failover peer ... state { ... }`, `host ... { ... }`, DHCPv6 `ia-na` blocks) that say
//! nothing about IPv4 leases and are passed over. Inside a lease, the statements that matter:
//!
//! ```text
//! ends 1 2026/11/23 12:54:14;      (UTC; `ends epoch 1795438454;` with db-time-format local;
//!                                   `ends never;` for an infinite lease)
//! binding state active;            (free, active, expired, released, abandoned, reset, backup,
//!                                   bootp; `next` / `rewind binding state` are plans, ignored)
//! hardware ethernet 02:13:a5:9e:65:01;   (1- or 2-digit hex octets)
//! uid "\001\002\023G\264\260\002";       (option 61 bytes; octal escapes, or with
//!                                         lease-id-format hex: `uid 01:02:13:47:b4:b0:02;`)
//! client-hostname "hb-udhcpc";
//! ```
//!
//! Every other statement (`starts`, `cltt`, `set ...`, `on expiry { ... }`, `option ...`) is
//! skipped by its shape: tokens up to `;`, or a balanced `{ }` block. That keeps the reader
//! tolerant of what newer dhcpd versions add, while a malformed statement it does depend on
//! skips the whole lease with the statement's line.

use super::{
    Counted, Entry, HwAddr, Imported, MAX_TOKEN, NEVER, SkipReason, Skipped, parse_hex, parse_ipv4,
    parse_u64, quote, unix_time,
};
use crate::lease::{ClientKey, LeaseState, Secs};
use std::io::{self, BufRead};
use std::net::Ipv4Addr;

/// Tokens kept per statement; the longest statement read here has four.
const MAX_WORDS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    /// A bare word (keyword, number, address, date, hex list); text in `tok`.
    Word,
    /// A quoted string, escapes decoded; bytes in `tok`.
    Str,
    Open,
    Close,
    Semi,
    Eof,
}

/// How a statement ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Semi,
    /// With a `{ ... }` block (skipped).
    Block,
    /// At the `}` of the enclosing block, without `;`.
    Close,
    Eof,
}

/// One statement's tokens (kind, text), capped at [`MAX_WORDS`].
#[derive(Default)]
struct Stmt {
    line: u64,
    words: Vec<(Tok, Vec<u8>, bool)>,
    used: usize,
}

impl Stmt {
    fn clear(&mut self) {
        self.used = 0;
    }
    fn push(&mut self, kind: Tok, text: &[u8], long: bool) {
        if self.used < MAX_WORDS {
            if self.words.len() == self.used {
                self.words.push((kind, Vec::new(), false));
            }
            let w = &mut self.words[self.used];
            w.0 = kind;
            w.1.clear();
            w.1.extend_from_slice(text);
            w.2 = long;
        }
        self.used += 1;
    }
    fn words(&self) -> &[(Tok, Vec<u8>, bool)] {
        &self.words[..self.used.min(MAX_WORDS)]
    }
    fn is_empty(&self) -> bool {
        self.used == 0
    }
    /// The first word, if the statement starts with one.
    fn keyword(&self) -> Option<&[u8]> {
        match self.words().first() {
            Some((Tok::Word, w, _)) => Some(w),
            _ => None,
        }
    }
    /// Words after the first `n` tokens, as text, all bare words and within the cap.
    fn tail(&self, n: usize) -> Option<Vec<&[u8]>> {
        if self.used > MAX_WORDS {
            return None;
        }
        self.words()
            .get(n..)?
            .iter()
            .map(|(k, w, long)| (*k == Tok::Word && !long).then_some(w.as_slice()))
            .collect()
    }
    /// The statement as written (for messages).
    fn text(&self) -> String {
        let mut s = Vec::new();
        for (i, (_, w, _)) in self.words().iter().enumerate() {
            if i > 0 {
                s.push(b' ');
            }
            s.extend_from_slice(w);
        }
        quote(&s)
    }
}

/// Streaming reader of `dhcpd.leases`: an iterator of [`Entry`], in file order.
pub struct IscReader<R> {
    r: Counted<R>,
    /// Current line (1-based).
    line: u64,
    /// Text of the last Word/Str token; `long` if it was cut at [`MAX_TOKEN`].
    pub(super) tok: Vec<u8>,
    long: bool,
    /// Line where the last token started.
    tok_line: u64,
    back: Option<Tok>,
    stmt: Stmt,
    done: bool,
    /// Bytes consumed since the last newline (the current line counts as read).
    open: bool,
}

impl<R: BufRead> IscReader<R> {
    pub fn new(reader: R) -> Self {
        IscReader {
            r: Counted {
                inner: reader,
                bytes: 0,
            },
            line: 1,
            tok: Vec::with_capacity(64),
            long: false,
            tok_line: 1,
            back: None,
            stmt: Stmt::default(),
            done: false,
            open: false,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.r.bytes
    }

    /// Lines read so far (a last line without its newline counts).
    pub fn lines(&self) -> u64 {
        self.line - u64::from(!self.open)
    }

    // ------------------------------------------------------------------------ lexer

    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.r.fill_buf() {
                Ok(b) => return Ok(b.first().copied()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn bump(&mut self) {
        self.r.consume(1);
        self.open = true;
    }

    /// After consuming a newline.
    fn newline(&mut self) {
        self.line += 1;
        self.open = false;
    }

    fn keep(&mut self, b: u8) {
        if self.tok.len() < MAX_TOKEN {
            self.tok.push(b);
        } else {
            self.long = true;
        }
    }

    fn unread(&mut self, t: Tok) {
        self.back = Some(t);
    }

    fn next_tok(&mut self) -> io::Result<Tok> {
        if let Some(t) = self.back.take() {
            return Ok(t);
        }
        loop {
            let Some(c) = self.peek()? else {
                return Ok(Tok::Eof);
            };
            self.tok_line = self.line;
            match c {
                b'\n' => {
                    self.bump();
                    self.newline();
                }
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c => self.bump(),
                b'#' => {
                    // Comment to the end of the line (the newline counts the line).
                    while let Some(c) = self.peek()? {
                        if c == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                b'{' | b'}' | b';' => {
                    self.bump();
                    return Ok(match c {
                        b'{' => Tok::Open,
                        b'}' => Tok::Close,
                        _ => Tok::Semi,
                    });
                }
                b'"' => {
                    self.bump();
                    return self.string();
                }
                _ => {
                    self.tok.clear();
                    self.long = false;
                    while let Some(c) = self.peek()? {
                        if c.is_ascii_whitespace() || matches!(c, b';' | b'{' | b'}' | b'"' | b'#')
                        {
                            break;
                        }
                        self.keep(c);
                        self.bump();
                    }
                    return Ok(Tok::Word);
                }
            }
        }
    }

    /// The rest of a quoted string, with dhcpd's escapes: `\t \r \n \b`, octal `\NNN`, hex
    /// `\xNN`, and `\c` for any other `c` (`\"`, `\\`). An unterminated string is `Eof`.
    fn string(&mut self) -> io::Result<Tok> {
        self.tok.clear();
        self.long = false;
        loop {
            let Some(c) = self.peek()? else {
                return Ok(Tok::Eof);
            };
            self.bump();
            match c {
                b'"' => return Ok(Tok::Str),
                b'\\' => {
                    let Some(e) = self.peek()? else {
                        return Ok(Tok::Eof);
                    };
                    self.bump();
                    let v = match e {
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'n' => b'\n',
                        b'b' => 0x08,
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek()? {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.bump();
                                    }
                                    _ => break,
                                }
                            }
                            v as u8
                        }
                        b'x' => {
                            let mut v = 0u32;
                            for _ in 0..2 {
                                match self.peek()?.and_then(|d| (d as char).to_digit(16)) {
                                    Some(d) => {
                                        v = v * 16 + d;
                                        self.bump();
                                    }
                                    None => break,
                                }
                            }
                            v as u8
                        }
                        b'\n' => {
                            self.newline();
                            b'\n'
                        }
                        other => other,
                    };
                    self.keep(v);
                }
                b'\n' => {
                    self.newline();
                    self.keep(c);
                }
                _ => self.keep(c),
            }
        }
    }

    /// Skip to the `}` that closes a block whose `{` was just read. `false` at end of file.
    fn skip_block(&mut self) -> io::Result<bool> {
        let mut depth = 1u32;
        loop {
            match self.next_tok()? {
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(true);
                    }
                }
                Tok::Eof => return Ok(false),
                _ => {}
            }
        }
    }

    /// Read one statement into `self.stmt`, starting with token `first` (already read).
    fn statement(&mut self, first: Tok) -> io::Result<End> {
        self.stmt.clear();
        self.stmt.line = self.tok_line;
        let mut t = first;
        loop {
            match t {
                Tok::Semi => return Ok(End::Semi),
                Tok::Eof => return Ok(End::Eof),
                Tok::Close => {
                    self.unread(Tok::Close);
                    return Ok(End::Close);
                }
                Tok::Open => {
                    return Ok(if self.skip_block()? {
                        End::Block
                    } else {
                        End::Eof
                    });
                }
                Tok::Word | Tok::Str => {
                    let (tok, long) = (std::mem::take(&mut self.tok), self.long);
                    self.stmt.push(t, &tok, long);
                    self.tok = tok;
                }
            }
            t = self.next_tok()?;
        }
    }

    // ------------------------------------------------------------------------ grammar

    fn top(&mut self) -> io::Result<Option<Entry>> {
        loop {
            let t = self.next_tok()?;
            let line = self.tok_line;
            match t {
                Tok::Eof => return Ok(None),
                Tok::Semi => continue,
                Tok::Word if self.tok == b"lease" && !self.long => {
                    return self.lease(line).map(Some);
                }
                Tok::Word => {
                    let keyword = quote(&self.tok);
                    let _ = self.rest_of_statement()?;
                    return Ok(Some(Entry::Ignored { line, keyword }));
                }
                Tok::Open => {
                    let _closed = self.skip_block()?;
                    return Ok(Some(syntax(
                        line,
                        None,
                        "a `{` block outside any statement",
                    )));
                }
                Tok::Close => {
                    return Ok(Some(syntax(line, None, "a `}` without its `{`")));
                }
                Tok::Str => {
                    let _ = self.rest_of_statement()?;
                    return Ok(Some(syntax(
                        line,
                        None,
                        "a string where a statement starts",
                    )));
                }
            }
        }
    }

    /// Consume tokens up to the end of the current top-level statement.
    fn rest_of_statement(&mut self) -> io::Result<End> {
        loop {
            match self.next_tok()? {
                Tok::Semi => return Ok(End::Semi),
                Tok::Eof => return Ok(End::Eof),
                Tok::Open => {
                    return Ok(if self.skip_block()? {
                        End::Block
                    } else {
                        End::Eof
                    });
                }
                Tok::Close => return Ok(End::Close),
                Tok::Word | Tok::Str => {}
            }
        }
    }

    /// `lease A.B.C.D { statements }`, the keyword just read at `line`.
    fn lease(&mut self, line: u64) -> io::Result<Entry> {
        let t = self.next_tok()?;
        let addr = match t {
            Tok::Word => parse_ipv4(&self.tok).filter(|_| !self.long),
            _ => None,
        };
        let Some(addr) = addr else {
            let text = quote(&self.tok);
            // Recover at the end of whatever this is.
            match t {
                Tok::Eof => return Ok(truncated(line, None)),
                Tok::Semi => {}
                Tok::Open => {
                    if !self.skip_block()? {
                        return Ok(truncated(line, None));
                    }
                }
                _ => {
                    if self.rest_of_statement()? == End::Eof {
                        return Ok(truncated(line, None));
                    }
                }
            }
            let reason = if t == Tok::Word {
                SkipReason::BadAddress { text }
            } else {
                SkipReason::Syntax {
                    detail: "`lease` without an address".into(),
                }
            };
            return Ok(Entry::Skip(Skipped {
                line,
                addr: None,
                reason,
            }));
        };
        match self.next_tok()? {
            Tok::Open => {}
            Tok::Eof => return Ok(truncated(line, Some(addr))),
            t => {
                self.unread(t);
                if self.rest_of_statement()? == End::Eof {
                    return Ok(truncated(line, Some(addr)));
                }
                return Ok(syntax(
                    line,
                    Some(addr),
                    "`lease` address not followed by `{`",
                ));
            }
        }

        let mut b = LeaseBody::default();
        loop {
            let first = self.next_tok()?;
            if first == Tok::Close {
                break;
            }
            if first == Tok::Word && self.tok == b"lease" {
                // dhcpd never nests leases: this one was cut off (torn write) and the next
                // entry follows. Hand the keyword back so the next entry is read normally.
                self.unread(Tok::Word);
                return Ok(truncated(line, Some(addr)));
            }
            let end = self.statement(first)?;
            match end {
                End::Eof => return Ok(truncated(line, Some(addr))),
                End::Close if self.stmt.is_empty() => {
                    let _ = self.next_tok()?;
                    break;
                }
                End::Close => {
                    let _ = self.next_tok()?;
                    b.fail(
                        self.stmt.line,
                        SkipReason::Syntax {
                            detail: format!("`{}` is missing its `;`", self.stmt.text()),
                        },
                    );
                    break;
                }
                End::Semi if self.stmt.is_empty() => {}
                End::Semi | End::Block => b.statement(&self.stmt, end),
            }
        }
        Ok(b.finish(line, addr))
    }
}

impl<R: BufRead> Iterator for IscReader<R> {
    type Item = io::Result<Entry>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = self.top();
        super::fuse(&mut self.done, step)
    }
}

fn truncated(line: u64, addr: Option<Ipv4Addr>) -> Entry {
    Entry::Skip(Skipped {
        line,
        addr,
        reason: SkipReason::Truncated,
    })
}

fn syntax(line: u64, addr: Option<Ipv4Addr>, detail: &str) -> Entry {
    Entry::Skip(Skipped {
        line,
        addr,
        reason: SkipReason::Syntax {
            detail: detail.into(),
        },
    })
}

/// dhcpd's binding states, as xdhcp understands them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Binding {
    /// active, bootp: bound until `ends`.
    Active,
    /// free, expired, reset, backup: free; remembered for its client if it names one.
    Free,
    Released,
    /// abandoned: in use by someone unknown, out of the pool until `ends`.
    Abandoned,
}

/// What the statements of one lease said.
#[derive(Default)]
struct LeaseBody {
    ends: Option<Secs>,
    state: Option<Binding>,
    hw: Option<HwAddr>,
    uid: Option<Vec<u8>>,
    hostname: Option<String>,
    /// The first problem, with its line.
    error: Option<(u64, SkipReason)>,
}

impl LeaseBody {
    fn fail(&mut self, line: u64, reason: SkipReason) {
        if self.error.is_none() {
            self.error = Some((line, reason));
        }
    }

    fn statement(&mut self, s: &Stmt, end: End) {
        let Some(kw) = s.keyword() else {
            return self.fail(
                s.line,
                SkipReason::Syntax {
                    detail: "a statement that does not start with a keyword".into(),
                },
            );
        };
        let known = matches!(
            kw,
            b"starts"
                | b"ends"
                | b"tstp"
                | b"tsfp"
                | b"atsfp"
                | b"cltt"
                | b"binding"
                | b"hardware"
                | b"uid"
                | b"client-hostname"
                | b"abandoned"
        );
        if !known {
            return; // set, on, option, next/rewind binding state, billing, ddns-*, ...
        }
        if end == End::Block {
            return self.fail(
                s.line,
                SkipReason::Syntax {
                    detail: format!("`{}` followed by a block", quote(kw)),
                },
            );
        }
        match kw {
            b"starts" | b"ends" | b"tstp" | b"tsfp" | b"atsfp" | b"cltt" => {
                match s.tail(1).as_deref().and_then(parse_date) {
                    Some(t) if kw == b"ends" => self.ends = Some(t),
                    Some(_) => {}
                    None => self.fail(
                        s.line,
                        SkipReason::BadDate {
                            statement: quote(kw),
                            text: s.text(),
                        },
                    ),
                }
            }
            b"binding" => match s.tail(1).as_deref() {
                Some([b"state", st]) => match binding(st) {
                    Some(b) => self.state = Some(b),
                    None => self.fail(s.line, SkipReason::UnknownState { text: quote(st) }),
                },
                _ => self.fail(
                    s.line,
                    SkipReason::Syntax {
                        detail: format!("`{}`", s.text()),
                    },
                ),
            },
            b"abandoned" => self.state = Some(Binding::Abandoned),
            b"hardware" => {
                let hw = match s.tail(1).as_deref() {
                    Some([ty, addr]) => htype(ty)
                        .zip(parse_hex(addr, 16))
                        .and_then(|(t, a)| HwAddr::new(t, &a)),
                    _ => None,
                };
                match hw {
                    Some(h) => self.hw = Some(h),
                    None => self.fail(s.line, SkipReason::BadHwAddr { text: s.text() }),
                }
            }
            b"uid" => {
                let id = match s.words() {
                    [_, (Tok::Str, v, false)] if s.used == 2 => Some(v.clone()),
                    [_, (Tok::Word, v, false)] if s.used == 2 => parse_hex(v, 255),
                    _ => None,
                };
                match id {
                    // RFC 2132 §9.14: the option is at least two bytes; an empty uid names
                    // nobody (the hardware address is used instead).
                    Some(v) if v.is_empty() => {}
                    Some(v) if v.len() <= 255 => self.uid = Some(v),
                    _ => self.fail(s.line, SkipReason::BadClientId { text: s.text() }),
                }
            }
            b"client-hostname" => {
                if let [_, (Tok::Str, v, _)] = s.words() {
                    self.hostname = Some(quote(v));
                }
            }
            _ => {}
        }
    }

    fn finish(self, line: u64, addr: Ipv4Addr) -> Entry {
        if let Some((line, reason)) = self.error {
            return Entry::Skip(Skipped {
                line,
                addr: Some(addr),
                reason,
            });
        }
        let client = match (&self.uid, &self.hw) {
            (Some(id), _) => Some(ClientKey::from_client_id(id)),
            (None, Some(hw)) => Some(hw.key()),
            (None, None) => None,
        };
        // No `binding state` at all: the dhcpd 2 format, where a lease was active until `ends`.
        let binding = self.state.unwrap_or(Binding::Active);
        let state = match binding {
            Binding::Active => {
                if client.is_none() {
                    return Entry::Skip(Skipped {
                        line,
                        addr: Some(addr),
                        reason: SkipReason::NoClient,
                    });
                }
                if self.ends.is_none() {
                    return Entry::Skip(Skipped {
                        line,
                        addr: Some(addr),
                        reason: SkipReason::Syntax {
                            detail: "an active lease without `ends`".into(),
                        },
                    });
                }
                Some(LeaseState::Bound)
            }
            Binding::Free if client.is_some() => Some(LeaseState::Expired),
            Binding::Released if client.is_some() => Some(LeaseState::Released),
            Binding::Free | Binding::Released => None,
            Binding::Abandoned => Some(LeaseState::Declined),
        };
        Entry::Lease(Imported {
            line,
            addr,
            client,
            hwaddr: self.hw,
            expires: self.ends.unwrap_or(0),
            state,
            hostname: self.hostname,
        })
    }
}

fn binding(s: &[u8]) -> Option<Binding> {
    Some(match s {
        b"active" | b"bootp" => Binding::Active,
        b"free" | b"expired" | b"reset" | b"backup" => Binding::Free,
        b"released" => Binding::Released,
        b"abandoned" => Binding::Abandoned,
        _ => return None,
    })
}

/// dhcpd's hardware type names (common/parse.c `parse_hardware_param`) to ARP types.
fn htype(s: &[u8]) -> Option<u8> {
    Some(match s {
        b"ethernet" => 1,
        b"token-ring" => 6,
        b"fddi" => 8,
        b"infiniband" => 32,
        _ => return None,
    })
}

/// `W YYYY/MM/DD HH:MM:SS` (UTC), `epoch N`, or `never` ([`NEVER`]).
fn parse_date(w: &[&[u8]]) -> Option<Secs> {
    match w {
        [b"never"] => Some(NEVER),
        [b"epoch", n] => parse_u64(n).map(|t| t.min(NEVER)),
        [wd, date, time] => {
            if !(wd.len() == 1 && wd[0].is_ascii_digit()) {
                return None;
            }
            let d = fields::<3>(date, b'/')?;
            let t = fields::<3>(time, b':')?;
            unix_time(d[0], d[1], d[2], t[0], t[1], t[2]).map(|t| t.min(NEVER))
        }
        _ => None,
    }
}

/// `N` decimal fields separated by `sep`, each 1-4 digits.
fn fields<const N: usize>(text: &[u8], sep: u8) -> Option<[u32; N]> {
    let mut out = [0u32; N];
    let mut parts = text.split(|&c| c == sep);
    for slot in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 4 {
            return None;
        }
        *slot = u32::try_from(parse_u64(p)?).ok()?;
    }
    parts.next().is_none().then_some(out)
}
