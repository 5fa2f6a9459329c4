//! podvm builtin VMM.
