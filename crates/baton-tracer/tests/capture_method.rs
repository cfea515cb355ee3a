//! `#[capture_method]` keeps every kind of function compiling and behaving as
//! written: values, `return`, `?` and panics pass through unchanged. Tracing is
//! off here (no daemon address), so this checks the expansion, not the documents.

use std::borrow::Cow;
use std::fmt::Display;

use baton_tracer::capture_method;

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("no order {0}")]
struct NoOrder(u32);

#[derive(Debug, PartialEq)]
struct DebugOnly;

#[derive(PartialEq)]
struct Opaque(u32);

#[capture_method]
fn nothing() {}

#[capture_method]
fn double(value: u32) -> u32 {
    value * 2
}

#[capture_method]
fn parse(text: &str) -> Result<u32, NoOrder> {
    let number: u32 = text.parse().map_err(|_| NoOrder(0))?;
    if number == 7 {
        return Err(NoOrder(7));
    }
    Ok(number)
}

#[capture_method]
fn io_result(fail: bool) -> std::io::Result<()> {
    if fail {
        Err(std::io::Error::other("disk full"))?;
    }
    Ok(())
}

#[capture_method]
fn boxed_error() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err("boom".into())
}

#[capture_method]
fn neither_serialize_nor_display(number: u32) -> Result<Opaque, DebugOnly> {
    if number == 0 { Err(DebugOnly) } else { Ok(Opaque(number)) }
}

#[capture_method]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|number| number % 2 == 0)
}

#[capture_method]
fn shown(value: impl Display) -> Result<impl Display, Box<dyn std::error::Error>> {
    let number = parse("3")?;
    Ok(format!("{value}{number}"))
}

#[capture_method]
fn first<'a, T>(items: &'a [T], _unused: &str) -> Option<&'a T>
where
    T: PartialEq,
{
    items.first()
}

#[capture_method]
fn borrowed(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text.trim())
}

#[capture_method]
fn sum((left, right): (u32, u32), _: u8) -> u32 {
    #![allow(clippy::let_and_return)]
    let total = left + right;
    total
}

#[capture_method]
fn r#type() -> &'static str {
    "raw"
}

#[capture_method(name = "## custom", capture_response = false, capture_error = false)]
fn with_options(fail: bool) -> Result<u32, NoOrder> {
    if fail { Err(NoOrder(1)) } else { Ok(1) }
}

#[capture_method]
fn panics(message: &str) -> u32 {
    panic!("{message}")
}

#[capture_method]
async fn fetch(id: u32) -> Result<u32, NoOrder> {
    tokio::task::yield_now().await;
    let number = parse(&id.to_string())?;
    if number == 0 {
        return Err(NoOrder(0));
    }
    Ok(number + 1)
}

#[capture_method]
async fn fetch_total(ids: &[u32]) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    let mut total = 0;
    for id in ids {
        total += fetch(*id).await?;
    }
    Ok(total)
}

#[capture_method]
async fn async_display() -> impl Display {
    42
}

#[capture_method]
async fn async_panics() -> u32 {
    tokio::task::yield_now().await;
    panic!("async boom")
}

struct Store {
    name: String,
    items: Vec<u32>,
}

trait Named {
    #[capture_method]
    fn label(&self) -> String {
        "store".into()
    }

    async fn count(&self) -> usize;
}

impl Named for Store {
    #[capture_method]
    async fn count(&self) -> usize {
        self.items.len()
    }
}

impl Store {
    #[capture_method]
    fn new(name: &str) -> Self {
        Store { name: name.into(), items: vec![1] }
    }

    #[capture_method]
    fn name(&self) -> &str {
        &self.name
    }

    #[capture_method]
    fn first_mut(&mut self) -> &mut u32 {
        &mut self.items[0]
    }

    #[capture_method]
    fn push(&mut self, item: u32) {
        self.items.push(item);
    }

    #[capture_method]
    fn iter(&self) -> impl Iterator<Item = &u32> + '_ {
        self.items.iter()
    }

    #[capture_method]
    fn into_items(self) -> Vec<u32> {
        self.items
    }

    #[capture_method]
    async fn async_name(&self) -> &str {
        &self.name
    }

    #[capture_method]
    async fn async_items(&mut self) -> &mut Vec<u32> {
        &mut self.items
    }
}

#[test]
fn sync_functions_return_their_values() {
    nothing();
    assert_eq!(double(21), 42);
    assert_eq!(evens(5).collect::<Vec<_>>(), [0, 2, 4]);
    assert_eq!(shown("x").unwrap().to_string(), "x3");
    assert_eq!(first(&[3, 4], "unused"), Some(&3));
    assert_eq!(borrowed(" b "), "b");
    assert_eq!(sum((1, 2), 0), 3);
    assert_eq!(r#type(), "raw");
}

#[test]
fn question_mark_and_early_return_work() {
    assert_eq!(parse("5"), Ok(5));
    assert_eq!(parse("x"), Err(NoOrder(0)));
    assert_eq!(parse("7"), Err(NoOrder(7)));
    assert!(io_result(false).is_ok());
    assert_eq!(io_result(true).unwrap_err().to_string(), "disk full");
    assert_eq!(boxed_error().unwrap_err().to_string(), "boom");
    assert_eq!(with_options(true), Err(NoOrder(1)));
    assert_eq!(with_options(false), Ok(1));
}

#[test]
fn values_without_serialize_or_display_pass_through() {
    assert!(neither_serialize_nor_display(3) == Ok(Opaque(3)));
    assert!(neither_serialize_nor_display(0) == Err(DebugOnly));
}

#[test]
fn methods_keep_their_receivers() {
    let mut store = Store::new("orders");
    assert_eq!(store.name(), "orders");
    *store.first_mut() = 10;
    store.push(2);
    assert_eq!(store.iter().copied().collect::<Vec<_>>(), [10, 2]);
    assert_eq!(store.label(), "store");
    assert_eq!(store.into_items(), [10, 2]);
}

#[test]
fn panics_propagate() {
    let panic = std::panic::catch_unwind(|| panics("sync boom")).unwrap_err();
    assert_eq!(panic.downcast_ref::<String>().map(String::as_str), Some("sync boom"));
}

#[tokio::test]
async fn async_functions_return_their_values() {
    assert_eq!(fetch(1).await, Ok(2));
    assert_eq!(fetch(0).await, Err(NoOrder(0)));
    assert_eq!(fetch(7).await, Err(NoOrder(7)));
    assert_eq!(fetch_total(&[1, 2]).await.unwrap(), 5);
    assert_eq!(fetch_total(&[1, 0]).await.unwrap_err().to_string(), "no order 0");
    assert_eq!(async_display().await.to_string(), "42");

    let mut store = Store::new("orders");
    assert_eq!(store.async_name().await, "orders");
    store.async_items().await.push(3);
    assert_eq!(store.count().await, 2);
}

#[tokio::test]
async fn async_functions_are_send_and_panics_propagate() {
    assert_eq!(tokio::spawn(fetch(3)).await.unwrap(), Ok(4));
    let panic = tokio::spawn(async_panics()).await.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"async boom"));
}
