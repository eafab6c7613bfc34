"""Tools for policy authors: scaffolding, formatting and mutation testing of policies."""
