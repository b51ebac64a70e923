//! `application/x-www-form-urlencoded` with Stripe-style bracket nesting.
//!
//! Stripe (and many APIs imitating it) take nested parameters as form fields
//! with brackets, in POST bodies and GET query strings alike:
//!
//! | input                                   | tree                                   |
//! |-----------------------------------------|----------------------------------------|
//! | `name=x`                                | `{"name":"x"}`                         |
//! | `metadata[color]=red`                   | `{"metadata":{"color":"red"}}`         |
//! | `expand[]=a&expand[]=b`                 | `{"expand":["a","b"]}`                 |
//! | `items[0][price]=p&items[1][price]=q`   | `{"items":[{"price":"p"},{"price":"q"}]}` |
//! | `items[][price]=p&items[][qty]=2`       | `{"items":[{"price":"p","qty":"2"}]}`  |
//!
//! [`parse`] builds that tree as a [`serde_json::Value`] so twins can walk it
//! or deserialize it ([`from_value`]). Details worth knowing:
//!
//! * Every leaf is a **string**: forms carry no types. [`from_value`] parses
//!   strings into numbers and booleans where the target type asks for them.
//! * **An empty value means "unset"**: `description=` and
//!   `metadata[color]=` are how Stripe clients clear a field, so they come out
//!   as `Value::String("")` (never dropped) for the twin to detect; an
//!   `Option` field deserialized with [`from_value`] reads them as `None`.
//! * Keys and values are percent-decoded and `+` means space. Keys are decoded
//!   *before* brackets are read, because GET query strings arrive with the
//!   brackets encoded (`expand%5B%5D=a`) while POST bodies usually carry them
//!   literally.
//! * Numeric indices order the array (`a[1]=y&a[0]=x` is `["x","y"]`; gaps
//!   close up); `[]` appends. A repeated plain key keeps the last value.
//! * Malformed input is an error a twin renders as 400 (via
//!   `From<FormError> for Error`): unbalanced brackets, an empty name, or one
//!   name used with two shapes (`a=1&a[b]=2`, `a[0]=1&a[b]=2`). A numeric
//!   index under a name already used as a hash is a hash key
//!   (`metadata[a]=1&metadata[0]=2`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::Value;

use crate::Error;

/// Deepest bracket nesting accepted; more is certainly an attack or a bug.
const MAX_DEPTH: usize = 32;

/// Why a form could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    /// What is wrong, phrased for the API client.
    pub message: String,
    /// The offending key as sent (decoded), when known.
    pub key: Option<String>,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FormError {}

impl From<FormError> for Error {
    fn from(e: FormError) -> Self {
        let err = Error::bad_request(e.message);
        match e.key {
            Some(key) => err.with_param(key),
            None => err,
        }
    }
}

/// Percent-decodes `s` and turns `+` into a space (form and query encoding).
/// Invalid escapes are kept literally and invalid UTF-8 is replaced, because
/// a fake should be at least as lenient as the real server.
pub fn decode_component(s: &str) -> Cow<'_, str> {
    decode(s, true)
}

