//! Modbus TCP collector: polls coils, discrete inputs, holding and input
//! registers at a fixed interval and writes every mapped point as a sample
//! stamped with the poll time.
//!
//! Address syntax (`source` in the mapping file):
//! `<table>:<address>[:<type>[:<byte order>]]`, where table is `coil`,
//! `discrete`, `holding` or `input`; address is the 0-based protocol (PDU)
//! address (Modicon reference 40001 is `holding:0`); type is `bool` for bit
//! tables and `u16` (default), `i16`, `u32`, `i32`, `f32`, `u64`, `i64` or
//! `f64` for registers; byte order names the value's bytes from most to least
//! significant as `a`, `b`, ... in the order they arrive: `abcd` is big-endian
//! (the default), `cdab` swaps words, `badc` swaps bytes, `dcba` is
//! little-endian.
//!
//! Adjacent points of one table are read in one request (at most 125
//! registers or 2000 bits). A request that fails writes one sample per tag of
//! it with quality BadNoCommunication at the time of the failure (once, not
//! at every poll); a lost connection does so for every tag and reconnects
//! with backoff.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::Slave;

use super::mapping::Point;
use super::{BAD_NO_COMMUNICATION, Reading, Session};

/// Settings of one Modbus collector.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub unit_id: u8,
    pub poll_interval: Duration,
}

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    Coil,
    Discrete,
    Holding,
    Input,
}

impl Table {
    fn is_bits(self) -> bool {
        matches!(self, Self::Coil | Self::Discrete)
    }

    /// Most items one read request may ask for.
    fn max_per_request(self) -> u16 {
        if self.is_bits() { 2000 } else { 125 }
    }
}

/// How a point's registers become a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Bool,
    U16,
    I16,
    U32,
    I32,
    F32,
    U64,
    I64,
    F64,
}

impl Type {
    /// Registers (or bits) the value takes.
    fn width(self) -> u16 {
        match self {
            Self::Bool | Self::U16 | Self::I16 => 1,
            Self::U32 | Self::I32 | Self::F32 => 2,
            Self::U64 | Self::I64 | Self::F64 => 4,
        }
    }
}

/// A parsed `source`.
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    pub table: Table,
    pub start: u16,
    pub data_type: Type,
    /// For each byte on the wire, its place in the big-endian value.
    order: Vec<usize>,
}

impl Address {
    pub fn parse(source: &str) -> Result<Self, String> {
        let parts: Vec<&str> = source.trim().split(':').collect();
        if parts.len() < 2 || parts.len() > 4 {
            return Err(
                "expected <table>:<address>[:<type>[:<byte order>]], e.g. holding:0:f32:abcd"
                    .into(),
            );
        }
        let table = match parts[0] {
            "coil" => Table::Coil,
            "discrete" => Table::Discrete,
            "holding" => Table::Holding,
            "input" => Table::Input,
            other => {
                return Err(format!(
                    "unknown table '{other}' (coil, discrete, holding, input)"
                ));
            }
        };
        let start: u16 = parts[1]
            .parse()
            .map_err(|_| format!("address '{}' is not a number from 0 to 65535", parts[1]))?;
        let data_type = match parts.get(2).copied() {
            None if table.is_bits() => Type::Bool,
            None => Type::U16,
            Some(name) => match name {
                "bool" => Type::Bool,
                "u16" => Type::U16,
                "i16" => Type::I16,
                "u32" => Type::U32,
                "i32" => Type::I32,
                "f32" => Type::F32,
                "u64" => Type::U64,
                "i64" => Type::I64,
                "f64" => Type::F64,
                other => {
                    return Err(format!(
                        "unknown type '{other}' (bool, u16, i16, u32, i32, f32, u64, i64, f64)"
                    ));
                }
            },
        };
        if table.is_bits() != (data_type == Type::Bool) {
            return Err(if table.is_bits() {
                "coils and discrete inputs are bits: type bool only".into()
            } else {
                "registers hold numbers: bool is for coils and discrete inputs".into()
            });
        }
        if u32::from(start) + u32::from(data_type.width()) > 65536 {
            return Err("the value runs past address 65535".into());
        }
        let bytes = if data_type == Type::Bool {
            0
        } else {
            2 * data_type.width() as usize
        };
        let order = match parts.get(3) {
            None => (0..bytes).collect(),
            Some(_) if bytes == 0 => return Err("bits have no byte order".into()),
            Some(letters) => {
                let order: Vec<usize> = letters
                    .bytes()
                    .map(|b| b.wrapping_sub(b'a') as usize)
                    .collect();
                let mut seen = vec![false; bytes];
                let valid = order.len() == bytes
                    && order
                        .iter()
                        .all(|&i| i < bytes && !std::mem::replace(&mut seen[i], true));
                if !valid {
                    let expected: String = (0..bytes as u8).map(|i| (b'a' + i) as char).collect();
                    return Err(format!(
                        "byte order '{letters}' must order the {bytes} letters {expected}"
                    ));
                }
                order
            }
        };
        Ok(Self {
            table,
            start,
            data_type,
            order,
        })
    }

    fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.data_type.width())
    }

    /// The value of this point in `words`, the registers from its start.
    fn decode(&self, words: &[u16]) -> f64 {
        let wire: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let mut be = [0u8; 8];
        for (byte, &place) in wire.iter().zip(&self.order) {
            be[place] = *byte;
        }
        match self.data_type {
            Type::Bool => unreachable!("bits are not decoded from registers"),
            Type::U16 => f64::from(u16::from_be_bytes([be[0], be[1]])),
            Type::I16 => f64::from(i16::from_be_bytes([be[0], be[1]])),
            Type::U32 => f64::from(u32::from_be_bytes(be[..4].try_into().expect("4"))),
            Type::I32 => f64::from(i32::from_be_bytes(be[..4].try_into().expect("4"))),
            Type::F32 => f64::from(f32::from_be_bytes(be[..4].try_into().expect("4"))),
            Type::U64 => u64::from_be_bytes(be) as f64,
            Type::I64 => i64::from_be_bytes(be) as f64,
            Type::F64 => f64::from_be_bytes(be),
        }
    }
}

/// One read request and the points it serves.
#[derive(Debug)]
struct Block {
    table: Table,
    start: u16,
    count: u16,
    points: Vec<usize>,
    /// Its last read failed (Bad samples written; not again until it works).
    failed: bool,
}

/// Groups the points into read requests: adjacent or overlapping points of
/// one table share a request up to the protocol's limit.
fn plan(points: &[Point<Address>]) -> Vec<Block> {
    let mut by_table: BTreeMap<Table, Vec<usize>> = BTreeMap::new();
    for (i, p) in points.iter().enumerate() {
        by_table.entry(p.address.table).or_default().push(i);
    }
    let mut blocks = Vec::new();
    for (table, mut indices) in by_table {
        indices.sort_by_key(|&i| points[i].address.start);
        let mut current: Option<Block> = None;
        for i in indices {
            let a = &points[i].address;
            if let Some(block) = current.as_mut() {
                let end = u32::from(block.start) + u32::from(block.count);
                let new_end = end.max(a.end());
                if u32::from(a.start) <= end
                    && new_end - u32::from(block.start) <= u32::from(table.max_per_request())
                {
                    block.count = (new_end - u32::from(block.start)) as u16;
                    block.points.push(i);
                    continue;
                }
                blocks.push(current.take().expect("a block"));
            }
            current = Some(Block {
                table,
                start: a.start,
                count: a.data_type.width(),
                points: vec![i],
                failed: false,
            });
        }
        blocks.extend(current);
    }
    blocks
}

