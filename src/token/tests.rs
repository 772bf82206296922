use super::*;
use crate::testutil::{b64, hs_jwks, hs_secret, mint, mint_raw};

const NOW: u64 = 1_700_000_000;

fn rules() -> ClaimRules<'static> {
    ClaimRules {
        issuer: Some("https://issuer.test"),
        clock_skew_secs: 60,
        max_lifetime_secs: None,
        require_expiration: false,
        reject_future_iat: false,
    }
}

fn claims_with(extra: &str) -> String {
    format!(r#"{{"iss":"https://issuer.test","sub":"u"{extra}}}"#)
}

fn check(payload: &str, r: &ClaimRules<'_>, now: u64) -> Result<(), AuthError> {
    let t = mint(payload);
    let jwt = parse(&t)?;
    check_claims(&jwt, r, now)
}

fn keys() -> KeySet {
    KeySet::parse(&hs_jwks()).unwrap().0
}

fn full(token: &str) -> Result<(), AuthError> {
    let jwt = parse(token)?;
    check_claims(&jwt, &rules(), NOW)?;
    verify_signature(&jwt, &keys(), &Alg::ALL, native_verify)
}

#[test]
fn valid_token_passes() {
    let t = mint(&claims_with(&format!(r#","exp":{}"#, NOW + 10)));
    assert_eq!(full(&t), Ok(()));
    let jwt = parse(&t).unwrap();
    assert_eq!(jwt.alg, Alg::HS256);
    assert_eq!(jwt.kid.as_deref(), Some("hs-1"));
    assert_eq!(jwt.claims["sub"], "u");
}

#[test]
fn exp_boundaries_with_skew() {
    let r = rules();
    // Expired when now > exp + skew: exp = NOW - 60 is still fine, NOW - 61 not.
    assert_eq!(
        check(&claims_with(&format!(r#","exp":{}"#, NOW - 60)), &r, NOW),
        Ok(())
    );
    assert_eq!(
        check(&claims_with(&format!(r#","exp":{}"#, NOW - 61)), &r, NOW),
        Err(AuthError::Expired)
    );
    let no_skew = ClaimRules {
        clock_skew_secs: 0,
        ..r
    };
    assert_eq!(
        check(&claims_with(&format!(r#","exp":{NOW}"#)), &no_skew, NOW),
        Ok(())
    );
    assert_eq!(
        check(
            &claims_with(&format!(r#","exp":{}"#, NOW - 1)),
            &no_skew,
            NOW
        ),
        Err(AuthError::Expired)
    );
    // Fractional NumericDate (RFC 7519 allows it).
    assert_eq!(
        check(
            &claims_with(&format!(r#","exp":{}.5"#, NOW - 1)),
            &no_skew,
            NOW
        ),
        Err(AuthError::Expired)
    );
}

#[test]
fn nbf_boundaries_with_skew() {
    let r = rules();
    assert_eq!(
        check(&claims_with(&format!(r#","nbf":{}"#, NOW + 60)), &r, NOW),
        Ok(())
    );
    assert_eq!(
        check(&claims_with(&format!(r#","nbf":{}"#, NOW + 61)), &r, NOW),
        Err(AuthError::NotYetValid)
    );
}

#[test]
fn time_claims_must_be_numbers() {
    for bad in [
        r#","exp":"1700000000""#,
        r#","nbf":true"#,
        r#","iat":[1]"#,
        r#","exp":null"#,
    ] {
        assert_eq!(
            check(&claims_with(bad), &rules(), NOW),
            Err(AuthError::Malformed),
            "{bad}"
        );
    }
    // Every time claim, every kind of non-number: refused, never read as
    // absent (an absent `exp` passes without `require_expiration`).
    for name in ["exp", "nbf", "iat"] {
        for value in [
            r#""1700000000""#,
            r#""""#,
            "true",
            "false",
            "[]",
            "[1700000000]",
            "{}",
            r#"{"v":1}"#,
            "null",
        ] {
            let extra = format!(r#","{name}":{value}"#);
            assert_eq!(
                check(&claims_with(&extra), &rules(), NOW),
                Err(AuthError::Malformed),
                "{extra}"
            );
        }
    }
    // Negative and huge values are outside jwt_authn's NumericDate range.
    for bad in [r#","exp":-5"#, r#","exp":1e300"#, r#","nbf":1e300"#] {
        assert_eq!(
            check(&claims_with(bad), &rules(), NOW),
            Err(AuthError::Malformed),
            "{bad}"
        );
    }
    // Beyond f64: the JSON itself is refused.
    assert_eq!(
        check(&claims_with(r#","exp":1e400"#), &rules(), NOW),
        Err(AuthError::Malformed)
    );
}

#[test]
fn require_expiration_and_max_lifetime() {
    let r = ClaimRules {
        require_expiration: true,
        ..rules()
    };
    assert_eq!(check(&claims_with(""), &r, NOW), Err(AuthError::MissingExp));
    let r = ClaimRules {
        max_lifetime_secs: Some(3600),
        ..rules()
    };
    assert_eq!(check(&claims_with(""), &r, NOW), Err(AuthError::MissingExp));
    let ok = format!(r#","iat":{NOW},"exp":{}"#, NOW + 3600);
    assert_eq!(check(&claims_with(&ok), &r, NOW), Ok(()));
    let long = format!(r#","iat":{NOW},"exp":{}"#, NOW + 3601);
    assert_eq!(
        check(&claims_with(&long), &r, NOW),
        Err(AuthError::LifetimeTooLong)
    );
    // Without iat the remaining lifetime counts (plus skew).
    let far = format!(r#","exp":{}"#, NOW + 3600 + 61);
    assert_eq!(
        check(&claims_with(&far), &r, NOW),
        Err(AuthError::LifetimeTooLong)
    );
}

#[test]
fn issuer_must_match_exactly() {
    assert_eq!(
        check(r#"{"iss":"https://issuer.test/"}"#, &rules(), NOW),
        Err(AuthError::Issuer)
    );
    // A non-string `iss` never gets this far: parsing refuses it.
    assert_eq!(check(r#"{"iss":5}"#, &rules(), NOW), Err(AuthError::Issuer));
    assert_eq!(check(r#"{}"#, &rules(), NOW), Err(AuthError::Issuer));
    let any = ClaimRules {
        issuer: None,
        ..rules()
    };
    assert_eq!(check(r#"{}"#, &any, NOW), Ok(()));
}

#[test]
fn audience_rules() {
    let allowed = vec!["api".to_string(), "https://b.example/".to_string()];
    // Raw maps: parsing would already refuse the ill-typed ones
    // (`registered_claims_must_have_their_types`); this checks the matcher.
    let m = |j: &str| serde_json::from_str::<Map<String, Value>>(j).unwrap();
    assert_eq!(check_audience(&m(r#"{"aud":"api"}"#), &allowed), Ok(()));
    assert_eq!(
        check_audience(&m(r#"{"aud":["x","api"]}"#), &allowed),
        Ok(())
    );
    assert_eq!(
        check_audience(&m(r#"{"aud":"http://b.example"}"#), &allowed),
        Ok(())
    );
    assert_eq!(
        check_audience(&m(r#"{"aud":"other"}"#), &allowed),
        Err(AuthError::Audience)
    );
    assert_eq!(
        check_audience(&m(r#"{"aud":5}"#), &allowed),
        Err(AuthError::Audience)
    );
    assert_eq!(
        check_audience(&m(r#"{"aud":[5,{}]}"#), &allowed),
        Err(AuthError::Audience)
    );
    assert_eq!(
        check_audience(&m(r#"{}"#), &allowed),
        Err(AuthError::Audience)
    );
    assert_eq!(check_audience(&m(r#"{}"#), &[]), Ok(()));
}

#[test]
fn tampering_and_wrong_keys() {
    let t = mint(&claims_with(""));
    let (input, sig) = t.rsplit_once('.').unwrap();
    let (h, _) = input.split_once('.').unwrap();
    let forged = format!(
        "{h}.{}.{sig}",
        b64(claims_with(r#","admin":true"#).as_bytes())
    );
    assert_eq!(full(&forged), Err(AuthError::BadSignature));
    // Unknown kid: no candidate key at all.
    let other = mint_raw(
        r#"{"alg":"HS256","kid":"nope"}"#,
        &claims_with(""),
        &hs_secret(),
    );
    assert_eq!(full(&other), Err(AuthError::UnknownKid));
    // Wrong secret.
    let wrong = mint_raw(
        r#"{"alg":"HS256","kid":"hs-1"}"#,
        &claims_with(""),
        b"not the secret",
    );
    assert_eq!(full(&wrong), Err(AuthError::BadSignature));
    // Alg not allowed for the provider.
    let jwt = parse(&t).unwrap();
    assert_eq!(
        verify_signature(&jwt, &keys(), &[Alg::RS256], native_verify),
        Err(AuthError::AlgNotAllowed)
    );
}

#[test]
fn hs256_with_rsa_public_key_as_secret_is_refused() {
    // The classic alg-confusion attack: sign HS256 with the RSA public key
    // bytes, present it to a provider that has that RSA key.
    let pem = include_str!("../../tests/fixtures/keys/rsa2048.pem");
    let jwks = crate::testutil::FIXTURE_JWKS;
    let set = KeySet::parse(jwks).unwrap().0;
    for header in [r#"{"alg":"HS256","kid":"rsa-a"}"#, r#"{"alg":"HS256"}"#] {
        let t = mint_raw(header, &claims_with(""), pem.as_bytes());
        let jwt = parse(&t).unwrap();
        let r = verify_signature(&jwt, &set, &Alg::ALL, native_verify);
        assert!(r.is_err(), "{header}");
    }
}

#[test]
fn header_rules() {
    let c = claims_with("");
    let s = hs_secret();
    assert_eq!(
        full(&mint_raw(r#"{"alg":"none"}"#, &c, &s)),
        Err(AuthError::AlgNotAllowed)
    );
    assert_eq!(
        full(&mint_raw(r#"{"alg":"None"}"#, &c, &s)),
        Err(AuthError::AlgNotAllowed)
    );
    assert_eq!(
        full(&mint_raw(r#"{"alg":"hs256"}"#, &c, &s)),
        Err(AuthError::AlgNotAllowed)
    );
    assert_eq!(
        full(&mint_raw(r#"{"alg":5}"#, &c, &s)),
        Err(AuthError::Malformed)
    );
    assert_eq!(
        full(&mint_raw(r#"{"kid":"hs-1"}"#, &c, &s)),
        Err(AuthError::Malformed)
    );
    assert_eq!(
        full(&mint_raw(
            r#"{"alg":"HS256","kid":"hs-1","crit":["exp"],"exp":1}"#,
            &c,
            &s
        )),
        Err(AuthError::UnsupportedCrit)
    );
    assert_eq!(
        full(&mint_raw(
            r#"{"alg":"HS256","alg":"none","kid":"hs-1"}"#,
            &c,
            &s
        )),
        Err(AuthError::Malformed)
    );
    assert_eq!(
        full(&mint_raw(r#"{"alg":"HS256","kid":7}"#, &c, &s)),
        Err(AuthError::Malformed)
    );
    // jku / x5u / jwk are ignored, never used as keys.
    let injected = mint_raw(
        r#"{"alg":"HS256","kid":"hs-1","jku":"http://evil/","jwk":{"kty":"oct","k":"AAAA"}}"#,
        &c,
        &s,
    );
    assert_eq!(full(&injected), Ok(()));
    // "alg": "none" with an empty signature.
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(c.as_bytes()));
    assert!(full(&none).is_err());
}

#[test]
fn duplicate_claims_are_refused() {
    let t = mint(r#"{"iss":"https://issuer.test","sub":"a","sub":"b"}"#);
    assert_eq!(parse(&t).map(|_| ()), Err(AuthError::Malformed));
}

#[test]
fn hostile_inputs_never_panic() {
    let good = mint(&claims_with(""));
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let big = "a".repeat(MAX_TOKEN_BYTES + 1);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_obj = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<String> = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b".into(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.x"),
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}.{s}=="),
        format!("{h}.{p}.!!!"),
        format!("{}.{p}.{s}", b64(b"not json")),
        format!("{}.{p}.{s}", b64(b"[1,2]")),
        format!("{h}.{}.{s}", b64(b"[1,2]")),
        format!("{h}.{}.{s}", b64(b"\"str\"")),
        format!("{h}.{}.{s}", b64(deep.as_bytes())),
        format!("{h}.{}.{s}", b64(deep_obj.as_bytes())),
        format!("{h}.{}.{s}", b64(&[0xff, 0xfe, 0x00])),
        format!("{h}.{p}.{}", b64(&[0u8; 64])),
        format!("{h}.{p}.{}", b64(&[1u8; 3])),
        format!("{h}.{p}.{}", b64(&[7u8; 1000])),
        format!("{h}.{p}+.{s}"),
        format!(
            "{h}.{p}.{}",
            s.replace(|c: char| c.is_ascii_alphanumeric(), "/")
        ),
        big.clone(),
        format!("{big}.{big}.{big}"),
        "é.é.é".into(),
        "\u{0}.\u{0}.\u{0}".into(),
    ];
    for c in &cases {
        let r = full(c);
        assert!(r.is_err(), "accepted hostile input {c:.60}");
    }
    // A 1 MB token is refused by size before any decoding.
    let mb = "a".repeat(1 << 20);
    assert_eq!(parse(&mb).map(|_| ()), Err(AuthError::TooLarge));
}

#[test]
fn claim_at_walks_nested_objects() {
    let jwt_tok = mint(r#"{"org":{"team":{"name":"x"}},"roles":["a"]}"#);
    let jwt = parse(&jwt_tok).unwrap();
    let p = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
    assert_eq!(claim_at(&jwt.claims, &p("org.team.name")).unwrap(), "x");
    assert!(claim_at(&jwt.claims, &p("org.missing")).is_none());
    assert!(claim_at(&jwt.claims, &p("roles.a")).is_none());
    assert!(claim_at(&jwt.claims, &[]).is_none());
}

#[test]
fn registered_claims_must_have_their_types() {
    let t = |extra: &str| parse(&mint(&claims_with(extra))).map(|_| ());
    for good in [
        r#","aud":"api""#,
        r#","aud":["api","other"]"#,
        r#","aud":[]"#,
        r#","jti":"x","exp":1.5,"nbf":0,"iat":0"#,
        r#","custom":[1,{}],"scope":"a b""#,
    ] {
        assert_eq!(t(good), Ok(()), "{good}");
    }
    for bad in [
        r#","aud":["api",1]"#,
        r#","aud":["api",null]"#,
        r#","aud":5"#,
        r#","aud":{"api":true}"#,
    ] {
        assert_eq!(t(bad), Err(AuthError::Audience), "{bad}");
    }
    for bad in [
        r#","jti":7"#,
        r#","exp":"1700000000""#,
        r#","nbf":null"#,
        r#","iat":[1]"#,
    ] {
        assert_eq!(t(bad), Err(AuthError::Malformed), "{bad}");
    }
    // `iss` and `sub` (set by `claims_with`) are checked the same way.
    assert_eq!(
        parse(&mint(r#"{"iss":1,"sub":"u"}"#)).map(|_| ()),
        Err(AuthError::Issuer)
    );
    assert_eq!(
        parse(&mint(r#"{"iss":"https://issuer.test","sub":false}"#)).map(|_| ()),
        Err(AuthError::Malformed)
    );
}

#[test]
fn header_must_be_an_object() {
    let secret = hs_secret();
    let payload = claims_with("");
    let array = mint_raw(r#"["HS256","hs-1"]"#, &payload, &secret);
    assert_eq!(parse(&array).err(), Some(AuthError::Malformed));
    for header in [r#""HS256""#, "1", "null", "true"] {
        let t = mint_raw(header, &payload, &secret);
        assert_eq!(parse(&t).err(), Some(AuthError::Malformed), "{header}");
    }
    let object = mint_raw(r#"{"alg":"HS256","kid":"hs-1"}"#, &payload, &secret);
    assert!(parse(&object).is_ok());
}

#[test]
fn duplicate_claim_names_refused_at_every_depth() {
    for payload in [
        r#"{"sub":"a","sub":"b"}"#,
        r#"{"org":{"role":"user","role":"admin"}}"#,
        r#"{"org":{"team":{"id":1,"id":2}}}"#,
        r#"{"list":[{"a":1},{"b":1,"b":2}]}"#,
        r#"{"deep":[[[{"x":{"y":1,"y":1}}]]]}"#,
    ] {
        assert_eq!(
            parse(&mint(payload)).err(),
            Some(AuthError::Malformed),
            "{payload}"
        );
    }
    let ok = r#"{"org":{"role":"user","team":{"role":"admin"}},"l":[{"a":1},{"a":2}],"n":null}"#;
    let t = mint(ok);
    let jwt = parse(&t).unwrap();
    assert_eq!(jwt.claims["org"]["team"]["role"], "admin");
    assert_eq!(jwt.claims["l"][1]["a"], 2);
    assert!(jwt.claims["n"].is_null());
}

#[test]
fn numeric_dates_in_jwt_authn_range() {
    let r = ClaimRules {
        issuer: None,
        clock_skew_secs: 60,
        max_lifetime_secs: None,
        require_expiration: false,
        reject_future_iat: false,
    };
    // Outside [0, 2^64): refused whichever claim, whatever the time.
    for claim in ["exp", "nbf", "iat"] {
        for v in [
            "-1",
            "-0.5",
            "-1e300",
            "1e300",
            "18446744073709551615",
            "18446744073709551616",
            "1e20",
        ] {
            let t = mint(&format!(r#"{{"{claim}":{v}}}"#));
            assert_eq!(parse(&t).err(), Some(AuthError::Malformed), "{claim} {v}");
        }
    }
    // Inside: accepted as numbers, fractions cut off.
    for v in [
        "0",
        "1.5",
        "9223372036854775808",
        "1e19",
        "18446744073709549568",
    ] {
        let t = mint(&format!(r#"{{"iat":{v}}}"#));
        assert_eq!(check(&format!(r#"{{"iat":{v}}}"#), &r, NOW), Ok(()), "{v}");
        assert!(parse(&t).is_ok());
    }
    // nbf 60.9 s ahead (beyond skew by a fraction) is valid as jwt_authn reads it.
    let nbf = format!(r#"{{"nbf":{}.9}}"#, NOW + 60);
    assert_eq!(check(&nbf, &r, NOW), Ok(()));
    let nbf = format!(r#"{{"nbf":{}}}"#, NOW + 61);
    assert_eq!(check(&nbf, &r, NOW), Err(AuthError::NotYetValid));
    // exp far out does not overflow.
    assert_eq!(check(r#"{"exp":1e19}"#, &r, NOW), Ok(()));
    assert_eq!(check(r#"{"exp":1.5}"#, &r, NOW), Err(AuthError::Expired));
}

#[test]
fn future_iat_is_refused_only_when_asked() {
    let future = format!(r#","iat":{}"#, NOW + 61);
    let edge = format!(r#","iat":{}"#, NOW + 60);
    assert_eq!(check(&claims_with(&future), &rules(), NOW), Ok(()));
    let strict = ClaimRules {
        reject_future_iat: true,
        ..rules()
    };
    assert_eq!(
        check(&claims_with(&future), &strict, NOW),
        Err(AuthError::IatInFuture)
    );
    assert_eq!(check(&claims_with(&edge), &strict, NOW), Ok(()));
    assert_eq!(check(&claims_with(""), &strict, NOW), Ok(()));
}

#[test]
fn typ_is_read_from_the_header() {
    let t = crate::testutil::mint_raw(
        r#"{"alg":"HS256","typ":"at+jwt"}"#,
        r#"{"sub":"a"}"#,
        &crate::testutil::hs_secret(),
    );
    assert_eq!(parse(&t).map(|j| j.typ), Ok(Some("at+jwt".to_string())));
}
