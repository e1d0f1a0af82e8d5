//! Fuzzes a key signing request (PKCS#10); see `tigress_fuzz::key_signing_request`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tigress_fuzz::key_signing_request(data));
