//! What an SSM-compatible API client sends before any key is known: the
//! `Authorization` and date headers (SigV4) and the JSON body validated
//! against the botocore model of every operation. Each must give a value
//! or an error, never a panic; an error must carry a code botocore knows,
//! and a validation message must be in AWS's shape.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchfleet_server::api::ssm::model::{self, Invalid};
use patchfleet_server::sigv4;

const OPERATIONS: &[&str] = &[
    "CreateActivation",
    "DescribeInstanceInformation",
    "AddTagsToResource",
    "CreatePatchBaseline",
    "UpdatePatchBaseline",
    "DescribePatchBaselines",
    "GetDeployablePatchSnapshotForInstance",
    "DescribeInstancePatchStatesForPatchGroup",
    "ListComplianceItems",
    "SendCommand",
];

fn headers(text: &str) {
    if let Ok(a) = sigv4::parse_authorization(text) {
        assert_eq!(a.signature.len(), 64);
        assert!(a.scope().ends_with("/aws4_request"));
    }
    let _ = sigv4::parse_amz_date(text);
    let _ = sigv4::parse_http_date(text);
    let _ = sigv4::canonical_query(text);
    assert!(sigv4::canonical_uri(text).starts_with('/') || !text.starts_with('/'));
    // The whole pre-check, with the text as the Authorization header.
    let h = vec![
        ("authorization".to_string(), text.to_string()),
        ("host".to_string(), "127.0.0.1:8443".to_string()),
        ("x-amz-date".to_string(), "20240115T123045Z".to_string()),
    ];
    let req = sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &h,
        body: text.as_bytes(),
    };
    let now = "2024-01-15T12:31:00Z".parse().unwrap();
    match sigv4::precheck(&req, now, 300) {
        Ok((auth, date)) => {
            let _ = sigv4::verify(&req, &auth, &date, "secret");
        }
        Err(e) => assert!(e.code().ends_with("Exception")),
    }
}

fn bodies(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for op in OPERATIONS {
        match model::validate(op, &v) {
            Ok(()) => {}
            Err(Invalid::Type(m)) => assert!(!m.is_empty()),
            Err(e @ Invalid::Constraints(_)) => {
                assert!(e.message().contains(" validation error"));
            }
        }
    }
    let _ = model::parse_timestamp(&v);
}

fuzz_target!(|data: &[u8]| {
    bodies(data);
    if let Ok(text) = std::str::from_utf8(data) {
        headers(text);
    }
});
