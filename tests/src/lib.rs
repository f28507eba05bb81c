//! Integration tests (root, namespaces, XDP) live in `tests/tests/`.
