//! A small GVariant serializer and parser (normal form, little-endian),
//! enough for OSTree's objects: basic types, arrays, tuples, dict entries,
//! variants and maybes. Values are written and read against a [`Type`].
//!
//! Normal form rules used here (GVariant specification): every value is
//! aligned to its type's alignment relative to the start of its container;
//! variable-size array elements and non-final variable-size tuple members are
//! located by framing offsets stored at the end of the container, whose width
//! (1, 2, 4 or 8 bytes) is the smallest that can address the whole container.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result, bail, ensure};

/// A GVariant type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Type {
    Byte,
    Bool,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Handle,
    Double,
    Str,
    ObjectPath,
    Signature,
    Variant,
    Array(Box<Type>),
    Maybe(Box<Type>),
    Tuple(Vec<Type>),
    DictEntry(Box<Type>, Box<Type>),
}

impl Type {
    /// Parse one complete type string such as `a{sv}` or `(uuua(ayay))`.
    pub fn parse(s: &str) -> Result<Type> {
        let (t, rest) = Self::parse_one(s.as_bytes())
            .with_context(|| format!("parsing GVariant type {s:?}"))?;
        ensure!(
            rest.is_empty(),
            "trailing characters in GVariant type {s:?}"
        );
        Ok(t)
    }

    fn parse_one(s: &[u8]) -> Result<(Type, &[u8])> {
        let Some((&c, rest)) = s.split_first() else {
            bail!("type string ends early");
        };
        let t = match c {
            b'y' => Type::Byte,
            b'b' => Type::Bool,
            b'n' => Type::I16,
            b'q' => Type::U16,
            b'i' => Type::I32,
            b'u' => Type::U32,
            b'x' => Type::I64,
            b't' => Type::U64,
            b'h' => Type::Handle,
            b'd' => Type::Double,
            b's' => Type::Str,
            b'o' => Type::ObjectPath,
            b'g' => Type::Signature,
            b'v' => Type::Variant,
            b'a' => {
                let (e, rest) = Self::parse_one(rest)?;
                return Ok((Type::Array(Box::new(e)), rest));
            }
            b'm' => {
                let (e, rest) = Self::parse_one(rest)?;
                return Ok((Type::Maybe(Box::new(e)), rest));
            }
            b'(' => {
                let mut members = Vec::new();
                let mut rest = rest;
                loop {
                    match rest.first() {
                        Some(b')') => return Ok((Type::Tuple(members), &rest[1..])),
                        Some(_) => {
                            let (m, r) = Self::parse_one(rest)?;
                            members.push(m);
                            rest = r;
                        }
                        None => bail!("unclosed tuple"),
                    }
                }
            }
            b'{' => {
                let (k, rest) = Self::parse_one(rest)?;
                ensure!(k.is_basic(), "dict entry key must be a basic type");
                let (v, rest) = Self::parse_one(rest)?;
                ensure!(rest.first() == Some(&b'}'), "unclosed dict entry");
                return Ok((Type::DictEntry(Box::new(k), Box::new(v)), &rest[1..]));
            }
            other => bail!("unknown type character {:?}", other as char),
        };
        Ok((t, rest))
    }

    fn is_basic(&self) -> bool {
        !matches!(
            self,
            Type::Variant | Type::Array(_) | Type::Maybe(_) | Type::Tuple(_) | Type::DictEntry(..)
        )
    }

    /// Alignment in bytes.
    pub fn alignment(&self) -> usize {
        match self {
            Type::Byte | Type::Bool | Type::Str | Type::ObjectPath | Type::Signature => 1,
            Type::I16 | Type::U16 => 2,
            Type::I32 | Type::U32 | Type::Handle => 4,
            Type::I64 | Type::U64 | Type::Double | Type::Variant => 8,
            Type::Array(e) | Type::Maybe(e) => e.alignment(),
            Type::Tuple(m) => m.iter().map(Type::alignment).max().unwrap_or(1),
            Type::DictEntry(k, v) => k.alignment().max(v.alignment()),
        }
    }