/// Percent-decodes `s`, leaving `+` alone (path encoding).
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    if !bytes
        .iter()
        .any(|&b| b == b'%' || (plus_is_space && b == b'+'))
    {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The decoded `(key, value)` pairs of `input`, in order, without nesting.
/// Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` has an empty
/// value.
pub fn pairs(input: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    input.split('&').filter(|p| !p.is_empty()).map(|piece| {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        (decode_component(k), decode_component(v))
    })
}

/// Parses `input` into a tree of objects, arrays and strings (always an
/// object at the top). See the [module docs](self) for the rules.
pub fn parse(input: &str) -> Result<Value, FormError> {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for (key, value) in pairs(input) {
        let (base, segs) = parse_key(&key)?;
        let slot = root.entry(base.to_owned()).or_insert(Node::Empty);
        place(slot, &segs, value.into_owned()).map_err(|()| FormError {
            message: format!(
                "Invalid parameter `{key}`: the name `{base}` is used both as a value and with \
                 nested parameters, or both as a list and as a hash."
            ),
            key: Some(key.clone().into_owned()),
        })?;
    }
    Ok(Value::Object(
        root.into_iter().map(|(k, n)| (k, n.into_value())).collect(),
    ))
}

/// [`parse`] for a body that may not be valid UTF-8 (invalid bytes are
/// replaced; a correctly encoded form is plain ASCII anyway).
pub fn parse_bytes(input: &[u8]) -> Result<Value, FormError> {
    parse(&String::from_utf8_lossy(input))
}

/// Deserializes a parsed form tree into `T`.
///
/// Unlike `serde_json::from_value`, string leaves are parsed into the numbers
/// and booleans `T` asks for (`limit=10` into a `u32`, `livemode=true` into a
/// `bool`), and an empty string is `None` for an `Option` (the "unset"
/// convention). Errors are 400s naming the parameter where possible.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(FormValue(value))
        .map_err(|e| Error::bad_request(format!("Invalid request parameters: {}", e.0)))
}

/// [`parse`] then [`from_value`].
pub fn from_str<T: DeserializeOwned>(input: &str) -> Result<T, Error> {
    from_value(&parse(input)?)
}

#[derive(Debug, PartialEq)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
    Push,
}

/// Splits `a[b][0][]` into `a` and `[Key(b), Index(0), Push]`.
fn parse_key(key: &str) -> Result<(&str, Vec<Seg<'_>>), FormError> {
    let err = |message: String| FormError {
        message,
        key: Some(key.to_owned()),
    };
    let (base, mut rest) = match key.find('[') {
        Some(i) => key.split_at(i),
        None => (key, ""),
    };
    if base.is_empty() {
        return Err(err(format!(
            "Invalid parameter `{key}`: the parameter name is empty."
        )));
    }
    if base.contains(']') {
        return Err(err(format!(
            "Invalid parameter `{key}`: unbalanced brackets."
        )));
    }
    let mut segs = Vec::new();
    while !rest.is_empty() {
        let Some(after_open) = rest.strip_prefix('[') else {
            return Err(err(format!(
                "Invalid parameter `{key}`: unexpected text after `]`."
            )));
        };
        let Some(close) = after_open.find(']') else {
            return Err(err(format!(
                "Invalid parameter `{key}`: unbalanced brackets."
            )));
        };
        let inner = &after_open[..close];
        if inner.contains('[') {
            return Err(err(format!(
                "Invalid parameter `{key}`: unbalanced brackets."
            )));
        }
        segs.push(if inner.is_empty() {
            Seg::Push
        } else if inner.len() <= 9 && inner.bytes().all(|b| b.is_ascii_digit()) {
            Seg::Index(inner.parse().unwrap_or_default())
        } else {
            Seg::Key(inner)
        });
        if segs.len() > MAX_DEPTH {
            return Err(err(format!(
                "Invalid parameter `{key}`: nested more than {MAX_DEPTH} levels deep."
            )));
        }
        rest = &after_open[close + 1..];
    }
    Ok((base, segs))
}

/// The tree while it is being built; lists remember the index each element
/// was given so they can be ordered at the end.
enum Node {
    Empty,
    Leaf(String),
    Map(BTreeMap<String, Node>),
    List(Vec<(Option<usize>, Node)>),
}

impl Node {
    fn into_value(self) -> Value {
        match self {
            Node::Empty => Value::String(String::new()),
            Node::Leaf(s) => Value::String(s),
            Node::Map(m) => {
                Value::Object(m.into_iter().map(|(k, n)| (k, n.into_value())).collect())
            }
            Node::List(mut items) => {
                if items.iter().all(|(i, _)| i.is_some()) {
                    items.sort_by_key(|(i, _)| *i);
                }
                Value::Array(items.into_iter().map(|(_, n)| n.into_value()).collect())
            }
        }
    }

