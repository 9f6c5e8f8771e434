//! cosa: an OS build and release pipeline in the style of coreos-assembler.
//! See `../shared/DESIGN.md` for the map of the stages and rooms.

pub mod cli;
pub mod cmd;
pub mod compose;
pub mod config;
pub mod image;
pub mod ostree;
pub mod publish;
pub mod release;
pub mod rpm;
pub mod sign;
pub mod store;
pub mod supply;
pub mod testvm;
pub mod util;
