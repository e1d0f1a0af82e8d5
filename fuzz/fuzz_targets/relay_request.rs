//! Fuzzes a request to the relay, decoded as one of its calls and handled in process; see
//! `tigress_fuzz::relay_request`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tigress_fuzz::relay_request(data));
