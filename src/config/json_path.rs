//! JSON paths found by scanning the configuration text, for the errors
//! raised while the text is parsed (before any path is known by
//! construction): a syntax error, or a member name repeated in one object.

/// The byte offset of serde_json's error position: `line` is 1-based, `column`
/// the bytes read on that line.
pub(super) fn error_offset(json: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match json
            .get(start..)
            .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
        {
            Some(nl) => start += nl + 1,
            None => break,
        }
    }
    start + column
}

/// The JSON path (`providers.a.issuer`, `rules[0].match`) of the member or
/// element being read when the parser stopped at byte `offset`: the key just
/// read, the value just read, or the object just closed.
pub(super) fn json_path_at(json: &[u8], offset: usize) -> String {
    let text = json.get(..offset).unwrap_or(json);
    scan(text, false).0
}

/// The path and name of the first member whose name (unescaped) repeats
/// an earlier one of the same object; `None` when no name repeats.
pub(super) fn repeated_member(json: &[u8]) -> Option<(String, String)> {
    match scan(json, true) {
        (path, Some(name)) => Some((path, name)),
        (_, None) => None,
    }
}

enum Seg<'a> {
    /// An object: the member being read, and (when looking for repeated
    /// names) the names read so far.
    Key(Option<&'a [u8]>, Vec<String>),
    Index(usize),
}

/// Scans `text`: the path where it ends, or with `repeat` where a member
/// name first repeats (and that name).
fn scan(text: &[u8], repeat: bool) -> (String, Option<String>) {
    let mut stack: Vec<Seg> = Vec::new();
    let mut want_key = false;
    let mut i = 0;
    let mut repeated = None;
    while let Some(&c) = text.get(i) {
        match c {
            b'{' => {
                stack.push(Seg::Key(None, Vec::new()));
                want_key = true;
            }
            b'[' => {
                stack.push(Seg::Index(0));
                want_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                want_key = false;
            }
            b',' => match stack.last_mut() {
                Some(Seg::Index(n)) => *n += 1,
                Some(Seg::Key(k, _)) => {
                    *k = None;
                    want_key = true;
                }
                None => {}
            },
            b'"' => {
                let start = i + 1;
                i = start;
                while let Some(&c) = text.get(i) {
                    match c {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if want_key {
                    if let Some(Seg::Key(k, seen)) = stack.last_mut() {
                        *k = text.get(start..i.min(text.len()));
                        if repeat {
                            let quoted = text.get(start - 1..=i).unwrap_or_default();
                            let name = serde_json::from_slice::<String>(quoted).unwrap_or_default();
                            if seen.contains(&name) {
                                repeated = Some(name);
                                break;
                            }
                            seen.push(name);
                        }
                    }
                    want_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for seg in &stack {
        match seg {
            Seg::Key(Some(k), _) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&String::from_utf8_lossy(k));
            }
            Seg::Key(None, _) => {}
            Seg::Index(n) => {
                path.push('[');
                path.push_str(&n.to_string());
                path.push(']');
            }
        }
    }
    (path, repeated)
}