    /// Size in bytes when the type has a fixed size.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Type::Byte | Type::Bool => Some(1),
            Type::I16 | Type::U16 => Some(2),
            Type::I32 | Type::U32 | Type::Handle => Some(4),
            Type::I64 | Type::U64 | Type::Double => Some(8),
            Type::Str | Type::ObjectPath | Type::Signature | Type::Variant => None,
            Type::Array(_) | Type::Maybe(_) => None,
            Type::Tuple(m) => Self::members_fixed_size(m, self.alignment()),
            Type::DictEntry(k, v) => {
                Self::members_fixed_size(&[(**k).clone(), (**v).clone()], self.alignment())
            }
        }
    }

    fn members_fixed_size(members: &[Type], align: usize) -> Option<usize> {
        if members.is_empty() {
            return Some(1);
        }
        let mut off = 0;
        for m in members {
            off = align_up(off, m.alignment()) + m.fixed_size()?;
        }
        Some(align_up(off, align))
    }

    fn members(&self) -> Option<Vec<Type>> {
        match self {
            Type::Tuple(m) => Some(m.clone()),
            Type::DictEntry(k, v) => Some(vec![(**k).clone(), (**v).clone()]),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self {
            Type::Byte => "y",
            Type::Bool => "b",
            Type::I16 => "n",
            Type::U16 => "q",
            Type::I32 => "i",
            Type::U32 => "u",
            Type::I64 => "x",
            Type::U64 => "t",
            Type::Handle => "h",
            Type::Double => "d",
            Type::Str => "s",
            Type::ObjectPath => "o",
            Type::Signature => "g",
            Type::Variant => "v",
            Type::Array(e) => return write!(f, "a{e}"),
            Type::Maybe(e) => return write!(f, "m{e}"),
            Type::Tuple(m) => {
                f.write_str("(")?;
                for t in m {
                    write!(f, "{t}")?;
                }
                return f.write_str(")");
            }
            Type::DictEntry(k, v) => return write!(f, "{{{k}{v}}}"),
        };
        f.write_str(c)
    }
}

/// A GVariant value. `ay` parses as [`Value::Bytes`]; the serializer accepts
/// both that and an `Array` of `Byte`.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Handle(i32),
    Double(f64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    Variant(Box<Value>),
    Bytes(Vec<u8>),
    /// An array with its element type (needed for empty arrays).
    Array(Type, Vec<Value>),
    Maybe(Type, Option<Box<Value>>),
    Tuple(Vec<Value>),
    DictEntry(Box<Value>, Box<Value>),
}

