//! A plaintext value that must not leak.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A plaintext field value: a name, a phone number, an ID or account number.
///
/// `Debug` and `Display` print `[redacted]`; the buffer is wiped when the value is dropped.
/// The only way to read the value is [`Sensitive::expose`], which makes every read easy to
/// find in review. Serialising a `Sensitive` (record JSON out) writes the value: that is the
/// point of serialising a record, and happens only where the caller asks for it.
#[derive(Clone, Default, PartialEq, Eq, Hash, Zeroize, ZeroizeOnDrop)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a value. The `String`'s buffer is taken over, not copied.
    pub fn new(value: impl Into<String>) -> Self {
        Sensitive(value.into())
    }

    /// The plaintext. Keep the borrow short and never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Sensitive {
    fn from(value: String) -> Self {
        Sensitive(value)
    }
}

impl From<&str> for Sensitive {
    fn from(value: &str) -> Self {
        Sensitive(value.to_owned())
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl serde::Serialize for Sensitive {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Sensitive {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Sensitive;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Sensitive, E> {
                Ok(Sensitive(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Sensitive, E> {
                Ok(Sensitive(v))
            }
        }
        deserializer.deserialize_string(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_redacts() {
        let s = Sensitive::new("110101200001010002");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(s.expose(), "110101200001010002");
    }

    #[test]
    fn zeroize_wipes_the_buffer() {
        let mut s = Sensitive::new(String::from("13800000000"));
        s.zeroize();
        assert!(s.is_empty());
    }
}
