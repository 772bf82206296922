//! A proto3-JSON field name in its two spellings: the field name
//! (snake_case) and its JSON name (lowerCamelCase). Envoy and Istio accept
//! both; the checker and the converter read both.

/// `fooBar` -> `foo_bar` (a JSON name to its field name; a field name stays
/// as it is).
pub fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `foo_bar` -> `fooBar` (a field name to its JSON name).
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
