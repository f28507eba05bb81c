//! The request options the decision reads, read once per packet.
//!
//! Each `DhcpOptions` accessor reads the slot the parse recorded for its option and then the
//! frame (joining RFC 3396 fragments when needed), and option 82's sub-options are found by
//! walking them. Reading every fact once, up front, keeps the decision code free to consult
//! them as often as the RFC logic wants without paying for it again.

use crate::wire::{DhcpOptions, MessageType, OptRef, RelayAgentInfo, opt};
use std::net::Ipv4Addr;

/// Option 82 (RFC 3046) as the decision uses it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RelayFacts<'a> {
    /// The whole option value, echoed in replies (RFC 3046 §2.2).
    pub raw: &'a [u8],
    /// Sub-option 1, agent circuit id.
    pub circuit_id: Option<&'a [u8]>,
    /// Sub-option 2, agent remote id.
    pub remote_id: Option<&'a [u8]>,
    /// Sub-option 5, link selection (RFC 3527), when exactly 4 bytes.
    pub link_selection: Option<Ipv4Addr>,
    /// Sub-option 11, server identifier override (RFC 5107), when exactly 4 bytes.
    pub server_id_override: Option<Ipv4Addr>,
}

/// Everything the decision reads from a request's options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Facts<'a> {
    pub mtype: MessageType,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 118 (RFC 3011).
    pub subnet_selection: Option<Ipv4Addr>,
    /// Option 51.
    pub lease_time: Option<u32>,
    /// Option 57 (`None` below 576).
    pub max_message_size: Option<u16>,
    /// Option 61.
    pub client_id: Option<OptRef<'a>>,
    /// Option 55.
    pub prl: Option<OptRef<'a>>,
    /// Option 82.
    pub relay: Option<RelayFacts<'a>>,
}

/// `*out = v`, as one store per case. WHY: assigned whole, an `Option` whose arms meet is
/// first packed into one wide register (tag and value shifted together, ~7 instructions per
/// field); stored per case, `None` is a single store of its tag.
#[inline(always)]
fn set<T>(out: &mut Option<T>, v: Option<T>) {
    match v {
        Some(x) => *out = Some(x),
        None => *out = None,
    }
}

fn addr4(v: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from)
}

impl<'a> Facts<'a> {
    /// No option at all (a placeholder for [`Self::fill`] to overwrite).
    ///
    /// WHY a function building a literal, not a `const`: a large constant is copied in whole
    /// from its image (as part of the worker's placeholder record, a 208-byte `memcpy` per
    /// slot of its batch array, ~8 instructions per packet); a literal stores only the tags,
    /// the `None`s' payloads being left unwritten (with the record's other placeholders,
    /// ~3 instructions per packet).
    #[inline(always)]
    pub(crate) fn none() -> Self {
        Facts {
            mtype: MessageType::Unknown(0),
            requested_ip: None,
            server_id: None,
            subnet_selection: None,
            lease_time: None,
            max_message_size: None,
            client_id: None,
            prl: None,
            relay: None,
        }
    }

    /// Read the facts of `opts`; `mtype` is `opts.message_type()`, already read by the caller.
    #[cfg(test)]
    pub(crate) fn read(opts: &DhcpOptions<'a>, mtype: MessageType) -> Self {
        let mut f = Facts::none();
        f.fill(opts, mtype);
        f
    }

    /// [`Self::read`] into `self`, every field overwritten.
    ///
    /// Each accessor reads the slot the parse recorded for its code (no walk over the
    /// options): a single instance of a fixed-size option is one bounds-checked load.
    /// WHY in place: the facts are ~180 bytes; built in a temporary and moved into the
    /// worker's prepared record they were copied word by word (~50 instructions per packet).
    #[inline]
    pub(crate) fn fill(&mut self, opts: &DhcpOptions<'a>, mtype: MessageType) {
        self.mtype = mtype;
        set(&mut self.requested_ip, opts.requested_ip());
        set(&mut self.server_id, opts.server_id());
        set(&mut self.subnet_selection, opts.subnet_selection());
        set(&mut self.lease_time, opts.lease_time());
        set(&mut self.max_message_size, opts.max_message_size());
        set(&mut self.client_id, opts.client_id());
        set(&mut self.prl, opts.parameter_request_list());
        // WHY not `map`: the two arms then meet in one ~70-byte value built on the stack and
        // copied in, even for the usual `None`, which is a single store here.
        match opts.relay_agent() {
            Some(r) => RelayFacts::read_into(r, &mut self.relay),
            None => self.relay = None,
        }
    }
}

