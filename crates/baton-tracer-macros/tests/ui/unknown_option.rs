use baton_tracer::capture_method;

#[capture_method(capture_responses = false)]
fn price() -> u32 {
    1
}

fn main() {}
