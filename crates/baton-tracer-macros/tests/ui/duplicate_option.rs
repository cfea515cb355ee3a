use baton_tracer::capture_method;

#[capture_method(capture_error = false, capture_error = true)]
fn price() -> u32 {
    1
}

fn main() {}
