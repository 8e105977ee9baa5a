//! Memory of the in-memory genealogy index (`trace_backward`/`trace_forward`)
//! over 1 M generated edges of the demo plant: bytes per edge, the figure
//! docs/SQL.md and docs/PERFORMANCE.md quote (61.8 bytes per edge, 584 k
//! lots, when written). A measurement, not a timing: it prints, it does not
//! assert.
//!
//! Run: `cargo bench --bench genealogy_memory` (`-- EDGES` for another count).

use std::sync::Arc;

use lotline::generate::{Genealogy, Plant, PlantDef};
use lotline::ingest::genealogy_index::GenealogyIndex;
use lotline::model;

fn main() {
    let edges = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(1_000_000);
    let mut def = PlantDef::load("demo").expect("the demo plant");
    def.edges = edges;
    let plant = Arc::new(Plant::new(def).expect("a plant"));
    let genealogy = Arc::new(Genealogy::new(plant).expect("its genealogy"));
    let mut index = GenealogyIndex::default();
    for batch in genealogy.edges(50_000) {
        let rows = model::normalize_batch(model::genealogy(), &batch, 0).expect("valid edges");
        index.load_batch(&rows).expect("genealogy rows");
    }
    index.finish_load();
    println!(
        "edges {} lots {} bytes {} per edge {:.1}",
        index.edge_count(),
        index.lot_count(),
        index.memory_bytes(),
        index.memory_bytes() as f64 / index.edge_count() as f64
    );
}
