//! Templates for the HTTP sinks (CRM, SMS provider): `{{path.to.field}}` placeholders filled
//! from the event's context. Pure.
//!
//! The context is `{"id", "type", "timestamp", "data": <payload>, "receipt": {...}}`.
//! - In text (a URL, a header, a string inside a body) a placeholder becomes the value's text
//!   (strings as they are, numbers and booleans as JSON, missing or null as nothing); in a
//!   URL it is percent-encoded so a value can never add a path segment or a query.
//! - A JSON body template is any JSON value; a string that is exactly one placeholder becomes
//!   the value itself, keeping its type (`"{{data.amount_minor}}"` → `1250`, not `"1250"`).

use serde_json::Value;

/// Where a placeholder's value is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Plain text.
    None,
    /// A URL component: everything but unreserved characters percent-encoded.
    Url,
}

/// The value at a dotted path (`data.amount_minor`); array elements by index (`lines.0`).
#[must_use]
pub fn lookup<'a>(context: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(context, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn text_of(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn url_encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Fills the placeholders of a text template.
#[must_use]
pub fn render_text(template: &str, context: &Value, escape: Escape) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = text_of(lookup(context, after[..end].trim()));
        match escape {
            Escape::None => out.push_str(&value),
            Escape::Url => url_encode(&value, &mut out),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The path of a string that is exactly one placeholder.
fn sole_placeholder(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then(|| inner.trim())
}

/// Fills a JSON body template.
#[must_use]
pub fn render_json(template: &Value, context: &Value) -> Value {
    match template {
        Value::String(text) => match sole_placeholder(text) {
            Some(path) => lookup(context, path).cloned().unwrap_or(Value::Null),
            None => Value::String(render_text(text, context, Escape::None)),
        },
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| render_json(v, context)).collect())
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), render_json(v, context))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_url_and_json() {
        let ctx = json!({"type": "payment.succeeded", "data": {"amount_minor": 1250, "customer_ref": "a/b c", "tags": ["x"]}});
        assert_eq!(
            render_text("{{type}}: {{ data.amount_minor }}{{missing}}", &ctx, Escape::None),
            "payment.succeeded: 1250"
        );
        assert_eq!(
            render_text("https://crm/c/{{data.customer_ref}}/p", &ctx, Escape::Url),
            "https://crm/c/a%2Fb%20c/p"
        );
        assert_eq!(render_text("open {{ never closed", &ctx, Escape::None), "open {{ never closed");
        let body = json!({"amount": "{{data.amount_minor}}", "note": "paid {{data.amount_minor}}", "first": "{{data.tags.0}}", "n": 1, "none": "{{nope}}"});
        assert_eq!(
            render_json(&body, &ctx),
            json!({"amount": 1250, "note": "paid 1250", "first": "x", "n": 1, "none": null})
        );
    }
}
