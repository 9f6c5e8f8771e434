//! Tier lib: the library alone, no external tool and no cosa binary.
//! Fast: part of `cargo nextest run --profile fast`.

mod release_graph_rules;
mod release_meta_index;
mod release_meta_streams;
mod release_updates_ops;
mod store_builds;
mod store_meta;
mod store_prune;
mod store_version;
mod treefile_load;
