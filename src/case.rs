//! A proto3-JSON field name in its two spellings: the field name
//! (snake_case) and its JSON name (lowerCamelCase). Envoy and Istio accept
//! both; the configuration reader, the checker and the converter read both.

/// `fooBar` -> `foo_bar` (a JSON name to its field name; a field name stays
/// as it is). Used by the native checker and converter.
#[cfg(not(target_arch = "wasm32"))]
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

/// Whether `key` is the lowerCamelCase spelling of the snake_case `name`
/// (`camel(name) == key`, without building the string).
pub fn is_camel_of(key: &str, name: &str) -> bool {
    let mut k = key.bytes();
    let mut upper = false;
    for c in name.bytes() {
        if c == b'_' {
            upper = true;
            continue;
        }
        let want = if upper { c.to_ascii_uppercase() } else { c };
        upper = false;
        if k.next() != Some(want) {
            return false;
        }
    }
    k.next().is_none()
}

#[cfg(test)]
mod tests;
