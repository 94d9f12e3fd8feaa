#![no_main]
// Invariant: decoding never panics, whatever the input (see ../README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = blindsight_crypto::decoders::decode("lane_list", data);
});
