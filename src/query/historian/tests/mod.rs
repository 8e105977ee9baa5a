//! Tests of the Part 13 kernels: the specification's conformance tables
//! (`conformance`) and the edge cases they leave out (`edge_cases`).

mod conformance;
mod edge_cases;
