//! The Mailchimp Marketing API: request and response types, outcome classification, and the client.

pub mod budget;
pub mod client;
pub mod event;
pub mod member;
pub mod model;
pub mod outcome;
