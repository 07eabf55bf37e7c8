//! A JSON value in PostgreSQL's binary `jsonb` form, byte for byte what `jsonb_in` stores for the value's JSON
//! text (PostgreSQL 15's `convertToJsonb`). The extension returns large answers (a batch's hundred results) this
//! way: printing them as text for `jsonb_in` to lex, parse, sort and convert again took a sixth of a batch in
//! profiles, and building them through `pushJsonbValue` cost as much (one call per scalar, a sort per object).
//!
//! Layout (`src/include/utils/jsonb.h`): a 4-byte varlena header, then the root container. A container is a
//! `uint32` header (count | JB_FOBJECT or JB_FARRAY, | JB_FSCALAR for a top-level scalar wrapped in a one-element
//! array), one `JEntry` per element (for an object: every key's, then every value's), then the elements' data.
//! A JEntry holds the element's type and the length of its data; every 32nd (JB_OFFSET_STRIDE) holds instead the
//! end offset of its data, flagged JENTRY_HAS_OFF. Numerics and containers are aligned to 4 bytes, the padding
//! counted in their length. Object keys are ordered shorter first, then bytewise, as `uniqueifyJsonbObject`
//! orders them. Everything is in the machine's byte order, as PostgreSQL writes it.
//!
//! Pure: a number's numeric datum comes from the caller (the extension asks `numeric_in` for the text that
//! `serde_json` prints, exactly what `jsonb_in` would have read).
//!
//! What is encoded is a [`Doc`]: a JSON value that borrows its strings, so that a document made from a
//! request and an outcome (a check answer: [`crate::contract::CheckAnswer::to_doc`]) needs no copy of them, and a
//! `serde_json::Value` converts to one without copying either.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// A JSON value whose strings may be borrowed. An object's members keep their order; a key given twice keeps
/// its last value, as in `jsonb_in` and in `serde_json`.
#[derive(Clone, Debug, PartialEq)]
pub enum Doc<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Vec<Doc<'a>>),
    Obj(Vec<(&'a str, Doc<'a>)>),
}

