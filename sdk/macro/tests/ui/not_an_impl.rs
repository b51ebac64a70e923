use wt_sdk_macro::twin;

#[twin]
pub struct Hello;

fn main() {}
