use wt_sdk_macro::twin;

pub struct Hello;

#[twin]
impl Hello {
    pub fn describe() {}
}

fn main() {}