impl<'a> Doc<'a> {
    /// A borrowed string.
    pub fn str(s: &'a str) -> Doc<'a> {
        Doc::Str(Cow::Borrowed(s))
    }

    /// `null` for `None`.
    pub fn opt_str(s: Option<&'a str>) -> Doc<'a> {
        s.map_or(Doc::Null, Doc::str)
    }

    /// The same value as a `serde_json::Value`.
    pub fn into_value(self) -> Value {
        match self {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(b),
            Doc::Num(n) => Value::Number(n),
            Doc::Str(s) => Value::String(s.into_owned()),
            Doc::Arr(items) => Value::Array(items.into_iter().map(Doc::into_value).collect()),
            Doc::Obj(members) => {
                let mut map = Map::new();
                for (k, v) in members {
                    map.insert(k.to_string(), v.into_value());
                }
                Value::Object(map)
            }
        }
    }
}

impl<'a> From<&'a Value> for Doc<'a> {
    fn from(value: &'a Value) -> Doc<'a> {
        match value {
            Value::Null => Doc::Null,
            Value::Bool(b) => Doc::Bool(*b),
            Value::Number(n) => Doc::Num(n.clone()),
            Value::String(s) => Doc::str(s),
            Value::Array(items) => Doc::Arr(items.iter().map(Doc::from).collect()),
            Value::Object(map) => Doc::Obj(map.iter().map(|(k, v)| (k.as_str(), Doc::from(v))).collect()),
        }
    }
}

const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_TYPEMASK: u32 = 0x7000_0000;
const JENTRY_ISSTRING: u32 = 0x0000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;
const JB_OFFSET_STRIDE: usize = 32;
const JB_FSCALAR: u32 = 0x1000_0000;
const JB_FOBJECT: u32 = 0x2000_0000;
const JB_FARRAY: u32 = 0x4000_0000;
/// PostgreSQL's limit on a varlena (1 GB less one byte).
const MAX_VARLENA: usize = 0x3FFF_FFFF;

/// Why a value has no jsonb form; `jsonb_in` refuses the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonbError {
    /// A string holds U+0000, which jsonb cannot hold (`jsonb_in` refuses `\u0000`: SQLSTATE 22P05).
    NulInString,
    /// A container's data exceeds 0x0FFFFFFF bytes (SQLSTATE 54000 in `jsonb_in`).
    TooLarge,
}

/// The whole varlena (header included) of `value` as jsonb. `numeric` gives the numeric datum (a varlena with
/// a 4-byte header, `numeric_in`'s result) of a number.
pub fn encode(value: &Doc<'_>, numeric: &mut dyn FnMut(&Number) -> Vec<u8>) -> Result<Vec<u8>, JsonbError> {
    let mut w = Writer { buf: Vec::with_capacity(256), numeric };
    w.buf.extend_from_slice(&[0; 4]); // the varlena header, set at the end
    match value {
        Doc::Obj(_) | Doc::Arr(_) => {
            w.container(value)?;
        }
        scalar => {
            // A scalar at the top is a one-element array flagged as a scalar (`rawScalar`).
            let start = w.buf.len();
            w.put_u32(1 | JB_FARRAY | JB_FSCALAR);
            let entries = w.reserve(1);
            let meta = w.value(scalar)?;
            w.entry(entries, 0, meta, &mut 0)?;
            w.total(start)?;
        }
    }
    let len = w.buf.len();
    if len > MAX_VARLENA {
        return Err(JsonbError::TooLarge);
    }
    w.buf[..4].copy_from_slice(&varlena_header(len).to_ne_bytes());
    Ok(w.buf)
}

/// SET_VARSIZE_4B: the length in the header's upper 30 bits (little-endian) or lower 30 bits (big-endian).
fn varlena_header(len: usize) -> u32 {
    if cfg!(target_endian = "little") {
        (len as u32) << 2
    } else {
        len as u32
    }
}

/// Whether `bytes` are framed as [`encode`] frames a document: an uncompressed 4-byte varlena header holding
/// exactly their length, and at least the root container's header after it. (The content is not read.)
pub fn is_framed_jsonb(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.len() <= MAX_VARLENA && bytes[..4] == varlena_header(bytes.len()).to_ne_bytes()
}

/// jsonb's order of object keys: shorter first, then bytewise.
fn key_order(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

struct Writer<'a> {
    buf: Vec<u8>,
    numeric: &'a mut dyn FnMut(&Number) -> Vec<u8>,
}

impl Writer<'_> {
    fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_ne_bytes());
    }

    /// Pads to a 4-byte boundary (counted from the varlena's start, as PostgreSQL's buffer is); the padding's
    /// length.
    fn pad(&mut self) -> usize {
        let pad = (4 - self.buf.len() % 4) % 4;
        self.buf.extend_from_slice(&[0; 3][..pad]);
        pad
    }

    /// Room for `n` JEntries; where they start.
    fn reserve(&mut self, n: usize) -> usize {
        let at = self.buf.len();
        self.buf.resize(at + 4 * n, 0);
        at
    }

    /// Writes the JEntry of element `i` of a container (`meta`: its type and the length of its data, just
    /// written) into the container's entries at `at`; every JB_OFFSET_STRIDE-th holds the end offset of its data
    /// instead. `total` is the length of the container's data so far, this element's included on return.
    fn entry(&mut self, at: usize, i: usize, meta: u32, total: &mut u32) -> Result<(), JsonbError> {
        *total = total.checked_add(meta & JENTRY_OFFLENMASK).ok_or(JsonbError::TooLarge)?;
        if *total > JENTRY_OFFLENMASK {
            return Err(JsonbError::TooLarge);
        }
        let entry =
            if i.is_multiple_of(JB_OFFSET_STRIDE) { (meta & JENTRY_TYPEMASK) | *total | JENTRY_HAS_OFF } else { meta };
        self.buf[at + 4 * i..at + 4 * i + 4].copy_from_slice(&entry.to_ne_bytes());
        Ok(())
    }

    /// The container's JEntry in its parent: its whole length from `start` (before its padding).
    fn total(&self, start: usize) -> Result<u32, JsonbError> {
        let len = self.buf.len() - start;
        if len > JENTRY_OFFLENMASK as usize {
            return Err(JsonbError::TooLarge);
        }
        Ok(JENTRY_ISCONTAINER | len as u32)
    }

    /// Writes an object or array; its JEntry.
    fn container(&mut self, value: &Doc<'_>) -> Result<u32, JsonbError> {
        let start = self.buf.len();
        self.pad();
        match value {
            Doc::Obj(members) => {
                // uniqueifyJsonbObject's order (lengthCompareJsonbStringValue): shorter keys first, then bytewise;
                // of a key given twice, the last one stays. Members already in that order (the documents this
                // crate makes list them so) are written as they are.
                if members.windows(2).all(|w| key_order(w[0].0, w[1].0) == Ordering::Less) {
                    self.object(members.len(), members.iter())?;
                } else {
                    let mut pairs: Vec<&(&str, Doc<'_>)> = members.iter().collect();
                    // A stable sort: a key's occurrences stay in their order, and the last is kept.
                    pairs.sort_by(|a, b| key_order(a.0, b.0));
                    pairs.dedup_by(|later, kept| {
                        let same = later.0 == kept.0;
                        if same {
                            *kept = *later;
                        }
                        same
                    });
                    self.object(pairs.len(), pairs.iter().copied())?;
                }
            }
            Doc::Arr(items) => {
                self.put_u32(items.len() as u32 | JB_FARRAY);
                let entries = self.reserve(items.len());
                let mut total = 0;
                for (i, v) in items.iter().enumerate() {
                    let meta = self.value(v)?;
                    self.entry(entries, i, meta, &mut total)?;
                }
            }
            _ => unreachable!("only objects and arrays are containers"),
        }
        self.total(start)
    }

    /// An object's header, entries and data: its `n` members' keys, then their values (jsonb's layout).
    fn object<'d, 'v: 'd>(
        &mut self,
        n: usize,
        members: impl Iterator<Item = &'d (&'v str, Doc<'v>)> + Clone,
    ) -> Result<(), JsonbError> {
        self.put_u32(n as u32 | JB_FOBJECT);
        let entries = self.reserve(2 * n);
        let mut total = 0;
        for (i, (key, _)) in members.clone().enumerate() {
            let meta = self.string(key)?;
            self.entry(entries, i, meta, &mut total)?;
        }
        for (i, (_, v)) in members.enumerate() {
            let meta = self.value(v)?;
            self.entry(entries, n + i, meta, &mut total)?;
        }
        Ok(())
    }

    fn string(&mut self, s: &str) -> Result<u32, JsonbError> {
        if s.as_bytes().contains(&0) {
            return Err(JsonbError::NulInString);
        }
        if s.len() > JENTRY_OFFLENMASK as usize {
            return Err(JsonbError::TooLarge);
        }
        self.buf.extend_from_slice(s.as_bytes());
        Ok(JENTRY_ISSTRING | s.len() as u32)
    }

    /// Writes any value's data; its JEntry.
    fn value(&mut self, value: &Doc<'_>) -> Result<u32, JsonbError> {
        Ok(match value {
            Doc::Null => JENTRY_ISNULL,
            Doc::Bool(false) => JENTRY_ISBOOL_FALSE,
            Doc::Bool(true) => JENTRY_ISBOOL_TRUE,
            Doc::Str(s) => self.string(s)?,
            Doc::Num(n) => {
                let datum = (self.numeric)(n);
                let pad = self.pad();
                self.buf.extend_from_slice(&datum);
                JENTRY_ISNUMERIC | (pad + datum.len()) as u32
            }
            Doc::Obj(_) | Doc::Arr(_) => self.container(value)?,
        })
    }
}