impl<'a> RelayFacts<'a> {
    /// [`Self::read`] into `out`. Kept out of line: only relayed requests carry option 82.
    #[inline(never)]
    fn read_into(r: RelayAgentInfo<'a>, out: &mut Option<Self>) {
        *out = Some(Self::read(r));
    }

    /// The sub-options the decision uses, in one pass over option 82.
    #[inline(always)]
    fn read(r: RelayAgentInfo<'a>) -> Self {
        let mut f = RelayFacts {
            raw: r.raw(),
            circuit_id: None,
            remote_id: None,
            link_selection: None,
            server_id_override: None,
        };
        // One pass; the first instance of a sub-option counts, as in `RelayAgentInfo`.
        let mut seen = 0u16;
        for (code, v) in r.sub_options() {
            let bit = match code {
                opt::relay::CIRCUIT_ID => 1,
                opt::relay::REMOTE_ID => 2,
                opt::relay::LINK_SELECTION => 4,
                opt::relay::SERVER_ID_OVERRIDE => 8,
                _ => continue,
            };
            if seen & bit != 0 {
                continue;
            }
            seen |= bit;
            match code {
                opt::relay::CIRCUIT_ID => f.circuit_id = Some(v),
                opt::relay::REMOTE_ID => f.remote_id = Some(v),
                opt::relay::LINK_SELECTION => f.link_selection = addr4(v),
                _ => f.server_id_override = addr4(v),
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{fixtures, request_frame};

    fn same_as_accessors(frame: &[u8]) {
        let req = crate::wire::parse(frame).expect("parses");
        let o = &req.options;
        let f = Facts::read(o, o.message_type());
        assert_eq!(f.requested_ip, o.requested_ip());
        assert_eq!(f.server_id, o.server_id());
        assert_eq!(f.subnet_selection, o.subnet_selection());
        assert_eq!(f.lease_time, o.lease_time());
        assert_eq!(f.max_message_size, o.max_message_size());
        assert_eq!(f.client_id.map(|r| r.len()), o.client_id().map(|r| r.len()));
        let relay = o.relay_agent();
        assert_eq!(f.relay.map(|r| r.raw), relay.map(|r| r.raw()));
        assert_eq!(
            f.relay.and_then(|r| r.circuit_id),
            relay.and_then(|r| r.circuit_id())
        );
        assert_eq!(
            f.relay.and_then(|r| r.remote_id),
            relay.and_then(|r| r.remote_id())
        );
        assert_eq!(
            f.relay.and_then(|r| r.link_selection),
            relay.and_then(|r| r.link_selection())
        );
        assert_eq!(
            f.relay.and_then(|r| r.server_id_override),
            relay.and_then(|r| r.server_id_override())
        );
    }

    #[test]
    fn facts_agree_with_the_wire_accessors_on_captures() {
        for (_, f) in fixtures::REQUESTS {
            same_as_accessors(f);
        }
    }

    #[test]
    fn split_and_odd_options_agree_too() {
        // 50 split in two instances (RFC 3396), 57 below the legal minimum, 51, 118, and an
        // option 82 with a repeated circuit id (the first counts), link selection of the wrong
        // size (ignored) and a server id override.
        let opts: &[u8] = &[
            53, 1, 3, 50, 2, 10, 0, 50, 2, 0, 9, 57, 2, 1, 0, 51, 4, 0, 0, 14, 16, 118, 4, 10, 2,
            0, 0, 82, 18, 1, 2, b'a', b'b', 1, 1, b'c', 5, 3, 1, 2, 3, 11, 4, 192, 0, 2, 7, 255,
        ];
        let frame = request_frame(opts);
        same_as_accessors(&frame);
        let req = crate::wire::parse(&frame).unwrap();
        let f = Facts::read(&req.options, req.options.message_type());
        assert_eq!(f.requested_ip, Some(Ipv4Addr::new(10, 0, 0, 9)));
        assert_eq!(f.max_message_size, None);
        assert_eq!(f.lease_time, Some(3600));
        let r = f.relay.unwrap();
        assert_eq!(r.circuit_id, Some(&b"ab"[..]));
        assert_eq!(r.link_selection, None);
        assert_eq!(r.server_id_override, Some(Ipv4Addr::new(192, 0, 2, 7)));
    }
}
