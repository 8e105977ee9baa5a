//! Level 4 integration (ISA-95 Part 2, docs/INTEGRATION.md): what ERP and
//! MES systems exchange with lotline in standard documents. [`b2mml`]
//! reads B2MML V0701 documents into the versioned context tables (each
//! foreign identifier resolved through `aliases`) and writes production
//! performance. The network side (the HTTP routes, the Flight actions and
//! the change feed) lives in `server`.

pub mod b2mml;
