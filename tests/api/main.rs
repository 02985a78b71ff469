//! Integration tests of the HTTP service: one binary, real servers on port 0 with temporary data dirs.
#![allow(unreachable_pub)]

mod dataset_tools;
mod datasets;
mod errors;
mod helpers;
mod jobs;
mod openapi;
mod shutdown;
mod utilities;
