#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sfu_fuzz::turn_sequence(data));
