use baton_tracer::capture_method;

#[capture_method(capture_response = "no")]
fn price() -> u32 {
    1
}

#[capture_method(name = checkout)]
fn checkout() {}

fn main() {}
