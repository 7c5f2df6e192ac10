//! AWS Signature Version 4 verification (the SSM-compatible API's
//! authentication): the `Authorization` header parsed, the canonical request
//! and the string to sign rebuilt from the request as received, the
//! signature recomputed with the key's secret and compared in constant
//! time. Pure: no I/O and no clock (the caller passes the instant), so it is
//! unit-tested against a known-answer vector and fuzzed.
//!
//! Verification runs on the raw body bytes before anything parses them: the
//! payload hash is over exactly what was sent.

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The signing name of SSM (botocore signs with the endpoint prefix).
pub const SERVICE: &str = "ssm";

type HmacSha256 = Hmac<Sha256>;

/// Why a request is refused, with the error code botocore expects for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    Missing,
    /// The header or the date is malformed or incomplete.
    #[error("{0}")]
    Incomplete(String),
    /// Well formed but wrong: scope, time window, signature.
    #[error("{0}")]
    Invalid(String),
}

impl SigError {
    pub fn code(&self) -> &'static str {
        match self {
            SigError::Missing => "MissingAuthenticationTokenException",
            SigError::Incomplete(_) => "IncompleteSignatureException",
            SigError::Invalid(_) => "InvalidSignatureException",
        }
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case names, in the order given.
    pub signed_headers: Vec<String>,
    /// The `SignedHeaders` value exactly as sent (it is part of the canonical request).
    pub signed_headers_raw: String,
    /// 64 lower-case hex digits.
    pub signature: String,
}

impl Authorization {
    /// The credential scope: `<date>/<region>/<service>/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

fn incomplete(m: impl Into<String>) -> SigError {
    SigError::Incomplete(m.into())
}

/// Parses the header. botocore separates the three parts with `", "`,
/// other SDKs with `","`: both are accepted.
pub fn parse_authorization(header: &str) -> Result<Authorization, SigError> {
    let header = header.trim();
    let (algorithm, rest) = header
        .split_once(' ')
        .ok_or_else(|| incomplete(format!("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization={header}")))?;
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'; expected {ALGORITHM}"
        )));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=').ok_or_else(|| {
            incomplete(format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header"
            ))
        })?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_some() {
            return Err(incomplete(format!("Authorization header repeats '{k}'")));
        }
        *slot = Some(v.to_string());
    }
    let missing: Vec<&str> = [
        ("Credential", credential.is_none()),
        ("SignedHeaders", signed.is_none()),
        ("Signature", signature.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        return Err(incomplete(format!(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters; missing: {}",
            missing.join(", ")
        )));
    }
    let (credential, signed, signature) = (
        credential.unwrap_or_default(),
        signed.unwrap_or_default(),
        signature.unwrap_or_default(),
    );
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts.iter().any(|p| p.is_empty()) {
        return Err(incomplete(format!(
            "Credential should be scoped to a valid region, a service and a date: \
             <access key>/<YYYYMMDD>/<region>/<service>/aws4_request, not '{credential}'"
        )));
    }
    if parts[4] != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'",
            parts[4]
        )));
    }
    if parts[1].len() != 8 || !parts[1].bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Date must be in YYYYMMDD format in the credential scope, not '{}'",
            parts[1]
        )));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_string).collect();
    if signed_headers.iter().any(|h| {
        h.is_empty()
            || h.bytes()
                .any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace())
    }) {
        return Err(incomplete(format!(
            "SignedHeaders must be lower-case names separated by ';', not '{signed}'"
        )));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(incomplete(
            "Signature must be 64 lower-case hexadecimal digits".to_string(),
        ));
    }
    Ok(Authorization {
        access_key_id: parts[0].to_string(),
        date: parts[1].to_string(),
        region: parts[2].to_string(),
        service: parts[3].to_string(),
        signed_headers,
        signed_headers_raw: signed,
        signature,
    })
}