/// Why a jsonb datum was not read into a `serde_json::Value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Containers nested deeper than [`MAX_DECODE_DEPTH`] (`serde_json` refuses the same when it parses the
    /// value's text).
    TooDeep,
    /// A number `serde_json` cannot hold (it refuses the same in the value's text).
    Number,
    /// Not jsonb's binary form (a truncated or inconsistent datum).
    Malformed,
}

/// The deepest nesting of containers [`decode`] reads: what `serde_json` reads from text (its recursion limit of
/// 128 refuses 128 nested arrays or objects), so that a document is refused by depth exactly when its text would
/// be.
pub const MAX_DECODE_DEPTH: usize = 127;

/// Reads a jsonb datum (its root container: the varlena's content after its header) into the value
/// `serde_json` would parse from the datum's text, without printing the text: strings are stored unescaped,
/// keys once and in order. A number is printed by `numeric_text` (the extension calls `numeric_out` on the
/// numeric datum, which is aligned as it lies in the datum) and parsed by `serde_json`, as its text would be.
pub fn decode(data: &[u8], numeric_text: &mut dyn FnMut(&[u8]) -> String) -> Result<Value, DecodeError> {
    Reader { data, numeric_text }.container(0, 0)
}

struct Reader<'d, 'n> {
    data: &'d [u8],
    numeric_text: &'n mut dyn FnMut(&[u8]) -> String,
}