fn align_up(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

fn pad_to(out: &mut Vec<u8>, start: usize, align: usize) {
    let rel = out.len() - start;
    out.resize(start + align_up(rel, align), 0);
}

/// Width of framing offsets for a container of `size` bytes.
fn offset_size(size: usize) -> usize {
    match size {
        0 => 0,
        1..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// Width of framing offsets for a container with `body` bytes and `n` offsets.
fn offset_size_for(body: usize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    [1usize, 2, 4]
        .into_iter()
        .find(|&w| body + w * n < (1usize << (8 * w)))
        .unwrap_or(8)
}

fn write_offsets(out: &mut Vec<u8>, offsets: impl Iterator<Item = usize>, width: usize) {
    for o in offsets {
        out.extend_from_slice(&(o as u64).to_le_bytes()[..width]);
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A `t` in OSTree's metadata convention: integers in commit metadata
    /// are stored big-endian (`ostree show` byte-swaps them for display;
    /// rpm-ostree writes its repo timestamps this way).
    pub fn u64_be(n: u64) -> Value {
        Value::U64(n.to_be())
    }

    /// The number behind a [`Value::u64_be`].
    pub fn as_u64_be(&self) -> Option<u64> {
        match self {
            Value::U64(n) => Some(u64::from_be(*n)),
            _ => None,
        }
    }

    /// An `aa{sv}` value (rpm-ostree's `rpmostree.rpmmd-repos`).
    pub fn dict_array(maps: &[BTreeMap<String, Value>]) -> Value {
        let t = Type::Array(Box::new(Type::DictEntry(
            Box::new(Type::Str),
            Box::new(Type::Variant),
        )));
        Value::Array(t, maps.iter().map(Value::dict).collect())
    }

    /// An `as` value.
    pub fn string_array<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(
            Type::Str,
            items
                .iter()
                .map(|s| Value::Str(s.as_ref().to_string()))
                .collect(),
        )
    }

    /// An `a{sv}` dictionary, in key order.
    pub fn dict(map: &BTreeMap<String, Value>) -> Value {
        Value::Array(
            Type::DictEntry(Box::new(Type::Str), Box::new(Type::Variant)),
            map.iter()
                .map(|(k, v)| {
                    Value::DictEntry(
                        Box::new(Value::Str(k.clone())),
                        Box::new(Value::Variant(Box::new(v.clone()))),
                    )
                })
                .collect(),
        )
    }

    /// rpm-ostree's `rpmostree.rpmdb.pkglist`: `a(sssss)` of
    /// (name, epoch, version, release, arch), given in the caller's order.
    pub fn pkglist(pkgs: &[[String; 5]]) -> Value {
        let t = Type::Tuple(vec![Type::Str; 5]);
        Value::Array(
            t,
            pkgs.iter()
                .map(|p| Value::Tuple(p.iter().map(|s| Value::Str(s.clone())).collect()))
                .collect(),
        )
    }

    /// The type of this value.
    pub fn ty(&self) -> Type {
        match self {
            Value::Byte(_) => Type::Byte,
            Value::Bool(_) => Type::Bool,
            Value::I16(_) => Type::I16,
            Value::U16(_) => Type::U16,
            Value::I32(_) => Type::I32,
            Value::U32(_) => Type::U32,
            Value::I64(_) => Type::I64,
            Value::U64(_) => Type::U64,
            Value::Handle(_) => Type::Handle,
            Value::Double(_) => Type::Double,
            Value::Str(_) => Type::Str,
            Value::ObjectPath(_) => Type::ObjectPath,
            Value::Signature(_) => Type::Signature,
            Value::Variant(_) => Type::Variant,
            Value::Bytes(_) => Type::Array(Box::new(Type::Byte)),
            Value::Array(t, _) => Type::Array(Box::new(t.clone())),
            Value::Maybe(t, _) => Type::Maybe(Box::new(t.clone())),
            Value::Tuple(m) => Type::Tuple(m.iter().map(Value::ty).collect()),
            Value::DictEntry(k, v) => Type::DictEntry(Box::new(k.ty()), Box::new(v.ty())),
        }
    }

    /// Serialize in normal form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// Append the serialized value; `out.len()` must be aligned to this
    /// value's alignment (true for a fresh buffer and inside containers).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Byte(v) => out.push(*v),
            Value::Bool(v) => out.push(u8::from(*v)),
            Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I32(v) | Value::Handle(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Double(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            Value::Variant(v) => {
                v.write(out);
                out.push(0);
                out.extend_from_slice(v.ty().to_string().as_bytes());
            }
            Value::Bytes(b) => out.extend_from_slice(b),
            Value::Array(t, items) => write_array(out, t, items),
            Value::Maybe(t, v) => {
                if let Some(v) = v {
                    v.write(out);
                    if t.fixed_size().is_none() {
                        out.push(0);
                    }
                }
            }
            Value::Tuple(m) => write_members(out, &self.ty(), m.iter()),
            Value::DictEntry(k, v) => write_members(out, &self.ty(), [&**k, &**v].into_iter()),
        }
    }

    /// Parse `data` as a value of type `ty`.
    pub fn parse(ty: &Type, data: &[u8]) -> Result<Value> {
        parse_value(ty, data).with_context(|| format!("parsing GVariant of type {ty}"))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Members of a tuple or dict entry.
    pub fn as_tuple(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(m) => Some(m),
            _ => None,
        }
    }

    /// Elements of an array (not `ay`).
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(_, items) => Some(items),
            _ => None,
        }
    }

    /// An `a{sv}` as a map (variants unwrapped).
    pub fn as_dict(&self) -> Option<BTreeMap<String, Value>> {
        let items = self.as_array()?;
        let mut map = BTreeMap::new();
        for it in items {
            let Value::DictEntry(k, v) = it else {
                return None;
            };
            let Value::Variant(inner) = &**v else {
                return None;
            };
            map.insert(k.as_str()?.to_string(), (**inner).clone());
        }
        Some(map)
    }

    /// A JSON rendering in the style of `ostree show --print-metadata-key`
    /// consumers (rpm-ostree's commitmeta.json): strings, numbers, bools,
    /// arrays, objects; byte arrays as hex strings.
    pub fn to_json(&self) -> serde_json::Value {
        self.json(false)
    }

    /// JSON of commit metadata: integers there are big-endian by ostree's
    /// convention (as `ostree show` prints them), so they are swapped back.
    pub fn metadata_json(&self) -> serde_json::Value {
        self.json(true)
    }

    fn json(&self, be: bool) -> serde_json::Value {
        use serde_json::Value as J;
        let conv = |v: &Value| v.json(be);
        match self {
            Value::Byte(v) => J::from(*v),
            Value::Bool(v) => J::from(*v),
            Value::I16(v) => J::from(if be { i16::from_be(*v) } else { *v }),
            Value::U16(v) => J::from(if be { u16::from_be(*v) } else { *v }),
            Value::I32(v) | Value::Handle(v) => J::from(if be { i32::from_be(*v) } else { *v }),
            Value::U32(v) => J::from(if be { u32::from_be(*v) } else { *v }),
            Value::I64(v) => J::from(if be { i64::from_be(*v) } else { *v }),
            Value::U64(v) => J::from(if be { u64::from_be(*v) } else { *v }),
            Value::Double(v) => J::from(*v),
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => J::from(s.clone()),
            Value::Variant(v) => conv(v),
            Value::Bytes(b) => J::from(hex::encode(b)),
            Value::Array(_, items) => match self.as_dict() {
                Some(map) if !items.is_empty() => {
                    J::Object(map.iter().map(|(k, v)| (k.clone(), conv(v))).collect())
                }
                _ => J::Array(items.iter().map(conv).collect()),
            },
            Value::Maybe(_, v) => v.as_ref().map_or(J::Null, |v| conv(v)),
            Value::Tuple(m) => J::Array(m.iter().map(conv).collect()),
            Value::DictEntry(k, v) => J::Array(vec![conv(k), conv(v)]),
        }
    }
}

fn write_array(out: &mut Vec<u8>, elem: &Type, items: &[Value]) {
    let start = out.len();
    if elem.fixed_size().is_some() {
        for it in items {
            it.write(out);
        }
        return;
    }
    let align = elem.alignment();
    let mut ends = Vec::with_capacity(items.len());
    for it in items {
        pad_to(out, start, align);
        it.write(out);
        ends.push(out.len() - start);
    }
    let width = offset_size_for(out.len() - start, ends.len());
    write_offsets(out, ends.into_iter(), width);
}

fn write_members<'a>(out: &mut Vec<u8>, ty: &Type, members: impl Iterator<Item = &'a Value>) {
    let start = out.len();
    let members: Vec<&Value> = members.collect();
    if members.is_empty() {
        out.push(0);
        return;
    }
    let mut ends = Vec::new();
    let last = members.len() - 1;
    for (i, m) in members.iter().enumerate() {
        let mt = m.ty();
        pad_to(out, start, mt.alignment());
        m.write(out);
        if i != last && mt.fixed_size().is_none() {
            ends.push(out.len() - start);
        }
    }
    if ty.fixed_size().is_some() {
        pad_to(out, start, ty.alignment());
        return;
    }
    let width = offset_size_for(out.len() - start, ends.len());
    write_offsets(out, ends.into_iter().rev(), width);
}