    /// Whether every key of `segs` (up to the first non-key) already exists.
    fn has_path(&self, segs: &[Seg<'_>]) -> bool {
        match (self, segs.first()) {
            (_, None) => true,
            (Node::Map(m), Some(Seg::Key(k))) => m.get(*k).is_some_and(|n| n.has_path(&segs[1..])),
            _ => false,
        }
    }
}

/// Puts `value` at `segs` below `slot`; `Err` on a shape conflict.
fn place(slot: &mut Node, segs: &[Seg<'_>], value: String) -> Result<(), ()> {
    let Some((seg, rest)) = segs.split_first() else {
        return match slot {
            Node::Empty | Node::Leaf(_) => {
                *slot = Node::Leaf(value);
                Ok(())
            }
            Node::Map(_) | Node::List(_) => Err(()),
        };
    };
    if let Node::Empty = slot {
        *slot = match seg {
            Seg::Key(_) => Node::Map(BTreeMap::new()),
            Seg::Index(_) | Seg::Push => Node::List(Vec::new()),
        };
    }
    match (slot, seg) {
        (Node::Map(m), Seg::Key(k)) => {
            place(m.entry((*k).to_owned()).or_insert(Node::Empty), rest, value)
        }
        (Node::Map(m), Seg::Index(i)) => {
            place(m.entry(i.to_string()).or_insert(Node::Empty), rest, value)
        }
        (Node::List(items), Seg::Index(i)) => {
            let pos = match items.iter().rposition(|(at, _)| *at == Some(*i)) {
                Some(pos) => pos,
                None => {
                    items.push((Some(*i), Node::Empty));
                    items.len() - 1
                }
            };
            place(&mut items[pos].1, rest, value)
        }
        (Node::List(items), Seg::Push) => {
            // Like Rack: `a[][k]=…` keeps filling the last element until it
            // already has `k`, so `a[][p]=1&a[][q]=2&a[][p]=3` is two objects.
            let reuse = !rest.is_empty()
                && matches!(items.last(), Some((None, last @ Node::Map(_))) if !last.has_path(rest));
            if !reuse {
                items.push((None, Node::Empty));
            }
            let last = items.len() - 1;
            place(&mut items[last].1, rest, value)
        }
        _ => Err(()),
    }
}

/// A `Deserializer` over a form tree that reads numbers and booleans out of
/// strings on demand.
struct FormValue<'a>(&'a Value);

#[derive(Debug)]
struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

macro_rules! parse_scalar {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.0 {
                Value::String(s) => match s.trim().parse::<$ty>() {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => Err(DeError(format!("invalid {}: {s:?}", stringify!($ty)))),
                },
                other => other.clone().into_deserializer().$method(visitor).map_err(|e| DeError(e.to_string())),
            }
        }
    )*};
}

impl<'de, 'a> de::Deserializer<'de> for FormValue<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Object(m) => visitor.visit_map(FormMap {
                iter: m.iter(),
                value: None,
            }),
            Value::Array(items) => visitor.visit_seq(FormSeq(items.iter())),
            Value::String(s) => visitor.visit_str(s),
            other => other
                .clone()
                .into_deserializer()
                .deserialize_any(visitor)
                .map_err(|e| DeError(e.to_string())),
        }
    }

    parse_scalar! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            Value::String(s) if s.is_empty() => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => Err(DeError("expected a string for an enum".into())),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct FormMap<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'de, 'a> de::MapAccess<'de> for FormMap<'a> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k.as_str().into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| DeError("value without key".into()))?;
        seed.deserialize(FormValue(value))
    }
}

struct FormSeq<'a>(std::slice::Iter<'a, Value>);

impl<'de, 'a> de::SeqAccess<'de> for FormSeq<'a> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.0
            .next()
            .map(|v| seed.deserialize(FormValue(v)))
            .transpose()
    }
}

#[cfg(test)]
mod tests;