/// What one request read: registers or bits.
enum Read {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

async fn read(ctx: &mut Context, block: &Block) -> Result<Read, String> {
    let result = match block.table {
        Table::Coil => ctx
            .read_coils(block.start, block.count)
            .await
            .map(|r| r.map(Read::Bits)),
        Table::Discrete => ctx
            .read_discrete_inputs(block.start, block.count)
            .await
            .map(|r| r.map(Read::Bits)),
        Table::Holding => ctx
            .read_holding_registers(block.start, block.count)
            .await
            .map(|r| r.map(Read::Words)),
        Table::Input => ctx
            .read_input_registers(block.start, block.count)
            .await
            .map(|r| r.map(Read::Words)),
    };
    let held = |read: &Read| match read {
        Read::Words(words) => words.len(),
        Read::Bits(bits) => bits.len(),
    };
    match result {
        // A device that answers fewer items than asked would leave points
        // without a value (and an index past the answer): a failed read.
        Ok(Ok(read)) if held(&read) < usize::from(block.count) => Err(format!(
            "the device answered {} of the {} items asked from {:?} {}",
            held(&read),
            block.count,
            block.table,
            block.start
        )),
        Ok(Ok(read)) => Ok(read),
        Ok(Err(exception)) => Err(format!("the device answered {exception}")),
        Err(e) => Err(format!("connection: {e}")),
    }
}

/// Polls `points` from `endpoint` until the session is stopped.
pub(crate) async fn run(
    endpoint: String,
    settings: Settings,
    points: Arc<Vec<Point<Address>>>,
    session: Session,
) {
    let mut blocks = plan(&points);
    let mut backoff = Duration::from_millis(500);
    loop {
        let ctx = match connect(&endpoint, settings.unit_id).await {
            Ok(ctx) => ctx,
            Err(e) => {
                session.write(&points, all_bad(&mut blocks)).await;
                session.disconnected(&e).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        session.connected().await;
        let lost = poll(ctx, &settings, &points, &mut blocks, &session).await;
        session.write(&points, all_bad(&mut blocks)).await;
        session.disconnected(&lost).await;
    }
}

async fn connect(endpoint: &str, unit_id: u8) -> Result<Context, String> {
    let addr: SocketAddr = tokio::net::lookup_host(endpoint)
        .await
        .map_err(|e| format!("resolving {endpoint}: {e}"))?
        .next()
        .ok_or_else(|| format!("{endpoint} resolves to no address"))?;
    let connecting = tokio_modbus::client::tcp::connect_slave(addr, Slave(unit_id));
    match tokio::time::timeout(Duration::from_secs(5), connecting).await {
        Ok(Ok(ctx)) => Ok(ctx),
        Ok(Err(e)) => Err(format!("connecting to {endpoint}: {e}")),
        Err(_) => Err(format!("connecting to {endpoint}: no answer within 5 s")),
    }
}

/// Polls until the connection fails; returns why.
async fn poll(
    mut ctx: Context,
    settings: &Settings,
    points: &[Point<Address>],
    blocks: &mut [Block],
    session: &Session,
) -> String {
    let mut tick = tokio::time::interval(settings.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let timeout = settings.poll_interval.max(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let mut readings = Vec::new();
        for block in blocks.iter_mut() {
            let result = match tokio::time::timeout(timeout, read(&mut ctx, block)).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {timeout:?}")),
            };
            let now = super::now_ns();
            match result {
                Ok(read) => {
                    block.failed = false;
                    readings.extend(block.points.iter().map(|&i| {
                        let p = &points[i];
                        let offset = (p.address.start - block.start) as usize;
                        let raw = match &read {
                            Read::Bits(bits) => f64::from(u8::from(bits[offset])),
                            Read::Words(words) => p.address.decode(&words[offset..]),
                        };
                        Reading::good(i, now, p.scaled(raw))
                    }));
                }
                Err(e) if e.starts_with("connection") || e.starts_with("no answer") => {
                    session.write(points, readings).await;
                    return e;
                }
                Err(e) => {
                    session.error(&e);
                    if !std::mem::replace(&mut block.failed, true) {
                        readings.extend(
                            block
                                .points
                                .iter()
                                .map(|&i| Reading::bad(i, now, BAD_NO_COMMUNICATION)),
                        );
                    }
                }
            }
        }
        session.write(points, readings).await;
    }
}

/// Bad samples for the points of every block not already marked failed.
fn all_bad(blocks: &mut [Block]) -> Vec<Reading> {
    let now = super::now_ns();
    let mut readings = Vec::new();
    for block in blocks.iter_mut() {
        if !std::mem::replace(&mut block.failed, true) {
            readings.extend(
                block
                    .points
                    .iter()
                    .map(|&i| Reading::bad(i, now, BAD_NO_COMMUNICATION)),
            );
        }
    }
    readings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::mapping::TagMeta;

    fn point(source: &str) -> Point<Address> {
        Point {
            address: Address::parse(source).unwrap(),
            tag: TagMeta {
                name: source.into(),
                equipment: None,
                unit: None,
                description: None,
            },
            scale: 1.0,
            offset: 0.0,
        }
    }

    #[test]
    fn addresses_parse_with_defaults_and_refuse_nonsense() {
        let a = Address::parse("holding:10").unwrap();
        assert_eq!(
            (a.table, a.start, a.data_type),
            (Table::Holding, 10, Type::U16)
        );
        assert_eq!(Address::parse("coil:7").unwrap().data_type, Type::Bool);
        for (bad, why) in [
            ("holding", "expected"),
            ("register:1", "unknown table"),
            ("holding:70000", "not a number"),
            ("holding:1:f16", "unknown type"),
            ("coil:1:f32", "bits"),
            ("holding:1:bool", "registers hold numbers"),
            ("holding:65535:f32", "runs past"),
            ("holding:1:f32:abca", "must order"),
            ("holding:1:f32:abc", "must order"),
            ("coil:1:bool:ab", "no byte order"),
        ] {
            let e = Address::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn byte_orders_decode_the_same_value() {
        let value = 1234.5f32;
        let [a, b, c, d] = value.to_be_bytes();
        let word = |hi: u8, lo: u8| u16::from_be_bytes([hi, lo]);
        for (order, words) in [
            ("abcd", [word(a, b), word(c, d)]),
            ("cdab", [word(c, d), word(a, b)]),
            ("badc", [word(b, a), word(d, c)]),
            ("dcba", [word(d, c), word(b, a)]),
        ] {
            let address = Address::parse(&format!("holding:0:f32:{order}")).unwrap();
            assert_eq!(address.decode(&words), 1234.5, "{order}");
        }
        let i16_address = Address::parse("input:0:i16").unwrap();
        assert_eq!(i16_address.decode(&[0xFFFE]), -2.0);
        let f64_address = Address::parse("holding:0:f64").unwrap();
        let w = (-0.125f64).to_be_bytes();
        let words: Vec<u16> = w
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(f64_address.decode(&words), -0.125);
    }

    #[test]
    fn adjacent_points_share_a_request_up_to_the_limit() {
        let points = vec![
            point("holding:0:f32"),
            point("holding:2:u16"),
            point("holding:10"),
            point("coil:0"),
            point("coil:1"),
            point("holding:3:f64"),
        ];
        let blocks = plan(&points);
        let shape: Vec<(Table, u16, u16, usize)> = blocks
            .iter()
            .map(|b| (b.table, b.start, b.count, b.points.len()))
            .collect();
        assert_eq!(
            shape,
            [
                (Table::Coil, 0, 2, 2),
                (Table::Holding, 0, 7, 3),
                (Table::Holding, 10, 1, 1),
            ]
        );
    }
}
