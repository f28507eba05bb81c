//! Value syntax (addresses, networks, MACs, hex) and DHCP option payload encoders.
//!
//! Encoding happens once, at load time: the runtime model stores finished option payloads so
//! the reply path copies bytes and never formats. The parsers return a short reason on
//! failure; the validator wraps it with a location and a fix.

use super::model::Ipv4Net;
use std::net::Ipv4Addr;

/// Parse a dotted-quad IPv4 address (surrounding spaces allowed, nothing else).
pub(crate) fn parse_ip(s: &str) -> Result<Ipv4Addr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("`{s}` is not an IPv4 address"))
}

/// Parse `A.B.C.D/N` without judging the host bits (the caller decides whether they matter).
pub(crate) fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (addr, prefix) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("`{s}` has no `/prefix` length"))?;
    let addr = parse_ip(addr)?;
    let prefix: u8 = prefix
        .trim()
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("`/{prefix}` is not a prefix length (0-32)"))?;
    Ok((addr, prefix))
}

/// Parse `START-END` or a single address (a one-address range). `start > end` is reported by
/// the caller, which knows how to phrase the fix.
pub(crate) fn parse_range(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    match s.split_once('-') {
        Some((a, b)) => Ok((parse_ip(a)?, parse_ip(b)?)),
        None => {
            let a = parse_ip(s)?;
            Ok((a, a))
        }
    }
}

/// Parse `DEST/LEN via ROUTER` (an RFC 3442 route).
pub(crate) fn parse_route(s: &str) -> Result<(Ipv4Addr, u8, Ipv4Addr), String> {
    let mut words = s.split_whitespace();
    let (Some(dest), Some("via"), Some(router), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(format!(
            "`{s}` is not of the form `DESTINATION/PREFIX via ROUTER`"
        ));
    };
    let (dest, prefix) = parse_cidr(dest)?;
    Ok((dest, prefix, parse_ip(router)?))
}

/// Parse a MAC address: `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff` or
/// `aabbccddeeff`.
pub(crate) fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bytes = if s.contains('.') {
        parse_hex_digits(&s.replace('.', "")).map_err(|()| String::new())
    } else {
        parse_hex(s)
    };
    bytes
        .ok()
        .and_then(|b| <[u8; 6]>::try_from(b).ok())
        .ok_or_else(|| format!("`{s}` is not a MAC address"))
}

/// Parse hex bytes: `01:aa:bb` / `01-aa-bb` / `01 aa bb` (one or two digits per group),
/// `01aabb` or `0x01aabb`. The empty string is zero bytes.
pub(crate) fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let sep = [':', '-', ' '].into_iter().find(|c| t.contains(*c));
    let out = match sep {
        Some(sep) => t
            .split(sep)
            .map(|g| {
                if (1..=2).contains(&g.len()) {
                    u8::from_str_radix(g, 16).ok()
                } else {
                    None
                }
            })
            .collect::<Option<Vec<u8>>>(),
        None => parse_hex_digits(t).ok(),
    };
    out.ok_or_else(|| format!("`{s}` is not hex bytes"))
}

fn parse_hex_digits(t: &str) -> Result<Vec<u8>, ()> {
    if !t.len().is_multiple_of(2) || !t.is_ascii() {
        return Err(());
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).map_err(|_| ()))
        .collect()
}

