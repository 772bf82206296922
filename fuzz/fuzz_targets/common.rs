//! Shared by the request-level targets: fuzz bytes -> request header pairs.
//! Lines `name:value`; `:name:value` is a pseudo-header; a line without `:`
//! is the `:path`.

pub fn headers(data: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for line in text.split('\n') {
        match line.split_once(':') {
            // ":path:/x" style pseudo-headers: the name keeps its colon.
            Some(("", rest)) => match rest.split_once(':') {
                Some((n, v)) => out.push((format!(":{n}"), v.to_string())),
                None => out.push((":path".to_string(), rest.to_string())),
            },
            Some((n, v)) => out.push((n.to_string(), v.to_string())),
            None => out.push((":path".to_string(), line.to_string())),
        }
    }
    out
}
