use baton_tracer::capture_method;

#[capture_method]
const fn price() -> u32 {
    1
}

#[capture_method]
#[track_caller]
fn checked(value: Option<u32>) -> u32 {
    value.unwrap()
}

#[capture_method]
fn forever() -> ! {
    loop {}
}

fn main() {}