impl Reader<'_, '_> {
    fn u32_at(&self, at: usize) -> Result<u32, DecodeError> {
        let bytes = self.data.get(at..at + 4).ok_or(DecodeError::Malformed)?;
        Ok(u32::from_ne_bytes(bytes.try_into().expect("four bytes")))
    }

    /// The container at `at` (4-byte aligned); `depth` containers enclose it.
    fn container(&mut self, at: usize, depth: usize) -> Result<Value, DecodeError> {
        let header = self.u32_at(at)?;
        let count = (header & 0x0FFF_FFFF) as usize;
        let object = header & JB_FOBJECT != 0;
        let scalar = header & JB_FSCALAR != 0;
        if !scalar && depth >= MAX_DECODE_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let entries = if object { 2 * count } else { count };
        let base = at + 4 + 4 * entries;
        // Each element's data ends where its JEntry says (an offset every JB_OFFSET_STRIDE-th, else a length
        // after the previous element's end).
        let mut spans = Vec::with_capacity(entries);
        let mut end = 0usize;
        for i in 0..entries {
            let entry = self.u32_at(at + 4 + 4 * i)?;
            let start = end;
            end = if entry & JENTRY_HAS_OFF != 0 {
                (entry & JENTRY_OFFLENMASK) as usize
            } else {
                end + (entry & JENTRY_OFFLENMASK) as usize
            };
            if end < start || base + end > self.data.len() {
                return Err(DecodeError::Malformed);
            }
            spans.push((entry & JENTRY_TYPEMASK, base + start, base + end));
        }
        if scalar {
            let &(kind, start, end) = spans.first().filter(|_| count == 1).ok_or(DecodeError::Malformed)?;
            return self.element(kind, start, end, depth);
        }
        if object {
            let mut map = Map::new();
            for i in 0..count {
                let (kind, start, end) = spans[i];
                if kind != JENTRY_ISSTRING {
                    return Err(DecodeError::Malformed);
                }
                let key = String::from_utf8_lossy(&self.data[start..end]).into_owned();
                let (kind, start, end) = spans[count + i];
                map.insert(key, self.element(kind, start, end, depth + 1)?);
            }
            Ok(Value::Object(map))
        } else {
            spans.iter().map(|&(kind, start, end)| self.element(kind, start, end, depth + 1)).collect()
        }
    }

