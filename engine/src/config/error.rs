//! Configuration errors, shaped like rustc's: `FILE:LINE:COLUMN: error: what` + `  help: fix`.
//!
//! An operator editing a config at 3 a.m. needs three things from an error: where (so the
//! editor can jump there), what rule was broken, and what to type instead. Every problem the
//! loader finds — TOML syntax, unknown keys, wrong types, bad values and cross-checks such as
//! overlapping ranges — becomes one [`Diagnostic`] with a byte span into the file, a line and
//! column derived from it, an [`ErrorKind`] for programs, and the two human lines.
//!
//! The validator reports every independent problem it finds (not just the first), in file
//! order, so one edit-reload cycle fixes them all.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::PathBuf;

/// Byte range into the configuration text.
pub type Span = Range<usize>;

/// What class of rule a [`Diagnostic`] reports (stable for tests and tooling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not valid TOML.
    Syntax,
    /// A key the schema does not know (often a typo).
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A key appears twice in one table.
    DuplicateKey,
    /// The value has the wrong TOML type (string for integer, ...).
    WrongType,
    /// The value does not parse (address, network, MAC, hex, domain name, ...).
    InvalidValue,
    /// A number or a length is outside what the field allows.
    OutOfBounds,
    /// A list that must not be empty is empty.
    EmptyList,
    /// `network` has host bits set.
    HostBitsSet,
    /// Two subnets share addresses.
    SubnetOverlap,
    /// A range (or excluded range) lies partly or wholly outside its subnet.
    RangeOutsideSubnet,
    /// A range's start is after its end.
    RangeReversed,
    /// Two ranges of one subnet share addresses.
    RangeOverlap,
    /// An `exclude` entry removes nothing from any range.
    ExcludeOutsideRanges,
    /// The network or broadcast address is used as a host address.
    SpecialAddress,
    /// An address the server or a router uses would also be leased out, or is reserved for
    /// a host.
    AddressConflict,
    /// A subnet has no server identifier.
    MissingServerId,
    /// A subnet that serves directly attached clients has a server id that is not on it.
    ServerIdOffLink,
    /// A router (option 3 or 121 gateway) is not inside the subnet.
    RouterOffLink,
    /// Lease times are not ordered `min <= lease_time <= max`.
    LeaseTimeOrder,
    /// `t1_percent` / `t2_percent` are not `0 < t1 < t2 < 100`.
    RenewalTimes,
    /// A reservation has no identifier, or more than one.
    ReservationKey,
    /// Two reservations use the same identifier.
    DuplicateReservation,
    /// Two reservations fix the same address.
    DuplicateReservedAddress,
    /// A reservation's fixed address is outside its subnet.
    ReservationOutsideSubnet,
    /// An option value is not allowed (reserved code, no value, too long, ...).
    BadOption,
    /// One option code is set twice in one scope.
    DuplicateOption,
    /// Option 121 is sent together with routers (option 3) but has no default route.
    MissingDefaultRoute,
    /// A shared network lists a subnet that does not exist.
    UnknownSubnet,
    /// Shared network membership contradicts itself.
    SharedNetworkConflict,
    /// One direct link (VLAN pair) is claimed by two unrelated subnets.
    LinkConflict,
    /// More than one subnet says `default = true`.
    DefaultSubnetConflict,
    /// A path that must be absolute is relative.
    RelativePath,
}

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the caller named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// Byte span of the offending text.
    pub span: Span,
    pub kind: ErrorKind,
    /// What is wrong (one line, no trailing period).
    pub message: String,
    /// What to do about it (one line).
    pub help: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}\n  help: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message,
            self.help
        )
    }
}

/// Why a configuration could not be loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "{}: error: cannot read the configuration: {source}\n  help: check the path and that \
         xdhcp may read the file, or leave out --config to serve the interface's own subnet",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration; at least one diagnostic, in file
    /// order.
    #[error("{}", render(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
    /// Zero-config mode cannot serve the interface's subnet.
    #[error(
        "error: cannot serve {addr}/{prefix} without a configuration file: {reason}\n  help: {help}"
    )]
    ZeroConfig {
        addr: Ipv4Addr,
        prefix: u8,
        reason: String,
        help: String,
    },
}

