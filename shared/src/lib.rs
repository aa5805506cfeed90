pub mod connectwise;
pub mod http;
pub mod lansweeper;
