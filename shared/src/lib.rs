pub mod connectwise;
pub mod http;
pub mod lansweeper;
pub mod matching;
pub mod normalize;
pub mod staging;
