use baton_tracer::capture_method;

#[capture_method]
struct Order {
    id: u32,
}

fn main() {}
