//! Placeholder, replaced by the wrk harness.
fn main() {}
