//! Model files
