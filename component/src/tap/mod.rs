//! What we know about the TAP API itself: where to ask, how to read every
//! spelling it answers with, and what its status codes mean.

pub mod campaign;
pub mod endpoints;
pub mod errors;
pub mod forensics;
pub mod lenient;
pub mod people;
pub mod siem;
pub mod summary;
