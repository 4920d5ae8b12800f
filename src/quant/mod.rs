//! Block formats: the CPU dequantization that serves as reference, and the repack into the
//! layouts the shaders read.

pub mod dequant;
pub mod ggml_type;
pub mod layout;
pub mod pack;
pub mod quantize;
pub mod testing;

pub use dequant::dequantize;
pub use ggml_type::GgmlType;
pub use layout::{PackedMatrix, WeightFormat};
pub use pack::{RowOrder, SourceRows, pack, pack_as, pack_parts, plan_parts};
