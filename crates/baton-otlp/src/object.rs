//! A JSON object written member by member into a byte buffer. Every span
//! becomes a document, and building a `serde_json::Value` tree first (a map
//! and an owned key per member) cost three times the writing itself.

use serde::Serialize;

/// An open JSON object; [`Object::close`] writes its closing brace.
pub(crate) struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Opens an object at the end of `out`.
    pub(crate) fn open(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes `key` and the colon; the caller writes the value.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !std::mem::take(&mut self.empty) {
            self.out.push(b',');
        }
        write(self.out, key);
        self.out.push(b':');
        self.out
    }

    /// A member with any serializable value (a string is escaped).
    pub(crate) fn value<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        write(self.key(key), value);
    }

    /// A member whose value is `value` when there is one.
    pub(crate) fn some<T: Serialize + ?Sized>(&mut self, key: &str, value: Option<&T>) {
        if let Some(value) = value {
            self.value(key, value);
        }
    }

    /// A member whose value is JSON text already.
    pub(crate) fn raw(&mut self, key: &str, json: &str) {
        self.key(key).extend_from_slice(json.as_bytes());
    }

    /// A member whose value is a nested object, written through the
    /// returned one.
    pub(crate) fn object(&mut self, key: &str) -> Object<'_> {
        Object::open(self.key(key))
    }

    /// The buffer, to write a member's value by hand after [`Object::member`].
    pub(crate) fn member(&mut self, key: &str) -> &mut Vec<u8> {
        self.key(key)
    }

    /// Writes the closing brace.
    pub(crate) fn close(self) {
        self.out.push(b'}');
    }
}

/// Appends `value` as JSON.
pub(crate) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("writing JSON into memory cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_separated_and_nested_objects_closed() {
        let mut out = Vec::new();
        let mut object = Object::open(&mut out);
        object.value("name", "a \"quoted\" name");
        object.some("absent", None::<&str>);
        let mut inner = object.object("inner");
        inner.value("n", &1.5);
        inner.close();
        object.raw("raw", "[1,2]");
        object.close();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"name":"a \"quoted\" name","inner":{"n":1.5},"raw":[1,2]}"#);
    }
}
