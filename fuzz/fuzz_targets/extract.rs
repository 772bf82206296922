//! Token extraction from arbitrary request headers (`RequestView` +
//! `extract::extract` over header, query-parameter and cookie locations),
//! then `remove_param` / `remove_cookie` on what was seen.
//! Input format: lines `name:value` (the first line without `:` is `:path`).
//! The same bytes are also read as the host's serialized header map
//! (`RequestView::from_serialized`), which must never panic either.
#![no_main]

use jwt_filter::extract::Location;
use jwt_filter::extract::{self, RequestView};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let raw = RequestView::from_serialized(data.to_vec());
    let _ = (raw.path(), raw.header("authorization"), raw.header_all("cookie").count());
    let view = RequestView::new(common::headers(data));
    let location_sets = [
        vec![
            Location::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            Location::Param("access_token".into()),
        ],
        vec![
            Location::Header {
                name: "x-token".into(),
                prefix: String::new(),
            },
            Location::Cookie("session".into()),
            Location::Param("jwt".into()),
        ],
    ];
    for locs in &location_sets {
        let _ = extract::extract(locs, &view);
    }
    for name in ["access_token", "jwt", ""] {
        let _ = extract::remove_param(view.path(), name);
    }
    for cookie in view.header_all("cookie") {
        for name in ["session", ""] {
            let _ = extract::remove_cookie(cookie, name);
        }
    }
});