/// `YYYYMMDDTHHMMSSZ` (X-Amz-Date) → instant.
pub fn parse_amz_date(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != 16
        || b[8] != b'T'
        || b[15] != b'Z'
        || !b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
    {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    iso.parse().ok()
}

/// An RFC 1123 `Date` header (`Mon, 15 Jan 2024 12:30:45 GMT`) → instant.
pub fn parse_http_date(s: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::parse(s.trim())
        .ok()
        .map(|z| z.timestamp())
}

/// Instant → `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// RFC 3986 encoding of a path: unreserved characters and `/` kept,
/// everything else (the `%` of an already encoded octet included, as the
/// SDKs double-encode for every service but S3) as `%XX`.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (
                (b[i + 1] as char).to_digit(16),
                (b[i + 2] as char).to_digit(16),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string sorted by encoded name then value, `k=v` joined by `&`.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                encode_component(&percent_decode(k)),
                encode_component(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as signed: trimmed, inner runs of spaces collapsed.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the verifier needs of a request.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as received (still percent-encoded).
    pub path: &'a str,
    pub query: &'a str,
    /// (lower-case name, value), every header as received, repeats included.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }
}

/// The canonical request (step 1 of the algorithm).
pub fn canonical_request(req: &Request<'_>, auth: &Authorization) -> Result<String, SigError> {
    let mut headers = String::new();
    for name in &auth.signed_headers {
        let values = req.header_values(name);
        if values.is_empty() {
            return Err(SigError::Invalid(format!(
                "The request signature we calculated does not match the signature you provided: \
                 the signed header '{name}' is not in the request."
            )));
        }
        let joined: Vec<String> = values.iter().map(|v| canonical_value(v)).collect();
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&joined.join(","));
        headers.push('\n');
    }
    let payload = match req.header("x-amz-content-sha256") {
        Some(declared) => {
            let actual = hex::encode(Sha256::digest(req.body));
            if declared != actual {
                return Err(SigError::Invalid(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                        .into(),
                ));
            }
            actual
        }
        None => hex::encode(Sha256::digest(req.body)),
    };
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
        headers,
        auth.signed_headers_raw,
        payload
    ))
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: this cannot fail.
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

pub fn signature(signing_key: &[u8], string_to_sign: &str) -> String {
    hex::encode(hmac(signing_key, string_to_sign.as_bytes()))
}

/// Everything about a request that can be checked before its key's secret
/// is looked up: the header, the scope, the signed headers and the time
/// window (`skew` seconds either side of `now`). Returns the parsed header
/// and the request's `X-Amz-Date` text.
pub fn precheck(
    req: &Request<'_>,
    now: Timestamp,
    skew: i64,
) -> Result<(Authorization, String), SigError> {
    if req
        .query
        .split('&')
        .any(|p| p.starts_with("X-Amz-Algorithm="))
    {
        return Err(incomplete(
            "Presigned URLs (X-Amz-Algorithm in the query) are not accepted; sign the Authorization header",
        ));
    }
    let header = req.header("authorization").ok_or(SigError::Missing)?;
    let auth = parse_authorization(header)?;
    if auth.service != SERVICE {
        return Err(SigError::Invalid(format!(
            "Credential should be scoped to correct service: '{SERVICE}'."
        )));
    }
    // Which date the signature covers: X-Amz-Date, else Date.
    let (amz_date, at) = match req.header("x-amz-date") {
        Some(d) => {
            let t = parse_amz_date(d.trim()).ok_or_else(|| {
                incomplete(format!(
                    "Date must be in ISO-8601 'basic format'. Got '{d}'. See http://en.wikipedia.org/wiki/ISO_8601"
                ))
            })?;
            (d.trim().to_string(), t)
        }
        None => match req.header("date") {
            Some(d) => {
                let t = parse_http_date(d).ok_or_else(|| {
                    incomplete(format!("Date header '{d}' is not an RFC 1123 date"))
                })?;
                (format_amz_date(t), t)
            }
            None => {
                return Err(incomplete(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
                ));
            }
        },
    };
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::Invalid(
            "'Host' must be a signed header (SignedHeaders lacks host).".into(),
        ));
    }
    if req.header("x-amz-date").is_some() && !auth.signed_headers.iter().any(|h| h == "x-amz-date")
    {
        return Err(SigError::Invalid(
            "'X-Amz-Date' must be a signed header (SignedHeaders lacks x-amz-date).".into(),
        ));
    }
    if amz_date[..8] != auth.date {
        return Err(SigError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            &amz_date[..8]
        )));
    }
    let now_s = now.as_second();
    let minutes = skew / 60;
    let earliest = now_s - skew;
    let latest = now_s + skew;
    let show = |s: i64| {
        Timestamp::from_second(s)
            .map(format_amz_date)
            .unwrap_or_default()
    };
    if at.as_second() < earliest {
        return Err(SigError::Invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - {minutes} min.)",
            show(earliest),
            show(now_s)
        )));
    }
    if at.as_second() > latest {
        return Err(SigError::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + {minutes} min.)",
            show(latest),
            show(now_s)
        )));
    }
    Ok((auth, amz_date))
}

