"""Integrations with frameworks; each subpackage imports its framework, the core never does."""
