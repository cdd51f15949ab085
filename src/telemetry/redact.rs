//! Redaction of secret-looking config fields, for every place a config is shown (Debug forms,
//! logs). A field is secret when its name says so: `api_key`, `password`, `token`, `secret`,
//! `credential`, `access_key`, `private_key`, `authorization` (any case, any prefix).

use serde_json::Value;

use crate::types::common::JsonObject;

/// What a secret value is shown as.
pub const REDACTED: &str = "<redacted>";

const SECRET_WORDS: [&str; 8] = ["key", "password", "passwd", "token", "secret", "credential", "authorization", "auth"];

/// Whether a field with this name holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.split(|c: char| !c.is_ascii_alphanumeric()).any(|part| SECRET_WORDS.contains(&part))
        || lower.ends_with("key")
        || lower.contains("password")
}

/// A copy of `value` with every secret-named field (at any depth) replaced by [`REDACTED`].
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(redact_object(m)),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

pub fn redact_object(m: &JsonObject) -> JsonObject {
    m.iter()
        .map(|(k, v)| {
            let v = if is_secret_name(k) && !v.is_null() { Value::String(REDACTED.into()) } else { redact(v) };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_names_are_redacted_at_any_depth() {
        let v = json!({"api_key": "a", "url": "u", "store": {"password": "p", "user": "x"},
                       "aws_secret_access_key": "s", "tokens": 5, "AWS_SESSION_TOKEN": "t", "model": "m"});
        let r = redact(&v);
        assert_eq!(r["api_key"], REDACTED);
        assert_eq!(r["store"]["password"], REDACTED);
        assert_eq!(r["aws_secret_access_key"], REDACTED);
        assert_eq!(r["AWS_SESSION_TOKEN"], REDACTED);
        assert_eq!(r["url"], "u");
        assert_eq!(r["store"]["user"], "x");
        assert_eq!(r["tokens"], 5);
        assert_eq!(r["model"], "m");
    }
}