fn read_offset(data: &[u8], at: usize, width: usize) -> Result<usize> {
    let b = data
        .get(at..at + width)
        .context("framing offset out of bounds")?;
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(b);
    Ok(u64::from_le_bytes(buf) as usize)
}

fn fixed<const N: usize>(data: &[u8]) -> Result<[u8; N]> {
    data.try_into()
        .map_err(|_| anyhow::anyhow!("expected {N} bytes, found {}", data.len()))
}

fn parse_string(data: &[u8]) -> Result<String> {
    let (&last, body) = data.split_last().context("empty string data")?;
    ensure!(last == 0, "string is not NUL-terminated");
    ensure!(!body.contains(&0), "string contains NUL");
    Ok(std::str::from_utf8(body)
        .context("string is not UTF-8")?
        .to_string())
}

fn parse_value(ty: &Type, data: &[u8]) -> Result<Value> {
    Ok(match ty {
        Type::Byte => Value::Byte(fixed::<1>(data)?[0]),
        Type::Bool => Value::Bool(fixed::<1>(data)?[0] != 0),
        Type::I16 => Value::I16(i16::from_le_bytes(fixed(data)?)),
        Type::U16 => Value::U16(u16::from_le_bytes(fixed(data)?)),
        Type::I32 => Value::I32(i32::from_le_bytes(fixed(data)?)),
        Type::Handle => Value::Handle(i32::from_le_bytes(fixed(data)?)),
        Type::U32 => Value::U32(u32::from_le_bytes(fixed(data)?)),
        Type::I64 => Value::I64(i64::from_le_bytes(fixed(data)?)),
        Type::U64 => Value::U64(u64::from_le_bytes(fixed(data)?)),
        Type::Double => Value::Double(f64::from_le_bytes(fixed(data)?)),
        Type::Str => Value::Str(parse_string(data)?),
        Type::ObjectPath => Value::ObjectPath(parse_string(data)?),
        Type::Signature => Value::Signature(parse_string(data)?),
        Type::Variant => {
            let sep = data
                .iter()
                .rposition(|&b| b == 0)
                .context("variant without type")?;
            let tstr =
                std::str::from_utf8(&data[sep + 1..]).context("variant type is not UTF-8")?;
            let t = Type::parse(tstr)?;
            Value::Variant(Box::new(parse_value(&t, &data[..sep])?))
        }
        Type::Array(e) if **e == Type::Byte => Value::Bytes(data.to_vec()),
        Type::Array(e) => Value::Array((**e).clone(), parse_array(e, data)?),
        Type::Maybe(e) => {
            if data.is_empty() {
                Value::Maybe((**e).clone(), None)
            } else {
                let body = if e.fixed_size().is_some() {
                    data
                } else {
                    ensure!(data.last() == Some(&0), "maybe without trailing zero");
                    &data[..data.len() - 1]
                };
                Value::Maybe((**e).clone(), Some(Box::new(parse_value(e, body)?)))
            }
        }
        Type::Tuple(_) | Type::DictEntry(..) => {
            let members = ty.members().unwrap_or_default();
            let vals = parse_members(&members, data)?;
            match ty {
                Type::DictEntry(..) => {
                    let mut it = vals.into_iter();
                    match (it.next(), it.next()) {
                        (Some(k), Some(v)) => Value::DictEntry(Box::new(k), Box::new(v)),
                        _ => bail!("dict entry without two members"),
                    }
                }
                _ => Value::Tuple(vals),
            }
        }
    })
}