/// Parse an option 82 identifier: hex when written `0x...` or as colon-separated byte pairs
/// (`00:1a:2b`, two bytes or more), otherwise the text itself (`"ge-0/0/1:100"`).
pub(crate) fn parse_agent_id(s: &str) -> Result<Vec<u8>, String> {
    let colon_hex = s.len() >= 5
        && s.split(':')
            .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    let bytes = if s.starts_with("0x") || s.starts_with("0X") || colon_hex {
        parse_hex(s)?
    } else {
        s.as_bytes().to_vec()
    };
    if bytes.is_empty() {
        return Err("the identifier is empty".into());
    }
    if bytes.len() > 255 {
        return Err(format!(
            "the identifier is {} bytes; option 82 allows 255",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Check a host or domain name: dot-separated labels of letters, digits, `-` and `_`, each
/// 1-63 bytes, at most 253 bytes in all (RFC 1035 §2.3.4). A trailing dot is allowed.
pub(crate) fn check_domain(name: &str) -> Result<(), String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("the name is empty".into());
    }
    if trimmed.len() > 253 {
        return Err(format!(
            "`{name}` is {} bytes long; a domain name has at most 253",
            name.len()
        ));
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(format!("`{name}` has an empty label (two dots in a row?)"));
        }
        if label.len() > 63 {
            return Err(format!(
                "label `{label}` is {} bytes; a label has at most 63",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "`{name}` contains `{c}`; use letters, digits, `-` and `_`"
            ));
        }
    }
    Ok(())
}

/// Append `name` in DNS wire format (RFC 1035 §3.1: length-prefixed labels, zero
/// terminator), as option 119 carries it (RFC 3397 §2; no compression pointers, which are
/// optional for the encoder).
///
/// # Errors
/// A reason when `name` is not a valid domain name: labels of letters, digits, `-` and `_`,
/// 1-63 bytes each, at most 253 bytes in all.
pub fn encode_domain_name(name: &str, out: &mut Vec<u8>) -> Result<(), String> {
    check_domain(name)?;
    for label in name.strip_suffix('.').unwrap_or(name).split('.') {
        // check_domain bounds every label to 63 bytes, so the length fits a u8.
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// Append one RFC 3442 classless route: the prefix width, the significant octets of the
/// destination (`ceil(width / 8)` of them), then the router.
///
/// RFC 3442, "Classless Route Option Format": the significant portion of the subnet number
/// is the octets of the subnet number whose corresponding subnet-mask octet is non-zero.
pub fn encode_classless_route(dest: Ipv4Net, router: Ipv4Addr, out: &mut Vec<u8>) {
    let width = dest.prefix.min(32);
    out.push(width);
    let significant = usize::from(width).div_ceil(8);
    out.extend_from_slice(&dest.addr.octets()[..significant]);
    out.extend_from_slice(&router.octets());
}

/// Whether `ip` may be handed to clients as a server address (DNS, NTP, router, ...).
pub(crate) fn is_unicast(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        let (addr, prefix) = parse_cidr(s).unwrap();
        Ipv4Net { addr, prefix }
    }

    /// The destination-descriptor table of RFC 3442 ("Classless Route Option Format"), plus
    /// the router octets.
    #[test]
    fn classless_routes_match_rfc3442_examples() {
        let r = Ipv4Addr::new(10, 0, 0, 1);
        let cases: &[(&str, &[u8])] = &[
            ("0.0.0.0/0", &[0]),
            ("10.0.0.0/8", &[8, 10]),
            ("10.0.0.0/24", &[24, 10, 0, 0]),
            ("10.17.0.0/16", &[16, 10, 17]),
            ("10.27.129.0/24", &[24, 10, 27, 129]),
            ("10.229.0.128/25", &[25, 10, 229, 0, 128]),
            ("10.198.122.47/32", &[32, 10, 198, 122, 47]),
        ];
        for (dest, descriptor) in cases {
            let mut out = Vec::new();
            encode_classless_route(net(dest), r, &mut out);
            let mut want = descriptor.to_vec();
            want.extend_from_slice(&[10, 0, 0, 1]);
            assert_eq!(out, want, "{dest}");
        }
    }

    #[test]
    fn domain_names_encode_as_dns_labels() {
        // RFC 3397 §3 example: "eng.apple.com." and "marketing.apple.com." without
        // compression.
        let mut out = Vec::new();
        encode_domain_name("eng.apple.com.", &mut out).unwrap();
        encode_domain_name("marketing.apple.com", &mut out).unwrap();
        let mut want = vec![3];
        want.extend_from_slice(b"eng");
        want.push(5);
        want.extend_from_slice(b"apple");
        want.push(3);
        want.extend_from_slice(b"com");
        want.push(0);
        want.push(9);
        want.extend_from_slice(b"marketing");
        want.push(5);
        want.extend_from_slice(b"apple");
        want.push(3);
        want.extend_from_slice(b"com");
        want.push(0);
        assert_eq!(out, want);
    }

    #[test]
    fn bad_domain_names_are_rejected() {
        let mut out = Vec::new();
        assert!(encode_domain_name("a..b", &mut out).is_err());
        assert!(encode_domain_name("", &mut out).is_err());
        assert!(encode_domain_name(".", &mut out).is_err());
        assert!(encode_domain_name("has space.example", &mut out).is_err());
        assert!(encode_domain_name(&format!("{}.example", "a".repeat(64)), &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn hex_and_mac_syntaxes() {
        assert_eq!(parse_hex("01:aa:0b").unwrap(), vec![1, 0xaa, 0x0b]);
        assert_eq!(parse_hex("1:a:b").unwrap(), vec![1, 0xa, 0xb]);
        assert_eq!(parse_hex("0x0a000001").unwrap(), vec![10, 0, 0, 1]);
        assert_eq!(parse_hex("0A-00").unwrap(), vec![10, 0]);
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("01::02").is_err());
        let mac = [0, 0x11, 0x22, 0x33, 0x44, 0x55];
        for s in [
            "00:11:22:33:44:55",
            "00-11-22-33-44-55",
            "0011.2233.4455",
            "001122334455",
        ] {
            assert_eq!(parse_mac(s).unwrap(), mac, "{s}");
        }
        assert!(parse_mac("00:11:22:33:44").is_err());
        assert!(parse_mac("00:11:22:33:44:55:66").is_err());
    }

    #[test]
    fn agent_ids_are_text_unless_clearly_hex() {
        assert_eq!(
            parse_agent_id("ge-0/0/1:100").unwrap(),
            b"ge-0/0/1:100".to_vec()
        );
        assert_eq!(parse_agent_id("00:1a:2b").unwrap(), vec![0, 0x1a, 0x2b]);
        assert_eq!(parse_agent_id("0x4142").unwrap(), b"AB".to_vec());
        assert_eq!(parse_agent_id("cafe").unwrap(), b"cafe".to_vec());
        assert!(parse_agent_id("").is_err());
        assert!(parse_agent_id(&"x".repeat(256)).is_err());
    }

    #[test]
    fn ranges_routes_and_networks_parse() {
        let a = Ipv4Addr::new(10, 0, 0, 10);
        let b = Ipv4Addr::new(10, 0, 0, 20);
        assert_eq!(parse_range("10.0.0.10-10.0.0.20").unwrap(), (a, b));
        assert_eq!(parse_range("10.0.0.10 - 10.0.0.20").unwrap(), (a, b));
        assert_eq!(parse_range("10.0.0.10").unwrap(), (a, a));
        assert!(parse_range("10.0.0.10-").is_err());
        assert_eq!(parse_route("10.1.0.0/16 via 10.0.0.1").unwrap().1, 16);
        assert!(parse_route("10.1.0.0/16 10.0.0.1").is_err());
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0.0").is_err());
        assert!(parse_ip("10.0.0.256").is_err());
    }
}
