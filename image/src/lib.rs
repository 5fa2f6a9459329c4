//! podvm local OCI image store.
