//! Process-wide collectors: each samples the process once and hands per-window deltas to
//! every sink that subscribes (two sinks asking for cpu both get all of it).

pub mod contention;
pub mod cpu;
pub mod debug_info;
pub mod fork;
pub mod heap;
pub mod sampler;
pub mod symbolize;
pub mod threads;