pub const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// The signature check proper, once the secret is known.
pub fn verify(
    req: &Request<'_>,
    auth: &Authorization,
    amz_date: &str,
    secret: &str,
) -> Result<(), SigError> {
    let canonical = canonical_request(req, auth)?;
    let sts = string_to_sign(amz_date, &auth.scope(), &canonical);
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    let expected = signature(&key, &sts);
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigError::Invalid(MISMATCH.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const BODY: &[u8] = br#"{"BaselineId": "pb-0123456789abcdef0"}"#;
    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/ssm/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=e514318c66cb8ee077899dcd69ee294e8b125c1c45d8e3da2683a8d969c584ea";

    fn headers(auth: &str) -> Vec<(String, String)> {
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "AmazonSSM.GetPatchBaseline"),
            ("host", "127.0.0.1:8443"),
            ("x-amz-date", "20240115T123045Z"),
            ("authorization", auth),
            ("user-agent", "not signed"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The spec's known-answer vector (§1.9): every intermediate value.
    #[test]
    fn known_answer_vector() {
        let h = headers(AUTH);
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: BODY,
        };
        let (auth, date) = precheck(&req, at("2024-01-15T12:31:00Z"), 300).unwrap();
        let canonical = canonical_request(&req, &auth).unwrap();
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:127.0.0.1:8443\n\
             x-amz-date:20240115T123045Z\nx-amz-target:AmazonSSM.GetPatchBaseline\n\n\
             content-type;host;x-amz-date;x-amz-target\n\
             0bcf92a217e53a4ed63b81e1d6b1e3c8a2794b4dc5475e5277cf40c1a1f89485"
        );
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "9582cea75a59e6eb7f3901a2e38bfbb0082a117d2f184d0582d670e1411ce399"
        );
        let key = signing_key(SECRET, "20240115", "us-east-1", "ssm");
        assert_eq!(
            hex::encode(&key),
            "32d8d5b7f8807050198d46bf5e8fd32fcab9c799430f4138f9d49ca0605c1e84"
        );
        let sts = string_to_sign(&date, &auth.scope(), &canonical);
        assert_eq!(
            signature(&key, &sts),
            "e514318c66cb8ee077899dcd69ee294e8b125c1c45d8e3da2683a8d969c584ea"
        );
        verify(&req, &auth, &date, SECRET).unwrap();
        // One byte of the body, the secret, or a signed header changed: refused.
        let other_body = br#"{"BaselineId": "pb-0123456789abcdef1"}"#;
        let tampered = Request {
            body: other_body,
            ..req
        };
        assert_eq!(
            verify(&tampered, &auth, &date, SECRET),
            Err(SigError::Invalid(MISMATCH.into()))
        );
        assert!(verify(&req, &auth, &date, "wrong").is_err());
        let mut h2 = h.clone();
        h2[1].1 = "AmazonSSM.DeletePatchBaseline".into();
        let req2 = Request {
            headers: &h2,
            ..req
        };
        assert!(verify(&req2, &auth, &date, SECRET).is_err());
        // Any region verifies with its own scope: the region is part of the key.
        assert_ne!(
            signing_key(SECRET, "20240115", "eu-west-1", "ssm"),
            signing_key(SECRET, "20240115", "us-east-1", "ssm")
        );
    }

    #[test]
    fn clock_skew_window_and_messages() {
        let h = headers(AUTH);
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: BODY,
        };
        assert!(precheck(&req, at("2024-01-15T12:35:45Z"), 300).is_ok());
        assert!(precheck(&req, at("2024-01-15T12:25:45Z"), 300).is_ok());
        let e = precheck(&req, at("2024-01-15T12:46:00Z"), 300).unwrap_err();
        assert_eq!(
            e,
            SigError::Invalid(
                "Signature expired: 20240115T123045Z is now earlier than 20240115T124100Z \
                 (20240115T124600Z - 5 min.)"
                    .into()
            )
        );
        assert_eq!(e.code(), "InvalidSignatureException");
        let e = precheck(&req, at("2024-01-15T12:20:00Z"), 300).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Signature not yet current: 20240115T123045Z is still later than 20240115T122500Z \
             (20240115T122000Z + 5 min.)"
        );
    }

    #[test]
    fn malformed_headers_are_incomplete_or_missing() {
        let none: Vec<(String, String)> = vec![("host".into(), "h".into())];
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &none,
            body: b"{}",
        };
        assert_eq!(
            precheck(&req, Timestamp::now(), 300).unwrap_err().code(),
            "MissingAuthenticationTokenException"
        );
        for bad in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=AKID/20240115/us-east-1/ssm/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AKID/20240115/us-east-1/ssm, SignedHeaders=host, Signature=e514318c66cb8ee077899dcd69ee294e8b125c1c45d8e3da2683a8d969c584ea",
            "AWS4-HMAC-SHA256 Credential=AKID/2024011/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=e514318c66cb8ee077899dcd69ee294e8b125c1c45d8e3da2683a8d969c584ea",
            "AWS4-HMAC-SHA256 Credential=AKID/20240115/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=xyz",
            "AWS4-HMAC-SHA1 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
            "Bearer abc:def",
        ] {
            let e = parse_authorization(bad).unwrap_err();
            assert_eq!(e.code(), "IncompleteSignatureException", "{bad}: {e}");
        }
        // botocore's ", " and other SDKs' "," both parse.
        let tight = AUTH.replace(", ", ",");
        assert_eq!(
            parse_authorization(&tight).unwrap(),
            parse_authorization(AUTH).unwrap()
        );
        // Wrong service: invalid, naming the right one.
        let h = headers(&AUTH.replace("/ssm/", "/ec2/"));
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: BODY,
        };
        assert_eq!(
            precheck(&req, at("2024-01-15T12:31:00Z"), 300).unwrap_err(),
            SigError::Invalid("Credential should be scoped to correct service: 'ssm'.".into())
        );
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/ssm-api"), "/ssm-api");
        assert_eq!(canonical_uri("/a b/%41"), "/a%20b/%2541");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_value("  a   b  "), "a b");
        assert_eq!(
            parse_amz_date("20240115T123045Z"),
            Some(at("2024-01-15T12:30:45Z"))
        );
        assert_eq!(parse_amz_date("2024-01-15T12:30:45Z"), None);
        assert_eq!(
            parse_http_date("Mon, 15 Jan 2024 12:30:45 GMT"),
            Some(at("2024-01-15T12:30:45Z"))
        );
    }
}