    /// An element whose data lies in `start..end` (a numeric or container after its alignment padding).
    fn element(&mut self, kind: u32, start: usize, end: usize, depth: usize) -> Result<Value, DecodeError> {
        let aligned = start.next_multiple_of(4);
        Ok(match kind {
            JENTRY_ISNULL => Value::Null,
            JENTRY_ISBOOL_FALSE => Value::Bool(false),
            JENTRY_ISBOOL_TRUE => Value::Bool(true),
            JENTRY_ISSTRING => Value::String(String::from_utf8_lossy(&self.data[start..end]).into_owned()),
            JENTRY_ISNUMERIC if aligned <= end => {
                let text = (self.numeric_text)(&self.data[aligned..end]);
                Value::Number(serde_json::from_str(&text).map_err(|_| DecodeError::Number)?)
            }
            JENTRY_ISCONTAINER if aligned < end => self.container(aligned, depth)?,
            _ => return Err(DecodeError::Malformed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The numeric datums PostgreSQL 15's numeric_in gives (4-byte header, little-endian) for the numbers below.
    fn numeric(n: &Number) -> Vec<u8> {
        let hex = match n.to_string().as_str() {
            "1" => "2000000000800100",
            "2" => "2000000000800200",
            "-2.5" => "2800000080a002008813",
            other => panic!("no datum for {other}"),
        };
        hex::decode(hex).unwrap()
    }

    /// Each expected datum is what PostgreSQL 15 (x86_64) stored for `'<text>'::jsonb`, read back with
    /// pageinspect (`heap_page_items`) and given the 4-byte varlena header convertToJsonb writes (a stored datum
    /// this small has the 1-byte header; the bytes after it are the same). Together they cover empty
    /// containers, scalars at the top, numerics and containers aligned after odd-length strings, keys ordered
    /// by length then bytes, and offsets every 32nd entry in an object (keys and values) and an array.
    #[cfg(target_endian = "little")]
    #[test]
    fn the_bytes_are_those_postgresql_stores() {
        let cases = [
            (r#"{}"#, "2000000000000020"),
            (r#"[]"#, "2000000000000040"),
            (r#""x""#, "34000000010000500100008078"),
            (r#"1"#, "5000000001000050080000902000000000800100"),
            (r#"null"#, "3000000001000050000000c0"),
            (r#"{"a": 1, "c": {"y": -2.5, "z": "é"}, "bb": [true, false, null, "s"]}"#, "94010000030000200100008001000000020000000800001024000050150000506163626220000000008001000200002001000080010000000c00001002000000797a00002800000080a002008813c3a904000040000000b000000020000000400100000073"),
            (r#"{"k00": "", "k01": "v", "k02": "vv", "k03": "", "k04": "v", "k05": "vv", "k06": "", "k07": "v", "k08": "vv", "k09": "", "k10": "v", "k11": "vv", "k12": "", "k13": "v", "k14": "vv", "k15": "", "k16": "v", "k17": "vv", "k18": "", "k19": "v", "k20": "vv", "k21": "", "k22": "v", "k23": "vv", "k24": "", "k25": "v", "k26": "vv", "k27": "", "k28": "v", "k29": "vv", "k30": "", "k31": "v", "k32": "vv", "k33": "", "k34": "v", "k35": "vv", "k36": "", "k37": "v", "k38": "vv", "k39": ""}"#, "9c0700002800002003000080030000000300000003000000030000000300000003000000030000000300000003000000030000000300000003000000030000000300000003000000030000000300000003000000030000000300000003000000030000000300000003000000030000000300000003000000030000000300000003000000030000006300008003000000030000000300000003000000030000000300000003000000000000000100000002000000000000000100000002000000000000000100000002000000000000000100000002000000000000000100000002000000000000000100000002000000000000000100000002000000000000000100000002000000900000800100000002000000000000000100000002000000000000000100000002000000000000000100000002000000000000000100000002000000000000006b30306b30316b30326b30336b30346b30356b30366b30376b30386b30396b31306b31316b31326b31336b31346b31356b31366b31376b31386b31396b32306b32316b32326b32336b32346b32356b32366b32376b32386b32396b33306b33316b33326b33336b33346b33356b33366b33376b33386b3339767676767676767676767676767676767676767676767676767676767676767676767676767676"),
            (r#"[1, "s", -2.5, 1, "ssss", -2.5, 1, "ss", -2.5, 1, "", -2.5, 1, "sss", -2.5, 1, "s", -2.5, 1, "ssss", -2.5, 1, "ss", -2.5, 1, "", -2.5, 1, "sss", -2.5, 1, "s", -2.5, 1, "ssss", -2.5, 1, "ss", -2.5, 1, "", -2.5, 1, "sss", -2.5, 1, "s", -2.5, 1, "ssss", -2.5, 1, "ss", -2.5, 1, "", -2.5, 1, "sss", -2.5, 1, "s", -2.5, 1, "ssss", -2.5, 1, "ss", -2.5, 1]"#, "000d00004600004008000090010000000d0000100a000010040000000a0000100a000010020000000c0000100a000010000000000a0000100a000010030000000b0000100a000010010000000d0000100a000010040000000a0000100a000010020000000c0000100a000010000000000a0000100a000010030000000b0000100a00001001000000fe0000900a000010040000000a0000100a000010020000000c0000100a000010000000000a0000100a000010030000000b0000100a000010010000000d0000100a000010040000000a0000100a000010020000000c0000100a000010000000000a0000100a000010030000000b0000100a000010010000000d0000100a000010f40100800a0000100a000010020000000c0000100a0000102000000000800100730000002800000080a00200881300002000000000800100737373732800000080a00200881300002000000000800100737300002800000080a002008813000020000000008001002800000080a00200881300002000000000800100737373002800000080a00200881300002000000000800100730000002800000080a00200881300002000000000800100737373732800000080a00200881300002000000000800100737300002800000080a002008813000020000000008001002800000080a00200881300002000000000800100737373002800000080a00200881300002000000000800100730000002800000080a00200881300002000000000800100737373732800000080a00200881300002000000000800100737300002800000080a002008813000020000000008001002800000080a00200881300002000000000800100737373002800000080a00200881300002000000000800100730000002800000080a00200881300002000000000800100737373732800000080a00200881300002000000000800100737300002800000080a002008813000020000000008001002800000080a00200881300002000000000800100737373002800000080a00200881300002000000000800100730000002800000080a00200881300002000000000800100737373732800000080a00200881300002000000000800100737300002800000080a00200881300002000000000800100"),
            (r#"{"": {}, "B": null, "b": 2, "ab": [], "aaa": 1}"#, "4001000005000020000000800100000001000000020000000300000005000050000000400800001004000050080000104262616261616100000000202000000000800200000000402000000000800100"),
            (r#"[[1, [-2.5]], {"x": [{}]}, "tail"]"#, "7001000003000040260000d01e000050040000000200004008000090120000502000000000800100010000400a0000902800000080a002008813000001000020010000800f0000507800000001000040040000d0000000207461696c"),
        ];
        for (text, expected) in cases {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(hex::encode(encode(&Doc::from(&value), &mut numeric).unwrap()), expected, "{text}");
        }
    }

    /// The numeric datums above read back as their text.
    fn numeric_text(datum: &[u8]) -> String {
        match hex::encode(datum).as_str() {
            "2000000000800100" => "1",
            "2000000000800200" => "2",
            "2800000080a002008813" => "-2.5",
            other => panic!("no text for {other}"),
        }
        .to_string()
    }

    #[test]
    fn decoding_reads_back_what_serde_reads_from_the_text() {
        let mut texts: Vec<String> = [
            r#"{}"#,
            r#"[]"#,
            r#""x""#,
            r#"1"#,
            r#"null"#,
            r#"{"a": 1, "c": {"y": -2.5, "z": "é \"q\" \\ \t"}, "bb": [true, false, null, "s"]}"#,
            r#"[[1, [-2.5]], {"x": [{}]}, "tail", 2]"#,
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        // Past the offset stride, in an object's keys and values and in an array.
        texts.push(
            serde_json::to_string(
                &(0..70).map(|i| (format!("k{i:02}"), json!(["v", "v", "v"]))).collect::<Map<_, _>>(),
            )
            .unwrap(),
        );
        texts.push(
            serde_json::to_string(
                &(0..70).map(|i| if i % 3 == 0 { json!(1) } else { json!("s".repeat(i % 5)) }).collect::<Vec<_>>(),
            )
            .unwrap(),
        );
        for text in texts {
            let value: Value = serde_json::from_str(&text).unwrap();
            let datum = encode(&Doc::from(&value), &mut numeric).unwrap();
            assert_eq!(decode(&datum[4..], &mut numeric_text), Ok(value), "{text}");
        }
    }

    #[test]
    fn decoding_refuses_by_depth_exactly_where_serde_does() {
        for depth in [1, 127, 128, 129, 300] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let parsed = serde_json::from_str::<Value>(&text).ok();
            let mut doc = Doc::Arr(Vec::new());
            for _ in 1..depth {
                doc = Doc::Arr(vec![doc]);
            }
            let datum = encode(&doc, &mut numeric).unwrap();
            assert_eq!(decode(&datum[4..], &mut numeric_text).ok(), parsed, "depth {depth}");
        }
    }

    #[test]
    fn a_malformed_datum_is_refused() {
        let datum = encode(&Doc::from(&json!({"a": ["b", "c"]})), &mut numeric).unwrap();
        for cut in 0..datum.len() - 4 {
            assert_eq!(decode(&datum[4..4 + cut], &mut numeric_text), Err(DecodeError::Malformed), "{cut}");
        }
    }

    #[test]
    fn a_key_given_twice_keeps_its_last_value() {
        let twice = Doc::Obj(vec![("a", Doc::Bool(true)), ("bb", Doc::Null), ("a", Doc::str("last"))]);
        let once = json!({"a": "last", "bb": null});
        assert_eq!(encode(&twice, &mut numeric), encode(&Doc::from(&once), &mut numeric));
        assert_eq!(twice.into_value(), once);
    }

    #[test]
    fn a_nul_is_refused_as_jsonb_in_refuses_it() {
        for value in [json!({"a": "x\u{0}y"}), json!({"a\u{0}": 1}), json!(["\u{0}"])] {
            assert_eq!(encode(&Doc::from(&value), &mut numeric), Err(JsonbError::NulInString));
        }
    }
}