impl ConfigError {
    /// The file diagnostics (empty for `Read` and `ZeroConfig`).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid { diagnostics } => diagnostics,
            _ => &[],
        }
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    out
}

/// Byte offset -> (line, column), both 1-based; columns count characters like rustc does.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of every line.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// Line and column of byte `offset` (clamped to the text; mid-character offsets move back
    /// to the character's start).
    pub fn locate(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        (line, column)
    }

    pub fn line(&self, offset: usize) -> usize {
        self.locate(offset).0
    }
}

/// Turn a TOML/serde error into a diagnostic with a help line the operator can act on.
pub(crate) fn from_toml(
    err: &toml::de::Error,
    index: &LineIndex<'_>,
    file: &std::path::Path,
) -> Diagnostic {
    let span = err.span().unwrap_or(0..0);
    let (line, column) = index.locate(span.start);
    let (kind, message, help) = explain_toml(err.message());
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column,
        span,
        kind,
        message,
        help,
    }
}

fn explain_toml(msg: &str) -> (ErrorKind, String, String) {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (key, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let help = match closest(key, &expected) {
            Some(near) => format!("did you mean `{near}`?"),
            None if expected.is_empty() => "remove it: this table takes no keys".to_string(),
            None => format!(
                "remove it or fix the spelling; keys allowed here: {}",
                expected
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return (ErrorKind::UnknownKey, format!("unknown key `{key}`"), help);
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        let example = match key {
            "network" => "network = \"10.0.0.0/24\"",
            "code" => "code = 150",
            "name" => "name = \"bundle-1\"",
            _ => "",
        };
        let help = if example.is_empty() {
            format!("add `{key} = ...` to this table")
        } else {
            format!("add `{example}` to this table")
        };
        return (
            ErrorKind::MissingKey,
            format!("missing required key `{key}`"),
            help,
        );
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        let (what, help) = match expected {
            "i64" | "u64" | "i32" | "u32" | "u16" | "u8" => (
                "an integer",
                "write a whole number without quotes, e.g. `3600`",
            ),
            "f64" => ("a number", "write a number without quotes, e.g. `87.5`"),
            "a boolean" => ("a boolean", "write `true` or `false` without quotes"),
            "a string" => (
                "a string",
                "put the value in double quotes, e.g. \"10.0.0.1\"",
            ),
            "a sequence" => (
                "an array",
                "write an array in brackets, e.g. [\"10.0.0.1\"]",
            ),
            _ => (
                "a table",
                "write a table: a `[name]` section or `{ key = value }`",
            ),
        };
        let found = found.replace("sequence", "array").replace("map", "table");
        return (
            ErrorKind::WrongType,
            format!("expected {what}, found {found}"),
            help.into(),
        );
    }
    if msg.starts_with("duplicate key") {
        return (
            ErrorKind::DuplicateKey,
            "this key is already set in this table".into(),
            "remove one of the two definitions".into(),
        );
    }
    (
        ErrorKind::Syntax,
        format!("invalid TOML: {}", msg.trim_end()),
        "fix the TOML syntax (see https://toml.io/en/v1.0.0)".into(),
    )
}

/// The candidate within edit distance 2 of `word`, if there is a best one.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let idx = LineIndex::new("ab\nçd = 1\n\nx");
        assert_eq!(idx.locate(0), (1, 1));
        assert_eq!(idx.locate(2), (1, 3)); // the newline itself
        assert_eq!(idx.locate(3), (2, 1));
        // 'ç' is two bytes; 'd' is the second character of line 2.
        assert_eq!(idx.locate(5), (2, 2));
        // Mid-character offset moves back to the character's start.
        assert_eq!(idx.locate(4), (2, 1));
        assert_eq!(idx.locate(11), (3, 1)); // empty line
        assert_eq!(idx.locate(12), (4, 1));
        assert_eq!(idx.locate(999), (4, 2));
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(closest("rangs", &["ranges", "routers"]), Some("ranges"));
        assert_eq!(closest("lease", &["ranges", "routers"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
