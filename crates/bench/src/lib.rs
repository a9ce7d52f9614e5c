//! Nothing here: this crate only holds the criterion benchmarks in `benches/` (see BENCHMARKS.md).
