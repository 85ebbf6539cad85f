//! Placeholder: replaced by the storage implementation.
