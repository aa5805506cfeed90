pub mod connectwise;
pub mod http;
