use baton_tracer::capture_method;

trait Orders {
    #[capture_method]
    fn price(&self) -> u32;
}

fn main() {}