fn parse_array(elem: &Type, data: &[u8]) -> Result<Vec<Value>> {
    if let Some(size) = elem.fixed_size() {
        ensure!(
            data.len().is_multiple_of(size),
            "array size {} not a multiple of {size}",
            data.len()
        );
        return data.chunks(size).map(|c| parse_value(elem, c)).collect();
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let width = offset_size(data.len());
    let offsets_start = read_offset(data, data.len() - width, width)?;
    ensure!(
        offsets_start <= data.len() && (data.len() - offsets_start).is_multiple_of(width),
        "bad array framing"
    );
    let n = (data.len() - offsets_start) / width;
    let mut items = Vec::with_capacity(n);
    let mut prev = 0;
    for i in 0..n {
        let end = read_offset(data, offsets_start + i * width, width)?;
        let start = align_up(prev, elem.alignment());
        ensure!(
            start <= end && end <= offsets_start,
            "bad array element bounds"
        );
        items.push(parse_value(elem, &data[start..end])?);
        prev = end;
    }
    Ok(items)
}

fn parse_members(members: &[Type], data: &[u8]) -> Result<Vec<Value>> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let width = offset_size(data.len());
    let mut frame_end = data.len();
    let mut pos = 0;
    let mut vals = Vec::with_capacity(members.len());
    let last = members.len() - 1;
    for (i, m) in members.iter().enumerate() {
        let start = align_up(pos, m.alignment());
        let end = if let Some(size) = m.fixed_size() {
            start + size
        } else if i == last {
            frame_end
        } else {
            frame_end = frame_end.checked_sub(width).context("bad tuple framing")?;
            read_offset(data, frame_end, width)?
        };
        ensure!(start <= end && end <= data.len(), "bad tuple member bounds");
        vals.push(parse_value(m, &data[start..end])?);
        pos = end;
    }
    Ok(vals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(t: &str, v: &Value) -> Vec<u8> {
        let ty = Type::parse(t).unwrap();
        assert_eq!(v.ty(), ty, "type of {v:?}");
        let b = v.to_bytes();
        assert_eq!(&Value::parse(&ty, &b).unwrap(), v);
        b
    }

    #[test]
    fn type_strings_round_trip() {
        for s in [
            "(uuuusa(ayay))",
            "(a{sv}aya(say)sstayay)",
            "(a(s(taya{sv}))a{sv})",
            "mas",
            "()",
        ] {
            assert_eq!(Type::parse(s).unwrap().to_string(), s);
        }
        assert!(Type::parse("a{vs}").is_err());
        assert!(Type::parse("(uu").is_err());
    }

    // Byte strings below follow the examples of the GVariant specification.
    #[test]
    fn spec_examples() {
        assert_eq!(roundtrip("s", &Value::str("hello world")), b"hello world\0");
        assert_eq!(roundtrip("mi", &Value::Maybe(Type::I32, None)), b"");
        let ab = Value::Array(
            Type::Bool,
            vec![Value::Bool(true), Value::Bool(false), Value::Bool(false)],
        );
        assert_eq!(roundtrip("ab", &ab), [1, 0, 0]);
        let as_ = Value::string_array(&["i", "can", "has", "strings?"]);
        assert_eq!(
            roundtrip("as", &as_),
            b"i\0can\0has\0strings?\0\x02\x06\x0a\x13"
        );
        let si = Value::Tuple(vec![Value::str("foo"), Value::I32(-1)]);
        assert_eq!(roundtrip("(si)", &si), b"foo\0\xff\xff\xff\xff\x04");
        let is = Value::Tuple(vec![Value::I32(-1), Value::str("foo")]);
        assert_eq!(roundtrip("(is)", &is), b"\xff\xff\xff\xfffoo\0");
        let dict = Value::DictEntry(
            Box::new(Value::str("a key")),
            Box::new(Value::Variant(Box::new(Value::I32(514)))),
        );
        assert_eq!(roundtrip("{sv}", &dict), b"a key\0\0\0\x02\x02\0\0\0i\x06");
        let ai = Value::Array(Type::I32, vec![Value::I32(4), Value::I32(258)]);
        assert_eq!(roundtrip("ai", &ai), [4, 0, 0, 0, 2, 1, 0, 0]);
        let nested = Value::Array(
            Type::parse("as").unwrap(),
            vec![
                Value::string_array(&["hello", "world"]),
                Value::string_array(&["i", "am", "here"]),
            ],
        );
        assert_eq!(
            roundtrip("aas", &nested),
            b"hello\0world\0\x06\x0ci\0am\0here\0\x02\x05\x0a\x0e\x1b".to_vec()
        );
        let unit = Value::Tuple(vec![]);
        assert_eq!(roundtrip("()", &unit), [0]);
        let fixed = Value::Tuple(vec![Value::U64(1), Value::Byte(2)]);
        assert_eq!(roundtrip("(ty)", &fixed).len(), 16);
    }

    #[test]
    fn large_arrays_use_wider_offsets() {
        let items: Vec<String> = (0..200).map(|i| format!("string number {i}")).collect();
        let v = Value::string_array(&items);
        let b = roundtrip("as", &v);
        assert!(b.len() > 0xffff || b.len() > 0xff);
        let big = Value::Tuple(vec![Value::Bytes(vec![7; 70_000]), Value::str("x")]);
        let b = roundtrip("(ays)", &big);
        assert_eq!(b.len(), 70_000 + 2 + 4);
    }

    #[test]
    fn dict_helpers_and_json() {
        let mut m = BTreeMap::new();
        m.insert("version".to_string(), Value::str("41.1"));
        m.insert("ostree.bootable".to_string(), Value::Bool(true));
        m.insert("n".to_string(), Value::U64(7));
        let d = Value::dict(&m);
        let b = roundtrip("a{sv}", &d);
        let back = Value::parse(&Type::parse("a{sv}").unwrap(), &b).unwrap();
        assert_eq!(back.as_dict().unwrap(), m);
        assert_eq!(back.to_json()["version"], "41.1");
        assert_eq!(back.to_json()["n"], 7);
        let repos = Value::dict_array(&[m.clone(), BTreeMap::new()]);
        roundtrip("aa{sv}", &repos);
        assert_eq!(Value::u64_be(42).as_u64_be(), Some(42));
        assert_eq!(Value::u64_be(42).to_bytes(), [0, 0, 0, 0, 0, 0, 0, 42]);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(Value::parse(&Type::Str, b"abc").is_err());
        assert!(Value::parse(&Type::U32, b"abc").is_err());
        assert!(Value::parse(&Type::parse("as").unwrap(), b"a\0\xff").is_err());
    }
}
