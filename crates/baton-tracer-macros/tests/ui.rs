//! Compile errors of `#[capture_method]` misuse: each names the problem at its place.

#[test]
fn misuse_is_a_clear_compile_error() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
