//! The deployed form: the functions' release binaries under the template's state
//! machine in the local engine, with AWS through moto's server, and the DynamoDB store
//! held to the store contract there.

mod lambda;
mod store;
