use wt_sdk_macro::twin;

pub trait Twin {}
pub struct Hello;

#[twin(port = 4110)]
impl Twin for Hello {}

fn main() {}
