//! Stage 6: what leaves kuzet. The alert contract (`alert.rs`, versioned JSON, a public
//! interface) and, with the daemon, the outputs that deliver it.

pub mod alert;
